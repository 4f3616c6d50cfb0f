"""The :class:`Fetcher`: one shared HTTP client, its limits, redirects and responses.

One Fetcher shares one HTTP client (keep-alive across feeds) and bounds the work:
``concurrency`` feeds at once in all, ``per_host`` at once per feed host name, a connect
and read timeout per network step, and an overall ``deadline`` per feed that covers every
redirect and the whole body. It sends conditional GETs, decompresses gzip/deflate itself
under a cap on the decompressed size (:mod:`newsdesk.fetch.inflate`), follows redirects
by hand so that every hop is checked, and connects only through the address guard
(:mod:`newsdesk.fetch.guard`).

Every failure leaves :meth:`Fetcher.fetch` as a :class:`~newsdesk.errors.FetchError`
(or one of its subclasses) whose reason comes from :func:`describe_error`.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import ssl
import zlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from types import TracebackType
from typing import Final

import httpx

from newsdesk.errors import BlockedAddress, FeedGone, FetchError, RateLimited
from newsdesk.fetch.guard import (
    Resolver,
    _AddressPolicy,
    _VettingBackend,
    _VettingTransport,
    resolve,
)
from newsdesk.fetch.inflate import _Inflater
from newsdesk.fetch.reasons import DeadlineExceeded, _size_text, _status_text, describe_error
from newsdesk.models import FetchedFeed, FetchSettings

ACCEPT: Final = (
    "application/rss+xml, application/atom+xml, application/feed+json, "
    "application/xml;q=0.9, text/xml;q=0.9, */*;q=0.5"
)
# Only what _Inflater decodes; br/zstd would need extra libraries.
ACCEPT_ENCODING: Final = "gzip, deflate"

_REDIRECTS: Final = frozenset({301, 302, 303, 307, 308})
_PERMANENT: Final = frozenset({301, 308})
# ASCII only: str.isdigit() also accepts "²", which int() then refuses.
_DIGITS: Final = re.compile(r"[0-9]+")
_INTEGER: Final = re.compile(r"[+-]?[0-9]+")


# -- pure helpers -------------------------------------------------------------------


def parse_retry_after(value: str | None, now: datetime | None) -> float | None:
    """Seconds to wait from a Retry-After value (delay-seconds or HTTP-date), or None.

    A date in the past, or a negative number, means "now" (0); garbage means None, and
    so does a date when ``now`` is None.
    """
    if value is None or not (text := value.strip()):
        return None
    if _INTEGER.fullmatch(text):
        return float(max(0, int(text)))
    if now is None:
        return None
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    if when.tzinfo is None:  # "-0000": UTC by RFC 5322
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


def parse_max_age(cache_control: str | None) -> float | None:
    """Cache-Control max-age in seconds; None when absent, invalid, no-store or no-cache."""
    if not cache_control:
        return None
    max_age: float | None = None
    for directive in cache_control.split(","):
        name, _, value = directive.strip().partition("=")
        name = name.strip().lower()
        if name in ("no-store", "no-cache"):
            return None
        if name == "max-age" and max_age is None:
            value = value.strip().strip('"')
            if _DIGITS.fullmatch(value):
                max_age = float(value)
    return max_age


# -- the fetcher --------------------------------------------------------------------

# What fetch() turns into FetchError: failures of the network or of the server, never
# bugs of ours (those propagate, as errors.py asks).
_TRANSPORT_ERRORS: Final = (httpx.HTTPError, httpx.InvalidURL, httpx.StreamError, OSError)


class _HostSlots:
    """One semaphore per host name, kept only while some fetch holds or awaits it."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._slots: dict[str, tuple[asyncio.Semaphore, list[int]]] = {}

    @contextlib.asynccontextmanager
    async def hold(self, host: str) -> AsyncIterator[None]:
        semaphore, users = self._slots.setdefault(host, (asyncio.Semaphore(self._limit), [0]))
        users[0] += 1
        try:
            async with semaphore:
                yield
        finally:
            users[0] -= 1
            if users[0] == 0:
                del self._slots[host]

    def __len__(self) -> int:
        return len(self._slots)


class Fetcher:
    """Fetches feeds over one shared HTTP client; use as ``async with Fetcher(s) as f``.

    The client does not read proxy settings, ``.netrc`` or ``SSL_CERT_FILE`` from the
    environment (``trust_env=False``): a service should behave the same under any shell,
    and an environment proxy would also bypass the private-address check.

    ``ssl_context`` replaces the default verifying context (certifi's CA bundle), e.g. to
    trust a private CA; ``resolver`` replaces the system resolver (tests, custom DNS).
    """

    def __init__(
        self,
        settings: FetchSettings,
        *,
        ssl_context: ssl.SSLContext | None = None,
        resolver: Resolver | None = None,
    ) -> None:
        self._settings = settings
        self._policy = _AddressPolicy(settings)
        self._tls = ssl_context or httpx.create_ssl_context(trust_env=False)
        self._resolver = resolver or resolve
        self._all = asyncio.Semaphore(settings.concurrency)
        self._hosts = _HostSlots(settings.per_host)
        self._client: httpx.AsyncClient | None = None

    async def __aenter__(self) -> Fetcher:
        settings = self._settings
        transport = _VettingTransport(
            _VettingBackend(self._policy, self._resolver),
            tls=self._tls,
            max_connections=settings.concurrency,
            keepalive_per_origin=settings.per_host,
        )
        self._client = httpx.AsyncClient(
            transport=transport,
            headers={
                "User-Agent": settings.user_agent,
                "Accept": ACCEPT,
                "Accept-Encoding": ACCEPT_ENCODING,
            },
            timeout=httpx.Timeout(
                connect=settings.connect_timeout,
                read=settings.read_timeout,
                write=settings.read_timeout,
                pool=settings.connect_timeout,
            ),
            follow_redirects=False,
            trust_env=False,
        )
        await self._client.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.__aexit__(exc_type, exc, tb)

    async def fetch(
        self,
        url: str,
        *,
        etag: str | None = None,
        last_modified: str | None = None,
        now: datetime | None = None,
    ) -> FetchedFeed:
        """GET one feed (conditionally when ``etag``/``last_modified`` are given).

        Returns a 200 or 304 result; raises FetchError (FeedGone, RateLimited,
        BlockedAddress) for everything else.

        Waiting for a free slot (``concurrency``, ``per_host`` for the feed's host name)
        does not count against the deadline; redirect targets on other hosts do not take
        another per-host slot. ``now`` is only used to read a Retry-After date from a
        server that sends no Date header (fetch never reads the clock).
        """
        if self._client is None:
            raise RuntimeError("Fetcher.fetch() outside 'async with Fetcher(...)'")
        client = self._client
        start = _target(url, url)
        headers = {}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        async with self._hosts.hold(start.host), self._all:
            try:
                deadline = asyncio.timeout(self._settings.deadline)
                try:
                    async with deadline:
                        return await self._follow(client, url, start, headers, now)
                except TimeoutError as exc:
                    if deadline.expired():
                        raise DeadlineExceeded(self._settings.deadline) from exc
                    raise
            except BlockedAddress as exc:
                # The backend only knows the host; name the feed like every FeedError.
                if exc.url == url:
                    raise
                raise BlockedAddress(url, exc.reason) from exc
            except _TRANSPORT_ERRORS as exc:
                raise FetchError(url, describe_error(exc)) from exc

    async def _follow(
        self,
        client: httpx.AsyncClient,
        url: str,
        start: httpx.URL,
        headers: dict[str, str],
        now: datetime | None,
    ) -> FetchedFeed:
        current, visited, hops, permanent = start, {str(start)}, 0, True
        while True:
            async with client.stream("GET", current, headers=headers) as response:
                status = response.status_code
                if status not in _REDIRECTS:
                    moved = str(current) if hops and permanent else None
                    return await self._result(url, current, response, headers, moved, now)
                location = response.headers.get("location")
                if not location:
                    raise FetchError(url, f"{_status_text(status)} without a Location header")
                hops += 1
                if hops > self._settings.max_redirects:
                    raise FetchError(
                        url, f"too many redirects (more than {self._settings.max_redirects})"
                    )
                try:
                    joined = current.join(location.strip())
                except httpx.InvalidURL as exc:
                    raise FetchError(url, f"invalid redirect to {location!r}: {exc}") from exc
                target = _target(url, joined, location=location)
                if str(target) in visited:
                    raise FetchError(url, f"redirect loop: back to {target}")
                visited.add(str(target))
                permanent = permanent and status in _PERMANENT
                current = target

    async def _result(
        self,
        url: str,
        final: httpx.URL,
        response: httpx.Response,
        sent: dict[str, str],
        moved: str | None,
        now: datetime | None,
    ) -> FetchedFeed:
        headers = {name.lower(): value for name, value in response.headers.items()}
        status = response.status_code
        if status == 410:
            raise FeedGone(url, "gone (HTTP 410): the publisher removed the feed")
        if status in (429, 503):
            retry_after = _retry_after(headers, now)
            later = f", retry after {retry_after:.0f} s" if retry_after is not None else ""
            raise RateLimited(url, _status_text(status) + later, retry_after)
        if status not in (200, 304):
            prefix = "" if status >= 400 else "unexpected "
            raise FetchError(url, prefix + _status_text(status))
        if status == 304:
            # Read the (empty) rest, so the connection goes back to the pool instead of
            # being closed: a warm round would otherwise reconnect for every feed.
            await response.aread()
            body = b""
        else:
            body = await self._read_body(url, response, headers)
        return FetchedFeed(
            url=url,
            final_url=str(final),
            status=status,
            body=body,
            headers=headers,
            permanent_url=moved,
            # A 304 may omit validators; the ones we sent are still the current ones.
            etag=headers.get("etag") or (sent.get("If-None-Match") if status == 304 else None),
            last_modified=headers.get("last-modified")
            or (sent.get("If-Modified-Since") if status == 304 else None),
            max_age=parse_max_age(headers.get("cache-control")),
        )

    async def _read_body(
        self, url: str, response: httpx.Response, headers: dict[str, str]
    ) -> bytes:
        limit = self._settings.max_bytes
        too_large = f"too large: more than {_size_text(limit)}"
        encoding = headers.get("content-encoding", "").strip().lower()
        try:
            inflater = _Inflater.for_encoding(encoding)
        except ValueError:
            raise FetchError(url, f"unsupported content encoding {encoding!r}") from None
        # Content-Length counts the bytes on the wire: only a limit for identity bodies.
        declared = headers.get("content-length", "").strip()
        if inflater is None and _DIGITS.fullmatch(declared) and int(declared) > limit:
            raise FetchError(url, too_large)
        body = bytearray()
        try:
            async for raw in response.aiter_raw():
                for piece in [raw] if inflater is None else inflater.feed(raw):
                    body += piece
                    if len(body) > limit:
                        raise FetchError(url, too_large)
            if inflater is not None:
                body += inflater.flush()
        except zlib.error as exc:
            raise FetchError(url, f"cannot decompress the {encoding} body: {exc}") from exc
        if len(body) > limit:
            raise FetchError(url, too_large)
        return bytes(body)


def _target(url: str, target: str | httpx.URL, *, location: str | None = None) -> httpx.URL:
    """Parse a URL we are about to request; FetchError unless it is http(s) with a host.

    ``location`` is the Location header when ``target`` is a redirect resolved against it.
    """
    what, shown = ("URL", str(target)) if location is None else ("redirect to", location)
    try:
        parsed = httpx.URL(target)
    except httpx.InvalidURL as exc:
        raise FetchError(url, f"invalid {what} {shown!r}: {exc}") from exc
    if parsed.scheme not in ("http", "https"):
        raise FetchError(url, f"unsupported {what} {shown!r}: only http and https")
    if not parsed.host:
        raise FetchError(url, f"invalid {what} {shown!r}: no host")
    return parsed


def _retry_after(headers: dict[str, str], now: datetime | None) -> float | None:
    """Retry-After in seconds; a date counts from the server's Date header when there is
    one (immune to our clock being off), else from ``now``."""
    reference: datetime | None
    try:
        reference = parsedate_to_datetime(headers["date"])
    except (KeyError, TypeError, ValueError, IndexError, OverflowError):
        reference = now
    return parse_retry_after(headers.get("retry-after"), reference)

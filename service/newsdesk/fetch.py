"""Download feeds politely and safely: the only module that imports httpx.

One :class:`Fetcher` shares one HTTP client (keep-alive across feeds) and bounds the work:
``concurrency`` feeds at once in all, ``per_host`` at once per feed host name, a connect
and read timeout per network step, and an overall ``deadline`` per feed that covers every
redirect and the whole body. It sends conditional GETs, decompresses gzip/deflate itself
under a cap on the decompressed size, follows redirects by hand so that every hop is
checked, and refuses targets on private networks when the socket is opened (so a DNS
answer that changes between check and use cannot slip through).

Every failure leaves :meth:`Fetcher.fetch` as a :class:`~newsdesk.errors.FetchError`
(or one of its subclasses) whose reason comes from :func:`describe_error`.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import re
import socket
import ssl
import zlib
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable, Iterator
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from types import TracebackType
from typing import Final, TypeVar

import httpcore
import httpx

from newsdesk.errors import BlockedAddress, FeedError, FeedGone, FetchError, RateLimited
from newsdesk.models import FetchedFeed, FetchSettings

__all__ = [
    "ACCEPT",
    "DeadlineExceeded",
    "Fetcher",
    "describe_error",
    "parse_max_age",
    "parse_retry_after",
    "resolve",
]

_E = TypeVar("_E", bound=BaseException)
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[list[IPAddress]]]

ACCEPT: Final = (
    "application/rss+xml, application/atom+xml, application/feed+json, "
    "application/xml;q=0.9, text/xml;q=0.9, */*;q=0.5"
)
# Only what _Inflater decodes; br/zstd would need extra libraries.
ACCEPT_ENCODING: Final = "gzip, deflate"

_REDIRECTS: Final = frozenset({301, 302, 303, 307, 308})
_PERMANENT: Final = frozenset({301, 308})
_MAX_REASON: Final = 200
# ASCII only: str.isdigit() also accepts "²", which int() then refuses.
_DIGITS: Final = re.compile(r"[0-9]+")
_INTEGER: Final = re.compile(r"[+-]?[0-9]+")
# Decompress in pieces this big, so a bomb never inflates past the cap by more than this.
_PIECE: Final = 64 * 1024
# NAT64 (RFC 6052) addresses stand for the IPv4 address in their last 32 bits.
_NAT64: Final = ipaddress.IPv6Network("64:ff9b::/96")


class DeadlineExceeded(TimeoutError):
    """The overall per-feed deadline passed (connect, redirects and body together)."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"took longer than {seconds:g} s")
        self.seconds = seconds


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


def describe_error(exc: BaseException) -> str:
    """A short, one-line human reason for any fetch failure (stored on the feed row)."""
    return _one_line(_describe(exc))


def _describe(exc: BaseException) -> str:
    if isinstance(exc, FeedError):
        return exc.reason
    if isinstance(exc, DeadlineExceeded):
        return str(exc)
    if isinstance(exc, httpx.ConnectTimeout):
        return "timed out connecting"
    if isinstance(exc, httpx.ReadTimeout):
        return "timed out reading"
    if isinstance(exc, httpx.WriteTimeout):
        return "timed out sending the request"
    if isinstance(exc, httpx.PoolTimeout):
        return "timed out waiting for a free connection"
    if isinstance(exc, httpx.TimeoutException | TimeoutError):
        return "timed out"
    if (tls := _find_cause(exc, ssl.SSLError)) is not None:
        return _describe_tls(tls)
    if isinstance(exc, httpx.ConnectError):
        return f"cannot connect: {_os_cause(exc) or exc}"
    if isinstance(exc, httpx.ProtocolError):
        return f"protocol error: {exc}"
    if isinstance(exc, httpx.ReadError):
        return f"connection lost while reading: {_os_cause(exc) or exc}"
    if isinstance(exc, httpx.WriteError):
        return f"connection lost while sending: {_os_cause(exc) or exc}"
    if isinstance(exc, httpx.TooManyRedirects):
        return "too many redirects"
    if isinstance(exc, httpx.UnsupportedProtocol):
        return f"unsupported URL: {exc}"
    if isinstance(exc, httpx.InvalidURL):
        return f"invalid URL: {exc}"
    if isinstance(exc, httpx.HTTPStatusError):
        return _status_text(exc.response.status_code)
    if isinstance(exc, OSError) and (cause := _os_cause(exc)):
        return f"cannot connect: {cause}"
    return f"{type(exc).__name__}: {exc}"


def _describe_tls(exc: ssl.SSLError) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError):
        detail = getattr(exc, "verify_message", None)
        return "TLS error: certificate verify failed" + (f": {detail}" if detail else "")
    reason = getattr(exc, "reason", None)
    return f"TLS error: {str(reason).lower().replace('_', ' ') if reason else exc}"


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and what caused it, breadth first (httpx wraps httpcore wraps OSError)."""
    queue: list[BaseException] = [exc]
    seen: set[int] = set()
    while queue:
        current = queue.pop(0)
        if id(current) in seen or len(seen) > 20:
            continue
        seen.add(id(current))
        yield current
        if isinstance(current, BaseExceptionGroup):
            queue.extend(current.exceptions)
        for nxt in (current.__cause__, current.__context__):
            if nxt is not None:
                queue.append(nxt)


def _find_cause(exc: BaseException, kind: type[_E]) -> _E | None:
    return next((c for c in _causes(exc) if isinstance(c, kind)), None)


def _os_cause(exc: BaseException) -> str | None:
    """The operating system's words for the root cause ("connection refused"), if any."""
    for cause in _causes(exc):
        if isinstance(cause, socket.gaierror) and cause.strerror:
            return cause.strerror.lower()
        if isinstance(cause, OSError) and isinstance(cause.errno, int) and cause.errno > 0:
            return os.strerror(cause.errno).lower()
    return None


def _one_line(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) < _MAX_REASON else line[: _MAX_REASON - 2] + "…"


def _status_text(status: int) -> str:
    phrase = httpx.codes.get_reason_phrase(status)
    return f"HTTP {status} {phrase}" if phrase else f"HTTP {status}"


def _size_text(n: int) -> str:
    if n >= 1024 * 1024:
        return f"{n / (1024 * 1024):.3g} MB"
    if n >= 1024:
        return f"{n / 1024:.3g} kB"
    return f"{n} bytes"


# -- address policy -----------------------------------------------------------------


class _AddressPolicy:
    """Decides which IP addresses may be connected to."""

    def __init__(self, settings: FetchSettings) -> None:
        self._allow_private = settings.allow_private_networks
        # A bad CIDR is config.py's to report; here it fails loudly at construction.
        self._allowed = [
            ipaddress.ip_network(cidr, strict=False) for cidr in settings.allowed_networks
        ]

    def refuses(self, address: IPAddress) -> bool:
        """True when connecting to ``address`` is not allowed."""
        return not (self._allow_private or self._allowlisted(address) or _is_public(address))

    def _allowlisted(self, address: IPAddress) -> bool:
        # ::ffff:10.1.2.3 is 10.1.2.3 on the wire, so an IPv4 CIDR covers it too.
        mapped = address.ipv4_mapped if isinstance(address, ipaddress.IPv6Address) else None
        candidates = [address] if mapped is None else [address, mapped]
        return any(a.version == n.version and a in n for n in self._allowed for a in candidates)

    def check(self, host: str, addresses: list[IPAddress]) -> None:
        """Raise BlockedAddress when ANY address of ``host`` is refused."""
        for address in addresses:
            if self.refuses(address):
                if _literal(host) is not None:
                    what = f"{host} is a private address"
                else:
                    what = f"{host} resolves to private address {address}"
                raise BlockedAddress(
                    host, f"refused: {what} (set fetch.allow_private_networks to allow)"
                )


def _embedded_ipv4(address: IPAddress) -> list[ipaddress.IPv4Address]:
    if not isinstance(address, ipaddress.IPv6Address):
        return []
    found = [a for a in (address.ipv4_mapped, address.sixtofour) if a is not None]
    if address in _NAT64:
        found.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return found


def _is_public(address: IPAddress) -> bool:
    """Globally routable unicast, judging tunnelled IPv4 by the address inside."""
    embedded = _embedded_ipv4(address)
    if embedded:
        return all(_is_public(inner) for inner in embedded)
    return address.is_global and not (
        address.is_multicast
        or address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_reserved
        or address.is_unspecified
    )


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


async def resolve(host: str, port: int) -> list[IPAddress]:
    """The addresses ``host`` resolves to, in the resolver's order, without duplicates."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses: list[IPAddress] = []
    for _family, _type, _proto, _name, sockaddr in infos:
        # A link-local answer keeps its "%zone": it is needed to connect (when allowed).
        address = ipaddress.ip_address(str(sockaddr[0]))
        if address not in addresses:
            addresses.append(address)
    return addresses


# -- transport: vetting every connection --------------------------------------------


class _VettingBackend(httpcore.AsyncNetworkBackend):
    """httpcore network backend that resolves, vets, then connects to a vetted IP.

    httpcore calls ``connect_tcp`` with the URL's host name for every new connection and
    afterwards starts TLS with ``server_hostname`` taken from the URL (not from the IP we
    connected to), so certificates are still checked against the name.
    """

    def __init__(self, policy: _AddressPolicy, resolver: Resolver) -> None:
        self._inner = httpcore.AnyIOBackend()
        self._policy = policy
        self._resolve = resolver

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        give_up = None if timeout is None else loop.time() + timeout
        literal = _literal(host)
        if literal is not None:
            addresses = [literal]
        else:
            try:
                async with asyncio.timeout_at(give_up):
                    addresses = await self._resolve(host, port)
            except TimeoutError as exc:
                raise httpcore.ConnectTimeout(f"resolving {host} timed out") from exc
            except OSError as exc:
                raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from exc
            if not addresses:
                raise httpcore.ConnectError(f"{host} has no addresses")
        self._policy.check(host, addresses)

        # Try each vetted address in turn (no happy eyeballs: we must pick the IP).
        error: httpcore.ConnectError | httpcore.ConnectTimeout | None = None
        for address in addresses:
            remaining = None if give_up is None else max(0.0, give_up - loop.time())
            try:
                return await self._inner.connect_tcp(
                    str(address),
                    port,
                    timeout=remaining,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc
        assert error is not None
        raise error

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("unix sockets are not used for feeds")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


# httpcore → httpx exceptions, most specific first (httpx does the same privately).
_EXCEPTIONS: Final[tuple[tuple[type[Exception], type[httpx.TransportError]], ...]] = (
    (httpcore.ConnectTimeout, httpx.ConnectTimeout),
    (httpcore.ReadTimeout, httpx.ReadTimeout),
    (httpcore.WriteTimeout, httpx.WriteTimeout),
    (httpcore.PoolTimeout, httpx.PoolTimeout),
    (httpcore.TimeoutException, httpx.TimeoutException),
    (httpcore.ConnectError, httpx.ConnectError),
    (httpcore.ReadError, httpx.ReadError),
    (httpcore.WriteError, httpx.WriteError),
    (httpcore.NetworkError, httpx.NetworkError),
    (httpcore.UnsupportedProtocol, httpx.UnsupportedProtocol),
    (httpcore.LocalProtocolError, httpx.LocalProtocolError),
    (httpcore.RemoteProtocolError, httpx.RemoteProtocolError),
    (httpcore.ProtocolError, httpx.ProtocolError),
)


@contextlib.contextmanager
def _httpx_errors() -> Iterator[None]:
    try:
        yield
    except Exception as exc:
        for core_type, httpx_type in _EXCEPTIONS:
            if isinstance(exc, core_type):
                raise httpx_type(str(exc)) from exc
        raise


class _ResponseStream(httpx.AsyncByteStream):
    def __init__(self, stream: AsyncIterable[bytes]) -> None:
        self._stream = stream

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _httpx_errors():
            async for part in self._stream:
                yield part

    async def aclose(self) -> None:
        aclose = getattr(self._stream, "aclose", None)
        if aclose is not None:
            with _httpx_errors():
                await aclose()


class _VettingTransport(httpx.AsyncBaseTransport):
    """An httpx transport over an httpcore pool whose backend is :class:`_VettingBackend`.

    Built from public httpcore/httpx API only; it is httpx.AsyncHTTPTransport minus
    proxies, plus the ``network_backend`` that class does not let us pass.
    """

    def __init__(
        self, backend: httpcore.AsyncNetworkBackend, *, tls: ssl.SSLContext, max_connections: int
    ) -> None:
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=tls,
            max_connections=max_connections,
            max_keepalive_connections=max_connections,
            keepalive_expiry=5.0,
            network_backend=backend,
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        assert isinstance(request.stream, httpx.AsyncByteStream)
        core_request = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=request.url.raw_scheme,
                host=request.url.raw_host,
                port=request.url.port,
                target=request.url.raw_path,
            ),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        with _httpx_errors():
            response = await self._pool.handle_async_request(core_request)
        assert isinstance(response.stream, AsyncIterable)
        return httpx.Response(
            status_code=response.status,
            headers=response.headers,
            stream=_ResponseStream(response.stream),
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        await self._pool.aclose()


# -- body decoding ------------------------------------------------------------------


class _Inflater:
    """Incremental gzip/deflate decoder that never produces more than _PIECE at once.

    httpx's own decoders inflate each network chunk in one go, so a 64 kB chunk of a gzip
    bomb becomes ~64 MB before anyone can count it; this one yields bounded pieces.
    """

    def __init__(self, encoding: str) -> None:
        gzip = encoding in ("gzip", "x-gzip")
        self._z = zlib.decompressobj(zlib.MAX_WBITS | 16 if gzip else zlib.MAX_WBITS)
        # "deflate" is meant to be zlib-wrapped (RFC 9110), but some servers send raw.
        self._may_be_raw = not gzip
        self._started = False

    @staticmethod
    def for_encoding(encoding: str) -> _Inflater | None:
        """The decoder for a Content-Encoding; None for identity; ValueError if unknown."""
        if encoding in ("", "identity"):
            return None
        if encoding in ("gzip", "x-gzip", "deflate"):
            return _Inflater(encoding)
        raise ValueError(encoding)

    def feed(self, data: bytes) -> Iterator[bytes]:
        """Decompress one network chunk, in pieces of at most _PIECE bytes."""
        while data and not self._z.eof:
            try:
                piece = self._z.decompress(data, _PIECE)
            except zlib.error:
                if self._started or not self._may_be_raw:
                    raise
                self._z = zlib.decompressobj(-zlib.MAX_WBITS)
                self._may_be_raw = False
                continue
            self._started = True
            yield piece
            data = self._z.unconsumed_tail

    def flush(self) -> bytes:
        """What the decoder still holds once the body has ended (at most a window)."""
        return self._z.flush()


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
        body = b"" if status == 304 else await self._read_body(url, response, headers)
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

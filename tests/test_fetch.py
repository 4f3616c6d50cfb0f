"""fetch against a real HTTP server on 127.0.0.1 (and 127.0.0.2 as a second host)."""

from __future__ import annotations

import asyncio
import email.utils
import gzip
import ipaddress
import itertools
import random
import shutil
import socket
import ssl
import subprocess
import time
import tracemalloc
import zlib
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from feedserver import FeedServer, InFlightGauge, Reply, Request
from newsdesk.errors import BlockedAddress, FeedGone, FetchError, RateLimited
from newsdesk.fetch import (
    ACCEPT,
    DeadlineExceeded,
    Fetcher,
    describe_error,
    parse_max_age,
    parse_retry_after,
)
from newsdesk.fetch.guard import _AddressPolicy
from newsdesk.models import FetchedFeed, FetchSettings

T = TypeVar("T")
RSS = b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title></channel></rss>'
# The feed server listens on 127.0.0.1; tests allow exactly that address.
LOCAL = FetchSettings(
    allowed_networks=("127.0.0.1/32",), connect_timeout=2, read_timeout=2, deadline=10
)
BLOCKED_HINT = "(set fetch.allow_private_networks to allow)"


def run(coro: Awaitable[T]) -> T:
    async def main() -> T:
        return await coro

    return asyncio.run(main())


def fetch(url: str, settings: FetchSettings = LOCAL, **kwargs: Any) -> FetchedFeed:
    """Fetch one URL with a fresh Fetcher."""
    fetcher_kwargs = {k: kwargs.pop(k) for k in ("resolver", "ssl_context") if k in kwargs}

    async def go() -> FetchedFeed:
        async with Fetcher(settings, **fetcher_kwargs) as fetcher:
            return await fetcher.fetch(url, **kwargs)

    return run(go())


def fetch_error(url: str, settings: FetchSettings = LOCAL, **kwargs: Any) -> FetchError:
    with pytest.raises(FetchError) as caught:
        fetch(url, settings, **kwargs)
    return caught.value


def fake_resolver(
    table: dict[str, list[str]],
) -> Callable[[str, int], Awaitable[list[Any]]]:
    async def resolve(host: str, port: int) -> list[Any]:
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [ipaddress.ip_address(a) for a in table[host]]

    return resolve


@pytest.fixture
def server() -> Iterator[FeedServer]:
    with FeedServer() as s:
        yield s


@pytest.fixture
def server2() -> Iterator[FeedServer]:
    """A second "host": the same kind of server on 127.0.0.2."""
    with FeedServer(host="127.0.0.2") as s:
        yield s


# -- success, headers, conditional GET ----------------------------------------------


def test_200_returns_body_headers_and_validators(server: FeedServer) -> None:
    headers = {
        "Content-Type": "application/rss+xml; charset=utf-8",
        "ETag": '"v1"',
        "Last-Modified": "Mon, 02 Jun 2025 10:00:00 GMT",
        "Cache-Control": "public, max-age=300",
        "X-Odd-Case": "kept",
    }
    server.route("/feed.xml", Reply(headers=headers, body=RSS))

    result = fetch(server.url("/feed.xml"))

    assert result.status == 200 and not result.not_modified
    assert result.body == RSS
    assert result.url == result.final_url == server.url("/feed.xml")
    assert result.permanent_url is None
    assert result.etag == '"v1"'
    assert result.last_modified == "Mon, 02 Jun 2025 10:00:00 GMT"
    assert result.max_age == 300
    assert result.headers["content-type"] == "application/rss+xml; charset=utf-8"
    assert result.headers["x-odd-case"] == "kept"
    assert all(name == name.lower() for name in result.headers)


def test_request_announces_itself_and_what_it_accepts(server: FeedServer) -> None:
    server.route("/feed.xml", Reply(body=RSS))
    settings = FetchSettings(allowed_networks=("127.0.0.1/32",), user_agent="newsdesk-test/9")

    fetch(server.url("/feed.xml"), settings)

    (request,) = server.requests
    assert request.headers["user-agent"] == "newsdesk-test/9"
    assert request.headers["accept"] == ACCEPT
    assert request.headers["accept"].startswith("application/rss+xml")
    # Only what fetch can decode itself; no br/zstd.
    assert request.headers["accept-encoding"] == "gzip, deflate"
    assert "if-none-match" not in request.headers
    assert "if-modified-since" not in request.headers


def _versioned(state: dict[str, str]) -> Callable[[Request], Reply]:
    """A feed whose ETag is state["etag"]; honours If-None-Match."""

    def handler(request: Request) -> Reply:
        etag = state["etag"]
        headers = {"ETag": etag, "Last-Modified": "Mon, 02 Jun 2025 10:00:00 GMT"}
        if request.headers.get("if-none-match") == etag:
            return Reply(status=304, headers=headers)
        return Reply(headers=headers, body=f"<rss>{etag}</rss>".encode())

    return handler


def test_conditional_get_gives_304_and_sends_validators(server: FeedServer) -> None:
    server.route("/feed.xml", _versioned({"etag": '"v1"'}))
    url = server.url("/feed.xml")

    first = fetch(url)
    second = fetch(url, etag=first.etag, last_modified=first.last_modified)

    assert first.status == 200 and first.etag == '"v1"'
    assert second.status == 304 and second.not_modified
    assert second.body == b""
    assert second.etag == '"v1"'
    sent = server.requests[1].headers
    assert sent["if-none-match"] == '"v1"'
    assert sent["if-modified-since"] == "Mon, 02 Jun 2025 10:00:00 GMT"


def test_304_without_validators_keeps_the_ones_sent(server: FeedServer) -> None:
    server.route("/feed.xml", Reply(status=304))

    result = fetch(server.url("/feed.xml"), etag='"abc"', last_modified="Sun, 01 Jun 2025 GMT")

    assert result.status == 304
    assert result.etag == '"abc"'
    assert result.last_modified == "Sun, 01 Jun 2025 GMT"


def test_changed_etag_brings_the_new_body(server: FeedServer) -> None:
    state = {"etag": '"v1"'}
    server.route("/feed.xml", _versioned(state))
    url = server.url("/feed.xml")
    first = fetch(url)

    state["etag"] = '"v2"'
    second = fetch(url, etag=first.etag)

    assert second.status == 200
    assert second.body == b'<rss>"v2"</rss>'
    assert second.etag == '"v2"'
    assert server.requests[1].headers["if-none-match"] == '"v1"'


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("", None),
        ("max-age=300", 300.0),
        ("public, max-age=60, must-revalidate", 60.0),
        ('max-age="90"', 90.0),
        ("MAX-AGE=10", 10.0),
        ("max-age=abc", None),
        ("max-age=-5", None),
        ("max-age=²", None),
        ("no-store, max-age=300", None),
        ("max-age=300, no-cache", None),
        ("private", None),
    ],
)
def test_parse_max_age(value: str | None, expected: float | None) -> None:
    assert parse_max_age(value) == expected


# -- redirects ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("chain", "persisted"),
    [
        ([301], True),
        ([308], True),
        ([301, 308, 301], True),
        ([302], False),
        ([307], False),
        ([303], False),
        ([301, 302], False),
        ([302, 301], False),
    ],
)
def test_only_all_permanent_redirect_chains_move_the_feed(
    server: FeedServer, chain: list[int], persisted: bool
) -> None:
    for i, status in enumerate(chain):
        server.redirect(f"/hop{i}", f"/hop{i + 1}" if i + 1 < len(chain) else "/feed", status)
    server.route("/feed", Reply(body=RSS))

    result = fetch(server.url("/hop0"))

    assert result.body == RSS
    assert result.url == server.url("/hop0")
    assert result.final_url == server.url("/feed")
    assert result.permanent_url == (server.url("/feed") if persisted else None)
    assert len(server.requests) == len(chain) + 1


def test_relative_and_absolute_locations(server: FeedServer) -> None:
    server.redirect("/a/old", "new", 301)
    server.redirect("/a/new", server.url("/feed"), 301)
    server.route("/feed", Reply(body=RSS))

    assert fetch(server.url("/a/old")).permanent_url == server.url("/feed")


def test_permanent_redirect_to_not_modified(server: FeedServer) -> None:
    server.redirect("/old", "/feed", 301)
    server.route("/feed", _versioned({"etag": '"v1"'}))

    result = fetch(server.url("/old"), etag='"v1"')

    assert result.status == 304
    assert result.permanent_url == server.url("/feed")
    assert server.requests_to("/feed")[0].headers["if-none-match"] == '"v1"'


def test_redirect_loop(server: FeedServer) -> None:
    server.redirect("/a", "/b", 302)
    server.redirect("/b", "/a", 302)

    error = fetch_error(server.url("/a"))

    assert error.reason == f"redirect loop: back to {server.url('/a')}"
    assert len(server.requests) == 2


def _chain(server: FeedServer, hops: int) -> str:
    for i in range(hops):
        server.redirect(f"/r{i}", f"/r{i + 1}" if i + 1 < hops else "/feed", 301)
    server.route("/feed", Reply(body=RSS))
    return server.url("/r0")


def test_six_redirects_are_too_many(server: FeedServer) -> None:
    error = fetch_error(_chain(server, 6))

    assert error.reason == "too many redirects (more than 5)"
    assert len(server.requests_to("/feed")) == 0


def test_five_redirects_are_fine(server: FeedServer) -> None:
    assert fetch(_chain(server, 5)).body == RSS


@pytest.mark.parametrize("location", ["ftp://example.org/feed", "file:///etc/passwd"])
def test_redirect_only_to_http(server: FeedServer, location: str) -> None:
    server.redirect("/feed", location, 302)

    error = fetch_error(server.url("/feed"))

    assert error.reason == f"unsupported redirect to {location!r}: only http and https"


def test_redirect_without_location(server: FeedServer) -> None:
    server.route("/feed", Reply(status=302))

    assert fetch_error(server.url("/feed")).reason == "HTTP 302 Found without a Location header"


# -- HTTP errors --------------------------------------------------------------------


def test_410_is_gone(server: FeedServer) -> None:
    server.route("/feed", Reply(status=410))

    with pytest.raises(FeedGone) as caught:
        fetch(server.url("/feed"))

    assert caught.value.reason == "gone (HTTP 410): the publisher removed the feed"
    assert caught.value.url == server.url("/feed")


def test_429_with_retry_after_seconds(server: FeedServer) -> None:
    server.route("/feed", Reply(status=429, headers={"Retry-After": "120"}))

    with pytest.raises(RateLimited) as caught:
        fetch(server.url("/feed"))

    assert caught.value.retry_after == 120
    assert caught.value.reason == "HTTP 429 Too Many Requests, retry after 120 s"


def test_429_with_retry_after_date_counts_from_the_server_date(server: FeedServer) -> None:
    # The server's clock is an hour off; the date is relative to its Date header.
    server_now = datetime.now(UTC) - timedelta(hours=1)
    later = server_now + timedelta(seconds=120)
    server.route(
        "/feed",
        Reply(
            status=429,
            headers={
                "Date": email.utils.format_datetime(server_now, usegmt=True),
                "Retry-After": email.utils.format_datetime(later, usegmt=True),
            },
        ),
    )

    with pytest.raises(RateLimited) as caught:
        fetch(server.url("/feed"))

    assert caught.value.retry_after == 120


def test_retry_after_date_without_a_server_date_needs_now(server: FeedServer) -> None:
    # The feed server always sends Date unless told which; a duplicate is unreadable.
    now = datetime(2025, 6, 2, 10, 0, 0, tzinfo=UTC)
    headers = [("Date", "garbage"), ("Retry-After", "Mon, 02 Jun 2025 10:05:00 GMT")]
    server.route("/feed", Reply(status=429, headers=headers))

    async def go(now: datetime | None) -> float | None:
        async with Fetcher(LOCAL) as fetcher:
            try:
                await fetcher.fetch(server.url("/feed"), now=now)
            except RateLimited as exc:
                return exc.retry_after
        raise AssertionError("not rate limited")

    assert run(go(now)) == 300
    assert run(go(None)) is None


def test_503_without_retry_after(server: FeedServer) -> None:
    server.route("/feed", Reply(status=503))

    with pytest.raises(RateLimited) as caught:
        fetch(server.url("/feed"))

    assert caught.value.retry_after is None
    assert caught.value.reason == "HTTP 503 Service Unavailable"


def test_503_with_garbage_retry_after(server: FeedServer) -> None:
    server.route("/feed", Reply(status=503, headers={"Retry-After": "soon"}))

    with pytest.raises(RateLimited) as caught:
        fetch(server.url("/feed"))

    assert caught.value.retry_after is None


NOW = datetime(2025, 6, 2, 10, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("", None),
        ("120", 120.0),
        (" 7 ", 7.0),
        ("0", 0.0),
        ("-5", 0.0),
        ("1.5", None),
        ("+-5", None),
        ("²", None),
        ("soon", None),
        ("Mon, 02 Jun 99999 10:00:00 GMT", None),
        ("Mon, 02 Jun 2025 10:02:00 GMT", 120.0),
        ("Monday, 02-Jun-25 10:01:00 GMT", 60.0),
        ("Mon Jun  2 10:00:30 2025", 30.0),
        ("Mon, 02 Jun 2025 09:00:00 GMT", 0.0),
        ("Mon, 32 Jun 2025 10:00:00 GMT", None),
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value, NOW) == expected


def test_parse_retry_after_without_now_reads_only_seconds() -> None:
    assert parse_retry_after("120", None) == 120
    assert parse_retry_after("Mon, 02 Jun 2025 10:02:00 GMT", None) is None


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        (404, "HTTP 404 Not Found"),
        (403, "HTTP 403 Forbidden"),
        (500, "HTTP 500 Internal Server Error"),
        (502, "HTTP 502 Bad Gateway"),
        (599, "HTTP 599"),
        (204, "unexpected HTTP 204 No Content"),
        (300, "unexpected HTTP 300 Multiple Choices"),
    ],
)
def test_other_statuses_fail_with_the_status(server: FeedServer, status: int, reason: str) -> None:
    server.route("/feed", Reply(status=status, body=b"nope" if status != 204 else b""))

    error = fetch_error(server.url("/feed"))

    assert type(error) is FetchError
    assert error.reason == reason


# -- time and size limits -----------------------------------------------------------


def test_read_timeout(server: FeedServer) -> None:
    server.route("/feed", Reply(body=RSS, delay=1.5))
    settings = FetchSettings(allowed_networks=("127.0.0.1/32",), read_timeout=0.3)

    assert fetch_error(server.url("/feed"), settings).reason == "timed out reading"


def test_slow_drip_body_stops_at_the_deadline(server: FeedServer) -> None:
    # Every chunk arrives well within the read timeout; only the deadline can stop it.
    server.route("/feed", Reply(body=itertools.repeat(b"<!-- drip -->"), chunk_delay=0.05))
    settings = FetchSettings(allowed_networks=("127.0.0.1/32",), read_timeout=5, deadline=0.5)

    error = fetch_error(server.url("/feed"), settings)

    assert error.reason == "took longer than 0.5 s"
    assert isinstance(error.__cause__, DeadlineExceeded)


def test_endless_fast_body_stops_at_max_bytes(server: FeedServer) -> None:
    server.route("/feed", Reply(body=itertools.repeat(b"x" * 8192)))
    settings = FetchSettings(allowed_networks=("127.0.0.1/32",), max_bytes=256 * 1024)

    assert fetch_error(server.url("/feed"), settings).reason == "too large: more than 256 kB"


def test_declared_length_over_the_cap_is_refused_before_reading(server: FeedServer) -> None:
    # The body is never sent in full; reading it would hang until the read timeout.
    server.route("/feed", Reply(headers={"Content-Length": str(50 * 2**20)}, body=b"<rss>"))
    settings = FetchSettings(allowed_networks=("127.0.0.1/32",), read_timeout=30)

    assert fetch_error(server.url("/feed"), settings).reason == "too large: more than 10 MB"


def test_body_exactly_at_the_cap_is_fine(server: FeedServer) -> None:
    server.route("/feed", Reply(body=b"x" * 1000))
    settings = FetchSettings(allowed_networks=("127.0.0.1/32",), max_bytes=1000)

    assert len(fetch(server.url("/feed"), settings).body) == 1000


def _gzip_of_zeros(size: int) -> bytes:
    """gzip of ``size`` zero bytes, built without holding them in memory."""
    packer = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    block = bytes(2**20)
    out = [packer.compress(block) for _ in range(size // len(block))]
    out.append(packer.flush())
    return b"".join(out)


def test_gzip_bomb_stops_at_max_bytes_without_inflating_it(server: FeedServer) -> None:
    bomb = _gzip_of_zeros(100 * 2**20)
    assert len(bomb) < 200_000
    server.route("/feed", Reply(headers={"Content-Encoding": "gzip"}, body=bomb))
    settings = FetchSettings(allowed_networks=("127.0.0.1/32",), max_bytes=2**20)

    tracemalloc.start()
    try:
        error = fetch_error(server.url("/feed"), settings)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert error.reason == "too large: more than 1 MB"
    # httpx's own decoder would inflate a whole 64 kB network chunk (~64 MB) at once.
    assert peak < 8 * 2**20


def _raw_deflate(data: bytes) -> bytes:
    packer = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return packer.compress(data) + packer.flush()


@pytest.mark.parametrize(
    ("encoding", "pack"),
    [
        ("gzip", gzip.compress),
        ("x-gzip", gzip.compress),
        ("deflate", zlib.compress),
        ("deflate", _raw_deflate),  # RFC 1951 raw, which some servers send for "deflate"
        ("identity", bytes),
    ],
)
def test_content_encodings_are_decoded(
    server: FeedServer, encoding: str, pack: Callable[[bytes], bytes]
) -> None:
    body = RSS * 200
    server.route("/feed", Reply(headers={"Content-Encoding": encoding}, body=pack(body)))

    result = fetch(server.url("/feed"))

    assert result.body == body
    assert result.headers["content-encoding"] == encoding


def test_compressed_body_over_the_cap(server: FeedServer) -> None:
    wire = gzip.compress(b"<rss>" + b" " * 300_000 + b"</rss>")
    # Content-Length (wire size) is under the cap; only the decoded size is over it.
    assert len(wire) < 100_000
    server.route("/feed", Reply(headers={"Content-Encoding": "gzip"}, body=wire))
    settings = FetchSettings(allowed_networks=("127.0.0.1/32",), max_bytes=100_000)

    assert fetch_error(server.url("/feed"), settings).reason == "too large: more than 97.7 kB"


def test_wire_length_of_an_encoded_body_is_not_its_size(server: FeedServer) -> None:
    # gzip makes random bytes slightly longer: Content-Length is over the cap, the
    # decoded body is not.
    body = random.Random(1).randbytes(1000)
    wire = gzip.compress(body)
    assert len(wire) > 1010
    server.route("/feed", Reply(headers={"Content-Encoding": "gzip"}, body=wire))
    settings = FetchSettings(allowed_networks=("127.0.0.1/32",), max_bytes=1010)

    assert fetch(server.url("/feed"), settings).body == body


def test_unknown_encoding_is_refused(server: FeedServer) -> None:
    server.route("/feed", Reply(headers={"Content-Encoding": "br"}, body=b"\x1b\x00"))

    assert fetch_error(server.url("/feed")).reason == "unsupported content encoding 'br'"


def test_corrupt_gzip(server: FeedServer) -> None:
    server.route("/feed", Reply(headers={"Content-Encoding": "gzip"}, body=b"not gzip at all"))

    assert fetch_error(server.url("/feed")).reason.startswith("cannot decompress the gzip body")


# -- private addresses --------------------------------------------------------------


def test_loopback_url_refused_by_default(server: FeedServer) -> None:
    server.route("/feed", Reply(body=RSS))

    with pytest.raises(BlockedAddress) as caught:
        fetch(server.url("/feed"), FetchSettings())

    assert caught.value.reason == f"refused: 127.0.0.1 is a private address {BLOCKED_HINT}"
    assert caught.value.url == server.url("/feed")
    assert server.requests == []


def test_allowlist_and_switch_let_private_addresses_through(
    server: FeedServer, server2: FeedServer
) -> None:
    server.route("/feed", Reply(body=RSS))
    server2.route("/feed", Reply(body=RSS))

    assert fetch(server.url("/feed"), FetchSettings(allowed_networks=("127.0.0.0/8",))).body
    assert fetch(server2.url("/feed"), FetchSettings(allow_private_networks=True)).body
    with pytest.raises(BlockedAddress):
        fetch(server2.url("/feed"), FetchSettings(allowed_networks=("127.0.0.1/32",)))
    assert len(server2.requests) == 1


def test_redirect_to_a_private_address_is_refused(server: FeedServer, server2: FeedServer) -> None:
    server.redirect("/feed", server2.url("/feed"), 302)
    server2.route("/feed", Reply(body=RSS))

    with pytest.raises(BlockedAddress) as caught:
        fetch(server.url("/feed"), LOCAL)

    assert caught.value.reason == f"refused: 127.0.0.2 is a private address {BLOCKED_HINT}"
    assert caught.value.url == server.url("/feed")
    assert len(server.requests) == 1
    assert server2.requests == []


def test_names_are_checked_after_resolving(server: FeedServer) -> None:
    server.route("/feed", Reply(body=RSS))
    url = f"http://feeds.test:{server.port}/feed"
    resolver = fake_resolver({"feeds.test": ["127.0.0.1"]})

    with pytest.raises(BlockedAddress) as caught:
        fetch(url, FetchSettings(), resolver=resolver)
    assert caught.value.reason == (
        f"refused: feeds.test resolves to private address 127.0.0.1 {BLOCKED_HINT}"
    )
    assert server.requests == []

    assert fetch(url, LOCAL, resolver=resolver).body == RSS
    assert server.requests[0].headers["host"] == f"feeds.test:{server.port}"


def test_any_private_answer_refuses_the_name(server: FeedServer) -> None:
    server.route("/feed", Reply(body=RSS))
    resolver = fake_resolver({"feeds.test": ["127.0.0.1", "127.0.0.2"]})

    with pytest.raises(BlockedAddress) as caught:
        fetch(f"http://feeds.test:{server.port}/feed", LOCAL, resolver=resolver)

    assert "private address 127.0.0.2" in caught.value.reason
    assert server.requests == []


def test_every_new_connection_is_checked_so_rebinding_fails(server: FeedServer) -> None:
    # The first answer is allowed, the next one is not: a check done once at URL
    # validation (and not at connect time) would let the second fetch through.
    answers = iter([["127.0.0.1"], ["10.0.0.1"]])

    async def rebinding(host: str, port: int) -> list[Any]:
        return [ipaddress.ip_address(a) for a in next(answers)]

    server.route("/feed", Reply(body=RSS, close=True))
    url = f"http://rebind.test:{server.port}/feed"

    async def go() -> tuple[FetchedFeed, BaseException]:
        async with Fetcher(LOCAL, resolver=rebinding) as fetcher:
            first = await fetcher.fetch(url)
            try:
                await fetcher.fetch(url)
            except BlockedAddress as exc:
                return first, exc
            raise AssertionError("second fetch was not refused")

    first, error = run(go())

    assert first.body == RSS
    assert isinstance(error, BlockedAddress)
    assert "resolves to private address 10.0.0.1" in str(error)
    assert len(server.requests) == 1


@pytest.mark.parametrize(
    "address",
    [
        "10.0.0.1",
        "172.16.5.4",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "224.0.0.1",
        "239.255.255.250",
        "240.0.0.1",
        "255.255.255.255",
        "::1",
        "::",
        "fe80::1",
        "fc00::1",
        "ff02::1",
        "::ffff:10.0.0.1",
        "::ffff:127.0.0.1",
        "2002:a00:1::1",
        "64:ff9b::a00:1",
    ],
)
def test_private_kinds_are_refused(address: str) -> None:
    resolver = fake_resolver({"feeds.test": [address]})

    with pytest.raises(BlockedAddress) as caught:
        fetch("http://feeds.test/feed", FetchSettings(), resolver=resolver)

    assert f"private address {ipaddress.ip_address(address)}" in caught.value.reason


@pytest.mark.parametrize(
    ("address", "refused"),
    [
        ("93.184.215.14", False),
        ("2606:2800:21f:cb07:6820:80da:af6b:8b2c", False),
        ("64:ff9b::5db8:d70e", False),  # NAT64 of a public IPv4 address
        ("2002:5db8:d70e::1", False),  # 6to4 of a public IPv4 address
        ("192.0.2.1", True),  # documentation ranges are not routable
        ("2001:db8::1", True),
        ("198.18.0.1", True),  # benchmarking
        ("127.0.0.1", False),  # allowlisted below
        ("::ffff:127.0.0.1", False),  # the same address, IPv4-mapped
        ("127.0.0.2", True),
    ],
)
def test_address_policy(address: str, refused: bool) -> None:
    # Public addresses are judged without connecting: tests never leave the machine.
    policy = _AddressPolicy(FetchSettings(allowed_networks=("127.0.0.1/32",)))

    assert policy.refuses(ipaddress.ip_address(address)) is refused


# -- connection failures ------------------------------------------------------------


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_connection_refused() -> None:
    error = fetch_error(f"http://127.0.0.1:{_closed_port()}/feed")

    assert error.reason == "cannot connect: connection refused"


def test_name_not_known() -> None:
    error = fetch_error("http://nowhere.test/feed", resolver=fake_resolver({}))

    assert error.reason == "cannot connect: name or service not known"


def test_server_hanging_up(server: FeedServer) -> None:
    server.route("/feed", Reply(abort=True))

    error = fetch_error(server.url("/feed"))

    assert error.reason == "protocol error: Server disconnected without sending a response."


@pytest.mark.parametrize("url", ["ftp://example.org/feed", "feed.xml", "http:///nohost"])
def test_unusable_urls(url: str) -> None:
    error = fetch_error(url)

    assert error.url == url
    assert error.reason.startswith(("unsupported URL", "invalid URL"))


# -- concurrency --------------------------------------------------------------------


def _fetch_all(fetcher_settings: FetchSettings, urls: list[str]) -> list[FetchedFeed]:
    async def go() -> list[FetchedFeed]:
        async with Fetcher(fetcher_settings) as fetcher:
            results = await asyncio.gather(*(fetcher.fetch(u) for u in urls))
            assert len(fetcher._hosts) == 0  # no per-host semaphore outlives its fetches
            return results

    return run(go())


def test_per_host_limit(server: FeedServer) -> None:
    server.route("/feed", Reply(body=RSS, delay=0.15))
    settings = FetchSettings(allowed_networks=("127.0.0.1/32",), per_host=2, concurrency=50)

    results = _fetch_all(settings, [server.url(f"/feed?n={i}") for i in range(10)])

    assert len(results) == 10
    assert server.gauge.peak == 2


def test_global_limit_across_hosts() -> None:
    gauge = InFlightGauge()
    with FeedServer(gauge=gauge) as one, FeedServer(host="127.0.0.2", gauge=gauge) as two:
        for s in (one, two):
            s.route("/feed", Reply(body=RSS, delay=0.15))
        urls = [s.url(f"/feed?n={i}") for s in (one, two) for i in range(5)]
        settings = FetchSettings(allow_private_networks=True, per_host=2, concurrency=3)

        _fetch_all(settings, urls)

    assert gauge.peak == 3


def test_waiting_for_a_slot_does_not_count_against_the_deadline(server: FeedServer) -> None:
    server.route("/feed", Reply(body=RSS, delay=0.3))
    settings = FetchSettings(allowed_networks=("127.0.0.1/32",), per_host=1, deadline=0.9)

    # Four feeds one after the other take ~1.2 s, longer than one deadline.
    results = _fetch_all(settings, [server.url(f"/feed?n={i}") for i in range(4)])

    assert [r.status for r in results] == [200] * 4


def test_fetch_needs_the_context_manager() -> None:
    with pytest.raises(RuntimeError):
        run(Fetcher(LOCAL).fetch("http://127.0.0.1/"))


# -- TLS ----------------------------------------------------------------------------


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A test CA, a leaf for feeds.test signed by it, and a self-signed leaf."""
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command")
    d = tmp_path_factory.mktemp("certs")
    key = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    _openssl(
        "req",
        "-x509",
        *key,
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=newsdesk test CA",
        cwd=d,
    )
    _openssl(
        "req",
        "-new",
        *key,
        "-keyout",
        "leaf.key",
        "-out",
        "leaf.csr",
        "-subj",
        "/CN=feeds.test",
        cwd=d,
    )
    (d / "ext.cnf").write_text("subjectAltName=DNS:feeds.test\n")
    _openssl(
        "x509",
        "-req",
        "-in",
        "leaf.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "leaf.pem",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
        cwd=d,
    )
    _openssl(
        "req",
        "-x509",
        *key,
        "-keyout",
        "self.key",
        "-out",
        "self.pem",
        "-days",
        "2",
        "-subj",
        "/CN=feeds.test",
        "-addext",
        "subjectAltName=DNS:feeds.test",
        cwd=d,
    )
    return d


def _tls_server(certs: Path, name: str) -> FeedServer:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certs / f"{name}.pem", certs / f"{name}.key")
    server = FeedServer(tls=context)
    server.route("/feed", Reply(body=RSS))
    return server


def _trusting(certs: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(certs / "ca.pem"))


def test_tls_verifies_against_the_host_name(certs: Path) -> None:
    resolver = fake_resolver({"feeds.test": ["127.0.0.1"], "other.test": ["127.0.0.1"]})
    with _tls_server(certs, "leaf") as server:
        # We connect to the vetted IP, yet the certificate is checked for the name.
        ok = fetch(
            f"https://feeds.test:{server.port}/feed",
            resolver=resolver,
            ssl_context=_trusting(certs),
        )
        wrong = fetch_error(
            f"https://other.test:{server.port}/feed",
            resolver=resolver,
            ssl_context=_trusting(certs),
        )

    assert ok.body == RSS
    assert wrong.reason.startswith("TLS error: certificate verify failed: Hostname mismatch")


def test_tls_self_signed_is_refused(certs: Path) -> None:
    resolver = fake_resolver({"feeds.test": ["127.0.0.1"]})
    with _tls_server(certs, "self") as server:
        error = fetch_error(f"https://feeds.test:{server.port}/feed", resolver=resolver)

    assert error.reason == "TLS error: certificate verify failed: self-signed certificate"


# -- describe_error -----------------------------------------------------------------


def _caused(exc: BaseException, cause: BaseException) -> BaseException:
    exc.__cause__ = cause
    return exc


def _cert_error(message: str) -> ssl.SSLCertVerificationError:
    exc = ssl.SSLCertVerificationError(1, f"[SSL: CERTIFICATE_VERIFY_FAILED] {message}")
    exc.verify_message = message
    return exc


def _ssl_error(reason: str) -> ssl.SSLError:
    exc = ssl.SSLError(1, f"[SSL: {reason}] {reason.lower()}")
    exc.reason = reason
    return exc


_not_found = httpx.Response(404, request=httpx.Request("GET", "http://example.org/"))
URL = "http://example.org/feed"

DESCRIBE_CASES: list[tuple[str, BaseException, str]] = [
    ("connect timeout", httpx.ConnectTimeout("x"), "timed out connecting"),
    ("read timeout", httpx.ReadTimeout("x"), "timed out reading"),
    ("write timeout", httpx.WriteTimeout("x"), "timed out sending the request"),
    ("pool timeout", httpx.PoolTimeout("x"), "timed out waiting for a free connection"),
    ("deadline", DeadlineExceeded(60), "took longer than 60 s"),
    ("other timeout", TimeoutError(), "timed out"),
    (
        "refused",
        _caused(
            httpx.ConnectError("All connection attempts failed"),
            _caused(OSError("All connection attempts failed"), ConnectionRefusedError(111, "x")),
        ),
        "cannot connect: connection refused",
    ),
    (
        "dns",
        _caused(httpx.ConnectError("x"), socket.gaierror(-2, "Name or service not known")),
        "cannot connect: name or service not known",
    ),
    ("connect, no cause", httpx.ConnectError("no route"), "cannot connect: no route"),
    (
        "unreachable",
        _caused(httpx.ConnectError("x"), OSError(101, "Network is unreachable")),
        "cannot connect: network is unreachable",
    ),
    (
        "tls verify",
        _caused(httpx.ConnectError("x"), _cert_error("self-signed certificate")),
        "TLS error: certificate verify failed: self-signed certificate",
    ),
    (
        "tls other",
        _caused(httpx.ConnectError("x"), _ssl_error("WRONG_VERSION_NUMBER")),
        "TLS error: wrong version number",
    ),
    (
        "protocol",
        httpx.RemoteProtocolError("Server disconnected without sending a response."),
        "protocol error: Server disconnected without sending a response.",
    ),
    ("local protocol", httpx.LocalProtocolError("bad header"), "protocol error: bad header"),
    (
        "reset",
        _caused(httpx.ReadError("x"), ConnectionResetError(104, "Connection reset by peer")),
        "connection lost while reading: connection reset by peer",
    ),
    ("too many redirects", httpx.TooManyRedirects("x"), "too many redirects"),
    ("unsupported", httpx.UnsupportedProtocol("gopher"), "unsupported URL: gopher"),
    ("invalid url", httpx.InvalidURL("bad port"), "invalid URL: bad port"),
    (
        "status",
        httpx.HTTPStatusError("x", request=_not_found.request, response=_not_found),
        "HTTP 404 Not Found",
    ),
    (
        "gone",
        FeedGone(URL, "gone (HTTP 410): the publisher removed the feed"),
        "gone (HTTP 410): the publisher removed the feed",
    ),
    (
        "rate limited",
        RateLimited(URL, "HTTP 429 Too Many Requests", 5),
        "HTTP 429 Too Many Requests",
    ),
    ("blocked", BlockedAddress(URL, "refused: x"), "refused: x"),
    ("fetch error", FetchError(URL, "too large: more than 10 MB"), "too large: more than 10 MB"),
    ("bare os error", ConnectionRefusedError(111, "x"), "cannot connect: connection refused"),
    ("anything else", ValueError("bad\n  thing"), "ValueError: bad thing"),
]


@pytest.mark.parametrize(
    ("exc", "reason"), [c[1:] for c in DESCRIBE_CASES], ids=[c[0] for c in DESCRIBE_CASES]
)
def test_describe_error(exc: BaseException, reason: str) -> None:
    assert describe_error(exc) == reason


def test_describe_error_keeps_reasons_short() -> None:
    reason = describe_error(RuntimeError("x" * 500 + "\n" + "y" * 500))

    assert len(reason) < 200
    assert "\n" not in reason
    assert reason.startswith("RuntimeError: xxx") and reason.endswith("…")


def test_real_failures_read_like_the_table() -> None:
    # The table above uses hand-built exceptions; this is the real thing through httpx.
    async def go() -> BaseException:
        async with httpx.AsyncClient() as client:
            try:
                await client.get(f"http://127.0.0.1:{_closed_port()}/")
            except httpx.HTTPError as exc:
                return exc
        raise AssertionError("no error")

    assert describe_error(run(go())) == "cannot connect: connection refused"


# -- the feed server itself ---------------------------------------------------------


def test_feedserver_serves_a_directory_with_conditional_get(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.rss").write_bytes(RSS)
    extra = {"sub/a.rss": {"Content-Type": "text/xml; charset=iso-8859-1"}}
    with FeedServer(directory=tmp_path, file_headers=extra) as server:
        first = fetch(server.url("/sub/a.rss"))
        again = fetch(server.url("/sub/a.rss"), etag=first.etag)
        since = fetch(server.url("/sub/a.rss"), last_modified=first.last_modified)
        missing = fetch_error(server.url("/sub/../../etc/passwd"))

    assert first.body == RSS and first.etag and first.last_modified
    assert first.headers["content-type"] == "text/xml; charset=iso-8859-1"
    assert again.status == 304 and since.status == 304
    assert missing.reason == "HTTP 404 Not Found"


def test_feedserver_latency_and_keep_alive(server: FeedServer) -> None:
    server.latency = (0.1, 0.15)
    server.route("/feed", Reply(body=RSS))
    settings = FetchSettings(allowed_networks=("127.0.0.1/32",), per_host=1)

    began = time.monotonic()
    _fetch_all(settings, [server.url("/feed")] * 3)

    assert time.monotonic() - began >= 0.3
    # One connection served all three (HTTP/1.1 keep-alive through the shared client).
    assert len({r.client for r in server.requests}) == 1


def test_connection_pools_of_hosts_done_with_are_closed(server: FeedServer) -> None:
    """One pool per origin, but not an open keep-alive socket per host ever fetched."""
    server.route("/feed", Reply(body=RSS))
    hosts = [f"feed-{n}.test" for n in range(150)]
    resolver = fake_resolver({host: ["127.0.0.1"] for host in hosts})
    settings = FetchSettings(allow_private_networks=True, concurrency=8)

    async def go() -> tuple[list[FetchedFeed], int, int]:
        async with Fetcher(settings, resolver=resolver) as fetcher:
            results = await asyncio.gather(
                *(fetcher.fetch(f"http://{host}:{server.port}/feed") for host in hosts)
            )
            transport = fetcher._client._transport  # type: ignore[union-attr]
            return results, len(transport._pools), transport._max_pools

    results, pools, max_pools = run(go())
    assert [r.status for r in results] == [200] * len(hosts)
    assert max_pools == 64
    assert pools <= max_pools


def test_a_304_keeps_the_connection_for_the_next_feed(server: FeedServer) -> None:
    server.route("/feed", lambda r: Reply(status=304, headers={"ETag": '"v1"'}))

    async def go() -> None:
        async with Fetcher(LOCAL) as fetcher:
            for _ in range(3):
                assert (await fetcher.fetch(server.url("/feed"), etag='"v1"')).status == 304

    run(go())
    assert len({request.client for request in server.requests}) == 1

"""Which addresses a feed may be fetched from, enforced when each socket is opened.

:class:`_AddressPolicy` refuses private, loopback, link-local and other non-public
addresses (unless allowed in the settings), judging tunnelled IPv4 by the address inside.
:class:`_VettingTransport` is an httpx transport whose httpcore backend resolves the
host, vets every address and then connects to a vetted IP, so a DNS answer that changes
between check and use cannot slip through.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
import ssl
from collections import OrderedDict
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable, Iterator
from typing import Final

import httpcore
import httpx

from newsdesk.errors import BlockedAddress
from newsdesk.models import FetchSettings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[list[IPAddress]]]

# NAT64 (RFC 6052) addresses stand for the IPv4 address in their last 32 bits.
_NAT64: Final = ipaddress.IPv6Network("64:ff9b::/96")


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
        self,
        backend: httpcore.AsyncNetworkBackend,
        *,
        tls: ssl.SSLContext,
        max_connections: int,
        keepalive_per_origin: int,
    ) -> None:
        self._backend = backend
        self._tls = tls
        self._max_connections = max_connections
        self._keepalive = keepalive_per_origin
        # One pool per origin: httpcore does work proportional to a pool's connections on
        # every request, which for one pool shared by thousands of hosts dominated the
        # event loop. Idle pools past this many are closed, oldest first, so keep-alive
        # sockets of hosts already done with do not pile up.
        self._max_pools = max(64, 2 * max_connections)
        self._pools: OrderedDict[tuple[bytes, bytes, int | None], httpcore.AsyncConnectionPool] = (
            OrderedDict()
        )

    async def _pool_for(self, url: httpx.URL) -> httpcore.AsyncConnectionPool:
        origin = (url.raw_scheme, url.raw_host, url.port)
        pool = self._pools.get(origin)
        if pool is None:
            await self._close_idle_pools()
            pool = httpcore.AsyncConnectionPool(
                ssl_context=self._tls,
                max_connections=self._max_connections,
                max_keepalive_connections=self._keepalive,
                keepalive_expiry=5.0,
                network_backend=self._backend,
            )
            self._pools[origin] = pool
        self._pools.move_to_end(origin)
        return pool

    async def _close_idle_pools(self) -> None:
        while len(self._pools) >= self._max_pools:
            # A pool with a request in flight has a connection that is not idle (httpcore
            # creates it, connecting, before the request waits on anything).
            idle = next(
                (
                    origin
                    for origin, pool in self._pools.items()
                    if all(connection.is_idle() for connection in pool.connections)
                ),
                None,
            )
            if idle is None:
                return
            await self._pools.pop(idle).aclose()

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
        pool = await self._pool_for(request.url)
        with _httpx_errors():
            response = await pool.handle_async_request(core_request)
        assert isinstance(response.stream, AsyncIterable)
        return httpx.Response(
            status_code=response.status,
            headers=response.headers,
            stream=_ResponseStream(response.stream),
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        pools, self._pools = list(self._pools.values()), OrderedDict()
        for pool in pools:
            await pool.aclose()

"""A real HTTP/1.1 server on a loopback address, programmable per test.

Used by the fetch tests, the corpus tests and the benchmarks, so it aims to behave like a
small, well-mannered web server: keep-alive, chunked streaming, conditional GET for
served files, and a listen backlog large enough for thousands of concurrent fetches.

    with FeedServer() as server:
        server.route("/feed.xml", Reply(body=b"<rss/>", headers={"ETag": '"v1"'}))
        server.route("/slow", lambda request: Reply(body=b"late", delay=2.0))
        server.redirect("/old", "/feed.xml", status=301)
        url = server.url("/feed.xml")
        ...
        assert server.requests[0].headers["user-agent"].startswith("newsdesk")

Routes take a :class:`Reply` (served as-is every time) or a function of the
:class:`Request` returning one. A reply body is bytes, or an iterable of byte chunks that
is streamed chunk by chunk (with an optional pause before each), which makes endless or
slow-drip bodies one line: ``Reply(body=itertools.repeat(b"x" * 1024))``.

Any 127.0.0.0/8 address can be bound on Linux (``FeedServer(host="127.0.0.2")``), which
lets tests tell two "hosts" apart without DNS.
"""

from __future__ import annotations

import contextlib
import email.utils
import hashlib
import mimetypes
import random
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import unquote, urlsplit

__all__ = ["FeedServer", "InFlightGauge", "Reply", "Request", "file_reply"]

FEED_TYPES = {
    ".rss": "application/rss+xml",
    ".atom": "application/atom+xml",
    ".xml": "application/xml",
    ".rdf": "application/rdf+xml",
    ".json": "application/feed+json",
}


@dataclass(frozen=True)
class Request:
    """One request as the server saw it."""

    method: str
    path: str
    """The request target: path and query, as sent."""
    headers: dict[str, str]
    """Header names lower-cased; a repeated header keeps its last value."""
    client: tuple[str, int]
    """The peer address, to tell connections apart (keep-alive reuses the port)."""


@dataclass
class Reply:
    """What the server answers; every field has a harmless default."""

    status: int = 200
    headers: Mapping[str, str] | Iterable[tuple[str, str]] = field(default_factory=dict)
    body: bytes | Iterable[bytes] = b""
    delay: float = 0.0
    """Seconds to wait before the status line (on top of the server's latency)."""
    chunk_delay: float = 0.0
    """Seconds to wait before each chunk of an iterable body."""
    abort: bool = False
    """Close the connection without answering (a server that hangs up)."""
    close: bool = False
    """Send ``Connection: close`` and close after this response."""


Route = Reply | Callable[[Request], Reply]


class InFlightGauge:
    """Counts requests being served at once; share one between servers for a global peak."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.current = 0
        self.peak = 0

    def __enter__(self) -> None:
        with self._lock:
            self.current += 1
            self.peak = max(self.peak, self.current)

    def __exit__(self, *exc_info: object) -> None:
        with self._lock:
            self.current -= 1

    def reset(self) -> None:
        with self._lock:
            self.peak = self.current


def file_reply(
    path: Path, request: Request, extra_headers: Mapping[str, str] | None = None
) -> Reply:
    """Serve one file with a content ETag and Last-Modified, honouring conditional GET."""
    body = path.read_bytes()
    etag = '"' + hashlib.sha1(body).hexdigest()[:16] + '"'
    last_modified = email.utils.formatdate(int(path.stat().st_mtime), usegmt=True)
    content_type = FEED_TYPES.get(path.suffix.lower()) or (
        mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    )
    headers = {"Content-Type": content_type, "ETag": etag, "Last-Modified": last_modified}
    headers.update(extra_headers or {})
    if _not_modified(request, headers):
        return Reply(status=304, headers=headers)
    return Reply(headers=headers, body=body)


def _not_modified(request: Request, headers: Mapping[str, str]) -> bool:
    # If-None-Match wins over If-Modified-Since (RFC 9110 13.2.2).
    etag = _header(headers, "etag")
    if_none_match = request.headers.get("if-none-match")
    if if_none_match is not None:
        tags = {tag.strip() for tag in if_none_match.split(",")}
        return etag is not None and (etag in tags or "*" in tags)
    if_modified_since = request.headers.get("if-modified-since")
    last_modified = _header(headers, "last-modified")
    if if_modified_since and last_modified:
        try:
            since = email.utils.parsedate_to_datetime(if_modified_since)
            modified = email.utils.parsedate_to_datetime(last_modified)
        except (TypeError, ValueError):
            return False
        return modified <= since
    return False


def _header(headers: Mapping[str, str], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return None


class FeedServer:
    """A threaded HTTP/1.1 server in the background; use it as a context manager."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        latency: float | tuple[float, float] = 0.0,
        directory: Path | str | None = None,
        file_headers: Mapping[str, Mapping[str, str]] | None = None,
        gauge: InFlightGauge | None = None,
        seed: int = 0,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        """Prepare a server; nothing listens until :meth:`start` (or ``with``).

        ``latency`` is added before every response: seconds, or a (low, high) range drawn
        uniformly with ``seed``. ``directory`` is served for paths without a route, with
        ``file_headers`` (path relative to it, "/" separated → headers) added per file.
        ``tls`` (a server-side context with a certificate loaded) makes it serve HTTPS.
        """
        self.host = host
        self._port = port
        self.latency = latency
        self.directory = Path(directory) if directory is not None else None
        self.file_headers = dict(file_headers or {})
        self.gauge = gauge if gauge is not None else InFlightGauge()
        self._random = random.Random(seed)
        self.tls = tls
        self._routes: dict[str, Route] = {}
        self._lock = threading.Lock()
        self._requests: list[Request] = []
        self._closing = threading.Event()
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- programming -------------------------------------------------------------

    def route(self, path: str, reply: Route) -> None:
        """Answer requests for ``path`` (query string ignored) with ``reply``."""
        self._routes[path] = reply

    def redirect(self, path: str, location: str, status: int = 301) -> None:
        """Redirect ``path`` to ``location`` (absolute, or a path on this server)."""
        self.route(path, Reply(status=status, headers={"Location": location}))

    @property
    def requests(self) -> list[Request]:
        """Every request seen so far, in arrival order (a copy)."""
        with self._lock:
            return list(self._requests)

    def requests_to(self, path: str) -> list[Request]:
        """The requests seen for one path (query string ignored)."""
        return [r for r in self.requests if urlsplit(r.path).path == path]

    def clear(self) -> None:
        """Forget the request log and the in-flight peak."""
        with self._lock:
            self._requests.clear()
        self.gauge.reset()

    # -- addresses ---------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("the server is not started")
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        scheme = "https" if self.tls is not None else "http"
        return f"{scheme}://{self.host}:{self.port}"

    def url(self, path: str = "/") -> str:
        """The absolute URL of ``path`` on this server."""
        return self.base_url + path

    # -- life cycle --------------------------------------------------------------

    def start(self) -> FeedServer:
        """Bind and serve in a daemon thread."""
        self._httpd = _Server((self.host, self._port), _Handler)
        self._httpd.feedserver = self
        if self.tls is not None:
            # The handshake happens on first read, in the handler thread, so a client
            # that stalls or rejects the certificate never blocks the accept loop.
            self._httpd.socket = self.tls.wrap_socket(
                self._httpd.socket, server_side=True, do_handshake_on_connect=False
            )
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"feedserver-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop accepting, end streaming bodies, and close the listening socket."""
        self._closing.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = None
        self._thread = None

    def __enter__(self) -> FeedServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- serving (called from handler threads) -----------------------------------

    def _record(self, request: Request) -> None:
        with self._lock:
            self._requests.append(request)

    def _pause(self) -> float:
        if isinstance(self.latency, tuple):
            with self._lock:
                return self._random.uniform(*self.latency)
        return self.latency

    def _reply_for(self, request: Request) -> Reply:
        path = urlsplit(request.path).path
        route = self._routes.get(path)
        if route is not None:
            return route(request) if callable(route) else route
        if self.directory is not None:
            relative = unquote(path).lstrip("/")
            target = (self.directory / relative).resolve()
            root = self.directory.resolve()
            if target.is_file() and target.is_relative_to(root):
                return file_reply(target, request, self.file_headers.get(relative))
        return Reply(status=404, headers={"Content-Type": "text/plain"}, body=b"not found")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # The default backlog of 5 drops SYNs under a burst of concurrent fetches, which
    # shows up as one-second connect stalls in benchmarks.
    request_queue_size = 1024
    feedserver: FeedServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients hanging up mid-body is what the tests provoke; stay quiet about it.
        pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "feedserver/1"
    # Idle keep-alive connections give up after this, so handler threads don't pile up.
    timeout = 30
    # Headers and body go out as separate writes; with Nagle on, the second waits for
    # the client's delayed ACK (~40 ms a response).
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._serve()

    def do_HEAD(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        self._serve()

    def _serve(self) -> None:
        feedserver = self.server.feedserver
        request = Request(
            method=self.command,
            path=self.path,
            headers={k.lower(): v for k, v in self.headers.items()},
            client=self.client_address[:2],
        )
        feedserver._record(request)
        with feedserver.gauge:
            reply = feedserver._reply_for(request)
            pause = feedserver._pause() + reply.delay
            if pause > 0:
                time.sleep(pause)
            if reply.abort:
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            try:
                self._send(reply)
            except (BrokenPipeError, ConnectionResetError, TimeoutError):
                self.close_connection = True

    def _send(self, reply: Reply) -> None:
        feedserver = self.server.feedserver
        headers = list(
            reply.headers.items() if isinstance(reply.headers, Mapping) else reply.headers
        )
        names = {name.lower() for name, _ in headers}
        self.send_response_only(reply.status, _phrase(reply.status))
        # Tests may pin Date (Retry-After as an HTTP-date is relative to it).
        if "date" not in names:
            self.send_header("Date", self.date_time_string())
        self.send_header("Server", self.version_string())
        for name, value in headers:
            self.send_header(name, value)
        if reply.close:
            self.send_header("Connection", "close")
            self.close_connection = True
        no_body = self.command == "HEAD" or reply.status in (204, 304) or reply.status < 200

        if isinstance(reply.body, bytes | bytearray):
            if "content-length" not in names and reply.status not in (204, 304):
                self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            if not no_body:
                self.wfile.write(reply.body)
            return

        chunked = "content-length" not in names
        if chunked and not no_body:
            self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        if no_body:
            return
        for chunk in _chunks(reply.body):
            if feedserver._closing.is_set():
                self.close_connection = True
                return
            if reply.chunk_delay:
                time.sleep(reply.chunk_delay)
            if chunked:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            else:
                self.wfile.write(chunk)
            self.wfile.flush()
        if chunked:
            self.wfile.write(b"0\r\n\r\n")


def _chunks(body: Iterable[bytes]) -> Iterator[bytes]:
    # An empty chunk would end a chunked body early; skip them.
    return (bytes(chunk) for chunk in body if chunk)


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


def main(argv: list[str] | None = None) -> None:
    """Serve a directory from its own process (benchmarks: keeps the GIL out of the way)."""
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", type=Path)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument(
        "--latency", type=float, nargs=2, default=(0.0, 0.0), metavar=("LOW", "HIGH")
    )
    args = parser.parse_args(argv)
    server = FeedServer(args.host, args.port, latency=tuple(args.latency), directory=args.directory)
    with server:
        print(f"serving {args.directory} on {server.base_url}", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()


if __name__ == "__main__":
    main()

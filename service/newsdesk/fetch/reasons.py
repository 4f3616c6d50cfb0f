"""Every fetch failure as one short human reason, the text stored on the feed row.

:func:`describe_error` maps any exception (ours, httpx's, httpcore's wrapped in httpx's,
the operating system's) to one line such as "timed out connecting" or "cannot connect:
connection refused". The status and size phrasings used in other reasons live here too,
so every message reads the same way.
"""

from __future__ import annotations

import os
import socket
import ssl
from collections.abc import Iterator
from typing import Final, TypeVar

import httpx

from newsdesk.errors import FeedError

_E = TypeVar("_E", bound=BaseException)

_MAX_REASON: Final = 200


class DeadlineExceeded(TimeoutError):
    """The overall per-feed deadline passed (connect, redirects and body together)."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"took longer than {seconds:g} s")
        self.seconds = seconds


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

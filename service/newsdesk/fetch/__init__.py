"""Download feeds politely and safely: the only room that imports httpx and httpcore.

- :mod:`~newsdesk.fetch.client`: :class:`Fetcher`, limits, redirects, response headers;
- :mod:`~newsdesk.fetch.guard`: which addresses may be connected to, checked per socket;
- :mod:`~newsdesk.fetch.inflate`: gzip/deflate bodies decompressed under a size cap;
- :mod:`~newsdesk.fetch.reasons`: :func:`describe_error`, every failure as a short reason.
"""

from newsdesk.fetch.client import ACCEPT, Fetcher, parse_max_age, parse_retry_after
from newsdesk.fetch.guard import resolve
from newsdesk.fetch.reasons import DeadlineExceeded, describe_error

__all__ = [
    "ACCEPT",
    "DeadlineExceeded",
    "Fetcher",
    "describe_error",
    "parse_max_age",
    "parse_retry_after",
    "resolve",
]

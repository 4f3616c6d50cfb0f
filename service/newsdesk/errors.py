"""The exception tree of newsdesk.

Every error says what failed and why, naming the feed URL, config file and key, or
recipient, so that the CLI can print it as one line without a traceback::

    NewsdeskError                 base; cli.py turns it into "Error: <message>" and exit 1
    ├── ConfigError               config or picks invalid; carries every problem at once
    ├── TemplateError             a digest template fails: "file:line: reason"
    ├── StoreError                the database cannot be opened, migrated or written
    ├── FeedError                 one feed could not be refreshed; stored on the feed row
    │   ├── FetchError            transport or HTTP failure (timeouts, 5xx, too large, ...)
    │   │   ├── FeedGone          410 Gone: the feed is retired, never fetched again
    │   │   ├── RateLimited       429/503: come back after ``retry_after`` seconds
    │   │   └── BlockedAddress    the URL or a redirect resolves to a private address
    │   └── ParseError            the body is not a feed newsdesk can read
    └── UsageError                a command was given something it cannot act on

Only ``jobs``/``refresh`` decide to log a ``FeedError`` and continue; anything that is not
a ``NewsdeskError`` is a bug and propagates.
"""

from __future__ import annotations


class NewsdeskError(Exception):
    """Base of every error newsdesk raises on purpose."""


class ConfigError(NewsdeskError):
    """The configuration is invalid; ``problems`` lists every "file: key: reason" line."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))

    def __reduce__(self) -> tuple[type[ConfigError], tuple[list[str]]]:
        return (type(self), (self.problems,))


class TemplateError(NewsdeskError):
    """A digest template cannot be compiled or rendered; the message names file and line."""


class StoreError(NewsdeskError):
    """The store cannot be opened, migrated, or written."""


class UsageError(NewsdeskError):
    """A command was given an argument it cannot act on (unknown feed, bad file...)."""


class FeedError(NewsdeskError):
    """One feed failed; ``reason`` is the short human text stored on the feed row."""

    def __init__(self, url: str, reason: str) -> None:
        self.url = url
        self.reason = reason
        super().__init__(f"{url}: {reason}")

    def __reduce__(self) -> tuple[type[FeedError], tuple[object, ...]]:
        # Parse errors cross the process boundary of the parser pool; the default
        # reduction would call __init__ with the message alone and break the pool.
        return (type(self), (self.url, self.reason))


class FetchError(FeedError):
    """The feed could not be downloaded."""


class FeedGone(FetchError):
    """The server answered 410 Gone: the feed is retired."""


class RateLimited(FetchError):
    """The server asked us to slow down (429 or 503, with or without Retry-After)."""

    def __init__(self, url: str, reason: str, retry_after: float | None) -> None:
        super().__init__(url, reason)
        self.retry_after = retry_after

    def __reduce__(self) -> tuple[type[FeedError], tuple[object, ...]]:
        return (type(self), (self.url, self.reason, self.retry_after))


class BlockedAddress(FetchError):
    """The URL, or a redirect, points at a loopback, private or link-local address."""


class ParseError(FeedError):
    """The body is not a feed newsdesk can read."""

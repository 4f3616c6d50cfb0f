"""Plain dataclasses passed between rooms: no ORM rows, no httpx types.

They are frozen and picklable, because parsed feeds cross a process boundary (parsing
runs in worker processes so the event loop stays free).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from newsdesk.identity import redact_url


@dataclass(frozen=True, slots=True)
class FetchedFeed:
    """What ``fetch`` brings back for one feed that answered 200 or 304."""

    url: str
    """The URL that was asked for (the stored feed URL)."""
    final_url: str
    """The URL of the response after redirects: the base for relative links."""
    status: int
    """200, or 304 when the conditional GET said "not modified"."""
    body: bytes
    """The decoded (decompressed) body; empty on 304."""
    headers: dict[str, str]
    """Response headers, names lower-cased."""
    permanent_url: str | None = None
    """Set when every hop was a permanent redirect (301/308): the feed's new URL."""
    etag: str | None = None
    last_modified: str | None = None
    max_age: float | None = None
    """Cache-Control max-age in seconds, when the server sent one."""

    @property
    def not_modified(self) -> bool:
        return self.status == 304


@dataclass(frozen=True, slots=True)
class ParsedEntry:
    """One entry of a feed, sanitised and normalised, ready to store."""

    key: str
    """Identity within the feed: GUID, else canonical URL, else content hash."""
    title: str
    url: str | None
    """Absolute http(s) link of the entry, or None when it has none we accept."""
    canonical_url: str | None
    """``url`` with tracking parameters, fragment, default port... removed."""
    summary: str
    """Sanitised HTML."""
    content: str
    """Sanitised HTML (the full text when the feed carries it, else empty)."""
    author: str | None
    published: datetime | None
    """UTC; None when the feed gives no date (the store then uses first-seen)."""
    updated: datetime | None
    lang: str | None
    content_hash: str
    """Hash of title + link + text, to notice edits and to key entries without GUID/link."""


@dataclass(frozen=True, slots=True)
class ParsedFeed:
    """A parsed feed document."""

    title: str
    site_url: str | None
    lang: str | None
    version: str
    """feedparser's format name, e.g. ``rss20``, ``atom10``, ``json11``."""
    ttl_minutes: int | None
    """RSS ``<ttl>``: how long the publisher asks readers to cache the feed."""
    entries: list[ParsedEntry] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    """Survivable problems (e.g. a wrong declared charset); each names what was wrong."""
    skipped: int = 0
    """Entries dropped because they were unusable (no title, no link, no text)."""


@dataclass(frozen=True, slots=True)
class FetchSettings:
    """Limits and manners of the fetcher (from ``[fetch]`` in newsdesk.toml)."""

    user_agent: str = "newsdesk/0.1 (+https://github.com/newsdesk/newsdesk)"
    connect_timeout: float = 10.0
    read_timeout: float = 30.0
    deadline: float = 60.0
    """Overall seconds for one feed: connect, redirects, and the whole body."""
    max_bytes: int = 10 * 1024 * 1024
    """Cap on the *decompressed* body; a larger one fails the feed."""
    max_redirects: int = 5
    concurrency: int = 50
    """Feeds fetched at once, in all."""
    per_host: int = 2
    """Feeds fetched at once from one host name."""
    allow_private_networks: bool = False
    """Allow loopback/private/link-local/reserved targets (off: refused, redirects too)."""
    allowed_networks: tuple[str, ...] = ()
    """CIDRs allowed even when private networks are refused, e.g. ``("10.1.2.0/24",)``."""


@dataclass(frozen=True, slots=True)
class Feed:
    """A feed as the store knows it, with its health."""

    id: int
    url: str
    """Where the feed is fetched from now (follows permanent redirects)."""
    declared_url: str
    """The URL as the curator wrote it."""
    name: str | None
    title: str | None
    site_url: str | None
    section: str | None
    tags: tuple[str, ...]
    weight: float
    priority: int
    """Whose headline a story shows when several outlets carry it: the highest."""
    source: str
    """``config`` (declared in newsdesk.toml), ``cli`` or ``opml``."""
    status: str
    """``active``, ``paused`` (too many failures), ``retired`` (410 Gone), ``removed``."""
    etag: str | None
    last_modified: str | None
    body_hash: str | None
    error_count: int
    last_error: str | None
    last_error_at: datetime | None
    last_checked_at: datetime | None
    last_success_at: datetime | None
    next_check_at: datetime | None
    created_at: datetime

    @property
    def display_name(self) -> str:
        return self.name or self.title or self.shown_url

    @property
    def shown_url(self) -> str:
        """The URL for logs and output: a password in it is never shown."""
        return redact_url(self.url)


@dataclass(frozen=True, slots=True)
class FeedSpec:
    """A feed as the curator declares it (newsdesk.toml, ``feeds add``, OPML)."""

    url: str
    name: str | None = None
    section: str | None = None
    tags: tuple[str, ...] = ()
    weight: float = 1.0
    priority: int = 0


@dataclass(frozen=True, slots=True)
class FeedCheck:
    """A successful check of a feed (200 or 304): what its row keeps for the next one."""

    checked_at: datetime
    next_check: datetime
    etag: str | None = None
    last_modified: str | None = None
    body_hash: str | None = None
    """Hash of the last body parsed: an unchanged body is not parsed again."""
    title: str | None = None
    site_url: str | None = None
    lang: str | None = None

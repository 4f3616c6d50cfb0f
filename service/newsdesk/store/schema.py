"""The tables, as SQLAlchemy Core metadata (the migrations in ``migrations/`` create them).

Timestamps are stored as naive UTC and handed out as aware UTC (:class:`UTCDateTime`), so
the same code works on SQLite (no time zones) and PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out; naive UTC in the database."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r} given to the store; pass UTC")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC)  # type: ignore[no-any-return]


def clean_text(text: str) -> str:
    """Text both engines accept: no NUL (PostgreSQL refuses it), no lone surrogates
    (no encoding has them; a broken JSON feed can produce them)."""
    if "\x00" in text:
        text = text.replace("\x00", "")
    if not text.isascii():
        text = text.encode("utf-8", "replace").decode("utf-8")
    return text


metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

feeds = Table(
    "feeds",
    metadata,
    Column("id", Integer, primary_key=True),
    # Where the feed is fetched from now: follows permanent redirects.
    Column("url", String(2048), nullable=False, unique=True),
    # The URL as the curator wrote it (newsdesk.toml, `feeds add`): how they name it.
    Column("declared_url", String(2048), nullable=False, unique=True),
    Column("name", String(300)),
    Column("title", String(500)),
    Column("site_url", String(2048)),
    Column("lang", String(20)),
    Column("section", String(100)),
    Column("tags", JSON, nullable=False, default=list),
    Column("weight", Float, nullable=False, default=1.0),
    Column("priority", Integer, nullable=False, default=0),
    # Where the feed came from: "config" feeds follow newsdesk.toml, the others the CLI.
    Column("source", String(20), nullable=False, default="cli"),
    # active | paused (too many failures) | retired (410 Gone) | removed (left the config)
    Column("status", String(20), nullable=False, default="active"),
    Column("etag", String(500)),
    Column("last_modified", String(100)),
    Column("body_hash", String(64)),
    Column("error_count", Integer, nullable=False, default=0),
    Column("last_error", Text),
    Column("last_error_at", UTCDateTime),
    Column("last_checked_at", UTCDateTime),
    Column("last_success_at", UTCDateTime),
    Column("next_check_at", UTCDateTime),
    Column("created_at", UTCDateTime, nullable=False),
    # The URL's host name: a host is fetched by one instance at a time (politeness
    # holds across instances).
    Column("host", String(255), nullable=False, default="", server_default=""),
    # Who fetches the feed now, until when: a crashed instance's feeds go to the others
    # once the lease runs out.
    Column("claimed_by", String(120)),
    Column("lease_until", UTCDateTime),
    Index(None, "status", "next_check_at"),
    Index(None, "host", "lease_until"),
)

entries = Table(
    "entries",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("feed_id", ForeignKey("feeds.id", ondelete="CASCADE"), nullable=False),
    # GUID, else canonical URL, else content hash (identity.entry_key): one row per
    # feed and key, ever, even when the entry drops out of the feed and comes back.
    Column("key", String(600), nullable=False),
    Column("url", String(2048)),
    Column("canonical_url", String(2048)),
    Column("title", Text, nullable=False),
    Column("summary", Text, nullable=False, default=""),
    Column("content", Text, nullable=False, default=""),
    Column("author", String(500)),
    Column("lang", String(20)),
    # The feed's date, else the first time newsdesk saw the entry.
    Column("published_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime),
    Column("first_seen_at", UTCDateTime, nullable=False),
    Column("content_hash", String(64), nullable=False),
    # In a story yet: the clustering takes the oldest unclustered entries by this index.
    Column("clustered", Boolean, nullable=False, default=False),
    UniqueConstraint("feed_id", "key"),
    Index(None, "canonical_url"),
    Index(None, "published_at"),
    Index(None, "feed_id", "published_at"),
    Index(None, "clustered", "published_at", "id"),
)

stories = Table(
    "stories",
    metadata,
    Column("id", Integer, primary_key=True),
    # The headline of the entry that opened the story; listings show the best source's.
    Column("title", Text, nullable=False),
    Column("score", Float, nullable=False, default=0.0),
    Column("first_published_at", UTCDateTime, nullable=False),
    Column("last_published_at", UTCDateTime, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    # Squared length of the centroid (the sum of its members' unit vectors).
    Column("norm2", Float, nullable=False, default=0.0),
    Column("size", Integer, nullable=False, default=0),
    # Languages of its members, comma-separated ("de,en").
    Column("langs", String(40), nullable=False, default=""),
    # Names and numbers its entries carry, space-separated: stories that share words
    # but no names are not merged.
    Column("names", Text, nullable=False, default=""),
    # Semantic mode: the sum of its members' embeddings (float32, little-endian).
    Column("semantic", LargeBinary),
    Column("semantic_count", Integer, nullable=False, default=0),
    # Set when the story was merged into another: its id keeps answering.
    Column("merged_into", Integer, index=True),
    Index(None, "last_published_at"),
)

story_terms = Table(
    "story_terms",
    metadata,
    # The centroid of a story, one row per term: the inverted index that proposes
    # candidate stories for a new entry (by term, within a time window).
    Column("story_id", ForeignKey("stories.id", ondelete="CASCADE"), primary_key=True),
    Column("term", String(80), primary_key=True),
    Column("weight", Float, nullable=False),
    # story_id // ERA_STORIES: which run of stories the row belongs to.
    Column("era", Integer, nullable=False),
    # By era, then term, then story. Stories are numbered as they open, so a window's
    # stories are a range of ids in one or two eras, and a term's older postings are
    # never read. The era comes first so that the rows a batch writes land in the
    # newest era's part of the index: keyed by term alone, they were spread over
    # every page of it, and each commit rewrote nearly the whole index (a commit cost
    # grew with the store: 50 ms at 30,000 entries, 130 ms at 100,000).
    Index(None, "era", "term", "story_id"),
    # Not WITHOUT ROWID on SQLite: a tree less to write saved 1.5% of a 100,000-entry
    # catch-up, but each posting read through this index then looked its weight up by
    # (story_id, term) instead of by rowid, and the daemon's rounds took 7-9% longer.
)

ERA_STORIES = 4096
"""Stories per era of the term index: a 72-hour window at 3,000 entries a day holds
about 3,000 stories, one or two eras."""


def era_of(story_id: int) -> int:
    return story_id // ERA_STORIES


term_counts = Table(
    "term_counts",
    metadata,
    # How many clustered entries hold each term: the IDF of the clustering. Every term
    # of story_terms has a row here (at 0 where the counts fell short, see retention),
    # so a term with no row is in no centroid and the clustering skips its postings.
    Column("term", String(80), primary_key=True),
    Column("entries", Integer, nullable=False),
    # One B-tree keyed by term instead of a rowid table and an index beside it: a
    # batch updates thousands of random terms, and each tree pays for every page.
    sqlite_with_rowid=False,
)

entry_keys = Table(
    "entry_keys",
    metadata,
    # Same-article keys (canonical URL, headline and lede digests) of clustered entries.
    Column("key", String(40), primary_key=True),
    Column("entry_id", ForeignKey("entries.id", ondelete="CASCADE"), primary_key=True),
    Index(None, "entry_id"),
)

cluster_state = Table(
    "cluster_state",
    metadata,
    # Semantic mode: the running sum and count of every embedding clustered (its mean
    # is the common direction removed before comparing; see newsdesk.semantic).
    Column("name", String(40), primary_key=True),
    Column("count", Integer, nullable=False),
    Column("vector", LargeBinary, nullable=False),
)

story_apart = Table(
    "story_apart",
    metadata,
    # Stories the curator split apart: clustering never merges them again.
    Column("story_id", ForeignKey("stories.id", ondelete="CASCADE"), primary_key=True),
    Column("other_id", ForeignKey("stories.id", ondelete="CASCADE"), primary_key=True),
)

story_entries = Table(
    "story_entries",
    metadata,
    # An entry belongs to at most one story.
    Column("entry_id", ForeignKey("entries.id", ondelete="CASCADE"), primary_key=True),
    Column("story_id", ForeignKey("stories.id", ondelete="CASCADE"), nullable=False, index=True),
    # Why it joined: "first", "same-url", "same-text", "same-event", "curator".
    Column("signal", String(40), nullable=False),
    Column("similarity", Float, nullable=False, default=0.0),
    Column("pinned", Boolean, nullable=False, default=False),
    Column("joined_at", UTCDateTime, nullable=False),
)

issues = Table(
    "issues",
    metadata,
    Column("id", Integer, primary_key=True),
    # One issue per schedule slot (e.g. "2026-11-23T07:00+01:00"), even with two senders.
    Column("slot", String(64), nullable=False, unique=True),
    Column("subject", Text, nullable=False, default=""),
    Column("preheader", Text, nullable=False, default=""),
    Column("status", String(20), nullable=False, default="draft"),
    Column("html", Text),
    Column("text", Text),
    Column("created_at", UTCDateTime, nullable=False),
    Column("sent_at", UTCDateTime),
)

issue_stories = Table(
    "issue_stories",
    metadata,
    Column("issue_id", ForeignKey("issues.id", ondelete="CASCADE"), primary_key=True),
    Column("story_id", ForeignKey("stories.id", ondelete="CASCADE"), primary_key=True),
    Column("section", String(100)),
)

subscribers = Table(
    "subscribers",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("email", String(320), nullable=False, unique=True),
    Column("name", String(200)),
    Column("language", String(20)),
    # active | unsubscribed | bounced
    Column("status", String(20), nullable=False, default="active"),
    Column("source", String(40), nullable=False, default="cli"),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

deliveries = Table(
    "deliveries",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("issue_id", ForeignKey("issues.id", ondelete="CASCADE"), nullable=False),
    Column("subscriber_id", ForeignKey("subscribers.id", ondelete="CASCADE"), nullable=False),
    # queued -> sending -> sent | failed | unknown
    Column("state", String(20), nullable=False, default="queued"),
    Column("message_id", String(300), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("last_error", Text),
    Column("updated_at", UTCDateTime, nullable=False),
    # The instance that claimed the row for sending: only a dead instance's "sending"
    # rows are in doubt.
    Column("claimed_by", String(120)),
    UniqueConstraint("issue_id", "subscriber_id"),
    Index(None, "issue_id", "state"),
)

daemons = Table(
    "daemons",
    metadata,
    # One row per `newsdesk run` process: `status` shows who runs and whether it is alive.
    Column("instance", String(120), primary_key=True),
    Column("host", String(255), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("version", String(40), nullable=False, default=""),
    Column("started_at", UTCDateTime, nullable=False),
    Column("heartbeat_at", UTCDateTime, nullable=False),
    Column("stopped_at", UTCDateTime),
)

job_runs = Table(
    "job_runs",
    metadata,
    # The last run of each scheduled job (fetch, send, maintenance) and its next one.
    Column("name", String(40), primary_key=True),
    Column("instance", String(120), nullable=False, default=""),
    Column("started_at", UTCDateTime),
    Column("finished_at", UTCDateTime),
    # running | ok | failed | skipped
    Column("outcome", String(20), nullable=False, default="running"),
    Column("message", Text, nullable=False, default=""),
    Column("next_run_at", UTCDateTime),
)

entry_tombstones = Table(
    "entry_tombstones",
    metadata,
    # Keys of entries removed by the retention: a feed that still carries them does
    # not bring them back.
    Column("feed_id", ForeignKey("feeds.id", ondelete="CASCADE"), primary_key=True),
    Column("key", String(600), primary_key=True),
    Column("pruned_at", UTCDateTime, nullable=False),
    # When a document of the feed last carried the key (pruned_at at first): once the
    # feed has left it out for a while, it is not coming back, and the tombstone goes.
    Column("seen_at", UTCDateTime, nullable=False),
    # Each stored document looks for its feed's tombstones left out too long: a seek
    # that finds none, not a walk over the feed's tombstones.
    Index(None, "feed_id", "seen_at"),
)

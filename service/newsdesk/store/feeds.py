"""Feeds and their health: what is due, what failed and why, what is paused."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Row,
    and_,
    func,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from newsdesk.errors import UsageError
from newsdesk.models import Feed, FeedCheck, FeedSpec
from newsdesk.store.engine import write_lock
from newsdesk.store.schema import clean_text, feeds

FETCHABLE = ("active",)
RELEASED: dict[str, Any] = {"claimed_by": None, "lease_until": None}
"""A checked feed's lease ends with the check."""


def host_of(url: str) -> str:
    """The host name a feed is fetched from ("" for file: feeds)."""
    try:
        return (urlsplit(url).hostname or "")[:255]
    except ValueError:
        return ""


def _feed(row: Row[Any]) -> Feed:
    return Feed(
        id=row.id,
        url=row.url,
        declared_url=row.declared_url,
        name=row.name,
        title=row.title,
        site_url=row.site_url,
        section=row.section,
        tags=tuple(row.tags or ()),
        weight=row.weight,
        priority=row.priority,
        source=row.source,
        status=row.status,
        etag=row.etag,
        last_modified=row.last_modified,
        body_hash=row.body_hash,
        error_count=row.error_count,
        last_error=row.last_error,
        last_error_at=row.last_error_at,
        last_checked_at=row.last_checked_at,
        last_success_at=row.last_success_at,
        next_check_at=row.next_check_at,
        created_at=row.created_at,
    )


class FeedStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # -- what the curator declares -------------------------------------------------

    def sync_config(self, specs: Sequence[FeedSpec], now: datetime) -> None:
        """Make the store follow newsdesk.toml: add new feeds, update names/sections/tags,
        and mark config feeds that left the file as removed (their entries stay)."""
        wanted = {spec.url: spec for spec in specs}
        with self.engine.begin() as conn:
            write_lock(conn)
            rows = list(conn.execute(select(feeds)))
            by_declared = {row.declared_url: row for row in rows}
            by_url = {row.url: row for row in rows}
            kept: set[int] = set()
            for url, spec in wanted.items():
                # A feed that moved (301) keeps its row, whether newsdesk.toml still names
                # the old URL or has been updated to the new one.
                row = by_declared.get(url) or by_url.get(url)
                values = _spec_values(spec)
                if row is None:
                    # Another process starting at the same moment may insert it first.
                    conn.execute(
                        _insert(conn)(feeds)
                        .values(
                            url=url,
                            declared_url=url,
                            host=host_of(url),
                            source="config",
                            status="active",
                            created_at=now,
                            **values,
                        )
                        .on_conflict_do_nothing()
                    )
                    continue
                kept.add(row.id)
                changes = {k: v for k, v in values.items() if getattr(row, k) != v}
                if row.declared_url != url:
                    changes["declared_url"] = url
                if row.source != "config":
                    changes["source"] = "config"
                if row.status == "removed":
                    changes["status"] = "active"
                if changes:
                    conn.execute(update(feeds).where(feeds.c.id == row.id).values(**changes))
            gone = [
                row.id
                for row in rows
                if row.source == "config" and row.id not in kept and row.status != "removed"
            ]
            if gone:
                conn.execute(update(feeds).where(feeds.c.id.in_(gone)).values(status="removed"))

    def add(self, spec: FeedSpec, *, source: str, now: datetime) -> Feed:
        """Add a feed (``feeds add``, OPML import); an existing URL is left as it is."""
        with self.engine.begin() as conn:
            write_lock(conn)
            row = conn.execute(select(feeds).where(_named(spec.url))).first()
            if row is None:
                conn.execute(
                    feeds.insert().values(
                        url=spec.url,
                        declared_url=spec.url,
                        host=host_of(spec.url),
                        source=source,
                        status="active",
                        created_at=now,
                        **_spec_values(spec),
                    )
                )
            elif row.status == "removed":
                conn.execute(
                    update(feeds)
                    .where(feeds.c.id == row.id)
                    .values(status="active", source=source, **_spec_values(spec))
                )
        return self.get(spec.url)

    def remove(self, url: str) -> Feed:
        """Stop fetching a feed added from the CLI or OPML; its entries stay."""
        feed = self.get(url)
        if feed.source == "config":
            raise UsageError(f"{url}: declared in newsdesk.toml; remove its [[feed]] block there")
        with self.engine.begin() as conn:
            conn.execute(update(feeds).where(feeds.c.id == feed.id).values(status="removed"))
        return self.get(url)

    # -- lookups --------------------------------------------------------------------

    def get(self, url: str) -> Feed:
        """The feed fetched from ``url``, or declared as ``url`` before it moved."""
        with self.engine.connect() as conn:
            row = conn.execute(select(feeds).where(_named(url)).order_by(feeds.c.id)).first()
        if row is None:
            raise UsageError(f"{url}: no such feed (see `newsdesk feeds list`)")
        return _feed(row)

    def by_id(self, feed_id: int) -> Feed:
        with self.engine.connect() as conn:
            row = conn.execute(select(feeds).where(feeds.c.id == feed_id)).one()
        return _feed(row)

    def listed(self, *, include_removed: bool = False) -> list[Feed]:
        """Every feed, failing ones first, then by URL."""
        query = select(feeds).order_by(feeds.c.error_count.desc(), feeds.c.url)
        if not include_removed:
            query = query.where(feeds.c.status != "removed")
        with self.engine.connect() as conn:
            return [_feed(row) for row in conn.execute(query)]

    def due(self, now: datetime, *, limit: int | None = None) -> list[Feed]:
        """Active feeds whose next check has come (never-checked feeds first)."""
        query = (
            select(feeds)
            .where(
                and_(
                    feeds.c.status.in_(FETCHABLE),
                    or_(feeds.c.next_check_at.is_(None), feeds.c.next_check_at <= now),
                )
            )
            .order_by(feeds.c.next_check_at.is_not(None), feeds.c.next_check_at, feeds.c.id)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [_feed(row) for row in conn.execute(query)]

    def claim_due(
        self, now: datetime, *, instance: str, limit: int, lease: timedelta
    ) -> list[Feed]:
        """Claim up to ``limit`` due feeds for ``instance`` until ``now + lease``.

        Several instances share one store this way: a claimed feed is skipped by the
        others until it is checked (which ends the lease) or the lease runs out (its
        instance died). A host whose feeds another instance holds is left to that one,
        so the per-host limit of the fetcher holds across instances. Claims are made
        one instance at a time (an advisory lock on PostgreSQL, the write lock on
        SQLite), which keeps the host rule exact; SKIP LOCKED passes over rows a
        fetch result is being written to.
        """
        held_by_others = (
            select(owned.c.id)
            .where(
                owned.c.host == feeds.c.host,
                owned.c.host != "",
                owned.c.lease_until > now,
                owned.c.claimed_by != instance,
            )
            .exists()
        )
        candidates = (
            select(feeds.c.id)
            .where(
                feeds.c.status.in_(FETCHABLE),
                or_(feeds.c.next_check_at.is_(None), feeds.c.next_check_at <= now),
                or_(feeds.c.lease_until.is_(None), feeds.c.lease_until <= now),
                ~held_by_others,
            )
            .order_by(feeds.c.next_check_at.is_not(None), feeds.c.next_check_at, feeds.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True, of=feeds)
        )
        with self.engine.begin() as conn:
            write_lock(conn)
            if conn.dialect.name == "postgresql":
                conn.execute(_CLAIM_LOCK)
            ids = list(conn.execute(candidates).scalars())
            if not ids:
                return []
            conn.execute(
                update(feeds)
                .where(feeds.c.id.in_(ids))
                .values(claimed_by=instance, lease_until=now + lease)
            )
            rows = conn.execute(select(feeds).where(feeds.c.id.in_(ids))).all()
        order = {feed_id: n for n, feed_id in enumerate(ids)}
        return sorted((_feed(r) for r in rows), key=lambda f: order[f.id])

    def release(self, feed_ids: Sequence[int], *, instance: str) -> None:
        """Give back claims not worked on (a stopping round): others take them at once."""
        if not feed_ids:
            return
        with self.engine.begin() as conn:
            conn.execute(
                update(feeds)
                .where(feeds.c.id.in_(feed_ids), feeds.c.claimed_by == instance)
                .values(**RELEASED)
            )

    def leases(self, now: datetime) -> dict[str, int]:
        """Feeds held right now, by instance (for ``status``)."""
        query = (
            select(feeds.c.claimed_by, func.count())
            .where(feeds.c.lease_until > now, feeds.c.claimed_by.is_not(None))
            .group_by(feeds.c.claimed_by)
        )
        with self.engine.connect() as conn:
            return {str(who): int(n) for who, n in conn.execute(query)}

    def fetchable(self) -> list[Feed]:
        """Every active feed, due or not (``fetch --all``)."""
        query = select(feeds).where(feeds.c.status.in_(FETCHABLE)).order_by(feeds.c.id)
        with self.engine.connect() as conn:
            return [_feed(row) for row in conn.execute(query)]

    # -- health -----------------------------------------------------------------------

    def record_success(self, feed_id: int, check: FeedCheck) -> None:
        """A 200 or 304: reset the failure count, keep the validators for the next GET."""
        with self.engine.begin() as conn:
            mark_success(conn, feed_id, check)

    def record_error(
        self,
        feed_id: int,
        reason: str,
        *,
        now: datetime,
        next_check: datetime,
        pause_after: int,
    ) -> Feed:
        """One more consecutive failure; past ``pause_after`` the feed is paused."""
        with self.engine.begin() as conn:
            count = conn.execute(
                update(feeds)
                .where(feeds.c.id == feed_id)
                .values(
                    error_count=feeds.c.error_count + 1,
                    last_error=reason[:1000],
                    last_error_at=now,
                    last_checked_at=now,
                    next_check_at=next_check,
                    **RELEASED,
                )
                .returning(feeds.c.error_count)
            ).scalar_one()
            if count >= pause_after:
                conn.execute(
                    update(feeds)
                    .where(and_(feeds.c.id == feed_id, feeds.c.status == "active"))
                    .values(status="paused")
                )
        return self.by_id(feed_id)

    def retire(self, feed_id: int, reason: str, *, now: datetime) -> None:
        """410 Gone: never fetch again (``feeds revive`` undoes it)."""
        with self.engine.begin() as conn:
            conn.execute(
                update(feeds)
                .where(feeds.c.id == feed_id)
                .values(
                    status="retired",
                    last_error=reason[:1000],
                    last_error_at=now,
                    last_checked_at=now,
                    next_check_at=None,
                    error_count=feeds.c.error_count + 1,
                    **RELEASED,
                )
            )

    def move(self, feed_id: int, new_url: str, *, now: datetime) -> bool:
        """A permanent redirect: store the new URL. False when another feed already has
        it (then this one is retired as a duplicate instead)."""
        with self.engine.begin() as conn:
            write_lock(conn)
            taken = conn.execute(select(feeds.c.id).where(feeds.c.url == new_url)).first()
            if taken is None:
                conn.execute(
                    update(feeds)
                    .where(feeds.c.id == feed_id)
                    .values(url=new_url, host=host_of(new_url))
                )
                return True
            conn.execute(
                update(feeds)
                .where(feeds.c.id == feed_id)
                .values(
                    status="retired",
                    last_error=f"moved permanently to {new_url}, which is already subscribed",
                    last_error_at=now,
                )
            )
            return False

    def revive(self, urls: Iterable[str], *, now: datetime) -> list[Feed]:
        """Un-pause (or un-retire) feeds and make them due now.

        A feed that had moved goes back to the URL the curator gave: if the move was
        right, the next fetch follows the redirect again.
        """
        revived = []
        for url in urls:
            feed = self.get(url)
            if feed.status == "removed":
                raise UsageError(f"{url}: was removed; add it again instead")
            values: dict[str, Any] = dict(status="active", error_count=0, next_check_at=now)
            with self.engine.begin() as conn:
                write_lock(conn)
                taken = conn.execute(
                    select(feeds.c.id).where(
                        feeds.c.url == feed.declared_url, feeds.c.id != feed.id
                    )
                ).first()
                if taken is None:
                    values["url"] = feed.declared_url
                    values["host"] = host_of(feed.declared_url)
                conn.execute(update(feeds).where(feeds.c.id == feed.id).values(**values))
            revived.append(self.by_id(feed.id))
        return revived


def mark_success(conn: Connection, feed_id: int, check: FeedCheck) -> None:
    """The update behind :meth:`FeedStore.record_success`, inside a caller's transaction."""
    values: dict[str, Any] = dict(
        error_count=0,
        last_error=None,
        last_error_at=None,
        last_checked_at=check.checked_at,
        last_success_at=check.checked_at,
        next_check_at=check.next_check,
        etag=_validator(check.etag, 500),
        last_modified=_validator(check.last_modified, 100),
        body_hash=check.body_hash,
        **RELEASED,
    )
    # The document's own description; absent in a 304, so the stored one stays.
    if check.title:
        values["title"] = clean_text(check.title)[:500]
    if check.site_url:
        values["site_url"] = check.site_url[:2048]
    if check.lang:
        values["lang"] = check.lang[:20]
    conn.execute(update(feeds).where(feeds.c.id == feed_id).values(**values))
    # Only an explicit `fetch --feed` reaches a paused or retired feed; it works again.
    conn.execute(
        update(feeds)
        .where(feeds.c.id == feed_id, feeds.c.status.in_(("paused", "retired")))
        .values(status="active")
    )


owned = feeds.alias("owned")
_CLAIM_LOCK = text(
    "SELECT pg_advisory_xact_lock(hashtext('newsdesk:' || current_schema() || '/claim'))"
)


def _validator(value: str | None, size: int) -> str | None:
    """An ETag or Last-Modified worth sending back: ASCII (HTTP headers are), and short."""
    if value is None or not value.isascii() or len(value) > size:
        return None
    return value


def _insert(conn: Connection) -> Any:
    return postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert


def _named(url: str) -> ColumnElement[bool]:
    return or_(feeds.c.url == url, feeds.c.declared_url == url)


def _spec_values(spec: FeedSpec) -> dict[str, Any]:
    return dict(
        name=clean_text(spec.name)[:300] if spec.name else None,
        section=spec.section,
        tags=list(spec.tags),
        weight=spec.weight,
        priority=spec.priority,
    )

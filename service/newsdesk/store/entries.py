"""Entries: insert only what is new, and the dates the fetch cadence learns from."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from newsdesk.models import ParsedEntry
from newsdesk.store import driver
from newsdesk.store.engine import write_lock
from newsdesk.store.schema import clean_text, entries, entry_tombstones

TOMBSTONE_GRACE = timedelta(days=7)
"""How long a feed's documents must leave a pruned entry out before its tombstone goes.
Most feeds list their newest entries, so a pruned one (months old) is long gone from
them and its tombstone goes at the next document; a feed that carries its old entries
for years keeps theirs, seen again each time. The week spares a feed that leaves an
entry out of one document and lists it again in the next."""


class EntryStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def add_new(self, feed_id: int, parsed: Sequence[ParsedEntry], now: datetime) -> list[int]:
        """Insert the entries not stored yet for this feed; return the new rows' ids.

        Known keys are skipped by the unique (feed_id, key) constraint, so two processes
        storing the same entry at once still end with one row.
        """
        with self.engine.begin() as conn:
            write_lock(conn)  # read the tombstones, then insert (see Store.record_fetch)
            return insert_new(conn, feed_id, parsed, now)

    def recent_dates(self, feed_id: int, *, limit: int = 20) -> list[datetime]:
        """Published dates of the feed's newest entries, newest first."""
        query = (
            select(entries.c.published_at)
            .where(entries.c.feed_id == feed_id)
            .order_by(entries.c.published_at.desc())
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return list(conn.execute(query).scalars())

    def summaries(self, entry_ids: Sequence[int]) -> dict[int, str]:
        """Entry id -> its summary (sanitised HTML), else the start of its content."""
        out: dict[int, str] = {}
        ids = sorted(set(entry_ids))
        with self.engine.connect() as conn:
            for start in range(0, len(ids), 500):
                query = select(entries.c.id, entries.c.summary, entries.c.content).where(
                    entries.c.id.in_(ids[start : start + 500])
                )
                for r in conn.execute(query):
                    out[r.id] = r.summary or (r.content or "")[:4000]
        return out

    def count(self, feed_id: int | None = None) -> int:
        query = select(func.count()).select_from(entries)
        if feed_id is not None:
            query = query.where(entries.c.feed_id == feed_id)
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def for_feed(self, feed_id: int) -> list[dict[str, Any]]:
        """Every stored entry of a feed, newest first, as plain dicts."""
        query = (
            select(entries)
            .where(entries.c.feed_id == feed_id)
            .order_by(entries.c.published_at.desc(), entries.c.id)
        )
        with self.engine.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(query)]


def insert_new(
    conn: Connection, feed_id: int, parsed: Sequence[ParsedEntry], now: datetime
) -> list[int]:
    """The insert behind :meth:`EntryStore.add_new`, inside a caller's transaction.

    Entries the retention pruned (tombstoned keys) are not stored again.
    """
    rows = _unique_rows(feed_id, parsed, now)
    if rows:
        pruned = _tombstoned(conn, feed_id, list(rows))
        rows = {key: row for key, row in rows.items() if key not in pruned}
        for chunk in driver.chunks(sorted(pruned)):
            conn.execute(
                update(entry_tombstones)
                .where(entry_tombstones.c.feed_id == feed_id, entry_tombstones.c.key.in_(chunk))
                .values(seen_at=now)
            )
    if not rows:
        return []
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    statement = (
        dialect.insert(entries)
        .on_conflict_do_nothing(index_elements=["feed_id", "key"])
        .returning(entries.c.id)
    )
    return [row.id for row in conn.execute(statement, list(rows.values()))]


def forget_dropped(conn: Connection, feed_id: int, now: datetime) -> None:
    """After a document of the feed was stored (:func:`insert_new` marked the tombstones
    it carried as seen): the tombstones of keys it has left out for ``TOMBSTONE_GRACE``
    go, since the feed will not bring those entries back."""
    conn.execute(
        delete(entry_tombstones).where(
            entry_tombstones.c.feed_id == feed_id,
            entry_tombstones.c.seen_at < now - TOMBSTONE_GRACE,
        )
    )


def _tombstoned(conn: Connection, feed_id: int, keys: Sequence[str]) -> set[str]:
    """Which of ``keys`` the retention pruned from this feed: one query (per 500 keys)
    on the tombstones' primary key, whatever the number of entries."""
    found: set[str] = set()
    for chunk in driver.chunks(keys):
        query = select(entry_tombstones.c.key).where(
            entry_tombstones.c.feed_id == feed_id, entry_tombstones.c.key.in_(chunk)
        )
        found.update(conn.execute(query).scalars())
    return found


def _unique_rows(
    feed_id: int, parsed: Sequence[ParsedEntry], now: datetime
) -> dict[str, dict[str, Any]]:
    """One row per key (as stored): a feed listing the same GUID twice keeps the first."""
    rows: dict[str, dict[str, Any]] = {}
    for entry in parsed:
        key = clean_text(entry.key)
        if key in rows:
            continue
        published = entry.published or now
        # A date in the future would pin the entry to the top of every list: clamp it.
        # One odd entry must not fail the feed's whole batch: text is made storable
        # and cut to its column; a URL too long to store is dropped, not cut.
        rows[key] = dict(
            feed_id=feed_id,
            key=key,
            url=_fits(entry.url, 2048),
            canonical_url=_fits(entry.canonical_url, 2048),
            title=clean_text(entry.title),
            summary=clean_text(entry.summary),
            content=clean_text(entry.content),
            author=clean_text(entry.author)[:500] if entry.author else None,
            lang=clean_text(entry.lang)[:20] if entry.lang else None,
            published_at=min(published, now),
            updated_at=entry.updated,
            first_seen_at=now,
            content_hash=entry.content_hash,
        )
    return rows


def _fits(url: str | None, size: int) -> str | None:
    if url is None or len(url) > size:
        return None
    return clean_text(url)

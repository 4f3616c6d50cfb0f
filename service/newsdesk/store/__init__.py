"""The store: the only user of SQLAlchemy. SQLite by default, PostgreSQL by URL.

``open_store(url)`` migrates and returns a :class:`Store`, whose parts are named for
what they hold: ``store.feeds``, ``store.entries``, ``store.stories``, ``store.issues``,
``store.subscribers``. Upkeep of the whole database (retention, backup) is on the store
itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from sqlalchemy import Engine

from newsdesk.models import FeedCheck, ParsedEntry
from newsdesk.store import retention
from newsdesk.store.backup import BackupResult, backup_to
from newsdesk.store.copy import CopyResult, Progress, copy_store
from newsdesk.store.daemons import DaemonStore
from newsdesk.store.deliveries import DeliveryStore
from newsdesk.store.engine import (
    create_store_engine,
    database_size,
    pending_migrations,
    upgrade,
    write_lock,
)
from newsdesk.store.entries import EntryStore, forget_dropped, insert_new
from newsdesk.store.feeds import FeedStore, mark_success
from newsdesk.store.issues import IssueStore
from newsdesk.store.locks import HeldLock, acquire
from newsdesk.store.retention import PruneSummary
from newsdesk.store.stories import StoryStore
from newsdesk.store.subscribers import SubscriberStore

__all__ = ["Store", "open_store"]


class Store:
    """One database, opened once per process and shared by every job."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.feeds = FeedStore(engine)
        self.entries = EntryStore(engine)
        self.stories = StoryStore(engine)
        self.issues = IssueStore(engine)
        self.subscribers = SubscriberStore(engine)
        self.deliveries = DeliveryStore(engine)
        self.daemons = DaemonStore(engine)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def record_fetch(
        self, feed_id: int, parsed: Sequence[ParsedEntry], check: FeedCheck
    ) -> list[int]:
        """A successful fetch in one transaction: the new entries and the feed's health.

        Returns the ids of the entries that were new.
        """
        with self.engine.begin() as conn:
            # Read (the tombstones) then write: on SQLite take the write lock first, so a
            # prune cannot commit in between. On PostgreSQL one can, between the two
            # statements: an entry pruned at that instant comes back once, as new.
            write_lock(conn)
            new_ids = insert_new(conn, feed_id, parsed, check.checked_at)
            if parsed:
                # A whole document: what it leaves out, the feed has dropped. (An empty
                # one is more likely broken than a feed that dropped everything.)
                forget_dropped(conn, feed_id, check.checked_at)
            mark_success(conn, feed_id, check)
        return new_ids

    def lock(self, name: str, *, what: str, wait: bool = False) -> HeldLock:
        """Hold ``name`` ("daemon", "send") until released; :class:`Busy` if taken
        (or, with ``wait``, once the holder lets go)."""
        return acquire(self.engine, name, what=what, wait=wait)

    def size_bytes(self) -> int | None:
        """The database's size on disk (SQLite: file and WAL; PostgreSQL: the database)."""
        return database_size(self.engine)

    def prune(
        self,
        cutoff: datetime,
        now: datetime,
        *,
        batch: int = retention.BATCH,
        max_batches: int | None = None,
    ) -> PruneSummary:
        """Remove entries published and first seen before ``cutoff``, story by story,
        leaving tombstones (see :mod:`newsdesk.store.retention`)."""
        return retention.prune(self.engine, cutoff, now, batch=batch, max_batches=max_batches)

    def prunable(self, cutoff: datetime) -> PruneSummary:
        """What :meth:`prune` would remove now (a dry run)."""
        return retention.prunable(self.engine, cutoff)

    def maintain(self) -> None:
        """Upkeep after a prune: planner statistics; on SQLite the WAL truncated."""
        retention.maintain(self.engine)

    def backup(self, path: Path, *, force: bool = False) -> BackupResult:
        """A verified copy of the store at ``path`` (see :mod:`newsdesk.store.backup`)."""
        return backup_to(self.engine, path, force=force)

    def copy_to(
        self, url: str, *, force: bool = False, progress: Progress | None = None
    ) -> CopyResult:
        """Copy every row into the store at ``url`` (see :mod:`newsdesk.store.copy`)."""
        return copy_store(self.engine, url, force=force, progress=progress)

    def pending_migrations(self) -> list[str]:
        return pending_migrations(self.engine)

    def upgrade(self) -> None:
        upgrade(self.engine)

    def close(self) -> None:
        self.engine.dispose()


def open_store(url: str, *, migrate: bool = True, pool_size: int = 5) -> Store:
    """Open the database at ``url``, applying pending migrations unless told not to.

    ``pool_size``: PostgreSQL connections kept open (as many again may be opened at
    busy moments); SQLite opens one per thread as needed.
    """
    store = Store(create_store_engine(url, pool_size=pool_size))
    if migrate:
        store.upgrade()
    return store

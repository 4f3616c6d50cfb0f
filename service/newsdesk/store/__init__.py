"""The store: the only user of SQLAlchemy. SQLite by default, PostgreSQL by URL.

``open_store(url)`` migrates and returns a :class:`Store`, whose parts are named for
what they hold: ``store.feeds``, ``store.entries``, ``store.stories``, ``store.issues``,
``store.subscribers``.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Engine

from newsdesk.models import FeedCheck, ParsedEntry
from newsdesk.store.copy import CopyResult, Progress, copy_store
from newsdesk.store.daemons import DaemonStore
from newsdesk.store.deliveries import DeliveryStore
from newsdesk.store.engine import (
    create_store_engine,
    database_size,
    pending_migrations,
    upgrade,
)
from newsdesk.store.entries import EntryStore, insert_new
from newsdesk.store.feeds import FeedStore, mark_success
from newsdesk.store.issues import IssueStore
from newsdesk.store.locks import HeldLock, acquire
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
            new_ids = insert_new(conn, feed_id, parsed, check.checked_at)
            mark_success(conn, feed_id, check)
        return new_ids

    def lock(self, name: str, *, what: str) -> HeldLock:
        """Hold ``name`` ("daemon", "send") until released; :class:`Busy` if taken."""
        return acquire(self.engine, name, what=what)

    def size_bytes(self) -> int | None:
        """The database's size on disk (SQLite: file and WAL; PostgreSQL: the database)."""
        return database_size(self.engine)

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


def open_store(url: str, *, migrate: bool = True) -> Store:
    """Open the database at ``url``, applying pending migrations unless told not to."""
    store = Store(create_store_engine(url))
    if migrate:
        store.upgrade()
    return store

"""The jobs the daemon schedules and the CLI runs once: the same functions for both.

Only here (and in ``refresh`` for single feeds) is an expected error logged and the
work continued; leaf modules raise.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from newsdesk.config import Config
from newsdesk.errors import UsageError
from newsdesk.models import Feed
from newsdesk.refresh import RefreshContext, RefreshSummary, refresh_feeds
from newsdesk.store import Store, open_store

log = logging.getLogger("newsdesk.jobs")


def utcnow() -> datetime:
    return datetime.now(UTC)


def open_app_store(config: Config, *, clock: Callable[[], datetime] = utcnow) -> Store:
    """Open (and migrate) the store, and make its feed list follow newsdesk.toml."""
    store = open_store(config.store_url)
    store.feeds.sync_config(config.feeds, clock())
    return store


def select_feeds(
    store: Store, *, now: datetime, all_feeds: bool = False, urls: Sequence[str] = ()
) -> list[Feed]:
    """The feeds a round should fetch: named ones, every active one, or the due ones."""
    if urls:
        named = [store.feeds.get(url) for url in urls]
        for feed in named:
            if feed.status == "removed":
                raise UsageError(f"{feed.shown_url}: was removed; add it again to fetch it")
        return named
    if all_feeds:
        return store.feeds.fetchable()
    return store.feeds.due(now)


def fetch_feeds(
    config: Config,
    store: Store,
    feeds: Sequence[Feed],
    *,
    clock: Callable[[], datetime] = utcnow,
    on_feed_done: Callable[[Feed], None] | None = None,
) -> RefreshSummary:
    """One fetch round over ``feeds`` (steps 3-6 of the flow in DESIGN.md)."""
    ctx = RefreshContext(store=store, fetch=config.fetch, clock=clock, base_dir=config.base_dir)
    return asyncio.run(refresh_feeds(ctx, feeds, on_feed_done=on_feed_done))


def run_once(
    config: Config, store: Store, *, clock: Callable[[], datetime] = utcnow
) -> RefreshSummary:
    """One round of every due job, for ``newsdesk run --once`` and cron users."""
    feeds = select_feeds(store, now=clock())
    return fetch_feeds(config, store, feeds, clock=clock)


def revive_feeds(store: Store, urls: Sequence[str], *, now: datetime) -> list[Feed]:
    if not urls:
        raise UsageError("name at least one feed URL to revive")
    return store.feeds.revive(urls, now=now)


def status_report(store: Store, *, now: datetime) -> dict[str, Any]:
    """What ``newsdesk status --json`` prints (schema in README, "Status")."""
    feeds = store.feeds.listed(include_removed=False)
    by_status: dict[str, int] = {"active": 0, "paused": 0, "retired": 0}
    for feed in feeds:
        by_status[feed.status] = by_status.get(feed.status, 0) + 1
    failing = [f for f in feeds if f.error_count > 0 or f.status in ("paused", "retired")]
    due = sum(
        1
        for f in feeds
        if f.status == "active" and (f.next_check_at is None or f.next_check_at <= now)
    )
    return {
        "generated_at": iso(now),
        "store": {"dialect": store.dialect, "entries": store.entries.count()},
        "feeds": {"total": len(feeds), "due": due, "failing": len(failing), **by_status},
        "failing_feeds": [
            {
                "url": f.shown_url,
                "name": f.display_name,
                "status": f.status,
                "error_count": f.error_count,
                "last_error": f.last_error,
                "last_error_at": iso(f.last_error_at),
                "last_success_at": iso(f.last_success_at),
                "next_check_at": iso(f.next_check_at),
            }
            for f in failing
        ],
    }


def iso(value: datetime | None) -> str | None:
    """A timestamp as the JSON outputs show it."""
    return value.isoformat(timespec="seconds") if value else None

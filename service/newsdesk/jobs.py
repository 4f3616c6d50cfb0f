"""The jobs the daemon schedules and the CLI runs once: the same functions for both.

Only here (and in ``refresh`` for single feeds) is an expected error logged and the
work continued; leaf modules raise.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from newsdesk.clustering import ClusterSummary, cluster_pending
from newsdesk.config import Config
from newsdesk.errors import UsageError
from newsdesk.identity import canonical_url, redact_url
from newsdesk.models import Feed
from newsdesk.ranking import RankedStory, rank
from newsdesk.store import Store, open_store

if TYPE_CHECKING:  # the fetcher (httpx) is imported when a round runs, not for every command
    from newsdesk.refresh import RefreshSummary

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
    from newsdesk.refresh import RefreshContext, refresh_feeds

    ctx = RefreshContext(store=store, fetch=config.fetch, clock=clock, base_dir=config.base_dir)
    return asyncio.run(refresh_feeds(ctx, feeds, on_feed_done=on_feed_done))


@dataclass(frozen=True)
class RoundSummary:
    refresh: RefreshSummary
    cluster: ClusterSummary

    def line(self) -> str:
        return f"{self.refresh.line()}; {self.cluster.line()}"


def run_once(
    config: Config, store: Store, *, clock: Callable[[], datetime] = utcnow
) -> RoundSummary:
    """One round of every due job, for ``newsdesk run --once`` and cron users."""
    feeds = select_feeds(store, now=clock())
    refresh = fetch_feeds(config, store, feeds, clock=clock)
    return RoundSummary(refresh, cluster_stories(config, store, now=clock()))


def cluster_stories(config: Config, store: Store, *, now: datetime) -> ClusterSummary:
    """Put every entry not in a story yet into one (step 7 of the flow)."""
    return cluster_pending(store, config.cluster.params, now=now)


def list_stories(
    config: Config,
    store: Store,
    *,
    now: datetime,
    since: datetime,
    until: datetime,
    limit: int | None = None,
    hide: frozenset[int] = frozenset(),
) -> list[RankedStory]:
    """Candidate stories with an entry published in [since, until], best first."""
    if since > until:
        raise UsageError(f"--since ({iso(since)}) is after --until ({iso(until)})")
    cluster_stories(config, store, now=now)
    active = [s for s in store.stories.active(since, until) if s.id not in hide]
    members = store.stories.members([s.id for s in active])
    ranked = rank(
        ((s.id, members.get(s.id, [])) for s in active),
        now,
        config.cluster.half_life,
    )
    return ranked[:limit] if limit is not None else ranked


def show_story(config: Config, store: Store, story_id: int, *, now: datetime) -> RankedStory:
    """One story with every member (and why it joined); merged ids lead to the survivor."""
    cluster_stories(config, store, now=now)
    row = store.stories.get(story_id)
    members = store.stories.members([row.id]).get(row.id, [])
    if not members:
        raise UsageError(f"story {row.id} has no entries left")
    (ranked,) = rank([(row.id, members)], now, config.cluster.half_life)
    return ranked


def merge_stories(store: Store, ids: Sequence[int], *, now: datetime) -> int:
    """Fold the stories ``ids[1:]`` into ``ids[0]`` for good; returns the survivor's id."""
    if len(ids) < 2:
        raise UsageError("name at least two stories to merge")
    survivor = ids[0]
    for other in ids[1:]:
        survivor = store.stories.merge(survivor, other, now).id
    return survivor


def split_story(store: Store, story_id: int, url: str, *, now: datetime) -> int:
    """Move the entry with ``url`` into a story of its own, kept apart from then on."""
    new_story, _entry = store.stories.split(story_id, url, now, canonical=canonical_url(url))
    return new_story.id


def story_json(story: RankedStory, *, every_member: bool = False) -> dict[str, Any]:
    """A story as ``stories --json`` prints it (schema in DESIGN.md and the README)."""
    shown = story.members if every_member else story.read_on
    return {
        "id": story.id,
        "title": story.title,
        "score": story.score,
        "first_seen": iso(story.first),
        "last_seen": iso(story.last),
        "section": story.section,
        "outlets": len(story.read_on),
        "size": len(story.members),
        "entries": [
            {
                "url": m.url,
                "title": m.title,
                "feed": m.feed_name,
                "feed_url": redact_url(m.feed_url),
                "published": iso(m.published),
                "lang": m.lang,
                **({"signal": m.signal, "similarity": m.similarity} if every_member else {}),
            }
            for m in shown
        ],
    }


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
        "stories": store.stories.counts(),
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

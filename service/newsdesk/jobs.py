"""The jobs the daemon schedules and the CLI runs once: the same functions for both.

Only here (and in ``refresh`` for single feeds) is an expected error logged and the
work continued; leaf modules raise.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from newsdesk.clustering import ClusterSession, ClusterSummary, cluster_pending
from newsdesk.config import Config
from newsdesk.errors import NewsdeskError, UsageError
from newsdesk.identity import canonical_url, redact_url
from newsdesk.models import Feed
from newsdesk.ranking import RankedStory, rank
from newsdesk.scheduler.triggers import cron_trigger, last_fire, slot_of
from newsdesk.store import Store, open_store
from newsdesk.store.daemons import this_instance
from newsdesk.store.issues import IssueRow

if TYPE_CHECKING:  # the fetcher (httpx) is imported when a round runs, not for every command
    from newsdesk.refresh import RefreshSummary

log = logging.getLogger("newsdesk.jobs")


def utcnow() -> datetime:
    return datetime.now(UTC)


def open_app_store(config: Config, *, clock: Callable[[], datetime] = utcnow) -> Store:
    """Open (and migrate) the store, and make its feed list follow newsdesk.toml."""
    store = open_store(config.store_url, pool_size=config.store_pool_size)
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
    stop: Callable[[], bool] | None = None,
) -> RefreshSummary:
    """One fetch round over ``feeds`` (steps 3-6 of the flow in DESIGN.md)."""
    from newsdesk.refresh import RefreshContext, refresh_feeds

    ctx = RefreshContext(store=store, fetch=config.fetch, clock=clock, base_dir=config.base_dir)
    # Feeds in flight when the daemon stops get most of its stop_timeout to finish.
    grace = config.daemon.stop_timeout.total_seconds() * 0.6
    return asyncio.run(
        refresh_feeds(ctx, feeds, on_feed_done=on_feed_done, stop=stop, stop_grace=grace)
    )


@dataclass(frozen=True)
class RoundSummary:
    refresh: RefreshSummary
    cluster: ClusterSummary

    def line(self) -> str:
        return f"{self.refresh.line()}; {self.cluster.line()}"


def fetch_round(
    config: Config,
    store: Store,
    *,
    clock: Callable[[], datetime] = utcnow,
    stop: Callable[[], bool] | None = None,
    instance: str = "",
    session: ClusterSession | None = None,
) -> RoundSummary:
    """Fetch the due feeds, then put their new entries into stories (the daemon's tick).

    Feeds are claimed as the round goes (see ``FeedStore.claim_due``), so instances
    sharing a store split the due feeds between them. ``session``: the clustering's cache
    from the last round, if the caller keeps one.
    """
    from newsdesk.refresh import RefreshContext, refresh_due

    instance = instance or default_instance()
    lease = config.fetch.lease

    def claim(n: int) -> list[Feed]:
        return store.feeds.claim_due(clock(), instance=instance, limit=n, lease=lease)

    def release(ids: list[int]) -> None:
        store.feeds.release(ids, instance=instance)

    ctx = RefreshContext(store=store, fetch=config.fetch, clock=clock, base_dir=config.base_dir)
    grace = config.daemon.stop_timeout.total_seconds() * 0.6
    refresh = asyncio.run(refresh_due(ctx, claim, release, stop=stop, stop_grace=grace))
    return RoundSummary(refresh, cluster_stories(config, store, now=clock(), session=session))


def default_instance() -> str:
    """This process, as claims and job records name it: ``host:pid``."""
    return this_instance()


@dataclass(frozen=True)
class JobResult:
    """How a scheduled job went, for the log and ``newsdesk status``."""

    outcome: str
    """"ok", "skipped" (nothing to do) or "failed"."""
    message: str
    retry: bool = False
    """Worth trying again soon (the mail server was unreachable)."""


def send_scheduled(
    config: Config,
    store: Store,
    *,
    clock: Callable[[], datetime] = utcnow,
    stop: Callable[[], bool] | None = None,
) -> JobResult:
    """Send the issue of the latest scheduled time, if it is due and not sent yet.

    Due means: scheduled no longer than ``[daemon] send_deadline`` ago. The daemon asks
    at every scheduled time and once when it starts, so a restart shortly after the
    time still sends, and a restart a day late does not send a stale issue. An issue
    the slot already has is resumed, never composed again.
    """
    from newsdesk.delivery import send_issue

    tz = config.newsletter.timezone
    trigger = cron_trigger(config.newsletter.schedule, tz)
    now = clock()
    fire = last_fire(trigger, now, within=config.daemon.send_deadline)
    if fire is None:
        unfinished = store.issues.unfinished()
        if unfinished is not None:
            return JobResult(
                "skipped",
                f"issue {unfinished.slot} is unfinished and past send_deadline; "
                "`newsdesk send --resume` finishes it",
            )
        return JobResult("skipped", "no issue is due")
    slot = slot_of(trigger, fire, tz)
    issue = store.issues.by_slot(slot)
    if issue is not None and issue.status == "sent":
        return JobResult("skipped", f"issue {slot} was sent at {iso(issue.sent_at)}")
    with send_lock(store, f"issue {slot}: another process is sending"):
        summary = send_issue(config, store, clock=clock, slot=slot, stop=stop)
    for problem in summary.problems:
        log.warning(problem, extra={"issue": slot})
    if summary.paused:
        return JobResult("failed", summary.paused, retry=True)
    # Not finished, not stopped: other instances are sending the last rows (or one died
    # with some in hand); look again later, when they are done or in doubt.
    return JobResult("ok", summary.line(), retry=not summary.finished and not summary.stopped)


def send_lock(store: Store, what: str) -> AbstractContextManager[object]:
    """One sender at a time on SQLite; on PostgreSQL instances share a send (the ledger
    rows are claimed one by one), so there is nothing to hold."""
    if store.dialect == "sqlite":
        return store.lock("send", what=what)
    return nullcontext()


def maintenance(
    config: Config, store: Store, *, clock: Callable[[], datetime] = utcnow
) -> JobResult:
    """The daily upkeep: retention, store upkeep, feed-health mail, old daemon records."""
    from newsdesk.delivery import send_health_report
    from newsdesk.store.retention import retention_cutoff

    now = clock()
    done = []
    cutoff = retention_cutoff(config.retention, now)
    if cutoff is not None:
        pruned = store.prune(cutoff, now)
        if pruned.entries or pruned.stories:
            done.append(pruned.line())
    store.maintain()
    store.daemons.forget_stopped(now - DAEMON_RECORDS_KEPT)
    reported = send_health_report(config, store, now=now)
    if reported:
        done.append(f"feed-health mail: {reported} feeds to {config.daemon.health_to}")
    return JobResult("ok", "; ".join(done) or "nothing to do")


DAEMON_RECORDS_KEPT = timedelta(days=30)

JOBS = ("fetch", "send", "maintenance")
"""The scheduled jobs, by the names ``status`` shows."""


def maintenance_due(config: Config, store: Store, *, now: datetime) -> bool:
    """For ``run --once``: has the maintenance missed its latest scheduled time?"""
    trigger = cron_trigger(config.daemon.maintenance, config.newsletter.timezone)
    fire = last_fire(trigger, now, within=timedelta(days=32))
    last = next((j for j in store.daemons.jobs() if j.name == "maintenance"), None)
    if last is None or last.started_at is None:
        return True
    return fire is not None and last.started_at < fire


def run_once(
    config: Config, store: Store, *, clock: Callable[[], datetime] = utcnow, instance: str = ""
) -> list[tuple[str, JobResult]]:
    """One round of every due job, for ``newsdesk run --once`` and cron users.

    Each job's failure is reported and the next job still runs; each run is recorded
    for ``newsdesk status`` like the daemon's.
    """
    planned: list[tuple[str, Callable[[], JobResult]]] = [
        ("fetch", lambda: _round_result(fetch_round(config, store, clock=clock, instance=instance)))
    ]
    if config.daemon.send:
        planned.append(("send", lambda: send_scheduled(config, store, clock=clock)))
    if maintenance_due(config, store, now=clock()):
        planned.append(("maintenance", lambda: maintenance(config, store, clock=clock)))
    results = []
    for name, job in planned:
        store.daemons.job_started(name, instance, clock())
        result = guarded(job)
        store.daemons.job_finished(
            name,
            instance,
            outcome=result.outcome,
            message=result.message,
            now=clock(),
            next_run_at=None,
        )
        results.append((name, result))
    return results


def _round_result(summary: RoundSummary) -> JobResult:
    return JobResult("ok", summary.line())


def guarded(job: Callable[[], JobResult]) -> JobResult:
    """Run a job; an expected error becomes a failed result, a bug is logged in full."""
    try:
        return job()
    except NewsdeskError as exc:
        return JobResult("failed", str(exc))
    except Exception as exc:
        log.exception("internal error in a job")
        return JobResult("failed", f"internal error: {type(exc).__name__}: {exc}")


def cluster_stories(
    config: Config, store: Store, *, now: datetime, session: ClusterSession | None = None
) -> ClusterSummary:
    """Put every entry not in a story yet into one (step 7 of the flow)."""
    return cluster_pending(store, config.cluster.params, now=now, session=session)


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


ALIVE_WITHIN = timedelta(minutes=2)
"""A daemon whose last heartbeat is older than this is taken for dead (it beats every 15 s;
a busy SQLite store can hold a beat back for up to 30 s)."""


def status_report(store: Store, *, now: datetime) -> dict[str, Any]:
    """What ``newsdesk status --json`` prints (schema: docs/status.schema.json)."""
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
    leases = store.feeds.leases(now)
    daemons = [
        {
            "instance": d.instance,
            "host": d.host,
            "pid": d.pid,
            "version": d.version,
            "started_at": iso(d.started_at),
            "heartbeat_at": iso(d.heartbeat_at),
            "stopped_at": iso(d.stopped_at),
            "alive": d.stopped_at is None and now - d.heartbeat_at <= ALIVE_WITHIN,
            "feeds_claimed": leases.get(d.instance, 0),
        }
        for d in store.daemons.listed()
    ]
    return {
        "generated_at": iso(now),
        "healthy": any(d["alive"] for d in daemons),
        "store": {
            "dialect": store.dialect,
            "entries": store.entries.count(),
            "size_bytes": store.size_bytes(),
        },
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
        "daemons": daemons,
        "jobs": [
            {
                "name": j.name,
                "instance": j.instance,
                "outcome": j.outcome,
                "message": j.message,
                "last_started_at": iso(j.started_at),
                "last_finished_at": iso(j.finished_at),
                "next_run_at": iso(j.next_run_at),
            }
            for j in store.daemons.jobs()
        ],
        "last_issue": _issue_report(store, store.issues.last()),
        "unfinished_issue": _issue_report(store, store.issues.unfinished()),
    }


def _issue_report(store: Store, issue: IssueRow | None) -> dict[str, Any] | None:
    if issue is None:
        return None
    return {
        "slot": issue.slot,
        "subject": issue.subject,
        "status": issue.status,
        "created_at": iso(issue.created_at),
        "sent_at": iso(issue.sent_at),
        "deliveries": store.deliveries.counts(issue.id),
    }


def iso(value: datetime | None) -> str | None:
    """A timestamp as the JSON outputs show it."""
    return value.isoformat(timespec="seconds") if value else None

"""One fetch round: due feeds → fetch → parse (in worker processes) → store new entries.

Expected per-feed failures (:class:`FeedError`) are stored on the feed row and the round
goes on; anything else is a bug and propagates. Parsing is CPU-bound (feedparser), so it
runs in a process pool and the event loop stays free for the network.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from datetime import datetime
from multiprocessing import get_context
from pathlib import Path
from typing import TypeVar
from urllib.parse import unquote, urlsplit

from newsdesk.cadence import Cadence, next_check_after_error, next_check_after_success
from newsdesk.config import FetchConfig
from newsdesk.errors import FeedError, FeedGone, FetchError, ParseError, RateLimited
from newsdesk.fetch import Fetcher
from newsdesk.models import Feed, FeedCheck, FetchedFeed, ParsedFeed
from newsdesk.parse import parse_feed
from newsdesk.store import Store

log = logging.getLogger("newsdesk.refresh")
T = TypeVar("T")

# Feeds between "fetch started" and "stored" at once, per allowed concurrent fetch.
IN_HAND_PER_FETCH = 2
# Below this many feeds a process pool costs more to start than it saves.
POOL_THRESHOLD = 8


@dataclass
class RefreshSummary:
    """What one round did; ``line()`` is the one summary line the CLI and logs print."""

    ok: int = 0
    not_modified: int = 0
    failed: int = 0
    new_entries: int = 0
    new_entry_ids: list[int] = field(default_factory=list)
    failures: list[tuple[str, str]] = field(default_factory=list)
    left: int = 0
    """Feeds not fetched (or abandoned mid-fetch) because the round was asked to stop;
    they stay due and are fetched by the next round."""

    @property
    def feeds(self) -> int:
        return self.ok + self.not_modified + self.failed

    def line(self) -> str:
        line = (
            f"{self.feeds} feeds: {self.ok} ok, {self.not_modified} not modified, "
            f"{self.failed} failed; {self.new_entries} new entries"
        )
        return line + (f"; stopped, {self.left} feeds left for the next round" if self.left else "")


@dataclass(frozen=True)
class RefreshContext:
    """Everything a round needs besides the feeds: settings, clock, where files live."""

    store: Store
    fetch: FetchConfig
    clock: Callable[[], datetime]
    base_dir: Path = Path(".")

    @property
    def cadence(self) -> Cadence:
        return Cadence(self.fetch.interval, self.fetch.min_interval, self.fetch.max_interval)


async def refresh_feeds(
    ctx: RefreshContext,
    feeds: Sequence[Feed],
    *,
    on_feed_done: Callable[[Feed], None] | None = None,
    stop: Callable[[], bool] | None = None,
    stop_grace: float = 10.0,
) -> RefreshSummary:
    """Fetch, parse and store every feed in ``feeds``; return what happened.

    Once ``stop()`` says yes, no further feed is started, and the feeds in flight get
    ``stop_grace`` seconds before they are abandoned: each feed is stored in one
    transaction, so an abandoned one is simply fetched again next time.
    """
    summary = RefreshSummary()
    if not feeds:
        return summary
    pool: ParserPool | None = None
    if len(feeds) >= POOL_THRESHOLD:
        workers = ctx.fetch.parse_workers or os.cpu_count() or 1
        pool = ParserPool(min(workers, len(feeds)))
    # Store calls run on one thread of their own: the event loop stays free for the
    # network, and writes stay serial (SQLite has one writer anyway).
    writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="newsdesk-store")
    try:
        async with Fetcher(ctx.fetch.settings) as fetcher:
            round_ = _Round(ctx, fetcher, pool, writer, summary)
            # Fetching outruns parsing; without a bound, the bodies of a whole round
            # would wait in memory for a parser. This many feeds are in hand at once.
            in_hand = asyncio.Semaphore(IN_HAND_PER_FETCH * ctx.fetch.settings.concurrency)

            async def one(feed: Feed) -> None:
                async with in_hand:
                    if stop is not None and stop():
                        summary.left += 1
                        return
                    await round_.refresh(feed)
                if on_feed_done is not None:
                    on_feed_done(feed)

            tasks = [asyncio.ensure_future(one(feed)) for feed in feeds]
            watcher = asyncio.ensure_future(_abandon_on_stop(tasks, stop, stop_grace, summary))
            try:
                results = await asyncio.gather(*tasks, return_exceptions=True)
            finally:
                watcher.cancel()
            for result in results:  # a feed abandoned on stop is cancelled; all else is ours
                if isinstance(result, BaseException) and not isinstance(
                    result, asyncio.CancelledError
                ):
                    raise result
    finally:
        writer.shutdown(wait=True)
        if pool is not None:
            pool.shutdown()
    log.info(
        "fetch round done: %s",
        summary.line(),
        extra={"event": "fetch_round", **_summary_fields(summary)},
    )
    return summary


Claim = Callable[[int], list[Feed]]
"""Claims up to n due feeds for this instance (``FeedStore.claim_due``)."""
Release = Callable[[list[int]], None]
"""Gives back claimed feeds this round did not finish."""


async def refresh_due(
    ctx: RefreshContext,
    claim: Claim,
    release: Release,
    *,
    stop: Callable[[], bool] | None = None,
    stop_grace: float = 10.0,
) -> RefreshSummary:
    """Fetch due feeds as they are claimed, until none is left to claim.

    Claims are topped up whenever half the round's capacity is free, so several
    instances sharing a store each take what they can handle and no feed is fetched
    twice. On ``stop()``, no more is claimed; feeds in flight get ``stop_grace`` seconds,
    then are abandoned and their claims given back.
    """
    summary = RefreshSummary()
    capacity = IN_HAND_PER_FETCH * ctx.fetch.settings.concurrency
    writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="newsdesk-store")
    pool: ParserPool | None = None
    try:
        async with Fetcher(ctx.fetch.settings) as fetcher:
            round_ = _Round(ctx, fetcher, None, writer, summary)
            running: dict[asyncio.Task[None], Feed] = {}
            more, stopped_at = True, None
            while True:
                stopping = stop is not None and stop()
                if more and not stopping and len(running) <= capacity // 2:
                    room = capacity - len(running)
                    got = await round_._store(lambda room=room: claim(room))  # type: ignore[misc]
                    more = bool(got)
                    if pool is None and len(running) + len(got) >= POOL_THRESHOLD:
                        workers = ctx.fetch.parse_workers or os.cpu_count() or 1
                        pool = round_.pool = ParserPool(workers)
                    for feed in got:
                        running[asyncio.ensure_future(round_.refresh(feed))] = feed
                if not running:
                    break
                if stopping:
                    stopped_at = stopped_at or time.monotonic()
                    if time.monotonic() - stopped_at >= stop_grace:
                        await _abandon(round_, running, release, summary)
                        break
                done, _ = await asyncio.wait(
                    running, timeout=0.2, return_when=asyncio.FIRST_COMPLETED
                )
                for task in done:
                    del running[task]
                    task.result()  # a bug of ours propagates; feed errors are recorded
    finally:
        writer.shutdown(wait=True)
        if pool is not None:
            pool.shutdown()
    if summary.feeds or summary.left:
        log.info(
            "fetch round done: %s",
            summary.line(),
            extra={"event": "fetch_round", **_summary_fields(summary)},
        )
    return summary


async def _abandon(
    round_: _Round,
    running: dict[asyncio.Task[None], Feed],
    release: Release,
    summary: RefreshSummary,
) -> None:
    log.info("stopping: abandoning %d feeds in flight", len(running))
    for task in running:
        task.cancel()
    await asyncio.gather(*running, return_exceptions=True)
    summary.left += len(running)
    ids = [feed.id for feed in running.values()]
    await round_._store(lambda: release(ids))


async def _abandon_on_stop(
    tasks: Sequence[asyncio.Future[None]],
    stop: Callable[[], bool] | None,
    grace: float,
    summary: RefreshSummary,
) -> None:
    """Cancel the feeds still in flight ``grace`` seconds after ``stop()`` said yes."""
    if stop is None:
        return
    while not stop():
        await asyncio.sleep(0.2)
    pending = [t for t in tasks if not t.done()]
    if pending:
        log.info("stopping: %d feeds in flight get %.0f s", len(pending), grace)
        _done, pending_set = await asyncio.wait(pending, timeout=grace)
        for task in pending_set:
            task.cancel()
        summary.left += len(pending_set)


@dataclass
class _Round:
    ctx: RefreshContext
    fetcher: Fetcher
    pool: ParserPool | None
    writer: ThreadPoolExecutor
    summary: RefreshSummary

    async def _store(self, call: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self.writer, call)

    async def _parse(self, fetched: FetchedFeed) -> ParsedFeed:
        headers = dict(fetched.headers)
        if self.pool is not None:
            return await self.pool.parse(fetched.body, fetched.final_url, headers)
        # Small rounds parse on the store's one thread: parsing is never concurrent in
        # threads (feedparser's warning filters are process-global).
        return await self._store(lambda: _parse_in_worker(fetched.body, fetched.final_url, headers))

    async def _fail(self, feed: Feed, error: FeedError) -> None:
        await self._store(lambda: _record_failure(self.ctx, feed, error))
        self.summary.failed += 1
        self.summary.failures.append((feed.shown_url, error.reason))

    async def refresh(self, feed: Feed) -> None:
        """Fetch, parse and store one feed; a FeedError is stored on the feed row."""
        ctx, summary = self.ctx, self.summary
        try:
            if feed.url.lower().startswith("file:"):
                fetched = read_local_feed(feed.url, ctx.base_dir, ctx.fetch.settings.max_bytes)
            else:
                fetched = await self.fetcher.fetch(
                    feed.url, etag=feed.etag, last_modified=feed.last_modified, now=ctx.clock()
                )
            # A permanent redirect is followed only once the new URL has proved to be the
            # feed (a 304, the same body, or a document that parses): a 301 to a home page
            # must not replace the feed's URL.
            moved = fetched.permanent_url if fetched.permanent_url != feed.url else None
            body_hash = hashlib.sha256(fetched.body).hexdigest() if fetched.body else None
            if fetched.not_modified or (body_hash is not None and body_hash == feed.body_hash):
                await self._store(lambda: _record_unchanged(ctx, feed, fetched, moved))
                summary.not_modified += 1
                return
            parsed = await self._parse(fetched)
            new_ids = await self._store(
                lambda: _save_parsed(ctx, feed, fetched, parsed, body_hash, moved)
            )
        except FeedError as exc:
            await self._fail(feed, exc)
            return
        except Exception as exc:
            # A bug of ours, met on this feed's document: log it loudly, record it on the
            # feed, and let the other feeds of the round go on. If the store itself is
            # broken, recording fails too and the round stops there.
            log.exception("internal error on feed", extra={"feed_url": feed.shown_url})
            reason = f"internal error: {type(exc).__name__}: {exc}".splitlines()[0][:200]
            await self._fail(feed, FeedError(feed.url, reason))
            return
        for warning in parsed.warnings:
            log.warning("feed warning: %s", warning, extra={"feed_url": feed.shown_url})
        summary.ok += 1
        summary.new_entries += len(new_ids)
        summary.new_entry_ids.extend(new_ids)
        log.debug(
            "feed ok: %d new entries",
            len(new_ids),
            extra={"feed_url": feed.shown_url, "status": "ok", "new_entries": len(new_ids)},
        )


def _save_parsed(
    ctx: RefreshContext,
    feed: Feed,
    fetched: FetchedFeed,
    parsed: ParsedFeed,
    body_hash: str | None,
    moved: str | None,
) -> list[int]:
    """Store the new entries and the feed's health; return the new entries' ids."""
    if moved and not _follow_move(ctx, feed, moved):
        return []  # the feed moved onto one already subscribed: that one gets the entries
    now = ctx.clock()
    # The document's own dates tell the feed's pace; the store knows it when the
    # document carries fewer than two dated entries.
    dates = [e.published for e in parsed.entries if e.published is not None]
    if len(dates) < 2:
        dates = ctx.store.entries.recent_dates(feed.id)
    check = FeedCheck(
        checked_at=now,
        next_check=next_check_after_success(
            ctx.cadence,
            now,
            dates=dates,
            ttl_minutes=parsed.ttl_minutes,
            max_age=fetched.max_age,
        ),
        etag=fetched.etag,
        last_modified=fetched.last_modified,
        body_hash=body_hash,
        title=parsed.title,
        site_url=parsed.site_url,
        lang=parsed.lang,
    )
    return ctx.store.record_fetch(feed.id, parsed.entries, check)


class ParserPool:
    """Worker processes for feedparser, replaced when one dies.

    A hostile document may crash or exhaust a worker; that feed fails with a reason
    and the rest of the round goes on with a fresh pool.
    """

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._executor = self._start()

    def _start(self) -> ProcessPoolExecutor:
        # forkserver, not fork: forking a process that runs threads (the event loop's
        # executor, the store's connection pool) can deadlock the child.
        return ProcessPoolExecutor(max_workers=self.workers, mp_context=get_context("forkserver"))

    async def parse(self, body: bytes, url: str, headers: dict[str, str]) -> ParsedFeed:
        executor = self._executor
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(executor, _parse_in_worker, body, url, headers)
        except BrokenProcessPool:
            if executor is self._executor:  # the first task to notice replaces the pool
                log.warning("parser process died; starting a new pool", extra={"feed_url": url})
                executor.shutdown(wait=False, cancel_futures=True)
                self._executor = self._start()
            raise ParseError(url, "the parser process died on this document") from None

    def shutdown(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)


def _parse_in_worker(body: bytes, url: str, headers: dict[str, str]) -> ParsedFeed:
    # A module-level function: process pools pickle the callable by name.
    return parse_feed(body, url=url, headers=headers)


def _record_unchanged(
    ctx: RefreshContext, feed: Feed, fetched: FetchedFeed, moved: str | None
) -> None:
    if moved and not _follow_move(ctx, feed, moved):
        return
    now = ctx.clock()
    check = FeedCheck(
        checked_at=now,
        next_check=next_check_after_success(
            ctx.cadence,
            now,
            dates=ctx.store.entries.recent_dates(feed.id),
            max_age=fetched.max_age,
        ),
        etag=fetched.etag or feed.etag,
        last_modified=fetched.last_modified or feed.last_modified,
        body_hash=feed.body_hash,
    )
    ctx.store.feeds.record_success(feed.id, check)
    log.debug("feed not modified", extra={"feed_url": feed.shown_url, "status": "not_modified"})


def _record_failure(ctx: RefreshContext, feed: Feed, exc: FeedError) -> None:
    now = ctx.clock()
    if isinstance(exc, FeedGone):
        ctx.store.feeds.retire(feed.id, exc.reason, now=now)
        log.warning(
            "feed retired: %s", exc.reason, extra={"feed_url": feed.shown_url, "status": "retired"}
        )
        return
    retry_after = exc.retry_after if isinstance(exc, RateLimited) else None
    updated = ctx.store.feeds.record_error(
        feed.id,
        exc.reason,
        now=now,
        next_check=next_check_after_error(
            ctx.cadence, now, error_count=feed.error_count + 1, retry_after=retry_after
        ),
        pause_after=ctx.fetch.pause_after,
    )
    status = "paused" if updated.status == "paused" else "failed"
    log.warning(
        "feed %s: %s (failure %d in a row)",
        status,
        exc.reason,
        updated.error_count,
        extra={"feed_url": feed.shown_url, "status": status, "error_count": updated.error_count},
    )


def _follow_move(ctx: RefreshContext, feed: Feed, new_url: str) -> bool:
    """Store the feed's new URL; False when another feed already has it (this one is
    then retired)."""
    moved = ctx.store.feeds.move(feed.id, new_url, now=ctx.clock())
    log.info(
        "feed moved permanently to %s%s",
        new_url,
        "" if moved else " (already subscribed there; this one is retired)",
        extra={"feed_url": feed.shown_url, "status": "moved"},
    )
    return moved


def read_local_feed(url: str, base_dir: Path, max_bytes: int) -> FetchedFeed:
    """A ``file:`` feed (the offline samples of ``newsdesk init``), relative to the config.

    Only configured by the operator (``fetch.allow_local_files``); a redirect can never
    lead here, because the fetcher follows http(s) targets only.
    """
    path = Path(unquote(urlsplit(url).path))
    if not path.is_absolute():
        path = base_dir / path
    try:
        with path.open("rb") as handle:
            body = handle.read(max_bytes + 1)
    except OSError as exc:
        raise FetchError(url, f"cannot read {path}: {exc.strerror}") from None
    if len(body) > max_bytes:
        raise FetchError(url, f"too large: more than {max_bytes // 1_000_000} MB")
    return FetchedFeed(url=url, final_url=url, status=200, body=body, headers={})


def _summary_fields(summary: RefreshSummary) -> dict[str, int]:
    return {
        "feeds": summary.feeds,
        "ok": summary.ok,
        "not_modified": summary.not_modified,
        "failed": summary.failed,
        "new_entries": summary.new_entries,
    }

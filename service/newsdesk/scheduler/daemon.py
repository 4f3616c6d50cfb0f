"""The daemon: wires triggers to ``jobs`` (the only APScheduler user), and its signals.

Jobs run one at a time on one worker thread (a fetch round, the clustering, a send and
the maintenance never compete for the store); a second, light thread keeps the
heartbeat and watches the config file. SIGTERM/SIGINT stop it: no job starts, the job in
flight is asked to stop and gets ``[daemon] stop_timeout`` to do so (a feed in flight is
abandoned and fetched next time; the message in flight is finished, or left to the
ledger). SIGHUP, or a changed newsdesk.toml, reloads the config; a broken one is
rejected with its errors and the old one keeps running.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from types import FrameType

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.interval import IntervalTrigger

from newsdesk import __version__, jobs
from newsdesk.clustering import ClusterSession
from newsdesk.config import Config, load_config
from newsdesk.errors import ConfigError
from newsdesk.logs import setup_logging
from newsdesk.scheduler.triggers import cron_trigger
from newsdesk.store import Store

log = logging.getLogger("newsdesk.scheduler")

HEARTBEAT = timedelta(seconds=15)
"""How often the daemon tells the store it is alive (``status --check`` reads it)."""
WATCH_EVERY = timedelta(seconds=2)
"""How often the config file's mtime is compared (and a SIGHUP noticed)."""
SEND_RETRY = timedelta(minutes=5)
"""A send paused by an unreachable server is tried again this much later."""


def instance_name() -> str:
    return jobs.default_instance()


@dataclass
class Daemon:
    config: Config
    store: Store
    clock: Callable[[], datetime] = jobs.utcnow
    instance: str = field(default_factory=instance_name)

    def __post_init__(self) -> None:
        self.stopping = threading.Event()
        self.reload_requested = threading.Event()
        self._running: set[str] = set()
        self._idle = threading.Condition()
        self._mtime = _mtime(self.config)
        self._last_beat = 0.0
        # The clustering's cache of the window, kept from one fetch round to the next
        # (only the fetch job's thread uses it).
        self.cluster_session = ClusterSession()
        self.scheduler = BlockingScheduler(
            timezone=self.config.newsletter.timezone,
            executors={
                "default": ThreadPoolExecutor(1),
                "light": ThreadPoolExecutor(1),
            },
            job_defaults={"coalesce": True, "max_instances": 1},
        )

    # -- the jobs --------------------------------------------------------------------

    def _fetch(self) -> jobs.JobResult:
        summary = jobs.fetch_round(
            self.config,
            self.store,
            clock=self.clock,
            stop=self._stop,
            instance=self.instance,
            session=self.cluster_session,
        )
        return jobs.JobResult("ok", summary.line())

    def _send(self) -> jobs.JobResult:
        result = jobs.send_scheduled(self.config, self.store, clock=self.clock, stop=self._stop)
        if result.retry and not self.stopping.is_set():
            self.scheduler.add_job(
                self._job("send", self._send),
                "date",
                run_date=self.clock() + SEND_RETRY,
                id="send-retry",
                replace_existing=True,
            )
        return result

    def _maintenance(self) -> jobs.JobResult:
        return jobs.maintenance(self.config, self.store, clock=self.clock)

    def _stop(self) -> bool:
        return self.stopping.is_set()

    def _job(self, name: str, work: Callable[[], jobs.JobResult]) -> Callable[[], None]:
        """``work`` as a scheduled job: recorded for ``status``, logged, never raising."""

        def run() -> None:
            if self.stopping.is_set():
                return
            with self._idle:
                self._running.add(name)
            try:
                self.store.daemons.job_started(name, self.instance, self.clock())
                result = jobs.guarded(work)
                # A fetch round and the clustering log their own summary lines.
                quiet = name == "fetch" and result.outcome == "ok"
                level = (
                    logging.ERROR
                    if result.outcome == "failed"
                    else logging.DEBUG
                    if quiet
                    else logging.INFO
                )
                log.log(level, "%s: %s", name, result.message, extra={"job": name})
                self.store.daemons.job_finished(
                    name,
                    self.instance,
                    outcome=result.outcome,
                    message=result.message,
                    now=self.clock(),
                    next_run_at=self._next_run(name),
                )
            except Exception:  # the store itself failed: say so, keep the daemon alive
                log.exception("%s: could not record the job", name, extra={"job": name})
            finally:
                with self._idle:
                    self._running.discard(name)
                    self._idle.notify_all()

        return run

    def _next_run(self, name: str) -> datetime | None:
        job = self.scheduler.get_job(name)
        return job.next_run_time if job is not None else None

    # -- scheduling ------------------------------------------------------------------

    def _schedule(self) -> None:
        """(Re)create the jobs from ``self.config``."""
        config, add = self.config, self.scheduler.add_job
        add(
            self._job("fetch", self._fetch),
            IntervalTrigger(seconds=config.daemon.tick.total_seconds()),
            id="fetch",
            replace_existing=True,
            next_run_time=self.clock(),
            misfire_grace_time=None,
        )
        if config.daemon.send:
            add(
                self._job("send", self._send),
                cron_trigger(config.newsletter.schedule, config.newsletter.timezone),
                id="send",
                replace_existing=True,
                misfire_grace_time=int(config.daemon.send_deadline.total_seconds()),
            )
        elif self.scheduler.get_job("send") is not None:
            self.scheduler.remove_job("send")
        add(
            self._job("maintenance", self._maintenance),
            cron_trigger(config.daemon.maintenance, config.newsletter.timezone),
            id="maintenance",
            replace_existing=True,
            misfire_grace_time=3600,
        )

    def _record_schedule(self) -> None:
        for name in jobs.JOBS:
            if self.scheduler.get_job(name) is not None:
                self.store.daemons.job_scheduled(name, self.instance, self._next_run(name))

    def _watch(self) -> None:
        """The light thread: heartbeat, SIGHUP and config-file changes."""
        if self.stopping.is_set():
            return
        try:
            if time.monotonic() - self._last_beat >= HEARTBEAT.total_seconds():
                self.store.daemons.heartbeat(self.instance, self.clock())
                self._last_beat = time.monotonic()
            mtime = _mtime(self.config)
            if self.reload_requested.is_set() or mtime != self._mtime:
                self.reload_requested.clear()
                self._mtime = mtime
                self.reload()
        except Exception:
            log.exception("watch: failed")

    def reload(self) -> bool:
        """Read newsdesk.toml again; True if the new config now runs."""
        try:
            new = load_config(self.config.path)
        except ConfigError as exc:
            for problem in exc.problems:
                log.error("config reload rejected: %s", problem)
            log.error("config reload rejected; the previous config keeps running")
            return False
        if new.store_url != self.config.store_url:
            log.warning("store.url changed: restart newsdesk to switch stores; the rest applies")
            new = _with_store_url(new, self.config.store_url)
        self.store.feeds.sync_config(new.feeds, self.clock())
        setup_logging(new.log.level, new.log.format)
        self.config = new
        self._schedule()
        self._record_schedule()
        log.info("config reloaded", extra={"feeds": len(new.feeds)})
        return True

    # -- running ---------------------------------------------------------------------

    def run(self) -> None:
        """Run until SIGTERM or SIGINT; returns once the work in flight is settled."""
        now = self.clock()
        self.store.daemons.register(
            self.instance, host=socket.gethostname(), pid=os.getpid(), version=__version__, now=now
        )
        self._schedule()
        if self.config.daemon.send:
            # A scheduled time passed while the daemon was down: made up if within
            # send_deadline (send_scheduled decides), right after the first fetch round.
            self.scheduler.add_job(
                self._job("send", self._send), "date", run_date=now, id="send-on-start"
            )
        self.scheduler.add_job(
            self._watch,
            IntervalTrigger(seconds=WATCH_EVERY.total_seconds()),
            id="watch",
            executor="light",
            next_run_time=now,
        )
        # APScheduler warns when a tick finds the previous round still running: expected
        # here (one job at a time), so only its errors are worth a line.
        logging.getLogger("apscheduler").setLevel(logging.ERROR)
        signal.signal(signal.SIGTERM, self._on_stop_signal)
        signal.signal(signal.SIGINT, self._on_stop_signal)
        signal.signal(signal.SIGHUP, self._on_hup)
        log.info(
            "daemon started",
            extra={"instance": self.instance, "feeds": len(self.config.feeds)},
        )
        self._record_schedule_later()
        if not self.stopping.is_set():  # a signal may have come while starting
            self.scheduler.start()  # returns after shutdown()
        self._settle()
        self.store.daemons.stopped(self.instance, self.clock())
        log.info("daemon stopped")
        # A second SIGTERM while the interpreter exits would otherwise meet the default
        # action (Python restores it at shutdown) and turn a clean stop into exit -15.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)

    def _record_schedule_later(self) -> None:
        # next_run_time is known once the scheduler has started; record it from the
        # light thread right away.
        self.scheduler.add_job(self._record_schedule, "date", executor="light")

    def _on_stop_signal(self, signum: int, _frame: FrameType | None) -> None:
        if self.stopping.is_set():  # a second signal while stopping
            return
        log.info("stopping on %s", signal.Signals(signum).name)
        self.stopping.set()
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)

    def _on_hup(self, _signum: int, _frame: FrameType | None) -> None:
        self.reload_requested.set()

    def _settle(self) -> None:
        """Wait for the job in flight, at most stop_timeout; then abandon it."""
        timeout = self.config.daemon.stop_timeout.total_seconds()
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._running and (left := deadline - time.monotonic()) > 0:
                self._idle.wait(left)
            abandoned = sorted(self._running)
        if abandoned:
            log.warning(
                "stopping: abandoned %s after %.0f s; the next start picks it up",
                ", ".join(abandoned),
                timeout,
            )
            self.store.daemons.stopped(self.instance, self.clock())
            logging.shutdown()
            os._exit(0)  # the job's thread cannot be interrupted; its transaction is atomic


def run_daemon(config: Config, store: Store) -> None:
    Daemon(config, store).run()


def _mtime(config: Config) -> float | None:
    try:
        return config.path.stat().st_mtime
    except OSError:
        return None


def _with_store_url(config: Config, url: str) -> Config:
    return replace(config, store_url=url)

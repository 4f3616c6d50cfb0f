"""The daemon: wires triggers to ``jobs`` (the only APScheduler user).

Today one job: fetch the due feeds every minute. Each feed carries its own next-check
time, so a one-minute tick costs one indexed query when nothing is due.
"""

from __future__ import annotations

import logging
import signal
from datetime import timedelta
from types import FrameType

from apscheduler.schedulers.blocking import BlockingScheduler

from newsdesk import jobs
from newsdesk.config import Config
from newsdesk.store import Store

log = logging.getLogger("newsdesk.scheduler")

TICK = timedelta(minutes=1)


def run_daemon(config: Config, store: Store) -> None:
    """Run until SIGTERM or SIGINT; the round in flight finishes first."""
    scheduler = BlockingScheduler(
        timezone=config.newsletter.timezone,
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 300},
    )
    scheduler.add_job(
        jobs.run_once,
        "interval",
        seconds=TICK.total_seconds(),
        args=(config, store),
        id="refresh_due_feeds",
        next_run_time=jobs.utcnow(),
    )

    def stop(signum: int, _frame: FrameType | None) -> None:
        if not scheduler.running:  # a second signal while stopping
            return
        log.info("stopping on %s", signal.Signals(signum).name)
        scheduler.shutdown(wait=False)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log.info("daemon started", extra={"feeds": len(config.feeds)})
    scheduler.start()
    log.info("daemon stopped")

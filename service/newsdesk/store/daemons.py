"""What the daemon leaves for ``newsdesk status``: who runs, and how each job went."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, Row, delete, insert, select, update

from newsdesk.store.schema import clean_text, daemons, job_runs


@dataclass(frozen=True, slots=True)
class DaemonRow:
    instance: str
    host: str
    pid: int
    version: str
    started_at: datetime
    heartbeat_at: datetime
    stopped_at: datetime | None


@dataclass(frozen=True, slots=True)
class JobRun:
    name: str
    instance: str
    started_at: datetime | None
    finished_at: datetime | None
    outcome: str
    message: str
    next_run_at: datetime | None


def this_instance() -> str:
    """This process as claims, ledger rows and job records name it: ``host:pid``."""
    return f"{socket.gethostname()}:{os.getpid()}"


class DaemonStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def register(self, instance: str, *, host: str, pid: int, version: str, now: datetime) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(daemons).where(daemons.c.instance == instance))
            conn.execute(
                insert(daemons).values(
                    instance=instance,
                    host=host,
                    pid=pid,
                    version=version,
                    started_at=now,
                    heartbeat_at=now,
                )
            )

    def heartbeat(self, instance: str, now: datetime) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(daemons).where(daemons.c.instance == instance).values(heartbeat_at=now)
            )

    def stopped(self, instance: str, now: datetime) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(daemons)
                .where(daemons.c.instance == instance)
                .values(heartbeat_at=now, stopped_at=now)
            )

    def listed(self) -> list[DaemonRow]:
        """Every daemon that ran on this store, the newest first."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(daemons).order_by(daemons.c.started_at.desc())).all()
        return [DaemonRow(*r) for r in rows]

    def forget_stopped(self, before: datetime) -> None:
        """Drop the records of daemons that stopped before ``before`` (maintenance)."""
        with self.engine.begin() as conn:
            conn.execute(
                delete(daemons).where(
                    daemons.c.stopped_at.is_not(None), daemons.c.stopped_at < before
                )
            )

    def job_started(self, name: str, instance: str, now: datetime) -> None:
        self._upsert(name, instance=instance, started_at=now, outcome="running", message="")

    def job_finished(
        self,
        name: str,
        instance: str,
        *,
        outcome: str,
        message: str,
        now: datetime,
        next_run_at: datetime | None,
    ) -> None:
        self._upsert(
            name,
            instance=instance,
            finished_at=now,
            outcome=outcome,
            message=clean_text(message)[:2000],
            next_run_at=next_run_at,
        )

    def job_scheduled(self, name: str, instance: str, next_run_at: datetime | None) -> None:
        """Record when a job runs next (at start, and when a reload moves it)."""
        self._upsert(name, instance=instance, next_run_at=next_run_at)

    def jobs(self) -> list[JobRun]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(job_runs).order_by(job_runs.c.name)).all()
        return [_job(r) for r in rows]

    def _upsert(self, name: str, **values: Any) -> None:
        with self.engine.begin() as conn:
            changed = conn.execute(
                update(job_runs).where(job_runs.c.name == name).values(**values)
            ).rowcount
            if not changed:
                defaults = {"instance": "", "outcome": "scheduled", "message": ""}
                conn.execute(insert(job_runs).values(name=name, **{**defaults, **values}))


def _job(r: Row[Any]) -> JobRun:
    return JobRun(
        name=r.name,
        instance=r.instance,
        started_at=r.started_at,
        finished_at=r.finished_at,
        outcome=r.outcome,
        message=r.message,
        next_run_at=r.next_run_at,
    )

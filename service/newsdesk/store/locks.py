"""Locks that outlive a transaction: one daemon per SQLite store, one sender per issue.

SQLite: an ``flock`` on a file beside the database (``newsdesk.db.daemon.lock``); the
kernel drops it when the process dies, so a killed daemon never leaves a stale lock.
PostgreSQL: a session advisory lock on a connection kept for the purpose, dropped by the
server when that connection ends.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import IO, Any

from sqlalchemy import Connection, Engine, text

from newsdesk.errors import StoreError


class Busy(StoreError):
    """Another process holds the lock."""


class HeldLock:
    """A lock this process holds until :meth:`release` (or its exit)."""

    def __init__(self, name: str, handle: IO[str] | None, conn: Connection | None) -> None:
        self.name = name
        self._handle = handle
        self._conn = conn

    def release(self) -> None:
        if self._handle is not None:
            self._handle.close()  # closing the descriptor drops the flock
            self._handle = None
        if self._conn is not None:
            # The pool would keep the session (and its lock) alive: unlock explicitly.
            try:
                self._conn.execute(_UNLOCK, {"name": self.name})
                self._conn.commit()
            finally:
                self._conn.invalidate()  # never back to the pool with a lock on it
                self._conn.close()
                self._conn = None

    def __enter__(self) -> HeldLock:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()


def lock_path(engine: Engine, name: str) -> Path | None:
    database = engine.url.database if engine.dialect.name == "sqlite" else None
    if not database or database == ":memory:":
        return None
    return Path(f"{database}.{name}.lock")


def acquire(engine: Engine, name: str, *, what: str, wait: bool = False) -> HeldLock:
    """Take the lock ``name``; :class:`Busy` names who holds it (``wait``: wait for it).

    ``what`` says what the lock guards, for the message ("a daemon runs").
    """
    path = lock_path(engine, name)
    if path is not None:
        return _file_lock(path, name, what, wait)
    if engine.dialect.name == "postgresql":
        return _advisory_lock(engine, name, what, wait)
    return HeldLock(name, None, None)  # an in-memory SQLite store has one process anyway


def holder(engine: Engine, name: str) -> int | None:
    """The pid holding the file lock ``name``, if any (SQLite); None when free."""
    path = lock_path(engine, name)
    if path is None or not path.exists():
        return None
    with open(path) as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _pid_in(path) or -1
        return None


def _file_lock(path: Path, name: str, what: str, wait: bool) -> HeldLock:
    handle = open(path, "a+")  # noqa: SIM115 - kept open while the lock is held
    try:
        fcntl.flock(handle, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        pid = _pid_in(path)
        by = f" (pid {pid})" if pid else ""
        raise Busy(f"{what}{by}: lock {path} is held") from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"{os.getpid()}\n")
    handle.flush()
    return HeldLock(name, handle, None)


def _pid_in(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


# The key names the schema too: several newsdesk stores may share one database.
_KEY = "hashtext('newsdesk:' || current_schema() || ':' || :name)"
_LOCK = text(f"SELECT pg_try_advisory_lock({_KEY})")
_WAIT = text(f"SELECT pg_advisory_lock({_KEY})")
_UNLOCK = text(f"SELECT pg_advisory_unlock({_KEY})")


def _advisory_lock(engine: Engine, name: str, what: str, wait: bool) -> HeldLock:
    conn = engine.connect()
    if wait:
        conn.execute(_WAIT, {"name": name})
        got = True
    else:
        got = bool(conn.execute(_LOCK, {"name": name}).scalar())
    conn.commit()
    if not got:
        conn.close()
        raise Busy(f"{what}: another process holds the {name} lock on this database")
    return HeldLock(name, None, conn)

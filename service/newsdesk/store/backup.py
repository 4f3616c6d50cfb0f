"""Backups of a running store, checked before they count.

The copy is written to ``PATH.partial`` beside ``PATH``, synced, verified, and only then
renamed to ``PATH``: whatever happens, ``PATH`` is either the previous file or a complete,
verified backup, never half of one.

- **SQLite**: SQLite's online backup API, in one step: one read snapshot, which in WAL
  mode never blocks the daemon's writers. Verified by opening the copy read-only:
  ``PRAGMA integrity_check``, the schema revision equal to the live store's, and the
  row counts of the main tables.
- **PostgreSQL**: ``pg_dump --format=custom`` (restore with ``pg_restore``), run in a
  snapshot exported by a transaction that also counts the main tables, so the counts
  are the dump's. Verified with ``pg_restore --list``. The password travels in the
  child's ``PGPASSWORD``, never on its command line.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import sqlite3
import subprocess
import time
from collections.abc import Mapping
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Connection, Engine, text
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError

from newsdesk.errors import StoreError, UsageError
from newsdesk.store.engine import _one_line, _redact

MAIN_TABLES = ("feeds", "entries", "stories", "issues", "subscribers", "deliveries")
"""Tables whose row counts a backup reports (and must contain)."""


@dataclass(frozen=True, slots=True)
class BackupResult:
    path: Path
    size_bytes: int
    counts: Mapping[str, int]
    """Rows of each of :data:`MAIN_TABLES` in the backup."""
    seconds: float

    def line(self) -> str:
        counts = ", ".join(f"{n:,} {table}" for table, n in self.counts.items())
        return (
            f"backup: {self.path} ({_size(self.size_bytes)}, {counts}), "
            f"verified in {self.seconds:.1f}s"
        )


def backup_to(engine: Engine, path: Path, *, force: bool = False) -> BackupResult:
    """Copy the store to ``path`` and verify the copy (see the module docstring).

    An existing ``path`` is replaced only with ``force``.
    """
    started = time.perf_counter()
    path = Path(path).expanduser()
    _refuse(engine, path, force)
    partial = path.with_name(path.name + ".partial")
    try:
        _writable(partial, path)
        if engine.dialect.name == "sqlite":
            counts = _sqlite_backup(engine, partial, path)
        else:
            counts = _pg_backup(engine, partial, path)
        _fsync(partial)
        os.replace(partial, path)
        _fsync(path.parent)
    except BaseException:
        with contextlib.suppress(OSError):  # e.g. its folder is missing: nothing to remove
            partial.unlink()
        raise
    return BackupResult(path, path.stat().st_size, counts, time.perf_counter() - started)


def _refuse(engine: Engine, path: Path, force: bool) -> None:
    if path.is_dir():
        raise UsageError(f"backup {path}: is a folder; name the backup file")
    live = engine.url.database if engine.dialect.name == "sqlite" else None
    if live and live != ":memory:" and path.resolve() == Path(live).resolve():
        raise UsageError(f"backup {path}: is the live database; back up to another file")
    if path.exists() and not force:
        raise UsageError(f"backup {path}: exists; pass --force to replace it")


def _writable(partial: Path, path: Path) -> None:
    """Fail early, naming the path, when the backup cannot be written there."""
    try:
        partial.open("wb").close()
    except OSError as exc:
        raise StoreError(f"backup {path}: cannot write there: {exc.strerror or exc}") from None


# -- SQLite -------------------------------------------------------------------------------


def _sqlite_backup(engine: Engine, partial: Path, path: Path) -> dict[str, int]:
    version = _live_version(engine)
    raw = engine.raw_connection()
    try:
        target = sqlite3.connect(partial)
        try:
            # pages=-1: the whole database in one step, from one read snapshot.
            raw.driver_connection.backup(target, pages=-1)  # type: ignore[union-attr]
            # A backup is one self-contained file: no -wal beside it to lose.
            target.execute("PRAGMA journal_mode=DELETE")
        finally:
            target.close()
    except sqlite3.Error as exc:
        raise StoreError(f"backup {path}: {exc}") from None
    finally:
        raw.close()
    return verify_sqlite_copy(partial, path, version)


def _live_version(engine: Engine) -> list[str]:
    try:
        with engine.connect() as conn:
            return sorted(conn.execute(text("SELECT version_num FROM alembic_version")).scalars())
    except DBAPIError as exc:
        where = _redact(str(engine.url))
        raise StoreError(f"backup of {where}: no newsdesk schema ({_one_line(exc.orig)})") from None


def verify_sqlite_copy(partial: Path, path: Path, version: list[str]) -> dict[str, int]:
    """Open the copy read-only and check it whole (``path`` names it in errors); returns
    its main tables' counts."""
    try:
        with closing(sqlite3.connect(f"{partial.resolve().as_uri()}?mode=ro", uri=True)) as db:
            problems = [row[0] for row in db.execute("PRAGMA integrity_check")]
            if problems != ["ok"]:
                raise StoreError(f"backup {path}: integrity check failed: {problems[0]}")
            copied = sorted(row[0] for row in db.execute("SELECT version_num FROM alembic_version"))
            if copied != version:
                raise StoreError(
                    f"backup {path}: schema revision {copied} differs from the store's {version}"
                )
            return {t: db.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in MAIN_TABLES}
    except sqlite3.Error as exc:
        raise StoreError(f"backup {path}: the copy does not read back: {exc}") from None


# -- PostgreSQL ---------------------------------------------------------------------------


def _pg_backup(engine: Engine, partial: Path, path: Path) -> dict[str, int]:
    argv, env = pg_dump_command(engine.url, partial)
    pg_restore = _tool("pg_restore", engine.url)
    # Counted in the transaction whose snapshot pg_dump dumps: the counts are the dump's.
    with engine.connect() as conn:
        conn.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin():
            snapshot = conn.exec_driver_sql("SELECT pg_export_snapshot()").scalar_one()
            counts = _counts(conn)
            _run([*argv, f"--snapshot={snapshot}"], env, f"pg_dump of {_redact(str(engine.url))}")
    listing = _run([pg_restore, "--list", str(partial)], env, f"backup {path}: pg_restore --list")
    dumped = set(re.findall(r" TABLE DATA \S+ (\S+) ", listing))
    missing = [t for t in (*MAIN_TABLES, "alembic_version") if t not in dumped]
    if missing:
        raise StoreError(f"backup {path}: the dump holds no {', '.join(missing)}")
    return counts


def pg_dump_command(url: URL, output: Path) -> tuple[list[str], dict[str, str]]:
    """The pg_dump command line and environment for the store at ``url``.

    libpq reads the URL without SQLAlchemy's driver part; the password goes in
    ``PGPASSWORD``. A URL that sets a ``search_path`` (a store in its own schema) dumps
    that schema; otherwise the whole database.
    """
    pg_dump = _tool("pg_dump", url)
    env = dict(os.environ)
    if url.password is not None:
        env["PGPASSWORD"] = str(url.password)
    # _replace, not set(): URL.set() takes None for "leave as it is".
    bare = url.set(drivername="postgresql")._replace(password=None)
    libpq = bare.render_as_string(hide_password=False)
    argv = [pg_dump, "--format=custom", f"--file={output}"]
    schema = _schema_of(url)
    if schema:
        # Quoted: a pg_dump pattern would otherwise fold case and read * and ? as wildcards.
        quoted = schema.replace('"', '""')
        argv.append(f'--schema="{quoted}"')
    argv.append(f"--dbname={libpq}")
    return argv, env


def _schema_of(url: URL) -> str | None:
    """The first schema of a ``search_path`` set by the URL's ``options``, if any."""
    options = url.query.get("options", ())
    for option in [options] if isinstance(options, str) else options:
        match = re.search(r"-c\s*search_path\s*=\s*([^\s,]+)", option)
        if match:
            return match.group(1).strip("\"'")
    return None


def _tool(name: str, url: URL) -> str:
    found = shutil.which(name)
    if found is None:
        shown = url.set(drivername="postgresql").render_as_string(hide_password=True)
        raise StoreError(
            f"backup: {name} not found; install the PostgreSQL client tools of the server's "
            f"version (e.g. apt install postgresql-client), or back up by hand: "
            f"pg_dump --format=custom --file PATH '{shown}'"
        )
    return found


def _counts(conn: Connection) -> dict[str, int]:
    return {
        t: int(conn.exec_driver_sql(f"SELECT count(*) FROM {t}").scalar_one()) for t in MAIN_TABLES
    }


def _run(argv: list[str], env: dict[str, str], what: str) -> str:
    """Run a client tool; its last line of complaint becomes the error."""
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        lines = [line for line in done.stderr.splitlines() if line.strip()] or [
            f"exit status {done.returncode}"
        ]
        raise StoreError(f"{what}: {lines[-1].strip()}")
    return done.stdout


# -- files --------------------------------------------------------------------------------


def _fsync(path: Path) -> None:
    """Flush a file (or a folder's entry for a renamed file) to the disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _size(size: int) -> str:
    if size < 1024:
        return f"{size} bytes"
    scaled = size / 1024
    for unit in ("KB", "MB"):
        if scaled < 1024:
            return f"{scaled:,.1f} {unit}"
        scaled /= 1024
    return f"{scaled:,.1f} GB"

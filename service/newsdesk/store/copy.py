"""Copy a store into another database: how an operator moves from SQLite to PostgreSQL.

Every table of the schema is copied in foreign-key order, with its primary keys as they
are: story ids live on in picks files, issue ids in the archive and the delivery ledger.
Rows go through the :mod:`~newsdesk.store.schema` tables, so each engine gets its own
types (SQLite's 0/1 becomes a PostgreSQL boolean, naive UTC stays naive UTC).

The source is read in one transaction, a consistent snapshot even while a daemon writes.
The target is written in one transaction, so a copy that fails leaves it as it was.
PostgreSQL copes with a transaction of millions of rows (it keeps no undo log to
overflow; the rows are only invisible until the commit), and SQLite's journal grows
to the size of the copy, no more.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Connection, Engine, Table, func, select
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError

from newsdesk.errors import StoreError
from newsdesk.store.engine import (
    _one_line,
    _redact,
    create_store_engine,
    pending_migrations,
    upgrade,
    write_lock,
)
from newsdesk.store.schema import metadata
from newsdesk.store.stories import outdate_caches, stories_version

BATCH = 2000
"""Rows read and inserted at a time: memory stays flat whatever the size of the store."""

TABLES: list[Table] = list(metadata.sorted_tables)
"""Parents before children (alembic_version is not in the metadata: each store has its own)."""

Progress = Callable[[str, int, int], None]
"""Called after each batch with the table being copied, rows copied, rows to copy."""


@dataclass(frozen=True)
class CopyResult:
    """What a copy wrote: rows per table, as counted in the target after the copy."""

    url: str
    """The target, password hidden."""
    counts: dict[str, int]
    seconds: float

    @property
    def rows(self) -> int:
        return sum(self.counts.values())

    def line(self) -> str:
        return (
            f"copied {self.rows:,} rows in {len(self.counts)} tables to {self.url} "
            f"in {self.seconds:.1f} s"
        )


def copy_store(
    source: Engine, target_url: str, *, force: bool = False, progress: Progress | None = None
) -> CopyResult:
    """Copy every row of ``source`` into the store at ``target_url`` (migrated first).

    The target must be empty; ``force`` empties it first, in the copy's transaction.
    """
    started = time.perf_counter()
    shown = _redact(target_url)
    if _same_database(source.url, target_url):
        raise StoreError(f"copy to {shown}: that is the store being copied")
    if pending := pending_migrations(source):
        raise StoreError(
            f"copy from {_redact(str(source.url))}: schema not current "
            f"({', '.join(sorted(pending))} pending); run newsdesk db upgrade first"
        )
    target = create_store_engine(target_url, role="copy to")
    try:
        with _snapshot(source) as reading:
            counts = _copy(reading, target, shown, force=force, progress=progress)
        _analyze(target, shown, counts)
    finally:
        target.dispose()
    return CopyResult(shown, counts, time.perf_counter() - started)


def _copy(
    reading: Connection, target: Engine, shown: str, *, force: bool, progress: Progress | None
) -> dict[str, int]:
    """Migrate the target, then copy table by table in one transaction; the counts."""
    where = "the schema"
    try:
        upgrade(target)
        with target.begin() as writing:
            write_lock(writing)
            where = "the source"
            totals = {t.name: _count(reading, t) for t in TABLES}  # the snapshot starts
            where = "the target"
            seen = stories_version(writing)
            _make_room(writing, shown, force=force)
            copied, total = 0, sum(totals.values())
            for t in TABLES:
                where = t.name
                batches = reading.execute(select(t), execution_options={"yield_per": BATCH})
                for rows in batches.partitions():
                    writing.execute(t.insert(), [row._asdict() for row in rows])
                    copied += len(rows)
                    if progress is not None:
                        progress(t.name, copied, total)
            where = "the id sequences"
            _reset_sequences(writing)
            counts = _verify(writing, totals, shown)
            if seen:
                # A daemon still open on the target (--force) keeps a clustering cache,
                # good while the stories' version is the one it last wrote; the copy's
                # own version could be that number by chance.
                outdate_caches(writing, seen)
            return counts
    except DBAPIError as exc:
        raise StoreError(
            f"copy to {shown} failed at {where}: {_one_line(exc.orig)}; "
            "the target is left as it was"
        ) from None


@contextmanager
def _snapshot(engine: Engine) -> Iterator[Connection]:
    """A connection that sees the database as it was at its first read, whatever
    commits meanwhile: the copy is consistent even while a daemon writes."""
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
        elif conn.dialect.name == "sqlite":
            # The driver opens no transaction for reads: each SELECT would see the
            # latest commit. In WAL mode a read transaction keeps its snapshot.
            conn.exec_driver_sql("BEGIN")
        try:
            yield conn
        finally:
            conn.rollback()


def _count(conn: Connection, table: Table) -> int:
    return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def _make_room(conn: Connection, shown: str, *, force: bool) -> None:
    """Refuse a target that holds rows, or (``force``) empty it, children first."""
    filled = [t.name for t in TABLES if conn.execute(select(1).select_from(t).limit(1)).first()]
    if not filled:
        return
    if not force:
        raise StoreError(
            f"copy to {shown}: the target is not empty (rows in {', '.join(filled)}); "
            "--force replaces its contents"
        )
    for t in reversed(TABLES):
        conn.execute(t.delete())


def _reset_sequences(conn: Connection) -> None:
    """PostgreSQL: move each id sequence past the copied ids, or the next insert collides.

    SQLite numbers a new row after the largest id itself.
    """
    if conn.dialect.name != "postgresql":
        return
    for t in TABLES:
        column = t.autoincrement_column
        if column is None:
            continue
        largest = func.max(column)
        conn.execute(
            select(
                func.setval(
                    func.pg_get_serial_sequence(t.name, column.name),
                    func.coalesce(largest, 1),
                    largest.is_not(None),
                )
            )
        )


def _analyze(engine: Engine, shown: str, counts: dict[str, int]) -> None:
    """PostgreSQL: gather the planner's statistics of the copied tables now. Until
    autovacuum gets to them the planner guesses, and the clustering's lookups in the
    term index took ten times as long (docs/benchmarks.md, "On PostgreSQL").

    Not an empty table: statistics saying "empty" outlive its growth where autovacuum
    is off, and the planner then read a whole index for each story's norm; a table
    never analysed is estimated from its size on disk instead."""
    if engine.dialect.name != "postgresql":
        return
    quote = engine.dialect.identifier_preparer.quote
    try:
        with engine.begin() as conn:
            for t in TABLES:
                if counts.get(t.name):
                    conn.exec_driver_sql(f"ANALYZE {quote(t.name)}")
    except DBAPIError as exc:
        raise StoreError(
            f"copy to {shown}: copied, but ANALYZE failed: {_one_line(exc.orig)}; "
            "run ANALYZE on that database before starting newsdesk on it"
        ) from None


def _verify(conn: Connection, totals: dict[str, int], shown: str) -> dict[str, int]:
    """The target's row counts, which must be the source's."""
    counts = {t.name: _count(conn, t) for t in TABLES}
    wrong = [f"{name} {counts[name]:,} of {n:,}" for name, n in totals.items() if counts[name] != n]
    if wrong:
        raise StoreError(
            f"copy to {shown}: rows missing or extra after the copy ({', '.join(wrong)}); "
            "the target is left as it was"
        )
    return counts


def _same_database(source: URL, target_url: str) -> bool:
    """Both URLs name one database: a copy onto itself is a slip of the keyboard.

    Compared by URL (SQLite: by file): another spelling of the same server is not
    recognised, but then the target is not empty and the copy stops without --force.
    """
    try:
        target = make_url(target_url)
    except (ArgumentError, ValueError):
        return False  # opening the target says what is wrong with the URL
    if source.get_backend_name() != target.get_backend_name():
        return False
    if source.get_backend_name() == "sqlite":
        paths = [u.database for u in (source, target)]
        if any(p in (None, "", ":memory:") for p in paths):
            return False
        return Path(paths[0] or "").resolve() == Path(paths[1] or "").resolve()

    def plain(url: URL) -> URL:
        return url.set(drivername=url.get_backend_name(), password=None)

    return plain(source) == plain(target)

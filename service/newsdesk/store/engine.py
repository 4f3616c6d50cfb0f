"""Open the database: engine settings per dialect, and migrations on start."""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.exc import (
    ArgumentError,
    DBAPIError,
    InterfaceError,
    NoSuchModuleError,
    OperationalError,
)

from newsdesk.errors import StoreError

if TYPE_CHECKING:
    from alembic.config import Config as AlembicConfig

MIGRATIONS = Path(__file__).with_name("migrations")
HEAD = max(p.name[:4] for p in (MIGRATIONS / "versions").glob("[0-9][0-9][0-9][0-9]_*.py"))
"""The newest revision: revisions are numbered like their files (``0003_issue_archive.py``
is revision ``0003``), one after the other (a test holds alembic to it)."""
# Advisory lock key for migrations on PostgreSQL ("newsdesk" in ASCII, as a number).
MIGRATION_LOCK = 0x6E657773646573


def create_store_engine(url: str, *, pool_size: int = 5, role: str = "store.url") -> Engine:
    """An engine for ``url`` with the settings newsdesk relies on; errors name ``role``.

    SQLite gets WAL (readers never block the writer), a busy timeout (the CLI and the
    daemon may write at the same time) and enforced foreign keys.
    """
    try:
        if url.startswith("sqlite"):
            _ensure_sqlite_dir(url)
            engine = create_engine(url, connect_args={"timeout": 30})
            event.listen(engine, "connect", _sqlite_pragmas)
            return engine
        return create_engine(url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)
    except (ArgumentError, NoSuchModuleError, ValueError) as exc:
        raise StoreError(f"{role} {_redact(url)}: {_one_line(exc)}") from None
    except OSError as exc:
        raise StoreError(f"{role} {_redact(url)}: {exc.strerror or exc}") from None
    except ModuleNotFoundError as exc:
        raise StoreError(
            f"{role} {_redact(url)}: driver missing ({exc.name}); "
            "install newsdesk[postgres] for PostgreSQL"
        ) from None


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    # WAL + NORMAL: durable against application crashes; a power cut may lose the
    # last transactions but never corrupts the file.
    cursor.execute("PRAGMA synchronous=NORMAL")
    # The clustering rewrites thousands of scattered index rows per transaction (term
    # counts, the term index): with SQLite's default 2 MB page cache those pages are
    # read back from the file again and again, and dirty ones spill to the WAL before
    # the commit. 64 MB (allocated only as pages are used) holds a transaction's pages.
    cursor.execute("PRAGMA cache_size=-65536")
    cursor.execute("PRAGMA temp_store=MEMORY")
    # Checkpoint every ~40 MB of WAL rather than every 4 MB: a page changed by several
    # commits in between is copied back to the database once, with one fsync.
    cursor.execute("PRAGMA wal_autocheckpoint=10000")
    cursor.close()


def database_size(engine: Engine) -> int | None:
    """Bytes on disk: the SQLite file with its WAL, or PostgreSQL's database size."""
    if engine.dialect.name == "sqlite":
        database = engine.url.database
        if not database or database == ":memory:":
            return None
        files = (Path(database), Path(f"{database}-wal"))
        return sum(f.stat().st_size for f in files if f.exists())
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            size = conn.execute(text("SELECT pg_database_size(current_database())")).scalar()
        return int(size) if size is not None else None
    return None


def _ensure_sqlite_dir(url: str) -> None:
    path = url.split("///", 1)[-1].split("?", 1)[0]
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)


def _alembic_config(connection: Any) -> AlembicConfig:
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    return cfg


def upgrade(engine: Engine) -> None:
    """Apply every pending migration."""
    if _is_current(engine):
        return  # the common case, without importing alembic (a fifth of a command's start)
    from alembic import command

    try:
        with _sqlite_file_lock(engine), engine.connect() as connection:
            _lock_for_migration(connection)
            command.upgrade(_alembic_config(connection), "head")
            connection.commit()
    except (OperationalError, InterfaceError) as exc:
        raise StoreError(
            f"cannot migrate the store at {_redact(str(engine.url))}: {_one_line(exc.orig)}"
        ) from None


@contextlib.contextmanager
def _sqlite_file_lock(engine: Engine) -> Iterator[None]:
    """On SQLite, one process at a time opens a fresh store: the first connection switches
    the file to WAL, which a concurrent transaction can make fail at once ("database is
    locked") instead of waiting. A lock file beside the database orders them."""
    database = engine.url.database if engine.dialect.name == "sqlite" else None
    if not database or database == ":memory:":
        yield
        return
    with open(f"{database}.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def write_lock(conn: Connection) -> None:
    """Take SQLite's write lock before a read-then-write transaction.

    A deferred transaction that has read cannot wait for the lock when it comes to
    write (SQLite answers "database is locked" at once to avoid a deadlock); taking it
    first makes a second process wait on the busy timeout instead. PostgreSQL needs
    nothing here.
    """
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def _lock_for_migration(connection: Connection) -> None:
    """Serialise migrations between processes starting at once on a fresh store.

    Without this, two processes both read "no schema yet" and both create the tables.
    SQLite: take the write lock first (the other waits on the busy timeout); PostgreSQL:
    a transaction-scoped advisory lock. Either way the second process then finds the
    schema current and does nothing.
    """
    if connection.dialect.name == "sqlite":
        write_lock(connection)
    elif connection.dialect.name == "postgresql":
        connection.exec_driver_sql("SELECT pg_advisory_xact_lock(%(key)s)", {"key": MIGRATION_LOCK})


def _is_current(engine: Engine) -> bool:
    """The store's schema is at :data:`HEAD` (False when unsure: the upgrade decides)."""
    try:
        with engine.connect() as connection:
            current = connection.execute(text("SELECT version_num FROM alembic_version")).all()
    except DBAPIError:
        return False  # no alembic_version table yet, or the server says why in upgrade()
    return [row[0] for row in current] == [HEAD]


def pending_migrations(engine: Engine) -> list[str]:
    """Revisions not yet applied (empty when the schema is current)."""
    try:
        return _pending(engine)
    except (OperationalError, InterfaceError) as exc:
        raise StoreError(
            f"cannot read the store at {_redact(str(engine.url))}: {_one_line(exc.orig)}"
        ) from None


def _pending(engine: Engine) -> list[str]:
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    with engine.connect() as connection:
        current = MigrationContext.configure(connection).get_current_heads()
        script = ScriptDirectory.from_config(_alembic_config(connection))
        heads = set(script.get_heads())
        if heads <= set(current):
            return []
        return [rev.revision for rev in script.iterate_revisions(tuple(heads), tuple(current))]


def _one_line(exc: BaseException | None) -> str:
    """Drivers' messages span lines (PostgreSQL adds hints); errors here are one line."""
    return " ".join(str(exc).split())


def _redact(url: str) -> str:
    """Hide the password of a database URL in messages."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return "<invalid URL>"

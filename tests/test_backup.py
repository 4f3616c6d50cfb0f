"""Backups of a running store: verified before they count, restorable, and never over
another file by accident. On SQLite and PostgreSQL."""

from __future__ import annotations

import subprocess
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url

from conftest import write_config
from newsdesk.cli import cli
from newsdesk.clustering import cluster_pending
from newsdesk.errors import StoreError, UsageError
from newsdesk.models import FeedSpec
from newsdesk.store import Store, open_store
from newsdesk.store.backup import MAIN_TABLES, pg_dump_command, verify_sqlite_copy
from newsdesk.store.engine import HEAD
from newsdesk.store.schema import story_entries
from test_stories import NOW, PARAMS, STREAM, T0, entry, ingest


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    s = open_store(store_url)
    ingest(s, STREAM)
    cluster_pending(s, PARAMS, now=NOW)
    s.subscribers.add("reader@example.org", now=NOW)
    yield s
    s.close()


def live_counts(store: Store) -> dict[str, int]:
    with store.engine.connect() as conn:
        return {
            t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one() for t in MAIN_TABLES
        }


def a_story(store: Store) -> tuple[int, str]:
    with store.engine.connect() as conn:
        story_id = conn.execute(select(func.min(story_entries.c.story_id))).scalar_one()
    return story_id, store.stories.get(story_id).title


def test_a_backup_holds_what_the_store_holds(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "backups" / "newsdesk-backup.db"
    path.parent.mkdir()

    result = store.backup(path)

    assert result.counts == live_counts(store)
    assert result.counts["entries"] == len(STREAM) and result.counts["subscribers"] == 1
    assert result.size_bytes == path.stat().st_size > 0
    assert list(path.parent.iterdir()) == [path]  # nothing .partial left behind
    assert result.line().startswith(f"backup: {path} (")
    assert f"{len(STREAM)} entries" in result.line() and "verified in " in result.line()


def test_a_sqlite_backup_opens_as_a_store(sqlite_url: str, tmp_path: Path) -> None:
    live = open_store(sqlite_url)
    ingest(live, STREAM)
    cluster_pending(live, PARAMS, now=NOW)
    story_id, title = a_story(live)
    path = tmp_path / "copy" / "newsdesk.db"
    path.parent.mkdir()
    live.backup(path)
    live.close()

    restored = open_store(f"sqlite:///{path}")

    assert restored.stories.get(story_id).title == title
    assert restored.entries.count() == len(STREAM)
    restored.close()


def test_a_postgresql_backup_restores_into_an_empty_database(pg_url: str, tmp_path: Path) -> None:
    import psycopg

    live = open_store(pg_url)
    ingest(live, STREAM)
    path = tmp_path / "newsdesk.dump"
    result = live.backup(path)
    live.close()
    assert path.read_bytes()[:5] == b"PGDMP"
    database = f"restore_{uuid.uuid4().hex[:10]}"
    admin = "host=127.0.0.1 port=5432 user=postgres dbname=test"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {database}")
    try:
        target = f"postgresql://postgres@127.0.0.1:5432/{database}"
        subprocess.run(["pg_restore", f"--dbname={target}", str(path)], check=True)
        # The dump holds the test's schema (and only it): restored under the same name.
        schema = pg_url.rsplit("%3D", 1)[1]
        with psycopg.connect(f"{target}?options=-csearch_path%3D{schema}") as conn:
            row = conn.execute("SELECT count(*) FROM entries").fetchone()
        assert row is not None and row[0] == result.counts["entries"] == len(STREAM)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE {database}")


def test_a_damaged_or_foreign_sqlite_copy_does_not_verify(sqlite_url: str, tmp_path: Path) -> None:
    live = open_store(sqlite_url)
    ingest(live, STREAM)
    path = tmp_path / "copy" / "newsdesk.db"
    path.parent.mkdir()
    live.backup(path)
    live.close()
    assert verify_sqlite_copy(path, path, [HEAD])["entries"] == len(STREAM)

    with pytest.raises(StoreError, match="schema revision"):
        verify_sqlite_copy(path, path, ["0001"])

    with path.open("r+b") as damaged:
        damaged.seek(2 * 4096)  # the third page: a table's or an index's b-tree
        damaged.write(b"\xff" * 4096)
    with pytest.raises(StoreError, match=f"^backup {path}: "):
        verify_sqlite_copy(path, path, [HEAD])


def test_a_backup_taken_while_another_connection_writes_verifies(
    sqlite_url: str, tmp_path: Path
) -> None:
    live = open_store(sqlite_url)
    feed = live.feeds.add(FeedSpec(url="https://bulk.example/feed.xml"), source="cli", now=T0)
    bulk = [entry(n, f"Bulk {n}", 1.0, "bulk.example", summary="x" * 4000) for n in range(4000)]
    live.entries.add_new(feed.id, bulk, NOW)
    writes = {"done": 0}
    stop = threading.Event()

    def writer() -> None:
        # Another store (its own engine and connections), as the daemon would be.
        other = open_store(sqlite_url)
        n = 100_000
        while not stop.is_set():
            other.entries.add_new(feed.id, [entry(n, f"Live {n}", 2.0, "bulk.example")], NOW)
            writes["done"] += 1
            n += 1
        other.close()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        while writes["done"] < 5:
            stop.wait(0.01)
        before = writes["done"]
        result = live.backup(tmp_path / "backup.db")
        during = writes["done"] - before
    finally:
        stop.set()
        thread.join()

    assert during > 0, "the writer never wrote while the backup ran"
    assert 4000 + before <= result.counts["entries"] <= 4000 + before + during
    live.close()


def test_an_existing_file_is_kept_unless_forced(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "backup.db"
    path.write_text("last week's backup")

    with pytest.raises(UsageError, match="exists; pass --force to replace it"):
        store.backup(path)
    assert path.read_text() == "last week's backup"

    store.backup(path, force=True)
    assert path.read_bytes() != b"last week's backup"


def test_the_live_database_is_never_a_backup_target(sqlite_url: str) -> None:
    live = open_store(sqlite_url)
    path = Path(sqlite_url.removeprefix("sqlite:///"))

    with pytest.raises(UsageError, match="is the live database"):
        live.backup(path, force=True)
    assert live.entries.count() == 0  # still a store
    live.close()


@pytest.mark.parametrize("where", ["missing-folder/backup.db", "a-file/backup.db"])
def test_a_folder_that_cannot_take_the_backup_is_one_line_naming_the_path(
    store: Store, tmp_path: Path, where: str
) -> None:
    (tmp_path / "a-file").write_text("not a folder")
    path = tmp_path / where

    with pytest.raises(StoreError) as failure:
        store.backup(path)

    message = str(failure.value)
    assert message.startswith(f"backup {path}: cannot write there: ")
    assert "\n" not in message


def test_without_pg_dump_the_error_says_what_to_install_and_the_manual_command(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    live = open_store(pg_url)
    monkeypatch.setenv("PATH", str(tmp_path / "no-tools"))

    with pytest.raises(StoreError) as failure:
        live.backup(tmp_path / "newsdesk.dump")

    message = str(failure.value)
    assert "pg_dump not found" in message and "postgresql-client" in message
    assert "pg_dump --format=custom --file PATH 'postgresql://postgres@127.0.0.1" in message
    assert not (tmp_path / "newsdesk.dump.partial").exists()
    live.close()


def test_the_password_goes_to_pg_dump_in_its_environment_not_its_command_line() -> None:
    url = make_url(
        "postgresql+psycopg://news:s3cret@db.example:5432/newsdesk?options=-csearch_path%3Dnd"
    )

    argv, env = pg_dump_command(url, Path("/backups/newsdesk.dump.partial"))

    assert not any("s3cret" in arg for arg in argv)
    assert env["PGPASSWORD"] == "s3cret"
    assert argv[1:] == [
        "--format=custom",
        "--file=/backups/newsdesk.dump.partial",
        '--schema="nd"',  # the store's own schema, not the whole database
        "--dbname=postgresql://news@db.example:5432/newsdesk?options=-csearch_path%3Dnd",
    ]


# -- the command -----------------------------------------------------------------------------


def test_db_backup_prints_one_line_and_refuses_to_overwrite(
    store: Store, store_url: str, tmp_path: Path
) -> None:
    config = write_config(tmp_path, f'[store]\nurl = "{store_url}"\n')
    path = tmp_path / "backups" / "newsdesk.bak"
    path.parent.mkdir()
    args = ["--config", str(config), "db", "backup", str(path)]
    runner = CliRunner()

    first = runner.invoke(cli, args)
    assert first.exit_code == 0, first.output
    assert first.output.startswith(f"backup: {path} (") and first.output.count("\n") == 1

    again = runner.invoke(cli, args)
    assert again.exit_code == 1
    assert again.output == f"Error: backup {path}: exists; pass --force to replace it\n"

    forced = runner.invoke(cli, [*args, "--force"])
    assert forced.exit_code == 0, forced.output


def test_db_backup_into_a_missing_folder_fails_with_one_line(
    store: Store, store_url: str, tmp_path: Path
) -> None:
    config = write_config(tmp_path, f'[store]\nurl = "{store_url}"\n')
    path = tmp_path / "nowhere" / "newsdesk.bak"

    result = CliRunner().invoke(cli, ["--config", str(config), "db", "backup", str(path)])

    assert result.exit_code == 1
    assert result.output == (
        f"Error: backup {path}: cannot write there: No such file or directory\n"
    )

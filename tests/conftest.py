"""Shared fixtures: throwaway databases (SQLite files and PostgreSQL schemas), config
files, and the location of the shared corpus."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from sending import Setup

sys.path.insert(0, str(Path(__file__).parent))  # tests/feedserver.py for every test module

PG_SERVER = os.environ.get("NEWSDESK_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus"
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
BENCH = Path(__file__).resolve().parents[1] / "bench"


def run_bench(script: str, args: list[str], pg_server: str) -> str:
    """Run ``bench/<script>`` as a user would, against the tests' PostgreSQL server;
    its standard output (a failure shows the end of both outputs)."""
    done = subprocess.run(
        [sys.executable, str(BENCH / script), *args],
        capture_output=True,
        text=True,
        timeout=170,
        env={**os.environ, "NEWSDESK_TEST_PG": pg_server},
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


def _pg_available() -> str | None:
    """None when PostgreSQL answers, else why not."""
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed (pip install -e '.[test]')"
    try:
        with psycopg.connect(
            "host=127.0.0.1 port=5432 user=postgres dbname=test", connect_timeout=3
        ):
            return None
    except psycopg.OperationalError as exc:
        return f"PostgreSQL at 127.0.0.1:5432 not reachable: {str(exc).splitlines()[0]}"


@pytest.fixture(scope="session")
def pg_server() -> str:
    problem = _pg_available()
    if problem:
        if os.environ.get("CI"):
            pytest.fail(f"{problem}; CI must run the PostgreSQL store tests")
        pytest.skip(problem)
    return PG_SERVER


@pytest.fixture
def pg_url(pg_server: str) -> Iterator[str]:
    """A fresh PostgreSQL schema per test, dropped afterwards."""
    import psycopg

    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(
        "host=127.0.0.1 port=5432 user=postgres dbname=test", autocommit=True
    ) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        yield f"{pg_server}?options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(
            "host=127.0.0.1 port=5432 user=postgres dbname=test", autocommit=True
        ) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'newsdesk.db'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Store tests run on both engines."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'newsdesk.db'}"
    url: str = request.getfixturevalue("pg_url")
    return url


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[Setup]:
    """A send's config and store (tests/sending.py); the stores are closed at teardown,
    also when the test fails."""
    from sending import Setup  # here: sending imports test_stories, which imports conftest

    opened = Setup(tmp_path)
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture(scope="session")
def corpus() -> Path:
    if not CORPUS.is_dir():
        pytest.skip(f"feed corpus not found at {CORPUS} (it lives in ../shared beside the repo)")
    return CORPUS


def write_config(directory: Path, body: str, name: str = "newsdesk.toml") -> Path:
    path = directory / name
    path.write_text(body, encoding="utf-8")
    return path

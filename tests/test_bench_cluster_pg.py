"""bench/cluster_pg.py end to end, small: the same generated stream clusters into the
same stories on PostgreSQL as on SQLite. Timing is never asserted (the machine is shared)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import CORPUS

BENCH = Path(__file__).resolve().parents[1] / "bench" / "cluster_pg.py"
STORIES = CORPUS / "stories"


@pytest.mark.timeout(180)
def test_a_generated_stream_gives_the_same_stories_on_postgresql_as_on_sqlite(
    pg_server: str,
) -> None:
    if not STORIES.is_dir():
        pytest.skip(f"story corpus not found at {STORIES} (it lives in ../shared)")
    command = [sys.executable, str(BENCH), "--size", "1500", "--runs", "1", "--no-doc"]
    done = subprocess.run(
        [*command, "--quiet-wait", "0"],
        capture_output=True,
        text=True,
        timeout=170,
        env={**os.environ, "NEWSDESK_TEST_PG": pg_server},
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "Same stories and term counts on both stores, every run: yes." in done.stdout
    assert "| PostgreSQL |" in done.stdout and "| SQLite |" in done.stdout

"""bench/cluster_pg.py end to end, small: the same generated stream clusters into the
same stories on PostgreSQL as on SQLite. Timing is never asserted (the machine is shared)."""

from __future__ import annotations

import pytest

from conftest import CORPUS, run_bench


@pytest.mark.timeout(180)
def test_a_generated_stream_gives_the_same_stories_on_postgresql_as_on_sqlite(
    pg_server: str,
) -> None:
    if not (CORPUS / "stories").is_dir():
        pytest.skip(f"story corpus not found at {CORPUS / 'stories'} (it lives in ../shared)")
    args = ["--size", "1500", "--runs", "1", "--no-doc", "--quiet-wait", "0"]
    out = run_bench("cluster_pg.py", args, pg_server)
    assert "Same stories and term counts on both stores, every run: yes." in out
    assert "| PostgreSQL |" in out and "| SQLite |" in out

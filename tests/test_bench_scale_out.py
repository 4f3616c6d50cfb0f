"""bench/scale_out.py end to end, small: every configuration fetches every feed exactly
once. Timing is never asserted (the machine is shared)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench" / "scale_out.py"


@pytest.mark.timeout(180)
def test_one_and_two_instances_on_postgresql_and_one_on_sqlite_fetch_each_feed_once(
    pg_server: str, tmp_path: Path
) -> None:
    out = tmp_path / "scale_out.json"
    command = [sys.executable, str(BENCH), "--quick", "--feeds", "300", "--instances", "1,2"]
    done = subprocess.run(
        [*command, "--runs", "1", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=170,
        env={**os.environ, "NEWSDESK_TEST_PG": pg_server},
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "checks: all passed" in done.stdout
    result = json.loads(out.read_text(encoding="utf-8"))
    assert all(r["problems"] == [] for r in result["rounds"])
    rounds = {(r["engine"], r["instances"]): r for r in result["rounds"]}
    assert set(rounds) == {("sqlite", 1), ("postgresql", 1), ("postgresql", 2)}
    for r in rounds.values():
        served = r["server"]
        assert (served["requests"], served["missing"], served["twice"]) == (300, 0, 0)
        assert served["wrong_host"] == served["unknown"] == 0
        assert sum(r["per_instance_feeds"]) == 300
        assert len(r["per_instance_feeds"]) == r["instances"]
    assert {c["engine"] for c in result["claim_bench"]} == {"sqlite", "postgresql"}
    assert all(c["feeds"] == 300 for c in result["claim_bench"])
    # The summary table names every configuration, scaled against PostgreSQL x1.
    assert "| PostgreSQL | 2 |" in done.stdout and "| SQLite | 1 |" in done.stdout

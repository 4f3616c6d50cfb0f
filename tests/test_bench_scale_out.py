"""bench/scale_out.py end to end, small: every configuration fetches every feed exactly
once. Timing is never asserted (the machine is shared)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import run_bench


@pytest.mark.timeout(180)
def test_one_and_two_instances_on_postgresql_and_one_on_sqlite_fetch_each_feed_once(
    pg_server: str, tmp_path: Path
) -> None:
    out = tmp_path / "scale_out.json"
    args = ["--quick", "--feeds", "300", "--instances", "1,2", "--runs", "1", "--out", str(out)]
    stdout = run_bench("scale_out.py", args, pg_server)
    assert "checks: all passed" in stdout
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
    assert "| PostgreSQL | 2 |" in stdout and "| SQLite | 1 |" in stdout

"""`newsdesk status`: what runs, how each job went, the last issue and its deliveries.

``status --json`` is a contract for scripts and monitoring: it is checked against the
schema in docs/status.schema.json; ``status --check`` is the container health check.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from click.testing import CliRunner

from conftest import write_config
from newsdesk import jobs
from newsdesk.cli import cli
from newsdesk.store import Store, open_store
from test_stories import NOW

SCHEMA = json.loads(
    (Path(__file__).parents[1] / "docs" / "status.schema.json").read_text(encoding="utf-8")
)


def validate(report: dict[str, Any]) -> None:
    jsonschema.Draft202012Validator(SCHEMA).validate(report)


@pytest.fixture
def busy_store(store_url: str) -> Iterator[Store]:
    """A store with a daemon, its jobs, a failing feed and a half-sent issue."""
    from newsdesk.models import FeedSpec

    store = open_store(store_url)
    store.feeds.sync_config(
        [FeedSpec(url="https://ok.example/feed"), FeedSpec(url="https://user:pw@down.example/x")],
        NOW,
    )
    down = next(f for f in store.feeds.listed() if "down.example" in f.url)
    store.feeds.record_error(down.id, "HTTP 503", now=NOW, next_check=NOW, pause_after=10)
    store.daemons.register("host:1", host="host", pid=1, version="0.1", now=NOW)
    store.daemons.job_started("fetch", "host:1", NOW)
    store.daemons.job_finished(
        "fetch",
        "host:1",
        outcome="ok",
        message="1 feeds: 1 ok",
        now=NOW,
        next_run_at=NOW + timedelta(minutes=1),
    )
    store.daemons.job_scheduled("send", "host:1", NOW + timedelta(days=3))
    issue, _ = store.issues.open(
        slot="2026-11-23",
        subject="Issue 1",
        preheader="",
        html="<p>x</p>",
        text="x",
        stories_by_section=[],
        now=NOW,
    )
    subscribers = [store.subscribers.add(f"r{n}@example.org", now=NOW) for n in range(3)]
    store.deliveries.queue(issue.id, [(s.id, f"<{s.id}@example.org>") for s in subscribers], NOW)
    yield store
    store.close()


def test_the_report_follows_the_documented_schema(busy_store: Store) -> None:
    report = jobs.status_report(busy_store, now=NOW + timedelta(seconds=30))
    validate(report)
    assert report["healthy"] is True
    (daemon,) = report["daemons"]
    assert daemon["instance"] == "host:1" and daemon["alive"] is True
    by_name = {j["name"]: j for j in report["jobs"]}
    assert by_name["fetch"]["outcome"] == "ok" and by_name["fetch"]["message"] == "1 feeds: 1 ok"
    assert by_name["send"]["outcome"] == "scheduled" and by_name["send"]["next_run_at"]
    (failing,) = report["failing_feeds"]
    assert failing["url"] == "https://user:***@down.example/x"  # the password is not shown
    assert report["unfinished_issue"]["slot"] == "2026-11-23"
    assert report["unfinished_issue"]["deliveries"]["queued"] == 3
    assert report["store"]["size_bytes"] > 0


def test_a_daemon_without_a_recent_heartbeat_or_stopped_is_not_alive(busy_store: Store) -> None:
    later = jobs.status_report(busy_store, now=NOW + jobs.ALIVE_WITHIN + timedelta(seconds=1))
    validate(later)
    assert later["healthy"] is False and later["daemons"][0]["alive"] is False
    busy_store.daemons.stopped("host:1", NOW)
    stopped = jobs.status_report(busy_store, now=NOW)
    assert stopped["healthy"] is False and stopped["daemons"][0]["stopped_at"]


def test_an_empty_store_also_follows_the_schema(store_url: str) -> None:
    store = open_store(store_url)
    report = jobs.status_report(store, now=NOW)
    store.close()
    validate(report)
    assert report["daemons"] == [] and report["jobs"] == [] and report["last_issue"] is None


def test_the_schema_rejects_what_it_does_not_document(busy_store: Store) -> None:
    report = jobs.status_report(busy_store, now=NOW)
    report["surprise"] = 1
    with pytest.raises(jsonschema.ValidationError):
        validate(report)


def test_status_check_exits_by_the_daemons_heartbeat(tmp_path: Path) -> None:
    config = write_config(tmp_path, "")
    runner = CliRunner()
    result = runner.invoke(cli, ["--config", str(config), "status", "--check"])
    assert result.exit_code == 1 and result.output.startswith("unhealthy: ")
    store = open_store(f"sqlite:///{tmp_path / 'newsdesk.db'}")
    store.daemons.register("here:7", host="here", pid=7, version="0.1", now=jobs.utcnow())
    store.close()
    result = runner.invoke(cli, ["--config", str(config), "status", "--check"])
    assert result.exit_code == 0 and result.output == "ok: daemon here:7 alive\n"
    result = runner.invoke(cli, ["--config", str(config), "status", "--json"])
    validate(json.loads(result.output))
    text = runner.invoke(cli, ["--config", str(config), "status"]).output
    assert text.startswith("daemon: here:7 running since ")

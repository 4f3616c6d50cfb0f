"""Feed health for the curator: feeds failing for a while, in test copies and a mail."""

from __future__ import annotations

import email
import email.policy
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from newsdesk import delivery
from newsdesk.config import load_config
from newsdesk.health import failing_feeds, report_html
from newsdesk.models import FeedSpec
from newsdesk.store import Store
from sending import NOW, Setup
from smtpserver import SMTPServer


@pytest.fixture
def server() -> Iterator[SMTPServer]:
    with SMTPServer() as s:
        yield s


def fail(store: Store, url: str, reason: str, *, at: timedelta, times: int = 1) -> None:
    feed = store.feeds.get(url)
    for _ in range(times):
        store.feeds.record_error(feed.id, reason, now=NOW + at, next_check=NOW, pause_after=3)


def test_only_feeds_failing_longer_than_the_threshold_are_reported(
    setup: Setup, sqlite_url: str, server: SMTPServer
) -> None:
    _config, store = setup(sqlite_url, server)
    store.feeds.sync_config(
        [
            FeedSpec(url="https://fine.example/feed"),
            FeedSpec(url="https://blip.example/feed"),
            FeedSpec(url="https://down.example/feed"),
            FeedSpec(url="https://paused.example/feed"),
        ],
        NOW,
    )
    fail(store, "https://blip.example/feed", "timeout", at=timedelta(hours=30))
    fail(store, "https://down.example/feed", "HTTP 503", at=timedelta(hours=1))
    fail(store, "https://paused.example/feed", "HTTP 500", at=timedelta(hours=1), times=3)
    now = NOW + timedelta(hours=30)
    # A feed that never worked counts as failing since it was added (30 h ago here):
    # two days' threshold reports only the paused one, one day's reports all three.
    reported = {f.url for f in failing_feeds(store.feeds.listed(), now, timedelta(days=2))}
    assert reported == {"https://paused.example/feed"}  # paused is reported at once
    reported = {f.url for f in failing_feeds(store.feeds.listed(), now, timedelta(days=1))}
    assert reported == {
        "https://blip.example/feed",
        "https://down.example/feed",
        "https://paused.example/feed",
    }


def test_the_report_escapes_what_servers_said() -> None:
    from newsdesk.health import FailingFeed

    feed = FailingFeed("<b>x</b>", "https://e.example/", "active", NOW, 2, "<script>x</script>")
    html = report_html([feed])
    assert "<script>" not in html and "&lt;script&gt;" in html


def test_a_test_copy_carries_the_report_and_the_health_mail_goes_to_the_curator(
    setup: Setup, sqlite_url: str, server: SMTPServer
) -> None:
    config, store = setup(sqlite_url, server)
    config = replace(
        config, daemon=replace(config.daemon, health_to="Curator <curator@example.org>")
    )
    store.feeds.sync_config([FeedSpec(url="https://down.example/feed")], NOW)
    fail(store, "https://down.example/feed", "HTTP 503 Service Unavailable", at=timedelta(0))
    later = NOW + timedelta(days=2)

    delivery.send_test_copy(config, store, "me@example.org", clock=lambda: later)
    sent = delivery.send_health_report(config, store, now=later)
    assert sent == 1
    copy, health = (
        email.message_from_bytes(m.raw, policy=email.policy.default) for m in server.messages
    )
    text = copy.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert text.startswith("Feed health: 1 feeds need attention")
    assert "HTTP 503 Service Unavailable" in text
    assert "Feed health" in copy.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert health["To"] == "Curator <curator@example.org>"
    assert "1 feeds need attention" in health["Subject"]
    # Nothing failing: no mail.
    assert delivery.send_health_report(config, store, now=NOW) == 0
    assert len(server.messages) == 2


def test_health_to_is_checked_as_an_address(tmp_path: Path) -> None:
    path = tmp_path / "newsdesk.toml"
    path.write_text('[daemon]\nhealth_to = "not an address"\n', encoding="utf-8")
    try:
        load_config(path, {})
    except Exception as exc:  # ConfigError
        assert "daemon.health_to" in str(getattr(exc, "problems", exc))
    else:
        raise AssertionError("a bad health_to was accepted")

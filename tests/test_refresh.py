"""A fetch round end to end: a real HTTP server on 127.0.0.1, a real SQLite file."""

from __future__ import annotations

import itertools
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from conftest import write_config
from feedserver import FeedServer, Reply
from newsdesk import jobs
from newsdesk.config import Config, load_config
from newsdesk.store import Store

RSS = """<?xml version="1.0"?>
<rss version="2.0"><channel><title>Example</title><link>https://example.org/</link>
<ttl>{ttl}</ttl>
{items}
</channel></rss>"""
ITEM = """<item><title>Story {n}</title><link>https://example.org/{n}?utm_source=rss</link>
<guid>id-{n}</guid><pubDate>{date}</pubDate><description>Text {n}</description></item>"""


def rss(*numbers: int, ttl: int = 0) -> bytes:
    items = "".join(
        ITEM.format(n=n, date=f"Mon, {10 + n:02d} Nov 2026 08:00:00 GMT") for n in numbers
    )
    return RSS.format(items=items, ttl=ttl).encode()


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


@pytest.fixture
def server() -> FeedServer:
    with FeedServer() as s:
        yield s


def setup(tmp_path: Path, server: FeedServer, *paths: str, extra: str = "") -> tuple[Config, Store]:
    feeds = "".join(f'[[feed]]\nurl = "{server.url(p)}"\n' for p in paths)
    path = write_config(
        tmp_path,
        f'[fetch]\nallow_private_networks = true\npause_after = 3\nread_timeout = "1s"\n'
        f'deadline = "3s"\n{extra}\n{feeds}',
    )
    config = load_config(path, {})
    return config, jobs.open_app_store(config)


def test_a_round_stores_new_entries_then_uses_conditional_get(
    tmp_path: Path, server: FeedServer
) -> None:
    server.route("/feed.xml", Reply(body=rss(1, 2), headers={"ETag": '"v1"'}))
    config, store = setup(tmp_path, server, "/feed.xml")
    clock = Clock()

    first = jobs.fetch_round(config, store, clock=clock).refresh
    assert (first.ok, first.new_entries) == (1, 2)

    clock.advance(timedelta(days=2))
    server.route(
        "/feed.xml",
        lambda r: (
            Reply(status=304)
            if r.headers.get("if-none-match") == '"v1"'
            else Reply(body=rss(1, 2, 3))
        ),
    )
    second = jobs.fetch_round(config, store, clock=clock).refresh
    assert (second.not_modified, second.new_entries) == (1, 0)
    assert server.requests[-1].headers["if-none-match"] == '"v1"'

    feed = store.feeds.get(server.url("/feed.xml"))
    rows = store.entries.for_feed(feed.id)
    assert {r["canonical_url"] for r in rows} == {"https://example.org/1", "https://example.org/2"}
    assert feed.last_success_at == clock.now


def test_only_due_feeds_are_fetched(tmp_path: Path, server: FeedServer) -> None:
    server.route("/feed.xml", Reply(body=rss(1), headers={"ETag": '"v1"'}))
    config, store = setup(tmp_path, server, "/feed.xml")
    clock = Clock()
    jobs.fetch_round(config, store, clock=clock)
    again = jobs.fetch_round(config, store, clock=clock).refresh
    assert again.feeds == 0
    assert len(server.requests_to("/feed.xml")) == 1


def test_an_unchanged_body_is_not_parsed_again(tmp_path: Path, server: FeedServer) -> None:
    server.route("/feed.xml", Reply(body=rss(1, 2)))  # no validators at all
    config, store = setup(tmp_path, server, "/feed.xml")
    clock = Clock()
    jobs.fetch_round(config, store, clock=clock)
    clock.advance(timedelta(days=2))
    second = jobs.fetch_round(config, store, clock=clock).refresh
    assert (second.ok, second.not_modified) == (0, 1)


def test_ttl_makes_checks_rarer(tmp_path: Path, server: FeedServer) -> None:
    server.route("/feed.xml", Reply(body=rss(1, 2, 3, ttl=600)))
    config, store = setup(tmp_path, server, "/feed.xml")
    clock = Clock()
    jobs.fetch_round(config, store, clock=clock)
    feed = store.feeds.get(server.url("/feed.xml"))
    assert feed.next_check_at is not None
    assert feed.next_check_at - clock.now >= timedelta(hours=10)


def test_failures_are_stored_with_a_reason_and_pause_the_feed(
    tmp_path: Path, server: FeedServer
) -> None:
    server.route("/ok.xml", Reply(body=rss(1)))
    server.route("/broken.xml", Reply(status=500))
    config, store = setup(tmp_path, server, "/ok.xml", "/broken.xml")
    clock = Clock()
    for _ in range(3):
        summary = jobs.fetch_round(config, store, clock=clock).refresh
        clock.advance(timedelta(days=1))
    assert summary.failures == [(server.url("/broken.xml"), "HTTP 500 Internal Server Error")]

    broken = store.feeds.get(server.url("/broken.xml"))
    assert (broken.status, broken.error_count) == ("paused", 3)
    report = jobs.status_report(store, now=clock.now)
    [failing] = report["failing_feeds"]
    assert failing["url"] == server.url("/broken.xml")
    assert failing["error_count"] == 3
    assert failing["last_error"] == "HTTP 500 Internal Server Error"
    # The healthy feed kept working the whole time.
    assert store.feeds.get(server.url("/ok.xml")).error_count == 0


def test_a_gone_feed_is_retired(tmp_path: Path, server: FeedServer) -> None:
    server.route("/gone.xml", Reply(status=410))
    config, store = setup(tmp_path, server, "/gone.xml")
    jobs.fetch_round(config, store, clock=Clock())
    assert store.feeds.get(server.url("/gone.xml")).status == "retired"
    assert store.feeds.due(Clock().now + timedelta(days=365)) == []


def test_a_permanent_redirect_moves_the_feed(tmp_path: Path, server: FeedServer) -> None:
    server.redirect("/old.xml", "/new.xml", status=301)
    server.route("/new.xml", Reply(body=rss(1)))
    config, store = setup(tmp_path, server, "/old.xml")
    clock = Clock()
    jobs.fetch_round(config, store, clock=clock)

    feed = store.feeds.get(server.url("/old.xml"))
    assert feed.url == server.url("/new.xml")
    # newsdesk.toml still says /old.xml; the next start must not bring it back.
    store = jobs.open_app_store(config)
    clock.advance(timedelta(days=2))
    jobs.fetch_round(config, store, clock=clock)
    assert len(server.requests_to("/old.xml")) == 1
    assert [f.url for f in store.feeds.listed()] == [server.url("/new.xml")]


def test_retry_after_sets_the_next_check(tmp_path: Path, server: FeedServer) -> None:
    server.route("/busy.xml", Reply(status=429, headers={"Retry-After": "7200"}))
    config, store = setup(tmp_path, server, "/busy.xml")
    clock = Clock()
    jobs.fetch_round(config, store, clock=clock)
    feed = store.feeds.get(server.url("/busy.xml"))
    assert feed.next_check_at == clock.now + timedelta(seconds=7200)


def test_one_slow_feed_does_not_hold_up_the_round(tmp_path: Path, server: FeedServer) -> None:
    server.route("/ok.xml", Reply(body=rss(1)))
    server.route("/drip.xml", Reply(body=itertools.repeat(b" "), chunk_delay=0.2))
    config, store = setup(tmp_path, server, "/ok.xml", "/drip.xml")
    summary = jobs.fetch_round(config, store, clock=Clock()).refresh
    assert (summary.ok, summary.failed) == (1, 1)
    assert "longer than 3 s" in summary.failures[0][1]


def test_private_addresses_are_refused_by_default(tmp_path: Path, server: FeedServer) -> None:
    server.route("/feed.xml", Reply(body=rss(1)))
    path = write_config(tmp_path, f'[[feed]]\nurl = "{server.url("/feed.xml")}"\n')
    config = load_config(path, {})
    store = jobs.open_app_store(config)
    summary = jobs.fetch_round(config, store, clock=Clock()).refresh
    assert summary.failed == 1
    assert "private" in summary.failures[0][1] or "loopback" in summary.failures[0][1]
    assert server.requests == []


HTML_PAGE = b"<!DOCTYPE html><html><head><title>Blog</title></head><body><p>Hi</p></body></html>"
LATIN1_AS_UTF8 = (
    '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Caf\xe9</title>'
    "<item><title>Gr\xfc\xdfe aus K\xf6ln</title><link>https://example.org/k</link></item>"
    "</channel></rss>"
).encode("latin-1")


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        (Reply(body=b"", headers={"Content-Type": "application/rss+xml"}), "not a feed: empty"),
        (Reply(body=HTML_PAGE, headers={"Content-Type": "text/html"}), "not a feed: HTML page"),
        (Reply(body=b"<rss><channel><title>x</titl", headers={}), "invalid XML"),
    ],
    ids=["empty 200", "HTML page instead of a feed", "invalid XML"],
)
def test_documents_that_are_not_feeds_fail_with_a_reason(
    tmp_path: Path, server: FeedServer, reply: Reply, reason: str
) -> None:
    server.route("/feed.xml", reply)
    config, store = setup(tmp_path, server, "/feed.xml")
    summary = jobs.fetch_round(config, store, clock=Clock()).refresh
    assert summary.failed == 1
    feed = store.feeds.get(server.url("/feed.xml"))
    assert feed.last_error is not None and feed.last_error.startswith(reason), feed.last_error


def test_a_wrongly_declared_charset_is_read_anyway(tmp_path: Path, server: FeedServer) -> None:
    server.route(
        "/feed.xml",
        Reply(body=LATIN1_AS_UTF8, headers={"Content-Type": "application/rss+xml; charset=utf-8"}),
    )
    config, store = setup(tmp_path, server, "/feed.xml")
    summary = jobs.fetch_round(config, store, clock=Clock()).refresh
    assert (summary.ok, summary.new_entries) == (1, 1)
    feed = store.feeds.get(server.url("/feed.xml"))
    [row] = store.entries.for_feed(feed.id)
    assert row["title"] == "Grüße aus Köln"
    assert feed.title == "Café"


def test_a_bug_on_one_feed_is_recorded_and_the_round_goes_on(
    tmp_path: Path,
    server: FeedServer,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """No real server makes our own code raise; a patched parser stands in for a bug."""
    import newsdesk.refresh

    real = newsdesk.refresh.parse_feed

    def buggy(body: bytes, *, url: str, headers: dict[str, str]):
        if url.endswith("/bad.xml"):
            raise KeyError("surprise")
        return real(body, url=url, headers=headers)

    monkeypatch.setattr(newsdesk.refresh, "parse_feed", buggy)
    # The CLI tests may have given newsdesk's logger its own handler; caplog listens at root.
    monkeypatch.setattr(logging.getLogger("newsdesk"), "propagate", True)
    server.route("/ok.xml", Reply(body=rss(1)))
    server.route("/bad.xml", Reply(body=rss(2)))
    config, store = setup(tmp_path, server, "/ok.xml", "/bad.xml")
    summary = jobs.fetch_round(config, store, clock=Clock()).refresh
    assert (summary.ok, summary.failed, summary.new_entries) == (1, 1, 1)
    assert summary.failures == [(server.url("/bad.xml"), "internal error: KeyError: 'surprise'")]
    assert "internal error on feed" in caplog.text


def test_a_permanent_redirect_to_a_page_that_is_no_feed_is_not_followed(
    tmp_path: Path, server: FeedServer
) -> None:
    server.redirect("/feed.xml", "/home", status=301)
    server.route("/home", Reply(body=HTML_PAGE, headers={"Content-Type": "text/html"}))
    config, store = setup(tmp_path, server, "/feed.xml")
    summary = jobs.fetch_round(config, store, clock=Clock()).refresh
    assert summary.failed == 1
    feed = store.feeds.get(server.url("/feed.xml"))
    assert feed.url == server.url("/feed.xml")
    assert feed.last_error is not None and feed.last_error.startswith("not a feed: HTML page")


def test_a_move_onto_a_subscribed_feed_stores_nothing_twice(
    tmp_path: Path, server: FeedServer
) -> None:
    server.redirect("/old.xml", "/new.xml", status=301)
    server.route("/new.xml", Reply(body=rss(1, 2)))
    config, store = setup(tmp_path, server, "/old.xml", "/new.xml")
    jobs.fetch_round(config, store, clock=Clock())
    old = store.feeds.get(server.url("/old.xml"))
    assert old.status == "retired"
    assert old.last_error is not None and "already subscribed" in old.last_error
    assert store.entries.count(old.id) == 0
    assert store.entries.count(store.feeds.get(server.url("/new.xml")).id) == 2


def test_an_absurd_retry_after_is_survived(tmp_path: Path, server: FeedServer) -> None:
    server.route("/busy.xml", Reply(status=429, headers={"Retry-After": "9" * 20}))
    server.route("/ok.xml", Reply(body=rss(1)))
    config, store = setup(tmp_path, server, "/busy.xml", "/ok.xml")
    summary = jobs.fetch_round(config, store, clock=Clock()).refresh
    assert (summary.ok, summary.failed) == (1, 1)

"""Several `newsdesk run` processes on one PostgreSQL store share the feeds.

Ten loopback "hosts" (127.0.0.2 to .11) serve 1,000 feeds; three daemons fetch them.
Every feed is fetched once per round, no entry or story is doubled, and the feeds of a
daemon killed mid-round are fetched by the others once its claims run out.
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from sqlalchemy import func, select

from conftest import write_config
from feedserver import FeedServer, Reply, Request
from newsdesk.store import Store, open_store
from newsdesk.store.schema import entries, feeds
from test_daemon import Daemon, wait_for
from test_stories import check_invariants

HOSTS = [f"127.0.0.{n}" for n in range(2, 12)]
PER_HOST = 100
ITEMS = 2

CONFIG = """
[newsletter]
name = "Scale-out Test"

[store]
url = "{store_url}"

[daemon]
tick = "1s"
send = false
stop_timeout = "5s"

[fetch]
allow_private_networks = true
concurrency = 20
per_host = 2
deadline = "5s"
read_timeout = "5s"
lease = "{lease}"
{feeds}
"""


def rss(path: str) -> bytes:
    items = "".join(
        f"<item><title>Report {n} from {path}</title><link>http://example.org{path}/{n}</link>"
        f"<guid>{path}/{n}</guid><pubDate>Mon, 30 Nov 2026 0{n}:00:00 GMT</pubDate></item>"
        for n in range(ITEMS)
    )
    return f"<rss version='2.0'><channel><title>{path}</title>{items}</channel></rss>".encode()


@pytest.fixture
def servers() -> Iterator[list[FeedServer]]:
    with ExitStack() as stack:
        started = []
        for host in HOSTS:
            server = FeedServer(host=host)
            for n in range(PER_HOST):
                path = f"/feed{n}.xml"
                server.route(path, lambda _request, p=path: Reply(body=rss(p), delay=0.02))
            started.append(stack.enter_context(server))
        yield started


def feed_urls(servers: list[FeedServer]) -> list[str]:
    return [s.url(f"/feed{n}.xml") for s in servers for n in range(PER_HOST)]


def requests(servers: list[FeedServer]) -> Counter[str]:
    seen: list[Request] = [r for s in servers for r in s.requests]
    return Counter(f"{r.headers['host']}{r.path}" for r in seen)


def write(tmp_path: Path, store_url: str, urls: list[str], lease: str = "10m") -> Path:
    blocks = "".join(f'\n[[feed]]\nurl = "{u}"\n' for u in urls)
    body = CONFIG.format(store_url=store_url, lease=lease, feeds=blocks)
    return write_config(tmp_path, body)


def checked(store: Store) -> int:
    with store.engine.connect() as conn:
        query = select(func.count()).where(feeds.c.last_success_at.is_not(None))
        return int(conn.execute(query.select_from(feeds)).scalar_one())


def entry_count(store: Store) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(entries)).scalar_one())


@pytest.fixture
def store(pg_url: str) -> Iterator[Store]:
    """The daemons' store, as the test reads it; closed at teardown, also when the test
    fails (a store left open is collected during a later test, whose ResourceWarning for
    its psycopg connections, an error in this suite, then fails that test)."""
    opened = open_store(pg_url)
    try:
        yield opened
    finally:
        opened.close()


def test_three_daemons_fetch_every_feed_once_and_double_nothing(
    tmp_path: Path, servers: list[FeedServer], pg_url: str, store: Store
) -> None:
    urls = feed_urls(servers)
    config = write(tmp_path, pg_url, urls)
    daemons = [Daemon(config, tmp_path / f"d{n}.log") for n in range(3)]
    try:
        wait_for("every feed fetched", lambda: checked(store) == len(urls), daemons[0], 120)
        wait_for(
            "every entry clustered",
            lambda: store.stories.counts()["pending_entries"] == 0,
            daemons[0],
        )
    finally:
        codes = [d.stop()[0] for d in daemons]
    assert codes == [0, 0, 0], [d.text() for d in daemons]
    counts = requests(servers)
    assert len(counts) == len(urls) and set(counts.values()) == {1}, "a feed fetched twice"
    assert entry_count(store) == len(urls) * ITEMS
    check_invariants(store)
    # The work was shared: each daemon fetched some of the feeds.
    rounds = [d.text() for d in daemons]
    assert all("fetch round done" in log for log in rounds), rounds


def test_a_killed_daemons_feeds_are_fetched_by_the_others_after_its_lease(
    tmp_path: Path, servers: list[FeedServer], pg_url: str, store: Store
) -> None:
    urls = feed_urls(servers)
    config = write(tmp_path, pg_url, urls, lease="10s")
    doomed = Daemon(config, tmp_path / "doomed.log")
    # Let it claim a share and start on it, then kill it mid-round.
    wait_for("the first fetches", lambda: sum(requests(servers).values()) >= 30, doomed)
    doomed.signal(signal.SIGKILL)
    assert doomed.stop()[0] == -signal.SIGKILL
    killed_at = time.monotonic()
    with store.engine.connect() as conn:
        held = conn.execute(
            select(func.count()).where(feeds.c.lease_until.is_not(None)).select_from(feeds)
        ).scalar_one()
    assert held > 0, "the killed daemon held no claims"
    others = [Daemon(config, tmp_path / f"d{n}.log") for n in range(2)]
    try:
        wait_for("every feed fetched", lambda: checked(store) == len(urls), others[0], 120)
        done_after = time.monotonic() - killed_at
    finally:
        codes = [d.stop()[0] for d in others]
    assert codes == [0, 0], [d.text() for d in others]
    assert done_after >= 10 - 1, "the dead daemon's feeds were taken before its lease ended"
    counts = requests(servers)
    assert len(counts) == len(urls)
    twice = [u for u, n in counts.items() if n > 1]
    # Only what the killed daemon had in flight is fetched again, and only once more.
    assert set(counts.values()) <= {1, 2} and len(twice) <= 20 * 2
    assert entry_count(store) == len(urls) * ITEMS
    check_invariants(store)


SEND_CONFIG = """
[newsletter]
name = "Scale-out Briefing"
sender = "Briefing <briefing@example.org>"
lookback = "366d"

[store]
url = "{store_url}"

[mail]
transport = "smtp"
retry_backoff = "0s"

[mail.smtp]
host = "127.0.0.1"
port = {port}
security = "none"

[[section]]
id = "news"
title = "News"
kind = "list"
auto = 4
"""


def test_three_senders_share_one_issue_and_each_reader_gets_it_once(
    tmp_path: Path, pg_url: str, store: Store
) -> None:
    from newsdesk.store.schema import deliveries, issues
    from sending import newsdesk
    from smtpserver import SMTPServer
    from test_stories import NOW, STREAM, ingest

    readers = [f"reader{n:04}@example.org" for n in range(2000)]
    ingest(store, STREAM)
    for address in readers:
        store.subscribers.add(address, now=NOW)
    with SMTPServer() as smtp:
        config = write_config(tmp_path, SEND_CONFIG.format(store_url=pg_url, port=smtp.port))
        senders = [newsdesk(config, "send", output=subprocess.PIPE) for _ in range(3)]
        outputs = [s.communicate(timeout=300) for s in senders]
        assert [s.returncode for s in senders] == [0, 0, 0], outputs
        counts = smtp.message_ids()
        received = sorted(r for m in smtp.messages for r in m.rcpt_tos)
    assert received == readers  # everyone, once
    assert len(counts) == 2000 and set(counts.values()) == {1}
    sent_by = [int(out.split(": ", 1)[1].split(" sent")[0]) for out, _ in outputs]
    assert sum(sent_by) == 2000 and min(sent_by) > 0, f"not shared: {sent_by}"
    with store.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(issues)).scalar_one() == 1
        states = Counter(r.state for r in conn.execute(deliveries.select()))
        claimed_by = {r.claimed_by for r in conn.execute(deliveries.select())}
    assert states == {"sent": 2000} and len(claimed_by) == 3
    last = store.issues.last()
    assert last is not None and last.status == "sent"

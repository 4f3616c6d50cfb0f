"""`newsdesk run` as a real process, against a real feed server and a real SMTP server.

The daemon fetches, clusters, sends the scheduled issue once, stops cleanly on SIGTERM
in the middle of a fetch round or of a send, and picks up where it left off when it
starts again. It reloads newsdesk.toml on a change and rejects a broken one. One test
runs the daemon's fetch job in-process, to see the clustering's cache it keeps.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from conftest import write_config
from feedserver import FeedServer, Reply, Request, file_reply
from newsdesk import jobs
from newsdesk.config import load_config
from newsdesk.store import Store, open_store
from newsdesk.store.schema import deliveries
from smtpserver import SMTPServer

SAMPLES = Path(__file__).parents[1] / "service" / "newsdesk" / "demo" / "samples"

CONFIG = """
[newsletter]
name = "Daemon Test"
sender = "Daemon Test <digest@example.org>"
base_url = "https://digest.example.org"
schedule = "{schedule}"
lookback = "366d"

[store]
url = "{store_url}"

[daemon]
tick = "1s"
send = {send}
send_deadline = "1h"
stop_timeout = "{stop_timeout}"

[fetch]
allow_private_networks = true
read_timeout = "60s"
deadline = "60s"

[mail]
transport = "smtp"
retry_backoff = "0s"

[mail.smtp]
host = "127.0.0.1"
port = {smtp_port}
security = "none"
timeout = "5s"

[[section]]
id = "news"
title = "News"
kind = "list"
auto = 4
{feeds}
"""


def config_body(urls: list[str], smtp_port: int, **settings: str) -> str:
    """CONFIG for a SQLite store that never sends on schedule, unless told otherwise."""
    values = {
        "store_url": "sqlite:///newsdesk.db",
        "schedule": "0 7 * * mon",
        "send": "false",
        "stop_timeout": "5s",
        **settings,
    }
    return CONFIG.format(smtp_port=smtp_port, feeds="".join(feed_block(u) for u in urls), **values)


def feed_block(url: str) -> str:
    return f'\n[[feed]]\nurl = "{url}"\n'


def at(when: datetime) -> str:
    """A six-field cron (seconds first) that fires once, at ``when`` (UTC)."""
    return f"{when.second} {when.minute} {when.hour} {when.day} {when.month} *"


def env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("NEWSDESK_")}


def newsdesk(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "newsdesk", "--config", str(config), *args],
        capture_output=True,
        text=True,
        env=env(),
        timeout=120,
        check=False,
    )


class Daemon:
    """A `newsdesk run` subprocess whose log goes to a file the test can read."""

    def __init__(self, config: Path, log: Path) -> None:
        self.log = log
        self._out = open(log, "a", encoding="utf-8")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "newsdesk", "--config", str(config), "run"],
            stdout=self._out,
            stderr=self._out,
            text=True,
            env=env(),
            cwd=config.parent,
        )

    def text(self) -> str:
        return self.log.read_text(encoding="utf-8")

    def signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def stop(self, timeout: float = 60) -> tuple[int, float]:
        """SIGTERM; the exit code and how long the exit took."""
        started = time.monotonic()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(timeout=timeout)
        finally:
            if self.process.poll() is None:
                self.process.kill()
            self._out.close()
        return code, time.monotonic() - started


def wait_for(what: str, condition: Callable[[], bool], daemon: Daemon, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        if daemon.process.poll() is not None:
            raise AssertionError(f"the daemon exited while waiting for {what}:\n{daemon.text()}")
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}; the daemon said:\n{daemon.text()}")


@pytest.fixture
def feeds() -> Iterator[FeedServer]:
    with FeedServer() as server:
        for sample in SAMPLES.iterdir():
            server.route(f"/{sample.name}", lambda request, path=sample: file_reply(path, request))
        yield server


@pytest.fixture
def smtp() -> Iterator[SMTPServer]:
    # Each message takes the server a few milliseconds, so a SIGTERM lands mid-send.
    with SMTPServer(on_message=lambda _message: time.sleep(0.01)) as server:
        yield server


def entry_count(config: Path) -> int:
    store = opened(config)
    try:
        return store.entries.count()
    finally:
        store.close()


def opened(config: Path) -> Store:
    return open_store(load_config(config, {}).store_url)


def test_the_daemon_fetches_clusters_and_sends_once_through_sigterms(
    tmp_path: Path, feeds: FeedServer, smtp: SMTPServer, store_url: str
) -> None:
    # One feed answers its first request only after 30 s: the first round is in flight
    # when SIGTERM comes, and that feed is abandoned and fetched by the next start.
    slow_requests: list[Request] = []
    slow_path = SAMPLES / "market-desk.json"

    def slow(request: Request) -> Reply:
        slow_requests.append(request)
        reply = file_reply(slow_path, request)
        if len(slow_requests) == 1:
            reply.delay = 30.0
        return reply

    feeds.route("/slow.json", slow)
    urls = [feeds.url("/techwire.xml"), feeds.url("/ki-nachrichten.atom"), feeds.url("/slow.json")]

    def write(*, send: bool, schedule: str = "0 7 * * mon") -> Path:
        body = config_body(
            urls, smtp.port, store_url=store_url, schedule=schedule, send=str(send).lower()
        )
        return write_config(tmp_path, body)

    config = write(send=False)

    # 1. SIGTERM during a fetch round: the slow feed is abandoned, exit 0 in time.
    first = Daemon(config, tmp_path / "first.log")
    wait_for("the slow feed to be asked", lambda: len(slow_requests) == 1, first)
    wait_for("the fast feeds to be stored", lambda: entry_count(config) >= 6, first)
    code, took = first.stop()
    log = first.text()
    assert code == 0, log
    assert took < 5 + 5, f"took {took:.1f} s to stop; stop_timeout is 5 s"
    assert "stopping on SIGTERM" in log and "1 feeds left for the next round" in log
    before = entry_count(config)

    # 2. Subscribers, and a schedule that fires a few seconds from now.
    store = opened(config)
    readers = [f"reader{n:03}@example.org" for n in range(300)]
    for address in readers:
        store.subscribers.add(address, now=datetime.now(UTC))
    store.close()
    send_at = datetime.now(UTC) + timedelta(seconds=4)
    config = write(send=True, schedule=at(send_at))

    second = Daemon(config, tmp_path / "second.log")
    # SIGTERM from the server as it accepts the 60th message: mid-send, however busy
    # the machine is.
    accepted = 0

    def sigterm_at_60(_message: object) -> None:
        nonlocal accepted
        accepted += 1
        if accepted == 60:
            second.signal(signal.SIGTERM)
        time.sleep(0.01)

    smtp.on_message = sigterm_at_60
    wait_for("the abandoned feed to be fetched", lambda: len(slow_requests) >= 2, second)
    wait_for("the send to be under way", lambda: len(smtp.messages) >= 60, second, timeout=90)
    code, took = second.stop()
    log = second.text()
    assert code == 0, log
    assert "stopping on SIGTERM" in log
    got = len(smtp.messages)
    assert got < len(readers), "the send finished before SIGTERM; slow the server down"
    store = opened(config)
    with store.engine.connect() as conn:
        states = [r.state for r in conn.execute(deliveries.select())]
    assert states.count("sent") == got  # the message in flight was finished, not lost
    assert "sending" not in states and "unknown" not in states
    assert entry_count(config) > before  # the abandoned feed's entries arrived
    issue = store.issues.last()
    assert issue is not None and issue.status == "sending"
    store.close()

    # 3. Started again within send_deadline, it finishes the same issue.
    third = Daemon(config, tmp_path / "third.log")
    wait_for("every reader to get the issue", lambda: len(smtp.messages) >= 300, third, 120)
    wait_for("the issue to be marked sent", lambda: _issue_sent(config), third)
    code, _ = third.stop()
    assert code == 0, third.text()

    counts = smtp.message_ids()
    assert len(counts) == 300 and set(counts.values()) == {1}, "someone got it twice"
    assert sorted(rcpt for m in smtp.messages for rcpt in m.rcpt_tos) == readers
    store = opened(config)
    assert store.stories.counts()["pending_entries"] == 0  # every entry is in a story
    jobs = {j.name: j for j in store.daemons.jobs()}
    assert jobs["send"].outcome in ("ok", "skipped") and jobs["fetch"].outcome == "ok"
    store.close()


def _issue_sent(config: Path) -> bool:
    store = opened(config)
    try:
        last = store.issues.last()
        return last is not None and last.status == "sent"
    finally:
        store.close()


def test_a_second_daemon_on_the_same_store_refuses_to_start(
    tmp_path: Path, feeds: FeedServer, smtp: SMTPServer
) -> None:
    config = write_config(tmp_path, config_body([feeds.url("/techwire.xml")], smtp.port))
    first = Daemon(config, tmp_path / "first.log")
    wait_for("the first fetch", lambda: entry_count(config) > 0, first)
    second = newsdesk(config, "run")
    assert second.returncode == 1
    assert "another newsdesk daemon runs on this store" in second.stderr
    assert f"pid {first.process.pid}" in second.stderr
    assert newsdesk(config, "status", "--check").returncode == 0
    code, _ = first.stop()
    assert code == 0
    check = newsdesk(config, "status", "--check")
    assert check.returncode == 1 and check.stdout.startswith("unhealthy: ")


def test_a_changed_config_is_reloaded_and_a_broken_one_rejected(
    tmp_path: Path, feeds: FeedServer, smtp: SMTPServer
) -> None:
    def write(urls: list[str], extra: str = "") -> Path:
        return write_config(tmp_path, config_body(urls, smtp.port) + extra)

    techwire, atom = feeds.url("/techwire.xml"), feeds.url("/ki-nachrichten.atom")
    config = write([techwire])
    daemon = Daemon(config, tmp_path / "daemon.log")
    try:
        wait_for("the first feed", lambda: bool(feeds.requests_to("/techwire.xml")), daemon)
        # A valid change: the new feed is fetched without a restart.
        write([techwire, atom])
        wait_for("the reload", lambda: "config reloaded" in daemon.text(), daemon)
        wait_for("the new feed", lambda: bool(feeds.requests_to("/ki-nachrichten.atom")), daemon)
        # A broken change: rejected with the key that is wrong; the daemon keeps going.
        write([techwire, atom], extra='\n[daemon.surprise]\nkey = "value"\n')
        wait_for("the rejection", lambda: "config reload rejected" in daemon.text(), daemon)
        assert "daemon.surprise: unknown key" in daemon.text()
        # SIGHUP reloads too (the file is fixed again first).
        write([techwire])
        wait_for("the second reload", lambda: daemon.text().count("config reloaded") >= 2, daemon)
        daemon.signal(signal.SIGHUP)
        wait_for("the SIGHUP reload", lambda: daemon.text().count("config reloaded") >= 3, daemon)
        assert daemon.process.poll() is None
    finally:
        code, _ = daemon.stop()
    assert code == 0, daemon.text()
    store = opened(config)
    listed = {f.url for f in store.feeds.listed()}
    store.close()
    assert listed == {techwire}  # the last valid config's feeds


def test_run_once_runs_every_due_job_and_records_it(tmp_path: Path, feeds: FeedServer) -> None:
    config = write_config(tmp_path, config_body([feeds.url("/techwire.xml")], smtp_port=1))
    once = newsdesk(config, "run", "--once")
    assert once.returncode == 0, once.stderr
    assert once.stdout.startswith("fetch: 1 feeds: 1 ok")
    assert "maintenance: " in once.stdout
    again = newsdesk(config, "run", "--once")
    assert "maintenance" not in again.stdout  # once a day
    status = newsdesk(config, "status")
    assert "fetch        ok" in status.stdout


def test_the_daemon_keeps_the_clusterings_cache_from_one_fetch_round_to_the_next(
    tmp_path: Path, feeds: FeedServer
) -> None:
    from newsdesk.scheduler.daemon import Daemon as Service

    body = config_body([feeds.url("/techwire.xml")], smtp_port=1)
    config = load_config(write_config(tmp_path, body))
    store = jobs.open_app_store(config)
    try:
        service = Service(config, store)
        assert service._fetch().message.startswith("1 feeds: 1 ok")
        session = service.cluster_session
        cached = set(session.clusterer.stories)
        assert cached  # the round's stories, still in memory
        # The next round, with a feed added (as a reload adds it), goes on from there.
        service.config = load_config(
            write_config(tmp_path, body + feed_block(feeds.url("/ki-nachrichten.atom")))
        )
        store.feeds.sync_config(service.config.feeds, jobs.utcnow())
        assert service._fetch().message.startswith("1 feeds: 1 ok")  # the new one is due
        assert cached <= set(session.clusterer.stories)
        assert len(session.clusterer.stories) > len(cached)
    finally:
        store.close()

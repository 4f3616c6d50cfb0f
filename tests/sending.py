"""Sending in the tests: a config for the scripted SMTP server (tests/smtpserver.py), a
store with the stream ingested, and the ledger read back.

A helper module, not a test module: tests/test_delivery.py and tests/test_health.py both
use it (through conftest's ``setup`` fixture), and tests/test_scale_out.py runs
``newsdesk`` the way the fault-injection test does.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

from conftest import write_config
from newsdesk.config import Config, load_config
from newsdesk.store import Store, open_store
from newsdesk.store.schema import deliveries
from smtpserver import SMTPServer
from test_stories import NOW, STREAM, ingest

__all__ = ["CONFIG", "NOW", "STREAM", "Clock", "Setup", "ingest", "ledger", "newsdesk", "subscribe"]

CONFIG = """
[newsletter]
name = "KI-Übersicht"
language = "de"
sender = "KI-Übersicht <briefing@example.org>"
base_url = "https://briefing.example.org"

[store]
url = "{url}"

[mail]
transport = "smtp"
retries = 2
retry_backoff = "0s"
max_failures = {max_failures}
unknown = "{unknown}"
greeting = true

[mail.smtp]
host = "127.0.0.1"
port = {port}
security = "{security}"
timeout = "1s"
{extra}

[[section]]
id = "lead"
title = "Top-Story"
kind = "featured"
auto = 1

[[section]]
id = "news"
title = "KI und Tech News"
kind = "list"
auto = 3
"""


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        self.now += timedelta(milliseconds=1)
        return self.now


class Setup:
    """``setup(store_url, server)``: the config of a send to ``server`` and its store,
    the stream ingested.

    Every store it opened is closed by ``close()``, which the ``setup`` fixture calls
    when the test ends, failed or not. A store left open by a failing test is closed by
    the garbage collector during some later test instead, and psycopg's ResourceWarning
    for its connections (an error in this suite) then fails that innocent test.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._stores: list[Store] = []

    def __call__(
        self,
        store_url: str,
        server: SMTPServer,
        *,
        max_failures: int = 100,
        unknown: str = "resend",
        security: str = "none",
        extra: str = "",
    ) -> tuple[Config, Store]:
        body = CONFIG.format(
            url=store_url,
            port=server.port,
            max_failures=max_failures,
            unknown=unknown,
            security=security,
            extra=extra,
        )
        config = load_config(write_config(self.directory, body), {})
        store = open_store(config.store_url)
        self._stores.append(store)
        ingest(store, STREAM)
        return config, store

    def close(self) -> None:
        while self._stores:
            self._stores.pop().close()


def subscribe(store: Store, *addresses: str) -> None:
    for address in addresses:
        store.subscribers.add(address, name=address.split("@")[0].title(), now=NOW)


def ledger(store: Store) -> dict[str, str]:
    """Recipient -> delivery state of the issue."""
    with store.engine.connect() as conn:
        rows = conn.execute(deliveries.select()).all()
    by_id = {s.id: s.email for s in store.subscribers.listed()}
    return {by_id[r.subscriber_id]: r.state for r in rows}


def newsdesk(config: Path, *args: str, output: int = subprocess.DEVNULL) -> subprocess.Popen[str]:
    """``newsdesk --config config args`` in a process of its own, without the caller's
    ``NEWSDESK_*`` environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSDESK_")}
    return subprocess.Popen(
        [sys.executable, "-m", "newsdesk", "--config", str(config), *args],
        stdout=output,
        stderr=output,
        text=True,
        env=env,
    )

"""`newsdesk serve` over real HTTP: one-click unsubscribe (RFC 8058) and the archive.

One real server (uvicorn, in a child process, as the operator starts it) serves a real
SQLite store; the tests read the store directly to see what a request changed.
"""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from conftest import NOW, write_config
from newsdesk.store import Store, open_store
from newsdesk.tokens import SigningKey, new_key_line, parse_keys, unsubscribe_token

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src https: data:; form-action 'self'"
REMOVED_KEY = parse_keys(new_key_line("k0"), "test")[0]
"""A key that once signed links and has been dropped from the keys file since."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def start_server(config: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "newsdesk", "--config", str(config), "serve"]
    with log.open("wb") as out:
        server = subprocess.Popen([*command, "--port", str(port)], stdout=out, stderr=out)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"newsdesk serve exited: {log.read_text()}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return server
        except httpx.TransportError:
            time.sleep(0.1)
    server.kill()
    raise AssertionError(f"newsdesk serve did not answer in 30 s: {log.read_text()}")


@dataclass
class Site:
    url: str
    store: Store
    keys: tuple[SigningKey, ...]
    """The keys file: the signing key first, then the one it replaced."""

    def token(self, email: str, key: SigningKey | None = None) -> str:
        subscriber = self.store.subscribers.get(email)
        assert subscriber is not None
        return unsubscribe_token(subscriber.id, key or self.keys[0])

    def status(self, email: str) -> str:
        subscriber = self.store.subscribers.get(email)
        assert subscriber is not None
        return subscriber.status


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    directory = tmp_path_factory.mktemp("site")
    config = write_config(
        directory,
        '[newsletter]\nname = "KI-Briefing"\nlanguage = "en"\n'
        '[mail]\nsigning_keys_file = "newsdesk.keys"\n'
        '[digest]\narchive = "archive"\n',
    )
    # Rotated once: k2 signs now, k1 still verifies the links of older issues, k0 is gone.
    keys = "\n".join(new_key_line(k) for k in ("k2", "k1"))
    (directory / "newsdesk.keys").write_text(keys, encoding="utf-8")
    archive = directory / "archive"
    archive.mkdir()
    (archive / "index.html").write_text("<h1>Past issues</h1>", encoding="utf-8")
    (archive / "2026-11-23T07-00-01-00.html").write_text("<h1>Issue</h1>", encoding="utf-8")
    (archive / "feed.atom").write_text(
        '<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"/>', encoding="utf-8"
    )
    store = open_store(f"sqlite:///{directory / 'newsdesk.db'}")
    for name in ("alice", "bob", "carl", "dora", "emil", "fay", "gus", "hana", "ivo"):
        store.subscribers.add(f"{name}@example.org", now=NOW)
    store.subscribers.add("jonas@example.de", language="de", now=NOW)
    port = free_port()
    server = start_server(config, port, directory / "serve.log")
    try:
        yield Site(f"http://127.0.0.1:{port}", store, parse_keys(keys, "test"))
    finally:
        server.terminate()
        server.wait(timeout=20)
        store.close()


def test_the_link_in_a_message_shows_a_confirmation_and_unsubscribes_nobody(site: Site) -> None:
    page = httpx.get(f"{site.url}/unsubscribe/{site.token('alice@example.org')}")
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert "Unsubscribe from KI-Briefing" in page.text
    assert "a***@example.org" in page.text and "alice@" not in page.text
    assert '<form method="post">' in page.text
    assert page.headers["cache-control"] == "no-store"
    assert site.status("alice@example.org") == "active"


def test_one_click_post_unsubscribes_without_redirect_or_cookie(site: Site) -> None:
    url = f"{site.url}/unsubscribe/{site.token('bob@example.org')}"
    done = httpx.post(url, data={"List-Unsubscribe": "One-Click"})
    assert done.status_code == 200
    assert "You are unsubscribed" in done.text and "b***@example.org" in done.text
    assert "set-cookie" not in done.headers and "location" not in done.headers
    assert site.status("bob@example.org") == "unsubscribed"
    replay = httpx.post(url, data={"List-Unsubscribe": "One-Click"})
    assert replay.status_code == 200
    assert "You are already unsubscribed" in replay.text
    # The confirmation page, opened after the fact, says so and offers no button.
    page = httpx.get(url)
    assert "already unsubscribed" in page.text and "<form" not in page.text


def test_one_click_post_works_with_an_empty_or_multipart_body(site: Site) -> None:
    empty = httpx.post(f"{site.url}/unsubscribe/{site.token('carl@example.org')}", content=b"")
    assert (empty.status_code, site.status("carl@example.org")) == (200, "unsubscribed")
    # RFC 8058 prefers multipart/form-data; the body is not what authorises the request.
    multipart = httpx.post(
        f"{site.url}/unsubscribe/{site.token('dora@example.org')}",
        files={"List-Unsubscribe": (None, b"One-Click")},
    )
    assert (multipart.status_code, site.status("dora@example.org")) == (200, "unsubscribed")


def test_the_button_on_the_confirmation_page_unsubscribes(site: Site) -> None:
    url = f"{site.url}/unsubscribe/{site.token('emil@example.org')}"
    page = httpx.get(url).text
    # What a browser does with the page's form: no action, so the fields go to the same URL.
    form = re.search(r'<form method="post">(.*?)</form>', page, re.DOTALL)
    assert form is not None and "action=" not in form.group(0)
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]+)">', form[1]))
    done = httpx.post(url, data=fields)
    assert done.status_code == 200
    assert site.status("emil@example.org") == "unsubscribed"


def forgeries(site: Site) -> dict[str, str]:
    key_id, subscriber_id, mac = site.token("fay@example.org").split(".")
    gus = site.store.subscribers.get("gus@example.org")
    assert gus is not None
    flipped = ("A" if mac[0] != "A" else "B") + mac[1:]
    return {
        "changed mac": f"{key_id}.{subscriber_id}.{flipped}",
        "changed subscriber": f"{key_id}.{gus.id}.{mac}",
        "unknown key id": f"k9.{subscriber_id}.{mac}",
        "removed key": unsubscribe_token(int(subscriber_id), REMOVED_KEY),
        "not a token": "fay@example.org",
        "unknown subscriber": unsubscribe_token(99_999, site.keys[0]),
    }


@pytest.mark.parametrize(
    "forgery",
    [
        "changed mac",
        "changed subscriber",
        "unknown key id",
        "removed key",
        "not a token",
        "unknown subscriber",
    ],
)
def test_a_forged_or_retired_link_is_not_found_and_unsubscribes_nobody(
    site: Site, forgery: str
) -> None:
    token = forgeries(site)[forgery]
    for method in ("GET", "POST"):
        page = httpx.request(method, f"{site.url}/unsubscribe/{token}")
        assert page.status_code == 404
        assert "This link is not valid" in page.text
        assert "fay" not in page.text and "gus" not in page.text and "k9" not in page.text
    assert (site.status("fay@example.org"), site.status("gus@example.org")) == ("active", "active")


def test_a_link_signed_with_the_previous_key_still_works(site: Site) -> None:
    url = f"{site.url}/unsubscribe/{site.token('hana@example.org', site.keys[1])}"
    assert httpx.get(url).status_code == 200
    assert httpx.post(url).status_code == 200
    assert site.status("hana@example.org") == "unsubscribed"


def test_the_page_speaks_the_subscribers_language(site: Site) -> None:
    url = f"{site.url}/unsubscribe/{site.token('jonas@example.de')}"
    page = httpx.get(url)
    assert '<html lang="de">' in page.text and "Von KI-Briefing abmelden" in page.text
    assert "Du bist abgemeldet" in httpx.post(url).text


def test_the_preview_link_unsubscribes_nobody(site: Site) -> None:
    for method in ("GET", "POST"):
        page = httpx.request(method, f"{site.url}/unsubscribe/preview")
        assert page.status_code == 200
        assert "unsubscribes nobody" in page.text
    assert site.store.subscribers.count_by_status()["active"] >= 1


@pytest.mark.parametrize(
    ("path", "content_type", "text"),
    [
        ("/archive/", "text/html; charset=utf-8", "Past issues"),
        ("/archive/2026-11-23T07-00-01-00.html", "text/html; charset=utf-8", "Issue"),
        ("/archive/feed.atom", "application/atom+xml; charset=utf-8", "<feed"),
        ("/healthz", "text/plain; charset=utf-8", "ok"),
    ],
)
def test_the_archive_is_served_with_the_right_content_types(
    site: Site, path: str, content_type: str, text: str
) -> None:
    page = httpx.get(f"{site.url}{path}")
    assert page.status_code == 200
    assert page.headers["content-type"] == content_type
    assert text in page.text


def test_the_home_page_leads_to_the_archive_and_nothing_outside_it_is_served(
    site: Site,
) -> None:
    home = httpx.get(f"{site.url}/")
    assert (home.status_code, home.headers["location"]) == (302, "/archive/")
    assert httpx.get(f"{site.url}/archive/missing.html").status_code == 404
    escape = httpx.get(f"{site.url}/archive/%2e%2e/newsdesk.keys")
    assert escape.status_code == 404 and "k2" not in escape.text


@pytest.mark.parametrize(
    "path", ["/healthz", "/archive/feed.atom", "/unsubscribe/preview", "/unsubscribe/x", "/nope"]
)
def test_every_response_carries_the_security_headers(site: Site, path: str) -> None:
    headers = httpx.get(f"{site.url}{path}").headers
    assert headers["content-security-policy"] == CSP
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "no-referrer"


def test_serve_listens_on_localhost_only_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    config = write_config(tmp_path, '[mail]\nsigning_keys_file = "keys"\n')
    port = free_port()
    server = start_server(config, port, tmp_path / "serve.log")
    try:
        assert [a for a in _addresses() if _answers(a, port)] == ["127.0.0.1"]
        assert (tmp_path / "keys").exists()  # created on first use, like a send would
    finally:
        server.send_signal(signal.SIGTERM)
        returncode = server.wait(timeout=20)
    log = (tmp_path / "serve.log").read_text()
    assert returncode in (0, -signal.SIGTERM), log
    assert log.startswith(f"serving newsdesk digest on http://127.0.0.1:{port}/")
    assert "Traceback" not in log


def _answers(address: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(2)
        return s.connect_ex((address, port)) == 0


def _addresses() -> list[str]:
    """127.0.0.1 and this machine's other IPv4 address (if it has one)."""
    addresses = ["127.0.0.1"]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # no packet is sent: this only picks a route
            own = probe.getsockname()[0]
        except OSError:
            return addresses
    return addresses + ([own] if own not in addresses else [])

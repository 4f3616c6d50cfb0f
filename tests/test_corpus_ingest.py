"""Acceptance: every document of the shared feed corpus, served over HTTP from 127.0.0.1
(with its ``Header:`` lines as response headers) and fetched by the real code path.

Each document is either stored or recorded on its feed row as a clear one-line error;
nothing crashes the round.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from conftest import write_config
from feedserver import FeedServer
from newsdesk import jobs
from newsdesk.config import load_config
from newsdesk.models import FeedSpec

pytestmark = pytest.mark.corpus

DATA_SUFFIXES = {".xml", ".rss", ".atom", ".rdf", ".json", ".html"}
HEADER_LINE = re.compile(rb"^Header:\s*([\w-]+):\s*(.*?)\s*$", re.MULTILINE)


def corpus_documents(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.suffix.lower() in DATA_SUFFIXES and p.is_file())


def served_headers(path: Path) -> dict[str, str]:
    """The simulated response headers a feedparser test document asks for."""
    head = path.read_bytes()[:2048]
    if not head.lstrip().startswith(b"<!--"):
        return {}
    comment = head.split(b"-->", 1)[0]
    return {
        name.decode().title(): value.decode("latin-1")
        for name, value in HEADER_LINE.findall(comment)
    }


@pytest.fixture(scope="module")
def ingested(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest):
    corpus_root: Path = request.getfixturevalue("corpus") / "feeds"
    documents = corpus_documents(corpus_root)
    relative = [p.relative_to(corpus_root).as_posix() for p in documents]
    headers = {
        rel: h for rel, p in zip(relative, documents, strict=True) if (h := served_headers(p))
    }
    tmp = tmp_path_factory.mktemp("corpus")
    config = load_config(
        write_config(
            tmp, "[fetch]\nallow_private_networks = true\nconcurrency = 64\nper_host = 64\n"
        ),
        {},
    )
    store = jobs.open_app_store(config)
    with FeedServer(directory=corpus_root, file_headers=headers) as server:
        now = jobs.utcnow()
        for rel in relative:
            store.feeds.add(FeedSpec(url=server.url("/" + rel)), source="cli", now=now)
        summary = jobs.fetch_feeds(config, store, store.feeds.fetchable())
        prefix = server.url("/")
    feeds = {f.url.removeprefix(prefix): f for f in store.feeds.listed()}
    yield {
        "documents": relative,
        "headers": headers,
        "summary": summary,
        "feeds": feeds,
        "store": store,
    }
    store.close()


def test_every_document_is_stored_or_rejected_with_a_reason(ingested) -> None:
    summary, feeds = ingested["summary"], ingested["feeds"]
    total = len(ingested["documents"])
    assert total >= 3000, "the corpus should hold ~3,294 documents"
    assert summary.feeds == total
    assert summary.ok + summary.failed == total
    assert summary.not_modified == 0
    assert len(feeds) == total
    for rel, feed in feeds.items():
        if feed.error_count:
            reason = feed.last_error or ""
            assert reason and "\n" not in reason and len(reason) < 200, (rel, reason)
            assert "Traceback" not in reason
        else:
            assert feed.last_success_at is not None, rel


def test_most_documents_are_feeds_and_their_entries_are_stored(ingested) -> None:
    summary = ingested["summary"]
    # Measured: see the module docstring of parse.py for the policy. The gofeed golden
    # *.json files (550) are not feeds and must be rejected, so ~83% is the ceiling.
    assert summary.ok >= 2600
    assert summary.new_entries >= 5000


def test_things_that_are_not_feeds_are_rejected(ingested) -> None:
    feeds = ingested["feeds"]
    for rel in (
        "rss-parser/test/input/unrecognized.rss",
        "gofeed/testdata/parser/atom/atom03_feed_title.json",
    ):
        assert feeds[rel].error_count == 1, rel
        assert feeds[rel].last_error and feeds[rel].last_error.startswith("not a feed"), feeds[
            rel
        ].last_error


def test_real_world_feeds_keep_all_their_entries(ingested) -> None:
    store, feeds = ingested["store"], ingested["feeds"]
    expected_counts: dict[str, int] = {
        "rss-parser/test/input/heise.atom": 15,
        "miniflux/internal/reader/parser/testdata/large_rss.xml": 25,
        "feedjira/spec/sample_feeds/TechCrunch.xml": 20,
    }
    for rel, expected in expected_counts.items():
        feed = feeds[rel]
        assert feed.error_count == 0, (rel, feed.last_error)
        stored = store.entries.count(feed.id)
        assert stored == expected, rel


def test_http_headers_of_the_corpus_reach_the_parser(ingested) -> None:
    """Content-Location from the server is the base of relative links."""
    store, feeds, headers = ingested["store"], ingested["feeds"], ingested["headers"]
    with_location = [rel for rel, h in headers.items() if "Content-Location" in h and rel in feeds]
    assert with_location
    resolved = 0
    for rel in with_location:
        rows = store.entries.for_feed(feeds[rel].id)
        base = headers[rel]["Content-Location"]
        if any(r["url"] and r["url"].startswith(base.rsplit("/", 1)[0]) for r in rows):
            resolved += 1
    assert resolved >= 5

"""Stories in the store: clustering batches, ranking, the curator's corrections, and the
``stories``/``story`` commands. Store tests run on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import math
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, true, update
from sqlalchemy.engine import Connection

from conftest import write_config
from newsdesk import jobs
from newsdesk.cluster import ClusterParams, Item, cluster_all
from newsdesk.clustering import ClusterSession, cluster_pending, url_key
from newsdesk.errors import UsageError
from newsdesk.identity import canonical_url, content_hash
from newsdesk.models import FeedSpec, ParsedEntry
from newsdesk.signals import MAX_TERM, signals_of
from newsdesk.store import Store, open_store, schema
from newsdesk.store.schema import entries, feeds, stories, story_entries, story_terms, term_counts
from newsdesk.store.stories import StoryBatch
from test_cli import run

T0 = datetime(2026, 11, 16, 8, 0, tzinfo=UTC)
NOW = T0 + timedelta(days=2)
PARAMS = ClusterParams()

# (hours after T0, outlet host, headline): five events, several outlets each.
STREAM = [
    (0.0, "reuters.com", "Musk-led group makes $97.4 billion bid for OpenAI"),
    (0.5, "nytimes.com", "Elon Musk offers $97.4 billion for control of OpenAI"),
    (1.0, "heise.de", "Musk bietet 97,4 Milliarden Dollar für OpenAI"),
    (1.5, "bbc.co.uk", "Storm Bert floods towns across Wales"),
    (2.0, "cnbc.com", "OpenAI board weighs Musk's $97.4bn offer"),
    (2.5, "theguardian.com", "Storm Bert: Wales towns flooded as rivers burst banks"),
    (3.0, "spiegel.de", "Sturm Bert: Überschwemmungen in Wales"),
    (4.0, "reuters.com", "Nvidia quarterly revenue hits record $35.1 billion"),
    (4.5, "cnbc.com", "Nvidia beats estimates with $35.1bn revenue on AI chip demand"),
    (5.0, "handelsblatt.com", "Nvidia steigert Umsatz auf 35,1 Milliarden Dollar"),
    (6.0, "nytimes.com", "Altman rejects Musk's $97.4 billion OpenAI bid: not for sale"),
    (7.0, "bbc.co.uk", "Wales flooding: Storm Bert clean-up begins"),
    (8.0, "theverge.com", "Apple unveils iPad mini with A17 Pro chip"),
    (8.5, "engadget.com", "Apple's new iPad mini gets the A17 Pro chip"),
    (9.0, "heise.de", "Apple stellt iPad mini mit A17 Pro vor"),
    (30.0, "reuters.com", "Nvidia shares slip despite record $35.1 billion quarter"),
]


def add_feeds(store: Store, hosts: list[str], **spec: object) -> dict[str, int]:
    ids = {}
    for host in hosts:
        feed = store.feeds.add(
            FeedSpec(url=f"https://{host}/feed.xml", name=host, **spec),  # type: ignore[arg-type]
            source="cli",
            now=T0,
        )
        ids[host] = feed.id
    return ids


def entry(n: int, title: str, hours: float, host: str, summary: str = "") -> ParsedEntry:
    url = f"https://{host}/news/{n}"
    return ParsedEntry(
        key=f"guid:{n}",
        title=title,
        url=url,
        canonical_url=canonical_url(url),
        summary=summary,
        content="",
        author=None,
        published=T0 + timedelta(hours=hours),
        updated=None,
        lang=None,
        content_hash=content_hash(title, url, summary),
    )


def ingest(store: Store, rows: list[tuple[float, str, str]], start: int = 0) -> dict[int, int]:
    """Store ``rows`` as entries of their outlets' feeds; entry id -> row number."""
    feeds = {h: f.id for h in {r[1] for r in rows} if (f := _feed(store, h))}
    missing = sorted({r[1] for r in rows} - feeds.keys())
    feeds |= add_feeds(store, missing)
    numbering = {}
    for n, (hours, host, title) in enumerate(rows, start):
        (entry_id,) = store.entries.add_new(
            feeds[host], [entry(n, title, hours, host)], T0 + timedelta(hours=hours)
        )
        numbering[entry_id] = n
    return numbering


def _feed(store: Store, host: str) -> object | None:
    try:
        return store.feeds.get(f"https://{host}/feed.xml")
    except UsageError:
        return None


def partition(store: Store) -> set[frozenset[int]]:
    """The stories as sets of entry ids."""
    with store.engine.connect() as conn:
        rows = conn.execute(select(story_entries.c.story_id, story_entries.c.entry_id)).all()
    groups: dict[int, set[int]] = {}
    for story_id, entry_id in rows:
        groups.setdefault(story_id, set()).add(entry_id)
    return {frozenset(g) for g in groups.values()}


def check_invariants(store: Store) -> None:
    """What a crash or a race must never break."""
    with store.engine.connect() as conn:
        entry_count = conn.execute(select(func.count()).select_from(story_entries)).scalar_one()
        distinct = conn.execute(
            select(func.count(story_entries.c.entry_id.distinct()))
        ).scalar_one()
        assert entry_count == distinct
        live = conn.execute(
            select(stories.c.id, stories.c.size, stories.c.norm2).where(
                stories.c.merged_into.is_(None)
            )
        ).all()
        sizes = dict(
            conn.execute(
                select(story_entries.c.story_id, func.count()).group_by(story_entries.c.story_id)
            ).all()
        )
        norms = dict(
            conn.execute(
                select(
                    story_terms.c.story_id, func.sum(story_terms.c.weight * story_terms.c.weight)
                ).group_by(story_terms.c.story_id)
            ).all()
        )
        for story_id, size, norm2 in live:
            assert sizes.get(story_id, 0) == size, f"story {story_id}"
            assert math.isclose(norms.get(story_id, 0.0), norm2, rel_tol=1e-6), story_id
        # The flag the clustering finds pending entries by agrees with the memberships.
        flagged = conn.execute(
            select(func.count()).select_from(entries).where(entries.c.clustered == true())
        ).scalar_one()
        assert flagged == entry_count
        merged_with_members = conn.execute(
            select(func.count())
            .select_from(story_entries)
            .join(stories, stories.c.id == story_entries.c.story_id)
            .where(stories.c.merged_into.is_not(None))
        ).scalar_one()
        assert merged_with_members == 0
        # Every indexed term has a count row: the clustering reads no other's postings.
        assert uncounted_terms(conn) == set()


def uncounted_terms(conn: Connection) -> set[str]:
    """Terms of the index without a row in term_counts."""
    counted = select(term_counts.c.term).where(term_counts.c.term == story_terms.c.term)
    return set(conn.execute(select(story_terms.c.term).where(~counted.exists())).scalars())


@pytest.fixture
def store(store_url: str) -> Store:
    s = open_store(store_url)
    yield s  # type: ignore[misc]
    s.close()


def by_title(store: Store, needle: str) -> jobs.RankedStory:
    config = load_config_for(store)
    ranked = jobs.list_stories(config, store, now=NOW, since=T0 - timedelta(days=1), until=NOW)
    (match,) = [r for r in ranked if any(needle in m.title for m in r.members)]
    return match


def load_config_for(store: Store) -> jobs.Config:
    return jobs.Config(path=Path("newsdesk.toml"), store_url=str(store.engine.url))


# -- batches and the index ----------------------------------------------------------------


@pytest.mark.parametrize("kept", [False, True], ids=["cold", "session"])
@pytest.mark.parametrize("era_stories", [schema.ERA_STORIES, 2], ids=["one-era", "many-eras"])
def test_clustering_in_rounds_gives_the_same_stories_as_in_one_go(
    store: Store, era_stories: int, kept: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Round by round, as the daemon clusters after each fetch: a command starts a new
    # clusterer each round, which reloads what it needs from the index in the database;
    # the daemon keeps one session, whose cache goes on from the last round. With eras
    # of two stories, each round's window spans several eras of the term index.
    monkeypatch.setattr(schema, "ERA_STORIES", era_stories)
    session = ClusterSession() if kept else None
    numbering = {}
    for start in range(0, len(STREAM), 3):
        numbering |= ingest(store, STREAM[start : start + 3], start)
        cluster_pending(store, PARAMS, now=NOW, session=session)
    in_rounds = {frozenset(numbering[e] for e in g) for g in partition(store)}

    in_memory = cluster_all(
        [
            Item(
                n,
                T0 + timedelta(hours=h),
                signals_of(t, "", None),
                url_key(canonical_url(f"https://{host}/news/{n}")),
            )
            for n, (h, host, t) in enumerate(STREAM)
        ],
        PARAMS,
    )
    groups: dict[int, set[int]] = {}
    for a in in_memory:
        groups.setdefault(a.story_id, set()).add(a.entry_id)
    assert in_rounds == {frozenset(g) for g in groups.values()}
    check_invariants(store)


def test_a_kept_session_over_weeks_gives_what_cold_rounds_and_one_go_give(
    tmp_path: Path,
) -> None:
    """Four bursts of the stream, 120 hours apart (a burst lasts 30: more than the
    window and what the cache keeps behind it lie between). Each repeats the first
    headline word for word, which keeps the OpenAI story going; its other events carry
    a word of their own. The cache prunes stories between bursts, and a copy must still
    find its article's story."""
    words = ["Alpha", "Bravo", "Charlie", "Delta"]
    rows = sorted(
        (
            (
                hours + 120 * burst,
                host,
                title if "OpenAI" in title or "Musk" in title else f"{title}: {words[burst]}",
            )
            for burst in range(4)
            for hours, host, title in STREAM
        ),
        key=lambda r: r[0],
    )
    results = {}
    for how in ("one-go", "cold", "session"):
        store = open_store(f"sqlite:///{tmp_path / how}.db")
        try:
            session = ClusterSession() if how == "session" else None
            numbering: dict[int, int] = {}
            step = len(rows) if how == "one-go" else 3
            for start in range(0, len(rows), step):
                numbering |= ingest(store, rows[start : start + step], start)
                cluster_pending(store, PARAMS, now=NOW, session=session)
            check_invariants(store)
            with store.engine.connect() as conn:
                counts = set(conn.execute(select(term_counts.c.term, term_counts.c.entries)))
            results[how] = ({frozenset(numbering[e] for e in g) for g in partition(store)}, counts)
            if session:
                # What the window left behind has left memory, its words too: the cache
                # holds the last burst's stories and no word that none of them holds.
                cache = session.clusterer
                assert all(s.last > T0 + timedelta(hours=30) for s in cache.stories.values())
                assert all(cache.postings.get(term) for term in cache.df)
                assert "alpha" not in cache.df
        finally:
            store.close()
    assert results["cold"] == results["one-go"]
    assert results["session"] == results["one-go"]
    stories = results["one-go"][0]
    copies = {n for n, (hours, _, _) in enumerate(rows) if hours % 120 == 0.0}
    assert any(copies <= story for story in stories)  # every copy joined the first one's story


def test_a_session_given_other_parameters_starts_from_nothing(store: Store) -> None:
    # A reloaded config with other clustering parameters: what was cached was weighed
    # with the old ones.
    session = ClusterSession()
    ingest(store, STREAM[:6])
    cluster_pending(store, PARAMS, now=NOW, session=session)
    before = session.clusterer
    other = replace(PARAMS, threshold=0.3)
    ingest(store, STREAM[6:9], 6)
    cluster_pending(store, other, now=NOW, session=session)
    assert session.clusterer is not before
    assert session.clusterer.params == other
    check_invariants(store)


def test_a_kept_session_reloads_after_another_process_corrected_the_stories(
    store: Store, store_url: str
) -> None:
    """The daemon's cache holds only while nobody else changed the stories. A curator's
    split from the command line (another process: another store) moves their version
    on, and the next round reloads: the split holds, every centroid stays exact."""
    session = ClusterSession()
    ingest(store, STREAM[:11])
    cluster_pending(store, PARAMS, now=NOW, session=session)
    other = open_store(store_url)
    try:
        bid = by_title(other, "Musk")
        altman = next(m for m in bid.members if "Altman" in m.title)
        new_id = jobs.split_story(other, bid.id, altman.url or "", now=NOW)
    finally:
        other.close()
    more = [(11.0, "ft.com", "Altman rejects Musk's $97.4 billion bid for OpenAI again")]
    ingest(store, more, 50)
    cluster_pending(store, PARAMS, now=NOW, session=session)
    config = load_config_for(store)
    assert jobs.show_story(config, store, new_id, now=NOW).id == new_id
    assert jobs.show_story(config, store, bid.id, now=NOW).id == bid.id
    check_invariants(store)


def test_a_round_that_failed_leaves_the_session_to_reload(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A transaction that fails (here: its write) is rolled back, but the cache had
    placed its entries already; the session starts again from the store, and the next
    round gives what a round without the failure gives."""
    session = ClusterSession()
    numbering = ingest(store, STREAM[:6])
    cluster_pending(store, PARAMS, now=NOW, session=session)
    numbering |= ingest(store, STREAM[6:12], 6)
    write = StoryBatch.write

    def full_disk(self: StoryBatch, *args: object, **kwargs: object) -> dict[int, int]:
        raise OSError("disk full")

    monkeypatch.setattr(StoryBatch, "write", full_disk)
    with pytest.raises(OSError):
        cluster_pending(store, PARAMS, now=NOW, session=session)
    monkeypatch.setattr(StoryBatch, "write", write)
    cluster_pending(store, PARAMS, now=NOW, session=session)
    check_invariants(store)

    fresh = open_store(f"sqlite:///{tmp_path / 'fresh.db'}")
    try:
        fresh_numbering = ingest(fresh, STREAM[:6])
        cluster_pending(fresh, PARAMS, now=NOW)
        fresh_numbering |= ingest(fresh, STREAM[6:12], 6)
        cluster_pending(fresh, PARAMS, now=NOW)
        expected = {frozenset(fresh_numbering[e] for e in g) for g in partition(fresh)}
        with fresh.engine.connect() as a, store.engine.connect() as b:
            counts = select(term_counts.c.term, term_counts.c.entries)
            assert set(b.execute(counts)) == set(a.execute(counts))
    finally:
        fresh.close()
    assert {frozenset(numbering[e] for e in g) for g in partition(store)} == expected


def test_the_four_events_of_the_stream_are_four_stories(store: Store) -> None:
    numbering = ingest(store, STREAM)
    summary = cluster_pending(store, PARAMS, now=NOW)
    assert summary.entries == len(STREAM)
    found = {frozenset(numbering[e] for e in g) for g in partition(store)}
    expected = {
        frozenset({0, 1, 2, 4, 10}),  # the OpenAI bid, in English and German
        frozenset({3, 5, 6, 11}),  # Storm Bert
        frozenset({7, 8, 9, 15}),  # Nvidia's quarter
        frozenset({12, 13, 14}),  # the iPad mini
    }
    assert expected <= found
    assert len(found) == 4


def test_a_store_from_before_the_eras_finds_its_stories_after_the_upgrade(
    store_url: str,
) -> None:
    from alembic import command

    from newsdesk.store.engine import _alembic_config

    old = open_store(store_url)
    numbering = ingest(old, STREAM[:15])
    cluster_pending(old, PARAMS, now=NOW)
    with old.engine.connect() as conn:
        command.downgrade(_alembic_config(conn), "0006")
        # A story numbered in a later era, with a term, as an older version wrote it.
        far = schema.ERA_STORIES * 2 + 5
        conn.execute(
            stories.insert().values(
                id=far, title="far", first_published_at=T0, last_published_at=T0,
                created_at=T0, updated_at=T0,
            )
        )  # fmt: skip
        conn.exec_driver_sql(
            f"INSERT INTO story_terms (story_id, term, weight) VALUES ({far}, 'far', 1.0)"
        )
        conn.commit()
    old.close()
    store = open_store(store_url)
    try:
        with store.engine.begin() as conn:
            rows = conn.execute(select(story_terms.c.story_id, story_terms.c.era)).all()
            conn.execute(stories.delete().where(stories.c.id == far))
        assert (far, 2) in rows
        assert all(era == schema.era_of(story_id) for story_id, era in rows)
        # A new round reads the index through the new eras: the late Nvidia entry still
        # joins its story (published 25 hours after it, well inside the window).
        numbering |= ingest(store, STREAM[15:], 15)
        cluster_pending(store, PARAMS, now=NOW)
        found = {frozenset(numbering[e] for e in g) for g in partition(store)}
        assert frozenset({7, 8, 9, 15}) in found
        check_invariants(store)
        # ...and a downgrade keeps every row of the index.
        with store.engine.connect() as conn:
            index = set(conn.execute(select(story_terms.c.story_id, story_terms.c.term)))
            command.downgrade(_alembic_config(conn), "0006")
            conn.commit()
            assert set(conn.exec_driver_sql("SELECT story_id, term FROM story_terms")) == index
    finally:
        store.close()


def test_a_store_whose_counts_fell_short_before_the_upgrade_still_reads_those_terms(
    store_url: str,
) -> None:
    """Before revision 0008, retention and a split's rebuild could leave a term in a
    centroid with no count row; the upgrade gives it one at 0, so the clustering, which
    reads the postings of counted terms only, still finds the stories holding it."""
    from alembic import command

    from newsdesk.store.engine import _alembic_config

    old = open_store(store_url)
    numbering = ingest(old, STREAM[:15])
    cluster_pending(old, PARAMS, now=NOW)
    with old.engine.connect() as conn:
        command.downgrade(_alembic_config(conn), "0007")
        conn.execute(term_counts.delete().where(term_counts.c.term.in_(["nvidia", "#3.51e10"])))
        conn.commit()
    old.close()
    store = open_store(store_url)
    try:
        with store.engine.connect() as conn:
            assert uncounted_terms(conn) == set()
            counts = dict(conn.execute(select(term_counts.c.term, term_counts.c.entries)).all())
        assert counts["nvidia"] == counts["#3.51e10"] == 0
        numbering |= ingest(store, STREAM[15:], 15)
        cluster_pending(store, PARAMS, now=NOW)
        found = {frozenset(numbering[e] for e in g) for g in partition(store)}
        assert frozenset({7, 8, 9, 15}) in found
        check_invariants(store)  # the Nvidia story's weights were added to, not replaced
    finally:
        store.close()


def test_nothing_is_clustered_twice(store: Store) -> None:
    ingest(store, STREAM)
    assert cluster_pending(store, PARAMS, now=NOW).entries == len(STREAM)
    assert cluster_pending(store, PARAMS, now=NOW).entries == 0
    check_invariants(store)


def test_an_entry_with_a_word_longer_than_the_term_column_is_clustered(store: Store) -> None:
    # PostgreSQL enforces the index's VARCHAR(80): one such word used to fail the
    # clustering batch, and with it every later round.
    glued = "Donaudampfschifffahrtselektrizitaetenhauptbetriebswerkbauunterbeamtengesellschaft"
    rows = [(0.0, "heise.de", f"{glued} {glued * 2} meldet Rekord"), *STREAM[:3]]
    ingest(store, rows)
    assert cluster_pending(store, PARAMS, now=NOW).entries == len(rows)
    assert story_terms.c.term.type.length == term_counts.c.term.type.length == MAX_TERM
    with store.engine.connect() as conn:
        longest = conn.execute(select(func.max(func.length(term_counts.c.term)))).scalar_one()
    assert longest == MAX_TERM
    check_invariants(store)


def test_a_store_that_indexed_long_terms_before_the_upgrade_loses_them_and_copies_to_postgresql(
    sqlite_url: str, pg_url: str
) -> None:
    """Before revision 0009, SQLite kept terms longer than the term columns (a Chinese
    headline is one word to the tokenizer); the upgrade drops them, which no new entry
    can produce, and sums the norms afresh, so the store copies into PostgreSQL."""
    from alembic import command

    from newsdesk.store.engine import _alembic_config

    old = open_store(sqlite_url)
    ingest(old, STREAM[:3])
    cluster_pending(old, PARAMS, now=NOW)
    before = partition(old)
    long_terms = ["习" * (MAX_TERM + 10), f"~{'a' * 50}_{'b' * 50}"]
    with old.engine.connect() as conn:
        command.downgrade(_alembic_config(conn), "0008")
        story_id = conn.execute(select(func.min(stories.c.id))).scalar_one()
        conn.execute(
            story_terms.insert(),
            [
                {"story_id": story_id, "term": t, "weight": 0.5, "era": schema.era_of(story_id)}
                for t in long_terms
            ],
        )
        conn.execute(term_counts.insert(), [{"term": t, "entries": 1} for t in long_terms])
        conn.execute(
            update(stories).where(stories.c.id == story_id).values(norm2=stories.c.norm2 + 0.5)
        )
        conn.commit()
    old.close()
    store = open_store(sqlite_url)
    try:
        with store.engine.connect() as conn:
            longest = conn.execute(select(func.max(func.length(story_terms.c.term)))).scalar_one()
            counted = conn.execute(select(func.max(func.length(term_counts.c.term)))).scalar_one()
        assert longest <= MAX_TERM and counted <= MAX_TERM
        check_invariants(store)  # the norm lost the dropped weights
        store.copy_to(pg_url)
    finally:
        store.close()
    copy = open_store(pg_url)
    try:
        assert partition(copy) == before
        check_invariants(copy)
    finally:
        copy.close()


def test_a_copy_long_after_the_window_still_joins_its_article_and_keeps_the_index_exact(
    store: Store,
) -> None:
    ingest(store, STREAM)
    cluster_pending(store, PARAMS, now=NOW)
    # Ten days on (far outside the window), another outlet carries the same URL.
    bid_url = "https://reuters.com/news/0"
    late = store.feeds.add(FeedSpec(url="https://late.example/feed.xml"), source="cli", now=NOW)
    copy = replace(entry(0, "Looking back: the OpenAI bid", 240.0, "reuters.com"), key="guid:late")
    assert copy.url == bid_url
    store.entries.add_new(late.id, [copy], T0 + timedelta(hours=240))
    # ...and a batch of fresh news around it moves the window.
    ingest(store, [(240.0 + h, host, title) for h, host, title in STREAM[3:9]], 100)
    cluster_pending(store, PARAMS, now=NOW)
    story = by_title(store, "Looking back")
    assert any("97.4" in m.title for m in story.members)
    assert next(m for m in story.members if "Looking back" in m.title).signal == "same-url"
    check_invariants(store)


# -- ranking and "Read on" ------------------------------------------------------------------


def test_a_story_many_outlets_carry_ranks_first_and_lists_each_outlet_once(store: Store) -> None:
    ingest(store, STREAM[:12])
    # A second Reuters feed carrying the bid again adds an entry but not an outlet.
    store.feeds.add(
        FeedSpec(url="https://feeds.reuters.com/tech.xml", name="Reuters Tech"),
        source="cli",
        now=T0,
    )
    tech = store.feeds.get("https://feeds.reuters.com/tech.xml")
    store.entries.add_new(
        tech.id, [entry(99, "Musk makes $97.4 billion OpenAI bid", 0.2, "www.reuters.com")], T0
    )
    config = load_config_for(store)
    ranked = jobs.list_stories(config, store, now=NOW, since=T0, until=NOW)
    top = ranked[0]
    assert "97.4" in top.title or "97,4" in top.title
    outlets = [m.outlet for m in top.read_on]
    assert len(outlets) == len(set(outlets)) == 4  # Reuters, NYT (twice), heise, CNBC
    assert len(top.members) == 6
    assert [r.score for r in ranked] == sorted((r.score for r in ranked), reverse=True)


def test_the_headline_comes_from_the_feed_with_the_highest_priority(store: Store) -> None:
    add_feeds(store, ["nytimes.com"])
    store.feeds.add(
        FeedSpec(url="https://heise.de/feed.xml", name="heise", priority=10), source="cli", now=T0
    )
    ingest(store, STREAM[:3])
    story = by_title(store, "Musk")
    assert story.title == "Musk bietet 97,4 Milliarden Dollar für OpenAI"
    assert story.read_on[0].feed_name == "heise"


def test_stories_json_follows_the_documented_schema(store: Store) -> None:
    ingest(store, STREAM)
    config = load_config_for(store)
    (first, *_rest) = jobs.list_stories(config, store, now=NOW, since=T0, until=NOW, limit=1)
    data = jobs.story_json(first)
    assert set(data) == {
        "id",
        "title",
        "score",
        "first_seen",
        "last_seen",
        "section",
        "outlets",
        "size",
        "entries",
    }
    assert set(data["entries"][0]) == {"url", "title", "feed", "feed_url", "published", "lang"}
    assert datetime.fromisoformat(data["first_seen"]) <= datetime.fromisoformat(data["last_seen"])


def test_since_and_until_select_stories_by_their_entries_dates(store: Store) -> None:
    ingest(store, STREAM)
    config = load_config_for(store)
    late = jobs.list_stories(config, store, now=NOW, since=T0 + timedelta(hours=20), until=NOW)
    assert [len(r.members) for r in late] == [4]  # only Nvidia has an entry that late
    with pytest.raises(UsageError, match="--since"):
        jobs.list_stories(config, store, now=NOW, since=NOW, until=T0)


# -- the curator's corrections ---------------------------------------------------------------


def test_a_merge_by_the_curator_holds_and_the_old_id_leads_to_the_survivor(store: Store) -> None:
    ingest(store, STREAM[:12])
    config = load_config_for(store)
    storm = by_title(store, "Storm Bert").id
    nvidia = by_title(store, "Nvidia").id
    survivor = jobs.merge_stories(store, [storm, nvidia], now=NOW)
    assert survivor == storm
    shown = jobs.show_story(config, store, nvidia, now=NOW)
    assert shown.id == storm
    assert {m.signal for m in shown.members if "Nvidia" in m.title} == {"curator"}
    merged_members = {m.entry_id for m in shown.members}
    # Later entries keep clustering; the merged story stays one, whole.
    ingest(store, STREAM[12:], 12)
    cluster_pending(store, PARAMS, now=NOW)
    again = jobs.show_story(config, store, nvidia, now=NOW)
    assert again.id == storm
    assert merged_members <= {m.entry_id for m in again.members}
    check_invariants(store)


def test_a_split_by_the_curator_is_respected_by_later_clustering(store: Store) -> None:
    ingest(store, STREAM[:11])
    bid = by_title(store, "Musk")
    altman = next(m for m in bid.members if "Altman" in m.title)
    new_id = jobs.split_story(store, bid.id, altman.url or "", now=NOW)
    config = load_config_for(store)
    assert [m.title for m in jobs.show_story(config, store, new_id, now=NOW).members] == [
        altman.title
    ]
    # An entry close to both the bid and Altman's answer does not merge them back.
    more = [(11.0, "ft.com", "Altman rejects Musk's $97.4 billion bid for OpenAI again")]
    ingest(store, more, 50)
    cluster_pending(store, PARAMS, now=NOW)
    assert jobs.show_story(config, store, new_id, now=NOW).id == new_id
    assert jobs.show_story(config, store, bid.id, now=NOW).id == bid.id
    check_invariants(store)


def test_a_split_story_rebuilt_after_its_feed_changed_language_keeps_every_term_counted(
    store: Store,
) -> None:
    """The rebuild after a split derives the members' terms with the feeds' languages of
    today. An outlet that declares German since gives terms its entries were never counted
    with: each gets a count row (at 0), so a later entry holding one still reads the
    story's weight for it, and adds to it instead of writing over it."""
    ingest(store, STREAM[:11])
    bid = by_title(store, "Musk")
    altman = next(m for m in bid.members if "Altman" in m.title)
    with store.engine.begin() as conn:
        counted_before = set(conn.execute(select(term_counts.c.term)).scalars())
        conn.execute(
            update(feeds).where(feeds.c.url == "https://nytimes.com/feed.xml").values(lang="de")
        )
    new_id = jobs.split_story(store, bid.id, altman.url or "", now=NOW)
    more = [(11.0, "nytimes.com", "Altman rejects Musk's $97.4 billion bid for OpenAI again")]
    ingest(store, more, 50)
    cluster_pending(store, PARAMS, now=NOW)  # rebuilds the split stories first
    with store.engine.connect() as conn:
        rebuilt = set(
            conn.execute(
                select(story_terms.c.term).where(story_terms.c.story_id == new_id)
            ).scalars()
        )
        zero = set(
            conn.execute(select(term_counts.c.term).where(term_counts.c.entries == 0)).scalars()
        )
    # German rules read "$97.4 billion" and Altman's words otherwise: new terms...
    assert rebuilt - counted_before
    # ...each counted: at 0 where no entry holds it any more, higher where the new entry does.
    assert zero <= rebuilt - counted_before
    check_invariants(store)  # every indexed term counted; every centroid's norm exact
    config = load_config_for(store)
    assert "again" in jobs.show_story(config, store, new_id, now=NOW).members[-1].title


def test_corrections_name_what_is_wrong(store: Store) -> None:
    ingest(store, STREAM[:3])
    cluster_pending(store, PARAMS, now=NOW)
    story = by_title(store, "Musk")
    with pytest.raises(UsageError, match="no story 999"):
        jobs.merge_stories(store, [story.id, 999], now=NOW)
    with pytest.raises(UsageError, match="one story already"):
        jobs.merge_stories(store, [story.id, story.id], now=NOW)
    with pytest.raises(UsageError, match=re.escape("has no entry with URL https://example.org/x")):
        jobs.split_story(store, story.id, "https://example.org/x", now=NOW)


# -- crashes and races -------------------------------------------------------------------------

CLUSTER_CHILD = """
import sys
from datetime import datetime, UTC
from newsdesk.cluster import ClusterParams
from newsdesk.clustering import cluster_pending
from newsdesk.store import open_store
cluster_pending(open_store(sys.argv[1]), ClusterParams(), now=datetime.now(UTC))
"""


def many_entries(store: Store, count: int) -> None:
    hosts = [f"outlet{i}.example" for i in range(40)]
    feeds = add_feeds(store, hosts)
    for n in range(count):
        base_hours, host, title = STREAM[n % len(STREAM)]
        hours = base_hours + (n // len(STREAM)) * 0.5
        variant = f"{title} (update {n // len(STREAM)})"
        store.entries.add_new(feeds[hosts[n % 40]], [entry(n, variant, hours, hosts[n % 40])], T0)
        del host


def test_a_killed_clustering_process_loses_nothing_and_doubles_nothing(sqlite_url: str) -> None:
    store = open_store(sqlite_url)
    many_entries(store, 4000)
    child = subprocess.Popen([sys.executable, "-c", CLUSTER_CHILD, sqlite_url])
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with store.engine.connect() as conn:
            done = conn.execute(select(func.count()).select_from(story_entries)).scalar_one()
        if done >= 500 or child.poll() is not None:
            break
        time.sleep(0.05)
    child.send_signal(signal.SIGKILL)
    child.wait()
    check_invariants(store)  # whatever was committed is whole
    cluster_pending(store, PARAMS, now=NOW)
    with store.engine.connect() as conn:
        clustered = conn.execute(select(func.count()).select_from(story_entries)).scalar_one()
    assert clustered == 4000
    check_invariants(store)
    store.close()


def keyed_partition(store: Store) -> set[frozenset[str]]:
    """The stories as sets of entry keys: comparable between two stores."""
    with store.engine.connect() as conn:
        key_of = dict(conn.execute(select(entries.c.id, entries.c.key)).all())
    return {frozenset(key_of[e] for e in group) for group in partition(store)}


def test_two_processes_clustering_at_once_cluster_each_entry_once(
    store_url: str, tmp_path: Path
) -> None:
    store = open_store(store_url)
    many_entries(store, 2000)
    env = dict(os.environ)
    children = [
        subprocess.Popen([sys.executable, "-c", CLUSTER_CHILD, store_url], env=env)
        for _ in range(2)
    ]
    assert [c.wait(timeout=120) for c in children] == [0, 0]
    with store.engine.connect() as conn:
        clustered = conn.execute(select(func.count()).select_from(story_entries)).scalar_one()
    assert clustered == 2000
    check_invariants(store)
    # The same stories as one process alone makes: no event split in two by the race.
    alone = open_store(f"sqlite:///{tmp_path / 'alone.db'}")
    many_entries(alone, 2000)
    cluster_pending(alone, PARAMS, now=NOW)
    assert keyed_partition(store) == keyed_partition(alone)
    alone.close()
    store.close()


# -- the commands ---------------------------------------------------------------------------


def cli_setup(tmp_path: Path) -> Path:
    db = tmp_path / "newsdesk.db"
    config = write_config(tmp_path, f'[store]\nurl = "sqlite:///{db}"\n')
    store = open_store(f"sqlite:///{db}")
    ingest(store, STREAM)
    store.close()
    return config


def test_stories_prints_a_ranked_table_and_json(tmp_path: Path) -> None:
    config = cli_setup(tmp_path)
    table = run("--config", str(config), "stories", "--since", "2026-11-15", "--limit", "2")
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["ID", "SCORE", "OUTLETS", "LAST", "ENTRY", "TITLE"]
    assert len(lines) == 3
    as_json = run("--config", str(config), "stories", "--since", "2026-11-15", "--json")
    data = json.loads(as_json.stdout)
    assert len(data) == 4
    assert data[0]["score"] >= data[-1]["score"]


def test_story_show_says_why_each_entry_joined(tmp_path: Path) -> None:
    config = cli_setup(tmp_path)
    data = json.loads(
        run("--config", str(config), "stories", "--since", "2026-11-15", "--json").stdout
    )
    bid = next(s for s in data if "OpenAI" in s["title"])
    shown = run("--config", str(config), "story", "show", str(bid["id"]))
    assert shown.returncode == 0, shown.stderr
    assert "first" in shown.stdout and "same-event" in shown.stdout
    assert "heise.de" in shown.stdout


def test_story_merge_and_split_from_the_command_line(tmp_path: Path) -> None:
    config = cli_setup(tmp_path)
    data = json.loads(
        run("--config", str(config), "stories", "--since", "2026-11-15", "--json").stdout
    )
    a, b = data[0]["id"], data[1]["id"]
    merged = run("--config", str(config), "story", "merge", str(a), str(b))
    assert merged.returncode == 0, merged.stderr
    assert merged.stdout.strip() == f"merged into story {a}"
    url = data[1]["entries"][0]["url"]
    split = run("--config", str(config), "story", "split", str(a), url)
    assert split.returncode == 0, split.stderr
    assert split.stdout.startswith(f"moved {url} to new story ")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["stories", "--since", "last tuesday"], "--since: expected a duration"),
        (["story", "show", "999"], "no story 999"),
        (["story", "merge", "1"], "name at least two stories"),
    ],
)
def test_story_commands_fail_with_one_line_naming_the_problem(
    tmp_path: Path, args: list[str], message: str
) -> None:
    config = cli_setup(tmp_path)
    result = run("--config", str(config), *args)
    assert result.returncode == 1
    assert result.stderr.startswith("Error: ") and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1

"""Retention: old entries leave the store a story at a time, tombstones keep feeds from
bringing them back, and the clustering's index stays exact. On SQLite and PostgreSQL."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select, text, update

from conftest import write_config
from newsdesk import jobs
from newsdesk.cli import cli
from newsdesk.clustering import cluster_pending
from newsdesk.models import FeedCheck, FeedSpec, ParsedEntry
from newsdesk.semantic import MODEL, from_bytes, to_bytes
from newsdesk.signals import signals_of
from newsdesk.store import Store, open_store
from newsdesk.store.retention import PruneSummary, retention_cutoff
from newsdesk.store.schema import (
    cluster_state,
    entries,
    entry_keys,
    entry_tombstones,
    feeds,
    stories,
    story_entries,
    story_terms,
    term_counts,
)
from test_stories import NOW, PARAMS, STREAM, T0, check_invariants, entry, ingest

RETENTION = timedelta(days=180)
CUTOFF = NOW - RETENTION
AGO = -400 * 24.0
"""Hours from T0 back to the old news: far before the cutoff."""

# Old news (a year before STREAM), other events than STREAM's: an old headline equal to
# a new one would pull the new entry into the old story as the same article.
OLD_STREAM = [
    (AGO + 0.0, "reuters.com", "Volcano erupts on Reykjanes peninsula, Grindavik evacuated"),
    (AGO + 0.5, "bbc.co.uk", "Iceland volcano: Grindavik evacuated as lava reaches the town"),
    (AGO + 1.0, "spiegel.de", "Vulkanausbruch auf Island: Grindavik evakuiert"),
    (AGO + 2.0, "cnbc.com", "FAA grounds Boeing 737 Max 9 jets after Alaska Airlines blowout"),
    (AGO + 2.5, "nytimes.com", "Boeing 737 Max 9 grounded after Alaska Airlines door plug blowout"),
    (AGO + 3.0, "heise.de", "Boeing 737 Max 9: FAA verhängt Flugverbot nach Alaska-Vorfall"),
    (AGO + 4.0, "theverge.com", "Sony unveils the PlayStation 5 Pro at $699"),
    (AGO + 4.5, "engadget.com", "PlayStation 5 Pro costs $699, Sony confirms"),
]  # fmt: skip
NEW = 100
"""Row numbers (entry keys guid:N) of STREAM start here, after OLD_STREAM's."""


@pytest.fixture
def store(store_url: str) -> Store:
    s = open_store(store_url)
    yield s  # type: ignore[misc]
    s.close()


def old_and_new(store: Store) -> tuple[dict[int, int], dict[int, int]]:
    """Old and new news, clustered; (entry id -> row number) of each."""
    old = ingest(store, OLD_STREAM)
    new = ingest(store, STREAM, NEW)
    cluster_pending(store, PARAMS, now=NOW)
    return old, new


def row(numbering: dict[int, int], n: int) -> int:
    """The id of the entry stored from row ``n``."""
    (entry_id,) = [e for e, number in numbering.items() if number == n]
    return entry_id


def entry_ids(store: Store) -> set[int]:
    with store.engine.connect() as conn:
        return set(conn.execute(select(entries.c.id)).scalars())


def tombstones(store: Store) -> set[tuple[int, str]]:
    with store.engine.connect() as conn:
        rows = conn.execute(select(entry_tombstones.c.feed_id, entry_tombstones.c.key))
        return {(r.feed_id, r.key) for r in rows}


def keys_of(store: Store, ids: set[int]) -> set[tuple[int, str]]:
    with store.engine.connect() as conn:
        rows = conn.execute(
            select(entries.c.feed_id, entries.c.key).where(entries.c.id.in_(sorted(ids)))
        )
        return {(r.feed_id, r.key) for r in rows}


def story_of(store: Store, entry_id: int) -> int:
    with store.engine.connect() as conn:
        query = select(story_entries.c.story_id).where(story_entries.c.entry_id == entry_id)
        return int(conn.execute(query).scalar_one())


def story_ids(store: Store) -> set[int]:
    with store.engine.connect() as conn:
        return set(conn.execute(select(stories.c.id)).scalars())


def stories_of(store: Store, ids: set[int]) -> set[int]:
    return {story_of(store, e) for e in ids}


def term_count_table(store: Store) -> dict[str, int]:
    with store.engine.connect() as conn:
        return {r.term: r.entries for r in conn.execute(select(term_counts))}


def recount(store: Store) -> Counter[str]:
    """The term counts as they should be: each clustered entry's terms, read afresh."""
    query = (
        select(
            entries.c.title,
            entries.c.summary,
            entries.c.content,
            func.coalesce(entries.c.lang, feeds.c.lang).label("lang"),
        )
        .join(feeds, feeds.c.id == entries.c.feed_id)
        .join(story_entries, story_entries.c.entry_id == entries.c.id)
    )
    counts: Counter[str] = Counter()
    with store.engine.connect() as conn:
        for r in conn.execute(query):
            counts.update(signals_of(r.title, r.summary or r.content, r.lang).terms.keys())
    return counts


def check_pruned_store(store: Store) -> None:
    """What a prune, finished or stopped between batches, must leave true."""
    check_invariants(store)  # sizes, centroid norms, the clustered flag, no members in husks
    with store.engine.connect() as conn:
        dangling = conn.execute(
            text(
                "SELECT count(*) FROM story_entries se "
                "WHERE NOT EXISTS (SELECT 1 FROM entries e WHERE e.id = se.entry_id) "
                "OR NOT EXISTS (SELECT 1 FROM stories s WHERE s.id = se.story_id)"
            )
        ).scalar_one()
        assert dangling == 0
        orphan_keys = conn.execute(
            select(func.count())
            .select_from(entry_keys)
            .where(~select(entries.c.id).where(entries.c.id == entry_keys.c.entry_id).exists())
        ).scalar_one()
        assert orphan_keys == 0
        members_without_terms = conn.execute(
            text(
                "SELECT count(DISTINCT se.story_id) FROM story_entries se "
                "WHERE NOT EXISTS (SELECT 1 FROM story_terms t WHERE t.story_id = se.story_id)"
            )
        ).scalar_one()
        assert members_without_terms == 0
        lost_husks = conn.execute(
            text(
                "SELECT count(*) FROM stories h WHERE h.merged_into IS NOT NULL "
                "AND NOT EXISTS (SELECT 1 FROM stories s WHERE s.id = h.merged_into)"
            )
        ).scalar_one()
        assert lost_husks == 0
        # A key is an entry or a tombstone, never both.
        both = conn.execute(
            select(func.count())
            .select_from(entries)
            .join(
                entry_tombstones,
                (entry_tombstones.c.feed_id == entries.c.feed_id)
                & (entry_tombstones.c.key == entries.c.key),
            )
        ).scalar_one()
        assert both == 0
    assert term_count_table(store) == dict(recount(store))


# -- what goes and what stays ----------------------------------------------------------------


def test_an_old_story_goes_with_its_entries_and_leaves_a_tombstone_for_each(store: Store) -> None:
    old, new = old_and_new(store)
    old_stories = stories_of(store, set(old))
    old_keys = keys_of(store, set(old))

    summary = store.prune(CUTOFF, NOW)

    assert summary == PruneSummary(CUTOFF, len(old), len(old_stories), len(old))
    assert entry_ids(store) == set(new)
    assert story_ids(store).isdisjoint(old_stories)
    assert tombstones(store) == old_keys
    check_pruned_store(store)


def test_the_summary_is_one_line_for_the_log_and_status() -> None:
    summary = PruneSummary(CUTOFF, entries=1204, stories=311, tombstones=1204)
    assert summary.line() == (
        "retention: pruned 1,204 entries and 311 stories older than 2026-05-22"
    )
    assert replace(summary, dry_run=True).line().startswith("retention: would prune 1,204")


def test_a_story_with_one_recent_entry_is_kept_whole(store: Store) -> None:
    old, _ = old_and_new(store)
    # Today another outlet carries the old volcano article again (same URL): it joins
    # the old story as the same article, and the story is news again.
    first = row(old, 0)
    late_feed = store.feeds.add(
        FeedSpec(url="https://late.example/feed.xml"), source="cli", now=NOW
    )
    copy = replace(entry(0, "Looking back: Grindavik", 40.0, "reuters.com"), key="guid:late")
    (late,) = store.entries.add_new(late_feed.id, [copy], NOW)
    cluster_pending(store, PARAMS, now=NOW)
    volcano = story_of(store, first)
    assert story_of(store, late) == volcano
    volcano_entries = {e for e in old if story_of(store, e) == volcano}

    store.prune(CUTOFF, NOW)

    assert volcano in story_ids(store)
    assert volcano_entries | {late} <= entry_ids(store)
    assert entry_ids(store).isdisjoint(set(old) - volcano_entries)
    check_pruned_store(store)


def test_old_news_ingested_today_is_kept_for_the_whole_retention(store: Store) -> None:
    # An archive imported today: published a year ago, first seen now.
    feed = store.feeds.add(FeedSpec(url="https://archive.example/feed.xml"), source="cli", now=NOW)
    archive = [
        entry(n, title, hours, "archive.example") for n, (hours, _, title) in enumerate(OLD_STREAM)
    ]
    ids = set(store.entries.add_new(feed.id, archive, NOW))
    cluster_pending(store, PARAMS, now=NOW)
    # ...and one more, not clustered yet.
    late = entry(50, "Archive: the 2025 floods", AGO, "archive.example")
    ids |= set(store.entries.add_new(feed.id, [late], NOW))

    assert store.prune(CUTOFF, NOW).entries == 0
    assert entry_ids(store) == ids

    later = NOW + RETENTION + timedelta(days=1)
    assert store.prune(later - RETENTION, later).entries == len(ids)
    assert entry_ids(store) == set()
    check_pruned_store(store)


def test_a_story_an_issue_holds_is_kept_with_its_entries(store: Store) -> None:
    old, _ = old_and_new(store)
    held = story_of(store, row(old, 0))
    members = {e for e in old if story_of(store, e) == held}
    issue, _ = store.issues.open(
        slot="2025-10-13T07:00+02:00",
        subject="KI-Briefing",
        preheader="",
        html="<p>…</p>",
        text="…",
        stories_by_section=[(held, "news")],
        now=T0 + timedelta(hours=AGO + 24),
    )
    store.issues.mark_sent(issue.id, T0 + timedelta(hours=AGO + 25))

    summary = store.prune(CUTOFF, NOW)

    assert held in story_ids(store)
    assert members <= entry_ids(store)
    assert entry_ids(store).isdisjoint(set(old) - members)
    assert summary.entries == len(old) - len(members)
    check_pruned_store(store)


def test_an_issue_holding_a_merged_story_keeps_the_story_it_went_into(store: Store) -> None:
    old, _ = old_and_new(store)
    volcano, boeing = story_of(store, row(old, 0)), story_of(store, row(old, 3))
    assert volcano != boeing
    members = {e for e in old if story_of(store, e) in (volcano, boeing)}
    store.issues.open(
        slot="2025-10-13T07:00+02:00",
        subject="KI-Briefing",
        preheader="",
        html="",
        text="",
        stories_by_section=[(boeing, "news")],
        now=T0 + timedelta(hours=AGO + 24),
    )
    survivor = store.stories.merge(volcano, boeing, NOW).id  # the issue's story is a husk now

    store.prune(CUTOFF, NOW)

    assert {survivor, boeing} <= story_ids(store)
    assert members <= entry_ids(store)
    check_pruned_store(store)


def test_husks_of_merged_stories_go_with_their_story(store: Store) -> None:
    old, _ = old_and_new(store)
    volcano, boeing = story_of(store, row(old, 0)), story_of(store, row(old, 3))
    old_stories = stories_of(store, set(old))
    store.stories.merge(volcano, boeing, NOW)  # boeing is a husk pointing at volcano now

    summary = store.prune(CUTOFF, NOW)

    assert story_ids(store).isdisjoint(old_stories)
    assert summary.stories == len(old_stories) - 1  # husks are not counted as stories
    check_pruned_store(store)


def test_old_entries_in_no_story_are_pruned_too(store: Store) -> None:
    old = ingest(store, OLD_STREAM)  # never clustered
    new = ingest(store, STREAM, NEW)

    summary = store.prune(CUTOFF, NOW)

    assert (summary.entries, summary.stories, summary.tombstones) == (len(old), 0, len(old))
    assert entry_ids(store) == set(new)
    assert len(tombstones(store)) == len(old)
    assert term_count_table(store) == {}


# -- tombstones ------------------------------------------------------------------------------


def test_a_pruned_entry_fetched_again_is_not_stored_again(store: Store) -> None:
    old_and_new(store)
    store.prune(CUTOFF, NOW)
    reuters = store.feeds.get("https://reuters.com/feed.xml")
    hours, host, title = OLD_STREAM[0]
    still_in_the_feed = entry(0, title, hours, host)
    fresh = entry(7000, "Reuters: a new entry", 47.0, host)
    check = FeedCheck(NOW, next_check=NOW + timedelta(hours=1))

    new_ids = store.record_fetch(reuters.id, [still_in_the_feed, fresh], check)

    assert len(new_ids) == 1
    assert {r["key"] for r in store.entries.for_feed(reuters.id)} >= {"guid:7000"}
    assert "guid:0" not in {r["key"] for r in store.entries.for_feed(reuters.id)}


def test_a_tombstone_goes_once_its_feed_has_left_the_entry_out_for_a_week(store: Store) -> None:
    slow, other = (
        store.feeds.add(FeedSpec(url=f"https://{host}/feed.xml"), source="cli", now=NOW)
        for host in ("slow.example", "other.example")
    )
    old = [entry(n, f"Old item {n}", AGO, "slow.example") for n in range(3)]
    store.entries.add_new(slow.id, old, T0 + timedelta(hours=AGO))
    store.entries.add_new(
        other.id, [entry(50, "Old elsewhere", AGO, "other.example")], T0 + timedelta(hours=AGO)
    )
    store.prune(CUTOFF, NOW)
    assert len(tombstones(store)) == 4

    def document(days: float, *carried: ParsedEntry) -> None:
        at = NOW + timedelta(days=days)
        new = entry(9000 + int(days), f"New on day {days}", 24.0 * days, "slow.example")
        store.record_fetch(slow.id, [*carried, new], FeedCheck(at, next_check=at))

    # The feed still lists item 0 and has dropped items 1 and 2: a week's grace...
    document(1, old[0])
    assert len(tombstones(store)) == 4
    # ...then theirs go. Item 0's stays, and so do other feeds'.
    document(9, old[0])
    assert tombstones(store) == {(slow.id, "guid:0"), (other.id, "guid:50")}
    assert "guid:0" not in {r["key"] for r in store.entries.for_feed(slow.id)}
    # A document with no entries is more likely broken than empty: nothing goes.
    later = NOW + timedelta(days=30)
    store.record_fetch(slow.id, [], FeedCheck(later, next_check=later))
    assert (slow.id, "guid:0") in tombstones(store)
    # Left out at last (it was listed last on day 9): item 0's goes too.
    document(40)
    assert tombstones(store) == {(other.id, "guid:50")}


def test_tombstones_from_before_the_upgrade_count_as_seen_when_they_were_made(
    store_url: str,
) -> None:
    from alembic import command

    from newsdesk.store.engine import _alembic_config

    old = open_store(store_url)
    feed = old.feeds.add(FeedSpec(url="https://slow.example/feed.xml"), source="cli", now=NOW)
    with old.engine.connect() as conn:
        command.downgrade(_alembic_config(conn), "0009")
        conn.execute(
            text(
                "INSERT INTO entry_tombstones (feed_id, key, pruned_at) VALUES (:f, 'guid:1', :t)"
            ),
            {"f": feed.id, "t": CUTOFF.replace(tzinfo=None)},
        )
        conn.commit()
    old.close()
    store = open_store(store_url)
    try:
        with store.engine.connect() as conn:
            (seen,) = conn.execute(select(entry_tombstones.c.seen_at)).scalars()
        assert seen == CUTOFF
    finally:
        store.close()


def test_the_same_key_in_another_feed_is_stored(store: Store) -> None:
    old_and_new(store)
    store.prune(CUTOFF, NOW)
    other = store.feeds.add(FeedSpec(url="https://mirror.example/feed.xml"), source="cli", now=NOW)
    hours, host, title = OLD_STREAM[0]
    check = FeedCheck(NOW, next_check=NOW + timedelta(hours=1))

    assert len(store.record_fetch(other.id, [entry(0, title, hours, host)], check)) == 1


def test_many_keys_are_checked_against_the_tombstones_in_chunks(store: Store) -> None:
    feed = store.feeds.add(FeedSpec(url="https://big.example/feed.xml"), source="cli", now=NOW)
    batch = [entry(n, f"Old item {n}", AGO, "big.example") for n in range(1200)]
    store.entries.add_new(feed.id, batch, T0 + timedelta(hours=AGO))
    assert store.prune(CUTOFF, NOW).entries == 1200

    again = store.entries.add_new(feed.id, [*batch, entry(5000, "New", 1.0, "big.example")], NOW)

    assert len(again) == 1


# -- the clustering's index ------------------------------------------------------------------


def test_term_counts_after_pruning_equal_a_fresh_clustering_of_what_is_left(
    store: Store, tmp_path: Path
) -> None:
    """Store A clusters old and new news and prunes the old; store B clusters only the
    new news. The term counts (the IDF) count entries, whatever story each entry went
    to, so they must be equal to the last entry: no drift."""
    old, new = old_and_new(store)
    assert stories_of(store, set(old)).isdisjoint(stories_of(store, set(new)))
    store.prune(CUTOFF, NOW)

    fresh = open_store(f"sqlite:///{tmp_path / 'fresh.db'}")
    ingest(fresh, STREAM, NEW)
    cluster_pending(fresh, PARAMS, now=NOW)

    assert term_count_table(store) == term_count_table(fresh)
    with store.engine.connect() as a, fresh.engine.connect() as b:
        count = select(func.count()).select_from(story_entries)
        assert a.execute(count).scalar_one() == b.execute(count).scalar_one()
    fresh.close()

    # And the clustering goes on from the pruned index.
    ingest(store, [(h + 30, host, f"{t} (later)") for h, host, t in STREAM[:4]], 200)
    cluster_pending(store, PARAMS, now=NOW)
    check_pruned_store(store)


def test_a_count_that_fell_short_stays_at_zero_while_a_kept_story_holds_its_term(
    store: Store,
) -> None:
    """A prune re-derives the pruned entries' terms with the feeds' languages of today,
    and can take more off a count than the clustering put on (a feed that changed its
    language). While a kept story's centroid holds the term, its row stays, at 0: the
    clustering reads the postings of counted terms only, and a later entry holding the
    term must add to the story's weight, not write over it."""
    old, new = old_and_new(store)
    old_stories, new_stories = stories_of(store, set(old)), stories_of(store, set(new))
    with store.engine.begin() as conn:
        held = conn.execute(select(story_terms.c.story_id, story_terms.c.term)).all()
        shared = sorted(
            {t for s, t in held if s in old_stories} & {t for s, t in held if s in new_stories}
        )
        assert "pro" in shared  # Sony's PlayStation 5 Pro, a year ago; the iPad mini's A17 Pro
        # As if the new entries had been counted under other terms: only the old count it.
        conn.execute(
            update(term_counts)
            .where(term_counts.c.term == "pro")
            .values(entries=sum("pro" in signals_of(t).terms for _, _, t in OLD_STREAM))
        )
    store.prune(CUTOFF, NOW)
    assert term_count_table(store)["pro"] == 0
    ingest(store, [(10.0, "macrumors.com", "iPad mini with A17 Pro: hands-on")], 300)
    cluster_pending(store, PARAMS, now=NOW)
    check_invariants(store)  # the iPad story's norm is its weights', "pro" included
    ipad = story_of(store, row(new, NEW + 12))
    with store.engine.connect() as conn:
        members = conn.execute(
            select(func.count()).select_from(story_entries).where(story_entries.c.story_id == ipad)
        ).scalar_one()
    assert members == 4


def test_a_prune_stopped_between_batches_leaves_a_consistent_store(store: Store) -> None:
    old, new = old_and_new(store)
    ingest(store, [(h, "unclustered.example", t) for h, _, t in OLD_STREAM[:2]], 300)
    expected = store.prunable(CUTOFF)

    first = store.prune(CUTOFF, NOW, batch=1, max_batches=1)

    assert first.stories == 1  # a process killed here has committed exactly one batch
    check_pruned_store(store)
    rest = store.prune(CUTOFF, NOW, batch=1)
    assert (first + rest).entries == expected.entries == len(old) + 2
    assert (first + rest).stories == expected.stories
    assert entry_ids(store) == set(new)
    check_pruned_store(store)


def test_the_semantic_mean_loses_the_pruned_embeddings(store: Store) -> None:
    old, new = old_and_new(store)
    gone, kept = story_of(store, row(old, 0)), story_of(store, row(new, NEW))
    gone_sum, kept_sum = [1.0, 2.0, 0.0, 0.5], [0.25, 0.0, 3.0, 1.0]
    with store.engine.begin() as conn:
        for story_id, vector, count in ((gone, gone_sum, 2), (kept, kept_sum, 3)):
            conn.execute(
                update(stories)
                .where(stories.c.id == story_id)
                .values(semantic=to_bytes(vector), semantic_count=count)
            )
        total = [a + b for a, b in zip(gone_sum, kept_sum, strict=True)]
        conn.execute(cluster_state.insert(), {"name": MODEL, "count": 5, "vector": to_bytes(total)})

    store.prune(CUTOFF, NOW)

    with store.engine.connect() as conn:
        space = conn.execute(select(cluster_state).where(cluster_state.c.name == MODEL)).one()
    assert space._mapping["count"] == 3
    assert from_bytes(space.vector).tolist() == kept_sum


# -- the dry run, upkeep, and the switch -----------------------------------------------------


def test_the_dry_run_counts_what_the_prune_removes_and_changes_nothing(store: Store) -> None:
    old, _ = old_and_new(store)
    before = (entry_ids(store), story_ids(store), term_count_table(store))

    dry = store.prunable(CUTOFF)

    assert (entry_ids(store), story_ids(store), term_count_table(store)) == before
    assert tombstones(store) == set()
    done = store.prune(CUTOFF, NOW)
    assert (dry.entries, dry.stories, dry.dry_run) == (done.entries, done.stories, True)
    assert dry.entries == len(old)


def test_upkeep_after_a_prune_refreshes_statistics(store: Store, store_url: str) -> None:
    old_and_new(store)
    store.prune(CUTOFF, NOW)

    store.maintain()

    if store.dialect == "sqlite":
        wal = Path(store_url.removeprefix("sqlite:///") + "-wal")
        assert wal.stat().st_size == 0  # written back and truncated
    else:
        with store.engine.connect() as conn:
            analysed = conn.execute(
                text("SELECT reltuples FROM pg_class WHERE oid = 'entry_tombstones'::regclass")
            ).scalar_one()
        assert analysed == len(OLD_STREAM)  # -1 until the table is analysed


def test_a_retention_of_zero_keeps_everything() -> None:
    assert retention_cutoff(timedelta(0), NOW) is None
    assert retention_cutoff(RETENTION, NOW) == CUTOFF


# -- the command -----------------------------------------------------------------------------


def cli_store(tmp_path: Path, retention: str) -> tuple[Path, Store]:
    """A config with ``retention`` (as written in TOML) and a store with old news and
    one entry of today."""
    db = tmp_path / "newsdesk.db"
    config = write_config(tmp_path, f'[store]\nurl = "sqlite:///{db}"\nretention = {retention}\n')
    store = open_store(f"sqlite:///{db}")
    ingest(store, OLD_STREAM)
    # Recent news by the real clock: the command prunes by the real clock.
    recent = store.feeds.add(FeedSpec(url="https://recent.example/feed.xml"), source="cli", now=NOW)
    now = jobs.utcnow()
    store.entries.add_new(
        recent.id, [replace(entry(1, "Today's news", 0, "recent.example"), published=now)], now
    )
    cluster_pending(store, PARAMS, now=now)
    return config, store


def test_db_prune_reports_first_and_prunes_with_the_configured_retention(tmp_path: Path) -> None:
    config, store = cli_store(tmp_path, '"180d"')
    runner = CliRunner()

    dry = runner.invoke(cli, ["--config", str(config), "db", "prune", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert dry.output.startswith(f"retention: would prune {len(OLD_STREAM)} entries and ")
    assert len(entry_ids(store)) == len(OLD_STREAM) + 1

    done = runner.invoke(cli, ["--config", str(config), "db", "prune"])
    assert done.exit_code == 0, done.output
    assert done.output.startswith(f"retention: pruned {len(OLD_STREAM)} entries and ")
    assert len(entry_ids(store)) == 1
    store.close()


def test_db_prune_with_a_retention_of_zero_prunes_nothing(tmp_path: Path) -> None:
    config, store = cli_store(tmp_path, "0")  # TOML: retention = 0

    result = CliRunner().invoke(cli, ["--config", str(config), "db", "prune"])

    assert result.exit_code == 0, result.output
    assert result.output == "retention: off (store.retention = 0); nothing pruned\n"
    assert len(entry_ids(store)) == len(OLD_STREAM) + 1
    store.close()


def test_the_daily_maintenance_prunes_with_the_configured_retention(
    store: Store, tmp_path: Path
) -> None:
    from newsdesk.config import load_config

    old, new = old_and_new(store)
    config = load_config(write_config(tmp_path, '[store]\nretention = "180d"\n'), {})
    result = jobs.maintenance(config, store, clock=lambda: NOW)
    assert result.outcome == "ok"
    assert result.message.startswith(f"retention: pruned {len(old)} entries")
    assert entry_ids(store) == set(new)
    # Nothing old is left: the next day's maintenance has nothing to say about it.
    assert jobs.maintenance(config, store, clock=lambda: NOW).message == "nothing to do"

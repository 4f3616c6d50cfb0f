"""The store on both engines: migrations, feed health, and insert-only-new entries."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from conftest import NOW
from newsdesk.errors import UsageError
from newsdesk.models import FeedCheck, FeedSpec, ParsedEntry
from newsdesk.store import Store, open_store
from newsdesk.store.schema import deliveries, metadata


def entry(key: str, **overrides: object) -> ParsedEntry:
    base = ParsedEntry(
        key=key,
        title=f"Title {key}",
        url=f"https://example.org/{key}",
        canonical_url=f"https://example.org/{key}",
        summary="<p>summary</p>",
        content="",
        author=None,
        published=NOW - timedelta(hours=1),
        updated=None,
        lang="en",
        content_hash=f"hash-{key}",
    )
    return replace(base, **overrides)  # type: ignore[arg-type]


@pytest.fixture
def store(store_url: str) -> Store:
    s = open_store(store_url)
    yield s
    s.close()


def test_migrations_create_exactly_the_declared_schema(store: Store) -> None:
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []
    assert store.pending_migrations() == []


def test_the_fast_schema_check_knows_alembics_head() -> None:
    """open_store skips importing alembic when the schema is at HEAD: HEAD must be real."""
    from alembic.config import Config as AlembicConfig
    from alembic.script import ScriptDirectory

    from newsdesk.store.engine import HEAD, MIGRATIONS

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    assert ScriptDirectory.from_config(cfg).get_heads() == [HEAD]


def test_an_old_schema_is_upgraded_on_open(store_url: str) -> None:
    from alembic import command

    from newsdesk.store.engine import _alembic_config

    first = open_store(store_url)
    with first.engine.connect() as conn:
        command.downgrade(_alembic_config(conn), "0002")
        conn.commit()
    assert first.pending_migrations() == [
        "0010",
        "0009",
        "0008",
        "0007",
        "0006",
        "0005",
        "0004",
        "0003",
    ]
    first.close()
    again = open_store(store_url)
    assert again.pending_migrations() == []
    again.close()


def test_opening_twice_migrates_once(store_url: str) -> None:
    open_store(store_url).close()
    again = open_store(store_url)
    assert again.pending_migrations() == []
    again.close()


def test_config_feeds_are_added_updated_and_removed(store: Store) -> None:
    store.feeds.sync_config(
        [FeedSpec("https://a.example/feed", name="A"), FeedSpec("https://b.example/feed")], NOW
    )
    store.feeds.sync_config([FeedSpec("https://a.example/feed", name="A2", tags=("x",))], NOW)

    a = store.feeds.get("https://a.example/feed")
    assert (a.name, a.tags, a.source, a.status) == ("A2", ("x",), "config", "active")
    assert store.feeds.get("https://b.example/feed").status == "removed"
    assert [f.url for f in store.feeds.listed()] == ["https://a.example/feed"]


def test_a_config_feed_cannot_be_removed_from_the_cli(store: Store) -> None:
    store.feeds.sync_config([FeedSpec("https://a.example/feed")], NOW)
    with pytest.raises(UsageError, match=r"declared in newsdesk\.toml"):
        store.feeds.remove("https://a.example/feed")


def test_new_entries_are_stored_once_per_feed_and_key(store: Store) -> None:
    feed = store.feeds.add(FeedSpec("https://a.example/feed"), source="cli", now=NOW)
    first = store.entries.add_new(feed.id, [entry("1"), entry("2"), entry("2")], NOW)
    second = store.entries.add_new(feed.id, [entry("2"), entry("3")], NOW)

    assert len(first) == 2
    assert len(second) == 1
    assert store.entries.count(feed.id) == 3


def test_the_same_key_in_two_feeds_is_two_entries(store: Store) -> None:
    a = store.feeds.add(FeedSpec("https://a.example/feed"), source="cli", now=NOW)
    b = store.feeds.add(FeedSpec("https://b.example/feed"), source="cli", now=NOW)
    assert store.entries.add_new(a.id, [entry("1")], NOW)
    assert store.entries.add_new(b.id, [entry("1")], NOW)


def test_missing_dates_become_first_seen_and_future_dates_are_clamped(store: Store) -> None:
    feed = store.feeds.add(FeedSpec("https://a.example/feed"), source="cli", now=NOW)
    store.entries.add_new(
        feed.id,
        [entry("undated", published=None), entry("future", published=NOW + timedelta(days=300))],
        NOW,
    )
    rows = {row["key"]: row for row in store.entries.for_feed(feed.id)}
    assert rows["undated"]["published_at"] == NOW
    assert rows["future"]["published_at"] == NOW
    assert rows["undated"]["published_at"].tzinfo is not None


def test_due_feeds_skip_paused_and_not_yet_due(store: Store) -> None:
    fresh = store.feeds.add(FeedSpec("https://fresh.example/"), source="cli", now=NOW)
    later = store.feeds.add(FeedSpec("https://later.example/"), source="cli", now=NOW)
    overdue = store.feeds.add(FeedSpec("https://overdue.example/"), source="cli", now=NOW)
    store.feeds.record_success(later.id, FeedCheck(NOW, next_check=NOW + timedelta(hours=1)))
    store.feeds.record_success(overdue.id, FeedCheck(NOW, next_check=NOW - timedelta(hours=1)))
    assert [f.id for f in store.feeds.due(NOW)] == [fresh.id, overdue.id]
    assert [f.id for f in store.feeds.due(NOW + timedelta(hours=2))] == [
        fresh.id,
        overdue.id,
        later.id,
    ]


def test_consecutive_failures_pause_a_feed_and_revive_resets_it(store: Store) -> None:
    feed = store.feeds.add(FeedSpec("https://a.example/feed"), source="cli", now=NOW)
    for _ in range(3):
        feed = store.feeds.record_error(
            feed.id, "HTTP 500 Internal Server Error", now=NOW, next_check=NOW, pause_after=3
        )
    assert (feed.status, feed.error_count, feed.last_error) == (
        "paused",
        3,
        "HTTP 500 Internal Server Error",
    )
    assert store.feeds.due(NOW + timedelta(days=1)) == []

    [revived] = store.feeds.revive([feed.url], now=NOW)
    assert (revived.status, revived.error_count) == ("active", 0)
    assert [f.id for f in store.feeds.due(NOW)] == [feed.id]


def test_success_resets_the_failure_count(store: Store) -> None:
    feed = store.feeds.add(FeedSpec("https://a.example/feed"), source="cli", now=NOW)
    store.feeds.record_error(feed.id, "timed out", now=NOW, next_check=NOW, pause_after=5)
    store.feeds.record_success(feed.id, FeedCheck(NOW, NOW, etag='"v2"', body_hash="h"))
    feed = store.feeds.get(feed.url)
    assert (feed.error_count, feed.last_error, feed.etag) == (0, None, '"v2"')


def test_a_moved_config_feed_keeps_its_row_on_the_next_sync(store: Store) -> None:
    store.feeds.sync_config([FeedSpec("https://old.example/feed")], NOW)
    feed = store.feeds.get("https://old.example/feed")
    assert store.feeds.move(feed.id, "https://new.example/feed", now=NOW)

    store.feeds.sync_config([FeedSpec("https://old.example/feed")], NOW)
    [only] = store.feeds.listed()
    assert (only.url, only.declared_url) == ("https://new.example/feed", "https://old.example/feed")
    assert store.feeds.get("https://old.example/feed").id == feed.id


def test_moving_onto_an_existing_feed_retires_the_duplicate(store: Store) -> None:
    a = store.feeds.add(FeedSpec("https://a.example/feed"), source="cli", now=NOW)
    store.feeds.add(FeedSpec("https://b.example/feed"), source="cli", now=NOW)
    assert not store.feeds.move(a.id, "https://b.example/feed", now=NOW)
    a = store.feeds.get("https://a.example/feed")
    assert a.status == "retired"
    assert "already subscribed" in (a.last_error or "")


def test_gone_feeds_are_retired_until_revived(store: Store) -> None:
    feed = store.feeds.add(FeedSpec("https://a.example/feed"), source="cli", now=NOW)
    store.feeds.retire(feed.id, "gone (HTTP 410)", now=NOW)
    assert store.feeds.due(NOW + timedelta(days=30)) == []
    store.feeds.revive([feed.url], now=NOW)
    assert store.feeds.get(feed.url).status == "active"


def test_unknown_feed_is_a_usage_error_naming_the_url(store: Store) -> None:
    with pytest.raises(UsageError, match=r"https://nope\.example/: no such feed"):
        store.feeds.get("https://nope.example/")


def test_naive_datetimes_are_refused(store: Store) -> None:
    feed = store.feeds.add(FeedSpec("https://a.example/feed"), source="cli", now=NOW)
    with pytest.raises(Exception, match="naive datetime"):
        store.feeds.record_success(feed.id, FeedCheck(NOW.replace(tzinfo=None), NOW))


def test_processes_starting_at_once_on_a_fresh_store_migrate_once(store_url: str) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from newsdesk.store.engine import create_store_engine, upgrade

    engines = [create_store_engine(store_url) for _ in range(4)]
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(upgrade, engines))  # raises if any of them failed
    for engine in engines:
        engine.dispose()
    store = open_store(store_url)
    assert store.pending_migrations() == []
    store.close()


def test_a_fetch_is_recorded_with_its_entries_in_one_go(store: Store) -> None:
    feed = store.feeds.add(FeedSpec("https://a.example/feed"), source="cli", now=NOW)
    store.feeds.record_error(feed.id, "timed out", now=NOW, next_check=NOW, pause_after=5)
    check = FeedCheck(
        NOW, next_check=NOW + timedelta(hours=1), etag='"v1"', body_hash="abc", title="A feed"
    )
    new = store.record_fetch(feed.id, [entry("1"), entry("2")], check)
    assert len(new) == 2
    feed = store.feeds.get(feed.url)
    assert (feed.error_count, feed.etag, feed.title, feed.body_hash) == (0, '"v1"', "A feed", "abc")
    assert feed.next_check_at == NOW + timedelta(hours=1)
    again = store.record_fetch(feed.id, [entry("2")], FeedCheck(NOW, NOW, body_hash="x"))
    assert again == []


def test_one_odd_entry_does_not_fail_the_batch(store: Store) -> None:
    feed = store.feeds.add(FeedSpec("https://a.example/feed"), source="cli", now=NOW)
    odd = entry(
        "odd",
        title="NUL\x00 and a lone surrogate \ud800",
        url="https://a.example/" + "x" * 3000,
        author="A" * 900,
        lang="x" * 50,
        content="text with \x00 inside",
    )
    assert len(store.entries.add_new(feed.id, [odd, entry("fine")], NOW)) == 2
    rows = {r["key"]: r for r in store.entries.for_feed(feed.id)}
    assert rows["odd"]["title"] == "NUL and a lone surrogate ?"
    assert rows["odd"]["url"] is None
    assert len(rows["odd"]["author"]) == 500


def test_validators_that_cannot_be_sent_back_are_not_kept(store: Store) -> None:
    feed = store.feeds.add(FeedSpec("https://a.example/feed"), source="cli", now=NOW)
    store.feeds.record_success(feed.id, FeedCheck(NOW, NOW, etag='"café"', last_modified="x" * 200))
    feed = store.feeds.get(feed.url)
    assert (feed.etag, feed.last_modified) == (None, None)


def test_naming_the_url_a_feed_moved_to_adopts_its_row(store: Store) -> None:
    store.feeds.sync_config([FeedSpec("https://old.example/feed")], NOW)
    feed = store.feeds.get("https://old.example/feed")
    store.feeds.move(feed.id, "https://new.example/feed", now=NOW)
    store.feeds.sync_config([FeedSpec("https://new.example/feed", name="New")], NOW)
    [only] = store.feeds.listed()
    assert (only.id, only.url, only.declared_url, only.name, only.status) == (
        feed.id,
        "https://new.example/feed",
        "https://new.example/feed",
        "New",
        "active",
    )


def test_revive_goes_back_to_the_declared_url_and_refuses_removed_feeds(store: Store) -> None:
    store.feeds.sync_config([FeedSpec("https://old.example/feed")], NOW)
    feed = store.feeds.get("https://old.example/feed")
    store.feeds.move(feed.id, "https://old.example/home", now=NOW)
    [revived] = store.feeds.revive(["https://old.example/feed"], now=NOW)
    assert revived.url == "https://old.example/feed"
    store.feeds.sync_config([], NOW)
    with pytest.raises(UsageError, match="was removed"):
        store.feeds.revive(["https://old.example/feed"], now=NOW)


def test_an_explicit_successful_fetch_reactivates_a_paused_feed(store: Store) -> None:
    feed = store.feeds.add(FeedSpec("https://a.example/feed"), source="cli", now=NOW)
    store.feeds.record_error(feed.id, "HTTP 500", now=NOW, next_check=NOW, pause_after=1)
    store.feeds.record_success(feed.id, FeedCheck(NOW, NOW))
    assert store.feeds.get(feed.url).status == "active"


def test_config_sync_from_many_processes_at_once(store_url: str) -> None:
    from concurrent.futures import ThreadPoolExecutor

    stores = [open_store(store_url) for _ in range(6)]
    specs = [FeedSpec(f"https://{n}.example/feed") for n in range(20)]
    with ThreadPoolExecutor(6) as pool:
        list(pool.map(lambda s: s.feeds.sync_config(specs, NOW), stores))
    assert len(stores[0].feeds.listed()) == 20
    for s in stores:
        s.close()


def test_a_store_from_the_previous_release_upgrades_with_its_data(store_url: str) -> None:
    from alembic import command

    from newsdesk.store.engine import _alembic_config, create_store_engine

    engine = create_store_engine(store_url)
    with engine.connect() as connection:
        command.upgrade(_alembic_config(connection), "0001")
        connection.commit()
    engine.dispose()
    old = Store(create_store_engine(store_url))
    with old.engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO feeds (url, declared_url, tags, weight, source, status, error_count,"
            " created_at) VALUES ('https://example.org/a.xml', 'https://example.org/a.xml',"
            " '[]', 2.0, 'cli', 'active', 0, '2026-11-01 00:00:00')"
        )
    old.close()
    store = open_store(store_url)
    (feed,) = store.feeds.listed()
    assert (feed.url, feed.weight, feed.priority) == ("https://example.org/a.xml", 2.0, 0)
    assert store.pending_migrations() == []
    store.close()


def test_a_claim_moves_only_the_state_it_saw_and_records_the_accepted_row_with_it(
    store: Store,
) -> None:
    issue, _ = store.issues.open(
        slot="2026-11-20",
        subject="s",
        preheader="",
        html="",
        text="",
        stories_by_section=[],
        now=NOW,
    )
    a, b = (store.subscribers.add(f"{n}@example.org", now=NOW) for n in "ab")
    store.deliveries.queue(issue.id, [(a.id, "<a@example.org>"), (b.id, "<b@example.org>")], NOW)
    first, second = store.deliveries.to_send(issue.id, ["queued"])
    later = NOW + timedelta(seconds=1, microseconds=7)

    claims = store.deliveries.claims()
    try:
        assert claims.claim(first, NOW)
        assert not claims.claim(first, NOW)  # no longer "queued": another sender has it
        # The server accepted the first message: "sent" goes with the next claim.
        assert claims.claim(second, later, sent=first.id)
    finally:
        claims.close()

    with store.engine.connect() as conn:
        rows = {r.id: r for r in conn.execute(deliveries.select())}
    assert (rows[first.id].state, rows[second.id].state) == ("sent", "sending")
    assert rows[first.id].attempts == rows[second.id].attempts == 1
    # Stored as Core stores timestamps: read back through the column type, equal.
    assert rows[first.id].updated_at == rows[second.id].updated_at == later
    assert store.deliveries.counts(issue.id)["sending"] == 1

"""`db copy`: a store moves to another database (SQLite to PostgreSQL, and back) with
every row and every id, so the daemon goes on where it stopped."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from conftest import write_config
from newsdesk import jobs
from newsdesk.clustering import ClusterSession, cluster_pending
from newsdesk.errors import StoreError
from newsdesk.models import FeedCheck, FeedSpec
from newsdesk.store import Store, open_store
from newsdesk.store.schema import (
    cluster_state,
    entries,
    entry_tombstones,
    feeds,
    metadata,
    story_entries,
)
from newsdesk.store.schema import stories as stories_table
from test_cli import run
from test_stories import NOW, PARAMS, STREAM, T0, check_invariants, ingest, partition

Rows = dict[str, list[tuple[Any, ...]]]


def newsroom(url: str) -> Store:
    """A store as a few weeks of use leave it: every table holds rows."""
    store = open_store(url)
    store.feeds.sync_config(
        [
            FeedSpec("https://reuters.com/feed.xml", "Reuters", "world", ("wire", "en"), 2.0, 5),
            FeedSpec("https://heise.de/feed.xml", "heise", "tech", ("de",)),
        ],
        T0,
    )
    ingest(store, STREAM)
    reuters, bbc = (store.feeds.get(f"https://{h}/feed.xml") for h in ("reuters.com", "bbc.co.uk"))
    store.feeds.record_success(
        reuters.id,
        FeedCheck(NOW, NOW + timedelta(minutes=30), '"e1"', "Mon, 23 Nov 2026 11:00:00 GMT"),
    )
    store.feeds.record_error(
        bbc.id, "HTTP 503", now=NOW, next_check=NOW + timedelta(hours=1), pause_after=10
    )
    cluster_pending(store, PARAMS, now=NOW)

    # The curator's corrections: a split keeps two stories apart, a merge leaves an alias.
    nvidia, musk = story_of(store, "Nvidia quarterly"), story_of(store, "Musk-led")
    store.stories.split(nvidia, "https://reuters.com/news/15", NOW)
    altman, _ = store.stories.split(musk, "https://nytimes.com/news/10", NOW)
    store.stories.merge(musk, altman.id, NOW)
    with store.engine.begin() as conn:
        # Semantic mode keeps each story's summed embedding as bytes (the model is not
        # needed to see that bytes, NUL included, survive the copy).
        conn.execute(
            update(stories_table)
            .where(stories_table.c.id == nvidia)
            .values(semantic=bytes(range(256)), semantic_count=3)
        )
        # What the retention leaves of a pruned entry.
        conn.execute(
            entry_tombstones.insert().values(
                feed_id=bbc.id, key="guid:0", pruned_at=NOW, seen_at=NOW
            )
        )

    ann, bob, _ = (
        store.subscribers.add(email, name=name, language="de", now=NOW)
        for email, name in [
            ("ann@example.org", "Ann"),
            ("bob@example.org", None),
            ("cy@example.org", "Cy"),
        ]
    )
    store.subscribers.remove("cy@example.org", now=NOW)
    issue, _ = store.issues.open(
        slot="2026-11-23T07:00+01:00",
        subject="KI-Briefing, 23 November",
        preheader="Musk, Nvidia, Storm Bert",
        html="<p>Musk…</p>",
        text="Musk…",
        stories_by_section=[(musk, "world"), (nvidia, "tech")],
        now=NOW,
    )
    store.deliveries.queue(
        issue.id, [(ann.id, "<1@example.org>"), (bob.id, "<2@example.org>")], NOW
    )
    sent, failed = store.deliveries.to_send(issue.id, ["queued"])
    store.deliveries.finish(sent.id, "sent", NOW)
    store.deliveries.finish(failed.id, "failed", NOW, error="550 no such user")
    store.issues.mark_sent(issue.id, NOW)

    store.daemons.register("news1:812", host="news1", pid=812, version="0.1.0", now=NOW)
    store.daemons.job_started("fetch", "news1:812", NOW)
    store.daemons.job_finished(
        "fetch", "news1:812", outcome="ok", message="16 new", now=NOW, next_run_at=None
    )
    return store


def story_of(store: Store, headline: str) -> int:
    """The story holding the entry whose title starts with ``headline``."""
    with store.engine.connect() as conn:
        return int(
            conn.execute(
                select(story_entries.c.story_id)
                .join(entries, entries.c.id == story_entries.c.entry_id)
                .where(entries.c.title.startswith(headline))
            ).scalar_one()
        )


def rows(store: Store) -> Rows:
    """Every table's rows, as the application reads them, in primary-key order."""
    out = {}
    with store.engine.connect() as conn:
        for table in metadata.sorted_tables:
            key = [c.name for c in table.primary_key]
            found = conn.execute(select(table)).all()
            found.sort(key=lambda r: tuple(r._mapping[k] for k in key))
            out[table.name] = [tuple(r) for r in found]
    return out


def ranked(store: Store) -> list[dict[str, Any]]:
    """What `stories --json` prints for the stories of the stream."""
    config = jobs.Config(path=Path("newsdesk.toml"), store_url=str(store.engine.url))
    found = jobs.list_stories(config, store, now=NOW, since=T0, until=NOW)
    return [jobs.story_json(r) for r in found]


@pytest.fixture
def source(sqlite_url: str) -> Iterator[Store]:
    store = newsroom(sqlite_url)
    yield store
    store.close()


@pytest.fixture
def opened() -> Iterator[list[Store]]:
    """Stores a test opens: closed at its end."""
    stores: list[Store] = []
    yield stores
    for store in stores:
        store.close()


def copied(source: Store, url: str, opened: list[Store]) -> Store:
    """``source`` copied to ``url``, and the copy opened (closed at the test's end)."""
    source.copy_to(url)
    target = open_store(url)
    opened.append(target)
    return target


def test_every_row_moves_from_sqlite_to_postgresql(
    source: Store, pg_url: str, opened: list[Store]
) -> None:
    result = source.copy_to(pg_url)

    target = open_store(pg_url)
    opened.append(target)
    before, after = rows(source), rows(target)
    assert [name for name, found in before.items() if not found] == []  # no table left out
    assert after == before
    assert result.counts == {name: len(found) for name, found in before.items()}
    assert result.line().startswith(f"copied {result.rows:,} rows in 16 tables to postgresql")


def test_the_copy_leaves_postgresql_statistics_for_its_planner(
    source: Store, pg_url: str, opened: list[Store]
) -> None:
    # Freshly loaded tables have none until autovacuum analyses them (never, where it is
    # off), and the planner then scans the whole term index for a clustering lookup.
    target = copied(source, pg_url, opened)
    with target.engine.connect() as conn:
        analysed = set(
            conn.exec_driver_sql(
                "SELECT DISTINCT tablename FROM pg_stats WHERE schemaname = current_schema()"
            ).scalars()
        )
    assert {"story_terms", "term_counts", "stories", "entry_keys"} <= analysed


def test_an_empty_table_is_left_for_the_planner_to_estimate_from_its_size(
    sqlite_url: str, pg_url: str, opened: list[Store]
) -> None:
    # "Empty" statistics would outlive the clustering's first catch-up where autovacuum
    # is off (a norm then read the whole term index); never analysed, a table is
    # estimated from its size on disk.
    source = open_store(sqlite_url)
    opened.append(source)
    source.feeds.sync_config([FeedSpec("https://heise.de/feed.xml", "heise", "tech")], T0)
    target = copied(source, pg_url, opened)
    with target.engine.connect() as conn:
        reltuples = dict(
            conn.exec_driver_sql(
                "SELECT relname, reltuples FROM pg_class "
                "WHERE relnamespace = current_schema()::regnamespace "
                "AND relname IN ('feeds', 'story_terms')"
            ).all()
        )
    assert reltuples == {"feeds": 1, "story_terms": -1}  # -1: never analysed


def test_the_stories_read_the_same_after_the_move(
    source: Store, pg_url: str, opened: list[Store]
) -> None:
    target = copied(source, pg_url, opened)
    assert ranked(target) == ranked(source)


def test_new_entries_join_the_same_stories_on_the_copy(
    source: Store, pg_url: str, opened: list[Store]
) -> None:
    """The clustering's index (terms, term counts, same-article keys) came along: the
    copy clusters new entries exactly as the original does, and the two stay equal."""
    target = copied(source, pg_url, opened)
    late = [
        (9.5, "bbc.co.uk", "Storm Bert: flood warnings stay in place across Wales"),
        (9.6, "yahoo.com", "Apple unveils iPad mini with A17 Pro chip"),  # syndicated
    ]

    joined = []
    for store in (source, target):
        ingest(store, late, start=100)
        summary = cluster_pending(store, PARAMS, now=NOW)
        assert (summary.entries, summary.opened) == (2, 0)
        joined.append(rows(store)["story_entries"][-2:])
    assert joined[0] == joined[1]
    (storm, ipad) = joined[1]
    assert storm[1] == story_of(target, "Storm Bert floods towns")
    assert (ipad[1], ipad[2]) == (story_of(target, "Apple's new iPad"), "same-text")
    assert rows(target) == rows(source)


def test_new_rows_on_postgresql_get_the_next_ids(
    source: Store, pg_url: str, opened: list[Store]
) -> None:
    target = copied(source, pg_url, opened)
    moved = rows(target)

    subscriber = target.subscribers.add("dee@example.org", now=NOW)
    feed = target.feeds.add(FeedSpec("https://apnews.com/feed.xml"), source="cli", now=NOW)
    assert subscriber.id == max(r[0] for r in moved["subscribers"]) + 1
    assert feed.id == max(r[0] for r in moved["feeds"]) + 1


def test_a_target_with_rows_is_refused_and_force_replaces_them(
    source: Store, pg_url: str, opened: list[Store]
) -> None:
    source.copy_to(pg_url)
    source.subscribers.add("dee@example.org", now=NOW)

    with pytest.raises(StoreError, match=r"the target is not empty \(rows in .*feeds.*--force"):
        source.copy_to(pg_url)
    target = open_store(pg_url)
    opened.append(target)
    assert len(rows(target)["subscribers"]) == 3

    source.copy_to(pg_url, force=True)
    replaced, expected = rows(target), rows(source)
    # ...all but the stories' version, moved past the one replaced (which a daemon's
    # clustering cache may hold) and the copy's own.
    [(name, version, vector)] = expected.pop("cluster_state")
    assert replaced.pop("cluster_state") == [(name, version + 1, vector)]
    assert replaced == expected


def test_a_failed_copy_leaves_the_target_as_it_was(
    source: Store, pg_url: str, opened: list[Store]
) -> None:
    target = copied(source, pg_url, opened)
    first = rows(target)
    # SQLite does not hold text to its column's length; PostgreSQL does.
    with source.engine.begin() as conn:
        conn.execute(update(feeds).where(feeds.c.id == 1).values(lang="x" * 21))

    with pytest.raises(StoreError) as failed:
        source.copy_to(pg_url, force=True)
    message = str(failed.value)
    assert message.startswith("copy to postgresql+psycopg://postgres@127.0.0.1:5432/test")
    assert "failed at feeds: value too long" in message
    assert message.endswith("the target is left as it was")
    assert "\n" not in message
    assert rows(target) == first


def test_a_store_comes_back_from_postgresql_to_sqlite(
    source: Store, pg_url: str, tmp_path: Path, opened: list[Store]
) -> None:
    source.copy_to(pg_url)
    middle = open_store(pg_url)
    opened.append(middle)
    back = f"sqlite:///{tmp_path / 'back.db'}"

    middle.copy_to(back)
    returned = open_store(back)
    opened.append(returned)
    assert rows(returned) == rows(source)
    assert returned.subscribers.add("dee@example.org", now=NOW).id == 4


def test_the_copy_is_one_snapshot_of_a_store_in_use(
    store_url: str, tmp_path: Path, opened: list[Store]
) -> None:
    """A daemon writing during the copy: the copy holds the store as it was at the start."""
    store = newsroom(store_url)
    daemon = open_store(store_url)
    opened += [store, daemon]
    before = rows(store)
    calls: list[tuple[str, int, int]] = []

    def write_meanwhile(table: str, done: int, total: int) -> None:
        if not calls:
            daemon.subscribers.add("dee@example.org", now=NOW)
            ingest(daemon, [(31.0, "reuters.com", "Nvidia shares recover")], start=100)
        calls.append((table, done, total))

    copy_url = f"sqlite:///{tmp_path / 'copy.db'}"
    result = store.copy_to(copy_url, progress=write_meanwhile)
    copy = open_store(copy_url)
    opened.append(copy)
    assert rows(copy) == before
    assert rows(store) != before
    assert calls[-1][1:] == (result.rows, result.rows)


def test_a_store_is_not_copied_onto_itself(source: Store, sqlite_url: str) -> None:
    before = rows(source)
    with pytest.raises(StoreError, match="that is the store being copied"):
        source.copy_to(sqlite_url.replace("newsdesk.db", "./newsdesk.db"))
    assert rows(source) == before


def test_a_store_behind_the_schema_is_not_copied(sqlite_url: str, tmp_path: Path) -> None:
    from alembic import command

    from newsdesk.store.engine import _alembic_config, create_store_engine

    engine = create_store_engine(sqlite_url)
    with engine.connect() as connection:
        command.upgrade(_alembic_config(connection), "0004")
        connection.commit()
    old = Store(engine)
    behind = r"schema not current \(0005.* pending\); run newsdesk db upgrade first$"
    with pytest.raises(StoreError, match=behind):
        old.copy_to(f"sqlite:///{tmp_path / 'copy.db'}")
    old.close()


def test_a_target_that_cannot_be_opened_is_named_without_its_password(
    source: Store, tmp_path: Path
) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(StoreError, match=r"^copy to sqlite:///.*/file/sub/x\.db: Not a directory$"):
        source.copy_to(f"sqlite:///{tmp_path / 'file' / 'sub' / 'x.db'}")
    with pytest.raises(StoreError) as refused:
        source.copy_to("postgresql+psycopg://newsdesk:s3cret@127.0.0.1:1/newsdesk")
    assert str(refused.value).startswith(
        "cannot migrate the store at postgresql+psycopg://newsdesk:***@127.0.0.1:1/newsdesk: "
    )
    assert "s3cret" not in str(refused.value)


def test_db_copy_prints_one_line_and_hides_the_password(
    source: Store, sqlite_url: str, pg_url: str, tmp_path: Path
) -> None:
    config = write_config(tmp_path, f'[store]\nurl = "{sqlite_url}"\n')
    url = pg_url.replace("postgres@", "postgres:s3cret@")  # trust auth ignores it

    copied = run("--config", str(config), "db", "copy", url)
    assert copied.returncode == 0, copied.stderr
    (line,) = copied.stdout.splitlines()
    assert line.startswith("copied ") and " rows in 16 tables to postgresql+psycopg://" in line
    assert "postgres:***@127.0.0.1" in line and "s3cret" not in line

    again = run("--config", str(config), "db", "copy", url)
    assert again.returncode == 1
    assert again.stdout == ""
    (error,) = again.stderr.splitlines()
    assert error.startswith("Error: copy to postgresql+psycopg://postgres:***@127.0.0.1")
    assert error.endswith("--force replaces its contents") and "s3cret" not in error

    forced = run("--config", str(config), "db", "copy", url, "--force")
    assert forced.returncode == 0, forced.stderr
    assert forced.stdout.startswith(line.split(" in ", 1)[0])  # the same rows again


def test_a_daemon_on_a_store_replaced_by_force_does_not_cluster_from_its_old_cache(
    tmp_path: Path, opened: list[Store]
) -> None:
    """A daemon's clustering cache is good while the stories' version is the one it
    last wrote, and a copy brings its own version, which can be that number by chance:
    the copy moves the version past both."""
    live_url = f"sqlite:///{tmp_path}/live.db"
    live, other = open_store(live_url), open_store(f"sqlite:///{tmp_path}/other.db")
    opened += [live, other]
    ingest(live, STREAM[:3])  # the Musk bid: story 1
    session = ClusterSession()  # the daemon's, kept from round to round
    cluster_pending(live, PARAMS, now=NOW, session=session)
    ingest(other, STREAM[5:10])  # Storm Bert and Nvidia: story 1 is Storm Bert
    cluster_pending(other, PARAMS, now=NOW)
    with other.engine.begin() as conn:
        by_chance = update(cluster_state).where(cluster_state.c.name == "version")
        conn.execute(by_chance.values(count=session.version))
    other.copy_to(live_url, force=True)

    ingest(live, [(11.0, "spiegel.de", "Sturm Bert: Aufräumen in Wales beginnt")], 100)
    cold = copied(live, f"sqlite:///{tmp_path}/cold.db", opened)
    cluster_pending(cold, PARAMS, now=NOW)
    cluster_pending(live, PARAMS, now=NOW, session=session)
    assert partition(live) == partition(cold)
    assert len(partition(live)) == 2  # Storm Bert, Nvidia
    check_invariants(live)

"""Instances sharing a store split the due feeds by claiming them with a lease."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from newsdesk.models import FeedSpec
from newsdesk.store import Store, open_store
from test_stories import NOW

LEASE = timedelta(minutes=10)


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    s = open_store(store_url)
    s.feeds.sync_config(
        [FeedSpec(url=f"https://site{n}.example/feed") for n in range(6)]
        + [FeedSpec(url=f"https://big.example/feed{n}") for n in range(3)],
        NOW,
    )
    yield s
    s.close()


def urls(feeds: list) -> set[str]:  # type: ignore[type-arg]
    return {f.url for f in feeds}


def test_a_claimed_feed_is_not_claimed_again_until_its_lease_ends(store: Store) -> None:
    a = store.feeds.claim_due(NOW, instance="a", limit=4, lease=LEASE)
    b = store.feeds.claim_due(NOW, instance="b", limit=100, lease=LEASE)
    assert len(a) == 4 and urls(a).isdisjoint(urls(b))
    assert len(urls(a) | urls(b)) == 9  # every due feed, once
    assert store.feeds.claim_due(NOW, instance="c", limit=100, lease=LEASE) == []
    # a dies: after its lease, its feeds are due for the others.
    later = NOW + LEASE + timedelta(seconds=1)
    c = store.feeds.claim_due(later, instance="c", limit=100, lease=LEASE)
    assert urls(a) <= urls(c)


def test_a_host_is_held_by_one_instance_at_a_time(store: Store) -> None:
    # The three feeds of big.example come last in order; "a" takes one of them.
    first = store.feeds.claim_due(NOW, instance="a", limit=7, lease=LEASE)
    big_a = {u for u in urls(first) if "big.example" in u}
    assert len(big_a) == 1
    rest = store.feeds.claim_due(NOW, instance="b", limit=100, lease=LEASE)
    assert not any("big.example" in u for u in urls(rest))
    # "a" itself may take more of its host.
    more = store.feeds.claim_due(NOW, instance="a", limit=100, lease=LEASE)
    assert urls(more) == {f"https://big.example/feed{n}" for n in range(3)} - big_a


def test_a_check_ends_the_lease_and_released_claims_go_back_at_once(store: Store) -> None:
    from newsdesk.models import FeedCheck

    claimed = store.feeds.claim_due(NOW, instance="a", limit=2, lease=LEASE)
    assert store.feeds.leases(NOW) == {"a": 2}
    done, dropped = claimed
    store.feeds.record_success(done.id, FeedCheck(checked_at=NOW, next_check=NOW))
    assert store.feeds.leases(NOW) == {"a": 1}
    store.feeds.release([dropped.id], instance="b")  # not b's to give back
    assert store.feeds.leases(NOW) == {"a": 1}
    store.feeds.release([dropped.id], instance="a")
    assert store.feeds.leases(NOW) == {}
    again = store.feeds.claim_due(NOW, instance="b", limit=100, lease=LEASE)
    assert {done.url, dropped.url} <= urls(again)  # due again (next_check = NOW)


def test_only_rows_sending_for_long_are_in_doubt_when_senders_share(store: Store) -> None:
    issue, _ = store.issues.open(
        slot="2026-11-23",
        subject="s",
        preheader="",
        html="<p>x</p>",
        text="x",
        stories_by_section=[],
        now=NOW,
    )
    a, b = (store.subscribers.add(f"{n}@example.org", now=NOW) for n in "ab")
    store.deliveries.queue(issue.id, [(a.id, "<a@x>"), (b.id, "<b@x>")], NOW)
    rows = store.deliveries.to_send(issue.id, ("queued",))
    claims = store.deliveries.claims("host:1")
    assert claims.claim(rows[0], NOW - timedelta(minutes=30))  # a dead sender's row
    assert claims.claim(rows[1], NOW)  # a live sender's row, claimed just now
    assert not claims.claim(rows[1], NOW)  # never claimed twice
    claims.close()
    recovered = store.deliveries.recover(issue.id, NOW, stale_before=NOW - timedelta(minutes=5))
    assert recovered == 1
    counts = store.deliveries.counts(issue.id)
    assert (counts["unknown"], counts["sending"]) == (1, 1)


def test_a_waiting_lock_is_had_once_the_holder_lets_go(store: Store) -> None:
    import threading

    held = store.lock("open-issue", what="x")
    got = threading.Event()

    def waiter() -> None:
        with store.lock("open-issue", what="x", wait=True):
            got.set()

    thread = threading.Thread(target=waiter)
    thread.start()
    assert not got.wait(0.3)
    held.release()
    assert got.wait(10)
    thread.join()

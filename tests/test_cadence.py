"""When a feed is checked next: pure decisions, given `now`."""

from __future__ import annotations

from datetime import timedelta

import pytest

from conftest import NOW
from newsdesk.cadence import (
    MAX_RETRY_AFTER,
    Cadence,
    interval_from_dates,
    next_check_after_error,
    next_check_after_success,
)

CADENCE = Cadence(
    interval=timedelta(minutes=30),
    min_interval=timedelta(minutes=10),
    max_interval=timedelta(days=1),
)


def hourly(n: int, last: timedelta = timedelta(0)) -> list:
    return [NOW - last - timedelta(hours=i) for i in range(n)]


def test_unknown_feeds_use_the_default_interval() -> None:
    assert interval_from_dates(CADENCE, [], NOW) == timedelta(minutes=30)
    assert interval_from_dates(CADENCE, [NOW], NOW) == timedelta(minutes=30)


def test_an_hourly_feed_is_checked_every_half_hour() -> None:
    assert interval_from_dates(CADENCE, hourly(10), NOW) == timedelta(minutes=30)


def test_a_busy_feed_is_not_checked_more_often_than_min_interval() -> None:
    every_minute = [NOW - timedelta(minutes=i) for i in range(30)]
    assert interval_from_dates(CADENCE, every_minute, NOW) == timedelta(minutes=10)


def test_a_silent_feed_slows_down_to_max_interval() -> None:
    months_ago = hourly(10, last=timedelta(days=90))
    assert interval_from_dates(CADENCE, months_ago, NOW) == timedelta(days=1)


def test_future_dates_do_not_speed_up_checks() -> None:
    bogus = [NOW + timedelta(minutes=i) for i in range(1, 20)]
    assert interval_from_dates(CADENCE, bogus, NOW) == timedelta(minutes=30)


@pytest.mark.parametrize(
    ("ttl", "max_age", "expected"),
    [
        (None, None, timedelta(minutes=30)),
        (120, None, timedelta(hours=2)),
        (None, 3 * 3600, timedelta(hours=3)),
        (7 * 24 * 60, None, timedelta(days=1)),  # the operator's max_interval still bounds it
        (1, 1.0, timedelta(minutes=30)),  # the publisher cannot make us check more often
    ],
)
def test_publisher_wishes_make_checks_rarer_within_bounds(ttl, max_age, expected) -> None:
    result = next_check_after_success(
        CADENCE, NOW, dates=hourly(10), ttl_minutes=ttl, max_age=max_age
    )
    assert result == NOW + expected


@pytest.mark.parametrize(
    ("errors", "expected"),
    [
        (1, timedelta(minutes=10)),
        (2, timedelta(minutes=20)),
        (4, timedelta(minutes=80)),
        (12, timedelta(days=1)),
        (10_000, timedelta(days=1)),
    ],
)
def test_failures_back_off_exponentially(errors: int, expected: timedelta) -> None:
    assert next_check_after_error(CADENCE, NOW, error_count=errors) == NOW + expected


def test_retry_after_is_honoured_but_bounded() -> None:
    assert next_check_after_error(CADENCE, NOW, error_count=1, retry_after=7200) == NOW + timedelta(
        hours=2
    )
    assert next_check_after_error(CADENCE, NOW, error_count=1, retry_after=5) == NOW + timedelta(
        minutes=10
    )
    assert (
        next_check_after_error(CADENCE, NOW, error_count=1, retry_after=10**9)
        == NOW + MAX_RETRY_AFTER
    )


def test_any_number_a_server_sends_is_survived() -> None:
    huge = 1e20
    assert (
        next_check_after_error(CADENCE, NOW, error_count=1, retry_after=huge)
        == NOW + MAX_RETRY_AFTER
    )
    assert next_check_after_success(CADENCE, NOW, dates=[], max_age=huge) == NOW + timedelta(days=1)
    assert next_check_after_success(CADENCE, NOW, dates=[], ttl_minutes=10**15) == NOW + timedelta(
        days=1
    )

"""When to check a feed next: pure decisions that take ``now``.

A feed that posts every hour is checked about every half hour; one that posts weekly,
about daily; one that has been silent for months, at ``max_interval``. The publisher's
own wishes (RSS ``<ttl>``, ``Cache-Control: max-age``, ``Retry-After``) make checks
rarer, never more frequent. Failures back off exponentially.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

# Retry-After is honoured, but a server cannot park a feed for longer than this.
MAX_RETRY_AFTER = timedelta(days=7)


@dataclass(frozen=True, slots=True)
class Cadence:
    """The configured bounds (``[fetch] interval``, ``min_interval``, ``max_interval``)."""

    interval: timedelta
    min_interval: timedelta
    max_interval: timedelta

    def clamp(self, value: timedelta) -> timedelta:
        return max(self.min_interval, min(self.max_interval, value))


def interval_from_dates(cadence: Cadence, dates: Sequence[datetime], now: datetime) -> timedelta:
    """Half the feed's typical gap between entries, stretched while it stays silent.

    ``dates`` are the published dates of the newest entries (any order). With fewer
    than two, nothing is known and the default interval applies.
    """
    recent = sorted(d for d in dates if d <= now)
    if len(recent) < 2:
        return cadence.clamp(cadence.interval)
    span = recent[-1] - recent[0]
    mean_gap = span / (len(recent) - 1)
    silence = now - recent[-1]
    # Checking at half the gap finds a new entry within half a gap on average; a feed
    # silent for longer than its usual gap has probably slowed down.
    return cadence.clamp(max(mean_gap / 2, silence / 4))


def next_check_after_success(
    cadence: Cadence,
    now: datetime,
    *,
    dates: Sequence[datetime],
    ttl_minutes: int | None = None,
    max_age: float | None = None,
) -> datetime:
    """The next check after a 200 or 304."""
    interval = interval_from_dates(cadence, dates, now)
    # Clamped before they become timedeltas: a server's number can be any size.
    limit = cadence.max_interval.total_seconds()
    publisher_wish = timedelta(seconds=min(max((ttl_minutes or 0) * 60, max_age or 0), limit))
    # The publisher may ask for fewer checks, up to the operator's max_interval.
    interval = max(interval, publisher_wish)
    return now + interval


def next_check_after_error(
    cadence: Cadence,
    now: datetime,
    *,
    error_count: int,
    retry_after: float | None = None,
) -> datetime:
    """The next check after the ``error_count``-th consecutive failure."""
    if retry_after is not None:
        wait = timedelta(seconds=min(max(retry_after, 0), MAX_RETRY_AFTER.total_seconds()))
        return now + max(wait, cadence.min_interval)
    backoff = cadence.min_interval * (2 ** min(max(error_count - 1, 0), 20))
    delay: timedelta = min(backoff, cadence.max_interval)
    return now + delay

"""The schedule names each issue: the same scheduled time gives the same slot, always."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from newsdesk.scheduler.triggers import cron_trigger, last_fire, slot_of

BERLIN = "Europe/Berlin"


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_the_latest_scheduled_time_within_the_deadline_is_due() -> None:
    monday_7 = cron_trigger("0 7 * * mon", BERLIN)
    # Monday 2026-12-07 07:00 in Berlin is 06:00 UTC.
    now = utc(2026, 12, 7, 6, 20)
    assert last_fire(monday_7, now, within=timedelta(hours=6)) == utc(2026, 12, 7, 6, 0)
    # A day late is past the deadline: nothing is due.
    assert last_fire(monday_7, now + timedelta(days=1), within=timedelta(hours=6)) is None
    # Right at the scheduled time it is due; a second before, the last one is a week old.
    assert last_fire(monday_7, utc(2026, 12, 7, 6, 0), within=timedelta(hours=1)) is not None
    assert last_fire(monday_7, utc(2026, 12, 7, 5, 59, 59), within=timedelta(hours=1)) is None


def test_the_schedule_follows_daylight_saving_time() -> None:
    daily_7 = cron_trigger("0 7 * * *", BERLIN)
    # 07:00 local is 06:00 UTC in winter and 05:00 UTC in summer.
    winter = last_fire(daily_7, utc(2026, 3, 28, 12, 0), within=timedelta(hours=12))
    summer = last_fire(daily_7, utc(2026, 3, 29, 12, 0), within=timedelta(hours=12))
    assert winter == utc(2026, 3, 28, 6, 0)
    assert summer == utc(2026, 3, 29, 5, 0)


def test_crontab_weekday_numbers_mean_what_crontab_says() -> None:
    # 1 is Monday and 0 is Sunday in crontab (APScheduler 3 alone counts from Monday = 0).
    monday = cron_trigger("0 7 * * 1", "UTC")
    sunday = cron_trigger("0 7 * * 0", "UTC")
    week = timedelta(days=7)
    assert last_fire(monday, utc(2026, 12, 7, 8), within=week) == utc(2026, 12, 7, 7)
    assert last_fire(sunday, utc(2026, 12, 7, 8), within=week) == utc(2026, 12, 6, 7)


def test_a_slot_is_the_local_date_or_date_and_time_when_a_day_has_several() -> None:
    weekly = cron_trigger("0 7 * * mon", BERLIN)
    assert slot_of(weekly, utc(2026, 12, 7, 6, 0), BERLIN) == "2026-12-07"
    twice = cron_trigger("0 7,18 * * *", BERLIN)
    assert slot_of(twice, utc(2026, 12, 7, 6, 0), BERLIN) == "2026-12-07"
    assert slot_of(twice, utc(2026, 12, 7, 17, 0), BERLIN) == "2026-12-07-1800"
    seconds = cron_trigger("*/20 * * * * *", "UTC")
    assert slot_of(seconds, utc(2026, 12, 7, 9, 30, 40), "UTC") == "2026-12-07-093040"
    # The local date, not the UTC one: 00:30 in Berlin is still the evening before in UTC.
    late = cron_trigger("30 0 * * *", BERLIN)
    assert slot_of(late, utc(2026, 12, 6, 23, 30), BERLIN) == "2026-12-07"

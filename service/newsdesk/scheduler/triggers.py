"""When things happen: cron triggers and the issue a schedule asks for (pure: ``now`` in).

An issue is named by its *slot*: the local date of the scheduled time
(``2026-12-07``), or the date and time when the schedule fires more than once that day
(``2026-12-07-1800``). The same scheduled time always gives the same slot, so two
processes (or one restarted) asking for it agree, and the store creates it once.

Schedules are crontab lines (five fields, or six with seconds first). APScheduler is
imported only when a trigger is built: the config check needs it, other commands not.
"""

from __future__ import annotations

import re
from datetime import datetime, time, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

if TYPE_CHECKING:
    from apscheduler.triggers.cron import CronTrigger

_MAX_STEPS = 100_000
"""Fire times walked through at most to find the latest (a per-second cron over a day)."""


def last_fire(trigger: CronTrigger, now: datetime, *, within: timedelta) -> datetime | None:
    """The latest scheduled time in ``(now - within, now]``, or None.

    APScheduler 3 only steps forward, so this walks from the start of the window.
    """
    fire = trigger.get_next_fire_time(None, now - within + timedelta(microseconds=1))
    latest = None
    for _ in range(_MAX_STEPS):
        if fire is None or fire > now:
            return latest
        latest = fire
        fire = trigger.get_next_fire_time(fire, fire + timedelta(microseconds=1))
    return latest


def slot_of(trigger: CronTrigger, fire: datetime, timezone: str) -> str:
    """The slot of the scheduled time ``fire`` (see the module docstring)."""
    zone = ZoneInfo(timezone)
    local = fire.astimezone(zone)
    midnight = datetime.combine(local.date(), time(0), zone)
    first = trigger.get_next_fire_time(None, midnight)
    if first is not None and first == fire:
        return local.date().isoformat()
    stamp = local.strftime("%H%M%S" if local.second else "%H%M")
    return f"{local.date().isoformat()}-{stamp}"


def cron_trigger(text: str, timezone: str) -> CronTrigger:
    """The APScheduler trigger for a schedule (five fields, or six with seconds first)."""
    from apscheduler.triggers.cron import CronTrigger

    fields = text.split()
    second = fields.pop(0) if len(fields) == 6 else "0"
    minute, hour, day, month, day_of_week = fields
    return CronTrigger(
        second=second,
        minute=minute,
        hour=hour,
        day=day,
        month=month,
        day_of_week=_crontab_weekdays(day_of_week),
        timezone=timezone,
    )


_WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _crontab_weekdays(field: str) -> str:
    """Crontab weekday numbers (0 and 7 Sunday) as names: APScheduler 3 counts from Monday."""
    parts = []
    for part in field.split(","):
        if not re.fullmatch(r"\d+(-\d+)?(/\d+)?", part):
            parts.append(part)  # names and "*" mean the same to both
            continue
        if "/" in part:
            raise ValueError(f"weekday step {part!r}: list the days or use names (mon-fri)")
        low, _, high = part.partition("-")
        first, last = int(low), int(high or low)
        if not 0 <= first <= last <= 7:
            raise ValueError(f"weekday {part!r}: expected 0-7 (0 and 7 are Sunday)")
        if first == 0:
            parts.append("sun")
            first = 1
        if first <= last:
            parts.append(
                _WEEKDAYS[first] if first == last else f"{_WEEKDAYS[first]}-{_WEEKDAYS[last]}"
            )
    return ",".join(parts)

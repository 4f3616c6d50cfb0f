"""Feed health for the curator: which feeds have been failing for a while, and why.

Pure: feeds and ``now`` in, a report out. It goes into test copies (above the issue)
and, with ``[daemon] health_to``, into a short mail after the daily maintenance.
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from newsdesk.models import Feed


@dataclass(frozen=True)
class FailingFeed:
    name: str
    url: str
    status: str
    since: datetime
    errors: int
    reason: str


def failing_feeds(feeds: Iterable[Feed], now: datetime, after: timedelta) -> list[FailingFeed]:
    """Feeds paused or retired, or failing without a success for longer than ``after``.

    A feed that failed once an hour ago is not news; one failing since yesterday is.
    """
    found = []
    for feed in feeds:
        if feed.status == "removed":
            continue
        broken = feed.status in ("paused", "retired")
        if not broken and feed.error_count == 0:
            continue
        since = feed.last_success_at or feed.created_at
        if not broken and now - since < after:
            continue
        found.append(
            FailingFeed(
                name=feed.display_name,
                url=feed.shown_url,
                status=feed.status,
                since=since,
                errors=feed.error_count,
                reason=feed.last_error or "",
            )
        )
    return sorted(found, key=lambda f: f.since)


def report_text(failing: list[FailingFeed]) -> str:
    lines = [f"Feed health: {len(failing)} feeds need attention", ""]
    for f in failing:
        lines.append(f"- {f.name} ({f.status}, {f.errors} failures since {_day(f.since)})")
        lines.append(f"  {f.url}")
        if f.reason:
            lines.append(f"  {f.reason}")
    lines.append("")
    lines.append("`newsdesk status` shows them all; `newsdesk feeds revive URL` resumes one.")
    return "\n".join(lines)


def report_html(failing: list[FailingFeed]) -> str:
    """A small box for the top of a test copy (escaped: reasons come from servers)."""
    items = "".join(
        f"<li><b>{html.escape(f.name)}</b> ({html.escape(f.status)}, {f.errors} failures "
        f"since {_day(f.since)})<br>{html.escape(f.url)}<br><i>{html.escape(f.reason)}</i></li>"
        for f in failing
    )
    return (
        '<div style="border:2px solid #b45309;padding:8px 12px;margin:8px;'
        'font-family:sans-serif;font-size:14px;color:#1f2937">'
        f"<p><b>Feed health: {len(failing)} feeds need attention</b> "
        "(only in test copies)</p>"
        f'<ul style="padding-left:18px">{items}</ul></div>'
    )


def _day(when: datetime) -> str:
    return when.strftime("%Y-%m-%d %H:%M UTC")

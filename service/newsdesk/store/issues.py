"""Issues of the newsletter: one row per issue, created once per slot, and its stories.

An issue is *opened* when its send starts (status ``sending``): its subject and both
MIME parts are frozen in the row, so a resumed send after a crash sends exactly what the
first attempt sent. It is ``sent`` when no message is left to try. Stories of an opened
issue are not candidates for the next one.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, Engine, Row, insert, select, update
from sqlalchemy.exc import IntegrityError

from newsdesk.plan import ArchivedIssue
from newsdesk.store.schema import clean_text, issue_stories, issues, stories

_SLUG_UNSAFE = re.compile(r"[^0-9A-Za-z_-]+")
_MERGE_DEPTH = 32
OPEN = ("sending", "sent")
"""Statuses of an issue whose messages may have gone out."""


@dataclass(frozen=True, slots=True)
class IssueRow:
    id: int
    slot: str
    status: str
    subject: str
    preheader: str
    html: str
    text: str
    created_at: datetime
    sent_at: datetime | None

    @property
    def slug(self) -> str:
        return slug_of(self.slot)

    @property
    def archived(self) -> ArchivedIssue:
        return ArchivedIssue(
            slug=self.slug,
            subject=self.subject,
            preheader=self.preheader,
            issue_date=date.fromisoformat(self.slot[:10]),
            sent_at=self.sent_at or self.created_at,
        )


class IssueStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def open(
        self,
        *,
        slot: str,
        subject: str,
        preheader: str,
        html: str,
        text: str,
        stories_by_section: Sequence[tuple[int, str]],
        now: datetime,
    ) -> tuple[IssueRow, bool]:
        """The issue of ``slot``, created now or by whoever came first; True if created now.

        The unique slot makes this safe when two processes open the same issue at once.
        """
        try:
            with self.engine.begin() as conn:
                issue_id = conn.execute(
                    insert(issues)
                    .values(
                        slot=slot,
                        subject=clean_text(subject),
                        preheader=clean_text(preheader),
                        status="sending",
                        html=clean_text(html),
                        text=clean_text(text),
                        created_at=now,
                    )
                    .returning(issues.c.id)
                ).scalar_one()
                rows = [
                    {"issue_id": issue_id, "story_id": story_id, "section": section}
                    for story_id, section in dict(stories_by_section).items()
                ]
                if rows:
                    conn.execute(insert(issue_stories), rows)
            created = True
        except IntegrityError:
            created = False
        row = self.by_slot(slot)
        assert row is not None  # inserted above, or by the process that won the race
        return row, created

    def by_slot(self, slot: str) -> IssueRow | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(issues).where(issues.c.slot == slot)).first()
        return _row(row) if row else None

    def unfinished(self) -> IssueRow | None:
        """The oldest issue whose send has not finished."""
        query = select(issues).where(issues.c.status == "sending").order_by(issues.c.id).limit(1)
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        return _row(row) if row else None

    def last(self) -> IssueRow | None:
        query = select(issues).where(issues.c.status.in_(OPEN)).order_by(issues.c.id.desc())
        with self.engine.connect() as conn:
            row = conn.execute(query.limit(1)).first()
        return _row(row) if row else None

    def mark_sent(self, issue_id: int, now: datetime) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(issues)
                .where(issues.c.id == issue_id, issues.c.status == "sending")
                .values(status="sent", sent_at=now)
            )

    def slot_taken(self, slot: str) -> bool:
        return self.by_slot(slot) is not None

    def sent_story_ids(self) -> frozenset[int]:
        """Stories of opened issues, and the stories they were merged into since."""
        query = (
            select(issue_stories.c.story_id)
            .join(issues, issues.c.id == issue_stories.c.issue_id)
            .where(issues.c.status.in_(OPEN))
        )
        with self.engine.connect() as conn:
            return frozenset(with_survivors(conn, set(conn.execute(query).scalars())))

    def archived(self) -> list[ArchivedIssue]:
        """Opened issues, newest first: the web archive lists an issue once it goes out."""
        query = (
            select(issues)
            .where(issues.c.status.in_(OPEN))
            .order_by(issues.c.created_at.desc(), issues.c.id.desc())
        )
        with self.engine.connect() as conn:
            return [_row(r).archived for r in conn.execute(query)]


def with_survivors(conn: Connection, story_ids: set[int]) -> set[int]:
    """``story_ids`` and the stories they were merged into since (along a chain)."""
    found = set(story_ids)
    frontier = set(found)
    for _ in range(_MERGE_DEPTH):
        if not frontier:
            break
        merged = select(stories.c.merged_into).where(
            stories.c.id.in_(sorted(frontier)), stories.c.merged_into.is_not(None)
        )
        frontier = set(conn.execute(merged).scalars()) - found
        found |= frontier
    return found


def _row(r: Row[Any]) -> IssueRow:
    return IssueRow(
        id=r.id,
        slot=r.slot,
        status=r.status,
        subject=r.subject,
        preheader=r.preheader,
        html=r.html or "",
        text=r.text or "",
        created_at=r.created_at,
        sent_at=r.sent_at,
    )


def slug_of(slot: str) -> str:
    """A file-name-safe form of a slot: ``2026-12-07T07:00+01:00`` -> ``2026-12-07T07-00-01-00``."""
    return _SLUG_UNSAFE.sub("-", slot).strip("-")

"""Issues of the newsletter: which stories each sent issue showed, and the archive list.

Delivery (the per-subscriber ledger) builds on these rows; here is what composing and
the archive need: stories already sent are not candidates again.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date, datetime

from sqlalchemy import Engine, insert, select
from sqlalchemy.exc import IntegrityError

from newsdesk.errors import UsageError
from newsdesk.plan import ArchivedIssue
from newsdesk.store.schema import clean_text, issue_stories, issues, stories

_SLUG_UNSAFE = re.compile(r"[^0-9A-Za-z_-]+")
_MERGE_DEPTH = 32


class IssueStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def record_sent(
        self,
        *,
        slot: str,
        subject: str,
        preheader: str,
        html: str,
        text: str,
        stories_by_section: Sequence[tuple[int, str]],
        now: datetime,
    ) -> ArchivedIssue:
        """Keep a sent issue and the stories it showed (once per slot)."""
        with self.engine.begin() as conn:
            try:
                issue_id = conn.execute(
                    insert(issues)
                    .values(
                        slot=slot,
                        subject=clean_text(subject),
                        preheader=clean_text(preheader),
                        status="sent",
                        html=clean_text(html),
                        text=clean_text(text),
                        created_at=now,
                        sent_at=now,
                    )
                    .returning(issues.c.id)
                ).scalar_one()
            except IntegrityError:
                raise UsageError(f"issue {slot}: already exists") from None
            rows = [
                {"issue_id": issue_id, "story_id": story_id, "section": section}
                for story_id, section in dict(stories_by_section).items()
            ]
            if rows:
                conn.execute(insert(issue_stories), rows)
        return ArchivedIssue(
            slug=slug_of(slot),
            subject=subject,
            preheader=preheader,
            issue_date=date.fromisoformat(slot[:10]),
            sent_at=now,
        )

    def slot_taken(self, slot: str) -> bool:
        with self.engine.connect() as conn:
            found = conn.execute(select(issues.c.id).where(issues.c.slot == slot)).first()
        return found is not None

    def sent_story_ids(self) -> frozenset[int]:
        """Stories shown in a sent issue, and the stories they were merged into since."""
        query = (
            select(issue_stories.c.story_id)
            .join(issues, issues.c.id == issue_stories.c.issue_id)
            .where(issues.c.status == "sent")
        )
        with self.engine.connect() as conn:
            found = set(conn.execute(query).scalars())
            frontier = set(found)
            for _ in range(_MERGE_DEPTH):
                if not frontier:
                    break
                merged = select(stories.c.merged_into).where(
                    stories.c.id.in_(sorted(frontier)), stories.c.merged_into.is_not(None)
                )
                frontier = set(conn.execute(merged).scalars()) - found
                found |= frontier
        return frozenset(found)

    def archived(self) -> list[ArchivedIssue]:
        """Sent issues, newest first."""
        query = (
            select(issues.c.slot, issues.c.subject, issues.c.preheader, issues.c.sent_at)
            .where(issues.c.status == "sent")
            .order_by(issues.c.sent_at.desc(), issues.c.id.desc())
        )
        with self.engine.connect() as conn:
            return [
                ArchivedIssue(
                    slug=slug_of(r.slot),
                    subject=r.subject,
                    preheader=r.preheader,
                    issue_date=date.fromisoformat(r.slot[:10]),
                    sent_at=r.sent_at,
                )
                for r in conn.execute(query)
            ]


def slug_of(slot: str) -> str:
    """A file-name-safe form of a slot: ``2026-12-07T07:00+01:00`` -> ``2026-12-07T07-00-01-00``."""
    return _SLUG_UNSAFE.sub("-", slot).strip("-")

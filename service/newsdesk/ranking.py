"""Which stories matter most, whose headline they carry, and their "Read on" list.

Pure (no I/O, no clock: ``now`` is an argument). A story's score counts *outlets*,
not entries: five feeds of one newspaper are one voice, while five newspapers are five.
Each outlet counts with the highest curator weight among its feeds, and the sum decays
with the age of the story's newest entry (halving every ``half_life``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

# Host prefixes that name a server, not an outlet.
_SERVER_PREFIXES = ("www.", "www2.", "m.", "mobile.", "amp.", "feeds.", "feed.", "rss.")


@dataclass(frozen=True, slots=True)
class Member:
    """One entry of a story, with what ranking needs of its feed."""

    entry_id: int
    url: str | None
    title: str
    published: datetime
    lang: str | None
    feed_name: str
    feed_url: str
    site_url: str | None
    section: str | None
    weight: float
    priority: int
    signal: str = ""
    similarity: float = 0.0

    @property
    def outlet(self) -> str:
        return outlet_of(self.url, self.site_url, self.feed_url)


@dataclass(frozen=True, slots=True)
class RankedStory:
    id: int
    score: float
    members: tuple[Member, ...]
    """Every entry, oldest first."""
    lead: Member
    """The best source: its headline is the story's."""
    read_on: tuple[Member, ...]
    """One entry per outlet, best source first."""

    @property
    def title(self) -> str:
        return self.lead.title

    @property
    def first(self) -> datetime:
        return min(m.published for m in self.members)

    @property
    def last(self) -> datetime:
        return max(m.published for m in self.members)

    @property
    def section(self) -> str | None:
        """The section of the best source's feed, else the first member's that has one."""
        if self.lead.section:
            return self.lead.section
        return next((m.section for m in self.members if m.section), None)


def outlet_of(url: str | None, *fallbacks: str | None) -> str:
    """The outlet an entry comes from: its host without a server prefix.

    ``https://www.nytimes.com/…`` and ``https://rss.nytimes.com/…`` are both
    ``nytimes.com``, while ``alice.substack.com`` and ``bob.substack.com`` stay two
    outlets (cutting hosts down to their registered domain would need the public
    suffix list, and would make every blog on one platform a single voice).
    """
    for candidate in (url, *fallbacks):
        host = (urlsplit(candidate).hostname or "") if candidate else ""
        if host:
            return _without_server_prefix(host)
    return ""


def _without_server_prefix(host: str) -> str:
    host = host.lower().rstrip(".")
    for prefix in _SERVER_PREFIXES:
        if host.startswith(prefix) and host.count(".") > 1:
            return host[len(prefix) :]
    return host


def best_source(members: Iterable[Member]) -> Member:
    """Highest feed priority, then weight, then the earliest report."""
    return min(members, key=_source_order)


def _source_order(m: Member) -> tuple[int, float, datetime, int]:
    return (-m.priority, -m.weight, m.published, m.entry_id)


def read_on(members: Sequence[Member]) -> tuple[Member, ...]:
    """One entry per outlet (that outlet's best), best outlets first."""
    by_outlet: dict[str, Member] = {}
    for m in sorted(members, key=_source_order):
        by_outlet.setdefault(m.outlet or m.feed_url, m)
    return tuple(by_outlet.values())


def score(members: Sequence[Member], now: datetime, half_life: timedelta) -> float:
    """Outlets (each at its best feed weight), decayed by the newest entry's age."""
    weights: dict[str, float] = {}
    for m in members:
        key = m.outlet or m.feed_url
        weights[key] = max(weights.get(key, 0.0), m.weight)
    newest = max(m.published for m in members)
    age = max((now - newest).total_seconds(), 0.0)
    decay = math.pow(0.5, age / half_life.total_seconds())
    return round(sum(weights.values()) * decay, 6)


def rank(
    stories: Iterable[tuple[int, Sequence[Member]]], now: datetime, half_life: timedelta
) -> list[RankedStory]:
    """Stories best first; ties go to the newer story, then the lower id."""
    ranked = [
        RankedStory(
            id=story_id,
            score=score(members, now, half_life),
            members=tuple(members),
            lead=best_source(members),
            read_on=read_on(members),
        )
        for story_id, members in stories
        if members
    ]
    ranked.sort(key=lambda s: (-s.score, -s.last.timestamp(), s.id))
    return ranked

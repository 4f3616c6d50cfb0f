"""What one issue of the digest holds: the contract between ``curate`` and ``render``.

``curate`` decides (pure: stories + picks + section rules + ``now`` in, a plan out);
``render`` only lays the plan out, so a template never has to decide anything and a
golden-file test can pin the output of a hand-made plan.

Every text here is plain text (never HTML): the templates escape it. Curator texts keep
their paragraphs as separate strings.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

SECTION_KINDS = ("featured", "list", "photo", "tools", "background")
AUTO_KINDS = ("featured", "list")
"""Section kinds that ``auto`` fills from the top stories; the others hold picks only."""


@dataclass(frozen=True, slots=True)
class SectionConfig:
    """A ``[[section]]`` of newsdesk.toml: the rules ``curate`` fills a section by."""

    id: str
    title: str
    kind: str = "list"
    auto: int = 0
    """Fill up to this many items from the top stories the curator did not pick."""
    min_items: int = 0
    """Below this many items, ``send`` holds the issue."""


@dataclass(frozen=True, slots=True)
class Link:
    """One line of a "Read on" or sources list: ``outlet: title``, linked."""

    outlet: str
    title: str
    url: str


@dataclass(frozen=True, slots=True)
class Item:
    """A story, a tool or an explainer, as one section shows it.

    Which fields a template uses depends on the section's kind: a ``featured`` item uses
    all of them; a ``list`` item its headline, first paragraph and url; a ``tools`` item its
    headline (the tool's name), first paragraph (one line) and url; a ``background`` item
    its headline, paragraphs and sources.
    """

    headline: str
    url: str | None = None
    """Where the headline links to (the best source's article, or the picked URL)."""
    subheadline: str = ""
    paragraphs: tuple[str, ...] = ()
    why: tuple[str, ...] = ()
    """The "why it matters" bullets."""
    sources: tuple[Link, ...] = ()
    """The "Read on" list: one link per outlet, best first (hidden sources removed)."""
    story_id: int | None = None
    picked: bool = False
    """True when the curator picked it; False when auto-filled from the top stories."""
    tags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Photo:
    """The photo of the day."""

    image: str
    """An absolute http(s) URL of the image."""
    width: int
    height: int
    alt: str
    prompt: str = ""
    """The prompt that made the image (for generated images)."""
    credit: str = ""
    caption: str = ""
    link: str | None = None


@dataclass(frozen=True, slots=True)
class Section:
    id: str
    title: str
    kind: str
    """One of :data:`SECTION_KINDS`."""
    items: tuple[Item, ...] = ()
    photo: Photo | None = None
    """Only for ``kind == "photo"``."""
    min_items: int = 0

    @property
    def count(self) -> int:
        return len(self.items) + (1 if self.photo else 0)

    @property
    def short(self) -> bool:
        """Below its minimum: ``send`` holds the issue."""
        return self.count < self.min_items

    @property
    def empty(self) -> bool:
        return self.count == 0


@dataclass(frozen=True, slots=True)
class DigestPlan:
    name: str
    """The newsletter's name."""
    language: str
    """Language of the labels and date formats (``de``, ``en``)."""
    issue_date: date
    """The issue's date in the newsletter's time zone."""
    subject: str
    """The subject line: already one line, safe for a header."""
    preheader: str
    """The inbox preview text after the subject."""
    intro: tuple[str, ...] = ()
    """The curator's opening paragraphs."""
    sections: tuple[Section, ...] = ()
    """In the order of newsdesk.toml; empty sections included (templates skip them)."""
    warnings: tuple[str, ...] = ()
    """What the curator should know before sending: unmatched picks, short sections."""

    @property
    def story_ids(self) -> tuple[int, ...]:
        """Every story the issue shows, once, in order (they are not candidates again)."""
        seen: dict[int, None] = {}
        for section in self.sections:
            for item in section.items:
                if item.story_id is not None:
                    seen.setdefault(item.story_id, None)
        return tuple(seen)

    @property
    def short_sections(self) -> tuple[Section, ...]:
        return tuple(s for s in self.sections if s.short)


@dataclass(frozen=True, slots=True)
class ArchivedIssue:
    """A sent issue, as the archive index and its Atom feed list it."""

    slug: str
    """File name stem in the archive, e.g. ``2026-12-07``."""
    subject: str
    preheader: str
    issue_date: date
    sent_at: datetime
    """UTC."""

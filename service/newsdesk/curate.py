"""Decide what the next issue holds: ranked stories + the curator's picks + section rules.

Pure: no I/O, no clock (the issue date is an argument). The rules, in order:

1. A story picked with a skip tag (``[issue] skip_tags``) is out: not shown, not auto-filled.
   Stories sent in an earlier issue are out too.
2. Each section shows its picks in the order of the picks file, with the curator's
   headline, text, bullets and hidden sources applied.
3. A ``featured`` or ``list`` section with ``auto = N`` is topped up to N items from the
   best-ranked stories nobody has shown yet: the stories of the feeds assigned to that
   section, or, when no feed names the section, from every story.
4. ``[photo]`` goes to the first section of kind ``photo``.
5. A section below its ``min_items`` is reported: ``send`` holds such an issue.

Problems the curator should see before sending (a picked story that no longer exists,
a pick that was already sent) become warnings of the plan, never a crash.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date

from newsdesk.identity import canonical_url, plain_text
from newsdesk.message import header_text
from newsdesk.picks import Pick, Picks
from newsdesk.plan import AUTO_KINDS, DigestPlan, Item, Link, Section, SectionConfig
from newsdesk.ranking import RankedStory, outlet_of

SUBJECT_MAX = 120
PREHEADER_MAX = 140

# How much of an entry's summary an auto-filled item shows: (sentences, characters).
EXCERPT = {"featured": (3, 480), "list": (2, 280), "background": (3, 480)}

_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+(?=[\"'„“‚(\[]?[A-ZÄÖÜ0-9])")


@dataclass(frozen=True, slots=True)
class Candidates:
    """What the store knows, handed to :func:`curate`."""

    ranked: Sequence[RankedStory]
    """Stories of the lookback window, best first."""
    picked: Mapping[int, RankedStory]
    """Every story a pick names, by the id the pick wrote (merged ids lead to the survivor)."""
    summaries: Mapping[int, str]
    """Entry id -> summary (sanitised HTML) of each story's best source."""
    sent: frozenset[int] = frozenset()
    """Stories shown in an earlier issue."""
    assigned: frozenset[str] = frozenset()
    """Section ids that at least one feed names."""


def curate(
    *,
    name: str,
    language: str,
    issue_date: date,
    sections: Sequence[SectionConfig],
    picks: Picks,
    candidates: Candidates,
) -> DigestPlan:
    warnings: list[str] = []
    where = str(picks.path)
    skipped = {
        story.id
        for p in picks.picks
        if p.story is not None and picks.skipped(p)
        if (story := candidates.picked.get(p.story)) is not None
    }
    used: set[int] = set(candidates.sent) | skipped
    items: dict[str, list[Item]] = {s.id: [] for s in sections}
    kinds = {s.id: s.kind for s in sections}

    for pick in picks.picks:
        if picks.skipped(pick):
            continue
        kind = kinds.get(pick.section)
        if kind is None:  # picks.load_picks has rejected it already; a stale plan input
            continue
        if kind == "photo":
            warnings.append(f"{where}: {pick.where}: a photo section shows [photo], not picks")
            continue
        if pick.url is not None:
            items[pick.section].append(_url_item(pick, kind))
            continue
        story = candidates.picked.get(pick.story or 0)
        if story is None:
            warnings.append(f"{where}: {pick.where}: story {pick.story} not found")
            continue
        if story.id in candidates.sent:
            warnings.append(
                f"{where}: {pick.where}: story {pick.story} was sent in an earlier issue"
            )
            continue
        if story.id in used:
            warnings.append(f"{where}: {pick.where}: story {pick.story} is already in the issue")
            continue
        used.add(story.id)
        items[pick.section].append(_story_item(story, kind, candidates.summaries, pick))

    for section in sections:
        if section.kind not in AUTO_KINDS or len(items[section.id]) >= section.auto:
            continue
        own = section.id in candidates.assigned
        for story in candidates.ranked:
            if len(items[section.id]) >= section.auto:
                break
            if story.id in used or (own and story.section != section.id):
                continue
            used.add(story.id)
            items[section.id].append(_story_item(story, section.kind, candidates.summaries))

    photo_section = next((s.id for s in sections if s.kind == "photo"), None)
    if picks.photo is not None and photo_section is None:
        warnings.append(f"{where}: photo: no section of kind 'photo' in newsdesk.toml")
    photo = picks.photo

    built = tuple(
        Section(
            id=s.id,
            title=s.title,
            kind=s.kind,
            items=tuple(items[s.id]),
            photo=photo if s.id == photo_section else None,
            min_items=s.min_items,
        )
        for s in sections
    )
    for short in built:
        if short.short:
            warnings.append(
                f"section {short.id!r} has {short.count} of at least "
                f"{short.min_items} items: send holds the issue"
            )
    shown = [item for section in built for item in section.items]
    return DigestPlan(
        name=name,
        language=language,
        issue_date=issue_date,
        subject=_subject(picks.subject, name, built),
        preheader=one_line(picks.preheader or " · ".join(i.headline for i in shown[1:4]))[
            :PREHEADER_MAX
        ],
        intro=picks.intro,
        sections=built,
        warnings=tuple(warnings),
    )


def _story_item(
    story: RankedStory, kind: str, summaries: Mapping[int, str], pick: Pick | None = None
) -> Item:
    hidden = _hidden(pick.hide) if pick else set()
    sources = [
        Link(outlet=m.feed_name, title=one_line(m.title), url=_clean_link(m.url))
        for m in story.read_on
        if m.url and not ({m.outlet, _clean_link(m.url)} & hidden)
    ]
    if pick:
        sources += _links(pick)
    paragraphs = pick.text if pick and pick.text else ()
    if not paragraphs:
        sentences, chars = EXCERPT.get(kind, (2, 280))
        text = excerpt(summaries.get(story.lead.entry_id, ""), sentences, chars)
        paragraphs = (text,) if text and text != story.title else ()
    return Item(
        headline=one_line(pick.headline if pick and pick.headline else story.title),
        url=_clean_link(story.lead.url) if story.lead.url else None,
        subheadline=pick.subheadline if pick else "",
        paragraphs=paragraphs,
        why=pick.why if pick else (),
        sources=tuple(sources),
        story_id=story.id,
        picked=pick is not None,
        tags=pick.tags if pick else (),
    )


def _clean_link(url: str) -> str:
    """Links in the digest leave tracking parameters (utm_*, fbclid...) behind."""
    return canonical_url(url) or url


def _url_item(pick: Pick, kind: str) -> Item:
    return Item(
        headline=pick.headline,
        url=pick.url,
        subheadline=pick.subheadline,
        paragraphs=pick.text,
        why=pick.why,
        sources=tuple(_links(pick)),
        picked=True,
        tags=pick.tags,
    )


def _links(pick: Pick) -> list[Link]:
    return [
        Link(outlet=s.outlet or outlet_of(s.url), title=s.title or s.url, url=s.url)
        for s in pick.sources
    ]


def _hidden(hide: Sequence[str]) -> set[str]:
    """Outlets as written (``nytimes.com``) and article URLs in canonical form."""
    out = set()
    for value in hide:
        if "://" in value:
            out.add(canonical_url(value) or value)
        else:
            out.add(outlet_of(f"https://{value.strip().lower()}/"))
    return out


def _subject(chosen: str, name: str, sections: Sequence[Section]) -> str:
    if chosen:
        return one_line(chosen)[:SUBJECT_MAX]
    lead = next((s.items[0] for s in sections if s.kind == "featured" and s.items), None)
    lead = lead or next((s.items[0] for s in sections if s.items), None)
    subject = f"{name}: {lead.headline}" if lead else name
    return shorten(one_line(subject), SUBJECT_MAX)


def excerpt(html: str, sentences: int, chars: int) -> str:
    """The first ``sentences`` sentences of a summary that fit in ``chars``."""
    text = plain_text(html)
    if not text:
        return ""
    parts = _SENTENCE_END.split(text)
    out = parts[0]
    for part in parts[1:sentences]:
        if len(out) + 1 + len(part) > chars:
            break
        out = f"{out} {part}"
    return shorten(out, chars)


def shorten(text: str, limit: int) -> str:
    """Cut at a word boundary with an ellipsis when ``text`` is longer than ``limit``."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1].rsplit(" ", 1)[0].rstrip(" ,;:-–")
    return f"{cut}…"


def one_line(text: str) -> str:
    """Safe for a header and a heading: control characters and line breaks become spaces."""
    return header_text(text, limit=None)

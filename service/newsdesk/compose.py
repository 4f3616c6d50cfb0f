"""The next issue, from the store to files: steps 8 and 9 of the flow in DESIGN.md.

Gathers what ``curate`` needs (ranked stories of the lookback window, the picked stories,
their summaries, what earlier issues sent), renders the plan, writes a preview, and, once
an issue is sent, archives it: its picks file goes to ``issues/<slot>.toml`` and a fresh
one takes its place, its HTML joins the archive folder with an index page and an Atom feed.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import date, datetime
from email.utils import make_msgid
from pathlib import Path
from zoneinfo import ZoneInfo

from newsdesk.clustering import cluster_pending
from newsdesk.config import Config
from newsdesk.curate import Candidates, curate
from newsdesk.errors import TemplateError, UsageError
from newsdesk.labels import load_labels
from newsdesk.message import build_message, split_address
from newsdesk.picks import Picks, add_pick, fresh_picks, load_picks, write_atomically
from newsdesk.plan import ArchivedIssue, DigestPlan
from newsdesk.ranking import RankedStory, rank
from newsdesk.render import HTML_SIZE_LIMIT, RenderedIssue, Renderer, check_templates
from newsdesk.store import Store
from newsdesk.store.issues import IssueRow, slug_of


@dataclass(frozen=True)
class ComposedIssue:
    slot: str
    """Which issue this is: its date in the newsletter's time zone (``2026-12-07``)."""
    plan: DigestPlan
    picks: Picks
    rendered: RenderedIssue

    @property
    def warnings(self) -> tuple[str, ...]:
        return self.plan.warnings + self.rendered.warnings

    @property
    def held(self) -> bool:
        """A section is below its minimum: ``send`` holds the issue."""
        return bool(self.plan.short_sections)

    @property
    def oversize(self) -> bool:
        return self.rendered.size > HTML_SIZE_LIMIT


def issue_labels(config: Config) -> dict[str, str]:
    """The template strings of the newsletter's language, with the curator's overrides."""
    return load_labels(
        config.newsletter.language,
        folder=config.digest.templates,
        overrides=dict(config.digest.labels),
    )


def renderer(config: Config) -> Renderer:
    return Renderer(
        language=config.newsletter.language,
        labels=issue_labels(config),
        folder=config.digest.templates,
    )


def issue_picks(config: Config) -> Picks:
    return load_picks(config.digest.picks, [s.id for s in config.digest_sections])


def issue_date(config: Config, now: datetime) -> date:
    return now.astimezone(ZoneInfo(config.newsletter.timezone)).date()


def plan_issue(config: Config, store: Store, *, now: datetime) -> tuple[DigestPlan, Picks]:
    """Curate the next issue from the store and the picks file (no rendering)."""
    picks = issue_picks(config)
    cluster_pending(store, config.cluster.params, now=now)
    plan = curate(
        name=config.newsletter.name,
        language=config.newsletter.language,
        issue_date=issue_date(config, now),
        sections=config.digest_sections,
        picks=picks,
        candidates=gather(config, store, picks, now=now),
    )
    return plan, picks


def gather(config: Config, store: Store, picks: Picks, *, now: datetime) -> Candidates:
    half_life = config.cluster.half_life
    active = store.stories.active(now - config.newsletter.lookback, now)
    wanted = {p.story for p in picks.picks if p.story is not None}
    resolved: dict[int, int] = {}
    for story_id in sorted(wanted):
        try:
            resolved[story_id] = store.stories.get(story_id).id
        except UsageError:
            continue  # curate reports it as an unmatched pick
    ids = sorted({s.id for s in active} | set(resolved.values()))
    members = store.stories.members(ids)
    everything = rank(((i, members.get(i, [])) for i in ids), now, half_life)
    by_id = {r.id: r for r in everything}
    window = {s.id for s in active}
    ranked = [r for r in everything if r.id in window]  # still best first
    picked = {asked: by_id[real] for asked, real in resolved.items() if real in by_id}
    leads = [r.lead.entry_id for r in by_id.values()]
    return Candidates(
        ranked=ranked,
        picked=picked,
        summaries=store.entries.summaries(leads),
        sent=store.issues.sent_story_ids(),
        assigned=frozenset(
            f.section for f in store.feeds.listed(include_removed=False) if f.section
        ),
    )


def hidden_stories(config: Config, store: Store) -> frozenset[int]:
    """Stories that are not candidates: sent before, or picked with a skip tag."""
    picks = issue_picks(config)
    skipped = set()
    for pick in picks.picks:
        if pick.story is not None and picks.skipped(pick):
            try:
                skipped.add(store.stories.get(pick.story).id)
            except UsageError:
                continue
    return store.issues.sent_story_ids() | skipped


def compose(
    config: Config, store: Store, *, now: datetime, slot: str | None = None
) -> ComposedIssue:
    """Plan and render the next issue (for ``slot``, else the issue date's first free one)."""
    plan, picks = plan_issue(config, store, now=now)
    slot = slot or next_slot(store, plan.issue_date)
    rendered = renderer(config).issue(
        plan, unsubscribe_url=preview_unsubscribe_url(config), online_url=online_url(config, slot)
    )
    return ComposedIssue(slot=slot, plan=plan, picks=picks, rendered=rendered)


def next_slot(store: Store, day: date) -> str:
    """The issue's date; a second issue on one day is ``2026-12-07-2``."""
    slot, n = day.isoformat(), 1
    while store.issues.slot_taken(slot):
        n += 1
        slot = f"{day.isoformat()}-{n}"
    return slot


def online_url(config: Config, slot: str) -> str:
    return f"{config.newsletter.base_url.rstrip('/')}/archive/{slug_of(slot)}.html"


def preview_unsubscribe_url(config: Config) -> str:
    """Previews and test copies carry a link that unsubscribes nobody."""
    return f"{config.newsletter.base_url.rstrip('/')}/unsubscribe/preview"


@dataclass(frozen=True)
class PreviewFiles:
    html: Path
    text: Path
    eml: Path
    size: int
    warnings: tuple[str, ...]


def write_preview(
    config: Config, composed: ComposedIssue, out: Path, *, now: datetime
) -> PreviewFiles:
    """issue.html, issue.txt and issue.eml (addressed to the sender) in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    r = composed.rendered
    sender = config.newsletter.sender
    name, address = split_address(sender)
    domain = address.rpartition("@")[2] or "localhost"
    message = build_message(
        subject=r.subject,
        sender=sender,
        to=address,
        to_name=name,
        text=r.text,
        html=r.html,
        date=now,
        message_id=make_msgid("preview", domain=domain),
    )
    files = PreviewFiles(
        html=out / "issue.html",
        text=out / "issue.txt",
        eml=out / "issue.eml",
        size=r.size,
        warnings=composed.warnings,
    )
    write_atomically(files.html, r.html)
    write_atomically(files.text, r.text)
    files.eml.write_bytes(message.as_bytes())
    return files


def check_digest(config: Config, store: Store, *, now: datetime) -> list[str]:
    """Templates compile, the picks file is valid and the next issue renders once.

    Raises ConfigError/TemplateError for what must be fixed; returns the warnings.
    """
    problems = check_templates(config.digest.templates)
    if problems:
        raise TemplateError("\n".join(problems))
    return list(compose(config, store, now=now).warnings)


UNSUBSCRIBE_MARKER = "https://newsdesk.invalid/unsubscribe/NEWSDESK-UNSUBSCRIBE-TOKEN"
"""Stands for each subscriber's own unsubscribe link in the frozen issue."""
GREETING_MARKER = "NEWSDESK-GREETING"
"""Stands for each subscriber's greeting ("Hallo Anna,") in the frozen issue."""


def render_for_sending(config: Config, composed: ComposedIssue) -> RenderedIssue:
    """The issue with markers where each subscriber's greeting and unsubscribe link go."""
    return renderer(config).issue(
        composed.plan,
        unsubscribe_url=UNSUBSCRIBE_MARKER,
        online_url=online_url(config, composed.slot),
        greeting=GREETING_MARKER if config.mail.greeting else None,
    )


def open_issue(
    config: Config, store: Store, composed: ComposedIssue, *, now: datetime
) -> tuple[IssueRow, bool]:
    """Freeze the issue for sending (once per slot); True if this call created it.

    The issue is rendered once more, with markers where each subscriber's greeting and
    unsubscribe link go (``delivery`` fills them in). The one that creates the issue also
    keeps its picks file as ``issues/<slot>.toml``, starts a fresh one, and adds the
    issue to the web archive, so the "view online" link works when the first mail lands.
    """
    plan = composed.plan
    sending = render_for_sending(config, composed)
    row, created = store.issues.open(
        slot=composed.slot,
        subject=plan.subject,
        preheader=plan.preheader,
        html=sending.html,
        text=sending.text,
        stories_by_section=[
            (item.story_id, section.id)
            for section in plan.sections
            for item in section.items
            if item.story_id is not None
        ],
        now=now,
    )
    if created:
        picks_path = config.digest.picks
        if picks_path.exists():
            config.digest.issues.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(picks_path, config.digest.issues / f"{row.slug}.toml")
        write_atomically(picks_path, fresh_picks(composed.picks.skip_tags))
        write_archive(config, store, composed.rendered.html, row.archived, now=now)
    return row, created


def write_archive(
    config: Config, store: Store, html: str, issue: ArchivedIssue, *, now: datetime
) -> None:
    folder = config.digest.archive
    write_atomically(folder / f"{issue.slug}.html", html)
    issues = store.issues.archived()
    r = renderer(config)
    base_url = config.newsletter.base_url.rstrip("/")
    name = config.newsletter.name
    write_atomically(folder / "index.html", r.archive_index(issues, name=name, base_url=base_url))
    write_atomically(
        folder / "feed.atom", r.archive_feed(issues, name=name, base_url=base_url, updated=now)
    )


def pick_story(
    config: Config,
    store: Store,
    target: str,
    *,
    section: str | None,
    tags: tuple[str, ...],
    note: str,
    headline: str,
    now: datetime,
) -> str:
    """``newsdesk pick``: add a story id or a URL to the picks file; returns a summary line."""
    path = config.digest.picks
    issue_picks(config)  # a broken picks file is reported before it is edited
    known = [s.id for s in config.digest_sections]
    story: RankedStory | None = None
    if target.isdigit():
        try:
            row = store.stories.get(int(target))
        except UsageError:
            raise UsageError(f"{path}: story {target} not found (see `newsdesk stories`)") from None
        members = store.stories.members([row.id]).get(row.id, [])
        if not members:
            raise UsageError(f"{path}: story {target} has no entries left")
        (story,) = rank([(row.id, members)], now, config.cluster.half_life)
    elif not target.lower().startswith(("http://", "https://")):
        raise UsageError(f"{target}: expected a story id (see `newsdesk stories`) or a URL")
    elif not headline:
        raise UsageError(f"{path}: a URL pick needs --headline")
    section = section or (story.section if story and story.section in known else None)
    if section is None:
        raise UsageError(f"{path}: name a section with --section (known: {', '.join(known)})")
    if section not in known:
        raise UsageError(f"{path}: unknown section {section!r} (known: {', '.join(known)})")
    index = add_pick(
        path,
        section=section,
        story=story.id if story else None,
        url=None if story else target,
        tags=tags,
        note=note,
        headline=headline,
    )
    what = f"story {story.id}: {story.title}" if story else target
    return f"{path}: pick[{index}] {what} -> {section}"

"""Send an issue to every subscriber exactly once: step 10 of the flow, driven by the ledger.

``send_issue`` composes and freezes the next issue (or picks up the one a crash left
unfinished), queues one ledger row per active subscriber, and works through the rows:
claim ("sending", committed), hand the message to the transport, record the outcome
("sent", committed). A killed process leaves at most one row "sending"; the next run
turns it "unknown" and, by ``[mail] unknown``, sends it again with the same Message-ID
(so the duplicate, if the first one had gone out, is recognisable) or holds it.

Temporary refusals are retried with exponential backoff, then left "deferred" for the
next run; permanent ones fail the row, and a 5.1.x bounces the subscriber. After
``max_failures`` failed messages in a row the send pauses: the server is refusing us,
and going on would only burn through the list.
"""

from __future__ import annotations

import html
import logging
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import make_msgid
from functools import cached_property

from newsdesk.compose import (
    GREETING_MARKER,
    UNSUBSCRIBE_MARKER,
    ComposedIssue,
    compose,
    issue_labels,
    open_issue,
    preview_unsubscribe_url,
    render_for_sending,
)
from newsdesk.config import Config
from newsdesk.errors import UsageError
from newsdesk.health import failing_feeds, report_html, report_text
from newsdesk.keys import signing_keys
from newsdesk.message import Body, MessageTemplate, build_message, mailto, split_address
from newsdesk.send import DeliveryError, OutboxTransport, SmtpSettings, SmtpTransport, Transport
from newsdesk.store import Store
from newsdesk.store.daemons import this_instance
from newsdesk.store.deliveries import Delivery
from newsdesk.store.issues import IssueRow
from newsdesk.store.subscribers import Subscriber
from newsdesk.tokens import SigningKey, message_id, unsubscribe_token

log = logging.getLogger("newsdesk.delivery")

Progress = Callable[[int, int], None]
"""Called with (messages done, messages in this run) after each message."""

REFRESH_EVERY = 200
"""Rows between two reads of the next rows' subscribers (an unsubscribe mid-send)."""

GIVE_UP_FACTOR = 3
"""A deferred message is given up (failed) after this many runs' worth of retries."""


@dataclass
class SendSummary:
    slot: str
    subscribers: int = 0
    sent: int = 0
    failed: int = 0
    deferred: int = 0
    bounced: int = 0
    skipped: int = 0
    held: int = 0
    """"unknown" messages left alone (``[mail] unknown = "hold"``)."""
    earlier: int = 0
    """Sent by an earlier run of this issue."""
    resumed: bool = False
    paused: str | None = None
    stopped: bool = False
    """Ended early on request (the daemon is stopping); the next run goes on."""
    finished: bool = False
    problems: list[str] = field(default_factory=list)

    def line(self) -> str:
        parts = [
            f"{self.sent} sent",
            f"{self.failed} failed",
            f"{self.deferred} deferred",
            f"{self.bounced} bounced",
            f"{self.skipped} skipped",
        ]
        if self.earlier:
            parts.append(f"{self.earlier} sent earlier")
        if self.held:
            parts.append(f"{self.held} unknown held (send --resume --resend-unknown)")
        verb = "resumed" if self.resumed else "sent"
        state = (
            "paused"
            if self.paused
            else "stopped"
            if self.stopped
            else "finished"
            if self.finished
            else "not finished"
        )
        return f"issue {self.slot} ({verb}, {state}): " + ", ".join(parts)


_MARKERS = (UNSUBSCRIBE_MARKER, GREETING_MARKER)


@dataclass(frozen=True)
class _IssueTemplate:
    """What every message of an issue shares, encoded once: headers and both bodies."""

    message: MessageTemplate
    text: Body
    html: Body


@dataclass
class _Context:
    config: Config
    store: Store
    key: SigningKey
    labels: dict[str, str]
    clock: Callable[[], datetime]
    templates: dict[int, _IssueTemplate] = field(default_factory=dict)
    """The message template of each issue, made once per run."""
    stop: Callable[[], bool] | None = None
    """Asked before each message: True ends the run (see ``send_issue``)."""
    instance: str = field(default_factory=this_instance)
    """Who claims the ledger rows (``host:pid``)."""

    @cached_property
    def sender_address(self) -> str:
        return split_address(self.config.newsletter.sender)[1]

    @cached_property
    def domain(self) -> str:
        return _domain_of(self.sender_address)


def transport_for(config: Config) -> Transport:
    mail = config.mail
    if mail.transport == "outbox":
        return OutboxTransport(mail.outbox)
    s = mail.smtp
    return SmtpTransport(
        SmtpSettings(
            host=s.host,
            port=s.port,
            security=s.security,
            user=s.user,
            password=s.password,
            timeout=s.timeout.total_seconds(),
            ca_file=str(s.ca_file) if s.ca_file else None,
        )
    )


def send_issue(
    config: Config,
    store: Store,
    *,
    clock: Callable[[], datetime],
    resume: bool = False,
    force: bool = False,
    resend_unknown: bool = False,
    transport: Transport | None = None,
    progress: Progress | None = None,
    sleep: Callable[[float], None] = time.sleep,
    slot: str | None = None,
    stop: Callable[[], bool] | None = None,
) -> SendSummary:
    """Send the next issue, or finish the unfinished one; see the module docstring.

    ``slot`` names the issue to send (the daemon's scheduled one): it is opened if no
    process has yet, else resumed. ``stop`` is asked between messages; when it says
    yes, the send ends there with every row accounted for (the next run goes on).
    """
    ctx = _context(config, store, clock)
    ctx.stop = stop
    # Which issue, and opening it, one process at a time: two sends started together
    # must not open two issues (the second one joins the first's).
    with store.lock("open-issue", what="opening an issue", wait=True):
        issue = store.issues.by_slot(slot) if slot is not None else store.issues.unfinished()
        if issue is None and resend_unknown:
            last = store.issues.last()
            if last is not None and store.deliveries.counts(last.id)["unknown"]:
                issue = last
        resumed = issue is not None
        if issue is None:
            if resume or resend_unknown:
                raise UsageError("nothing to resume: every issue has been sent")
            issue = _open(config, store, clock, force=force, slot=slot)
    summary = SendSummary(slot=issue.slot, resumed=resumed)
    _sync_subscribers(config, store, clock, summary)

    now = clock()
    # One sender at a time on SQLite (a lock): every row left "sending" is a crash's.
    # On PostgreSQL other instances may be sending theirs: only old ones are in doubt.
    shared = store.dialect == "postgresql"
    stale_before = now - in_doubt_after(config) if shared else None
    recovered = store.deliveries.recover(issue.id, now, stale_before=stale_before)
    if recovered:
        log.warning("issue %s: %d messages in doubt after a crash (unknown)", issue.slot, recovered)
    active = store.subscribers.active()
    store.deliveries.queue(
        issue.id,
        [(s.id, message_id(issue.slot, s.id, ctx.key, ctx.domain)) for s in active],
        now,
    )
    resend = config.mail.unknown == "resend" or resend_unknown
    states = ("queued", "deferred", "unknown") if resend else ("queued", "deferred")
    rows = store.deliveries.to_send(issue.id, states)
    if shared and rows:  # instances start at different rows, so they rarely meet
        start = zlib.crc32(ctx.instance.encode()) % len(rows)
        rows = rows[start:] + rows[:start]
    summary.subscribers = len(active)

    own = transport is None
    transport = transport or transport_for(config)
    try:
        _work(ctx, issue, rows, active, transport, summary, progress, sleep)
    except _Stop as stop:
        summary.paused = f"issue {issue.slot}: paused: {stop}; `newsdesk send --resume` goes on"
        log.error(summary.paused)
    finally:
        if own:
            transport.close()

    counts = store.deliveries.counts(issue.id)
    summary.earlier = counts["sent"] - summary.sent
    summary.held = 0 if resend else counts["unknown"]
    left = counts["queued"] + counts["sending"] + counts["deferred"]
    left += counts["unknown"] if resend else 0
    if not left and not summary.paused and not summary.stopped:
        store.issues.mark_sent(issue.id, clock())
        summary.finished = True
    return summary


def _work(
    ctx: _Context,
    issue: IssueRow,
    rows: list[Delivery],
    subscribers: list[Subscriber],
    transport: Transport,
    summary: SendSummary,
    progress: Progress | None,
    sleep: Callable[[float], None],
) -> None:
    mail = ctx.config.mail
    deliveries = ctx.store.deliveries
    in_a_row = 0
    interval = 1.0 / mail.rate_limit if mail.rate_limit else 0.0
    next_at = time.monotonic()
    active = {s.id: s for s in subscribers}
    accepted: int | None = None
    """The row whose message the server just accepted: its "sent" is committed together
    with the next row's "sending" (one commit per message instead of two)."""
    claims = deliveries.claims(ctx.instance)
    try:
        for done, row in enumerate(rows, 1):
            if ctx.stop is not None and ctx.stop():
                summary.stopped = True
                log.info("issue %s: stopping; %d messages left", issue.slot, len(rows) - done + 1)
                return
            if done % REFRESH_EVERY == 0:
                # An unsubscribe mid-send counts within a moment: the subscribers of the
                # next rows are read again (only theirs: re-reading everyone this often
                # made a send quadratic, 0.15 s per read at 10,000 subscribers).
                window = rows[done - 1 : done - 1 + REFRESH_EVERY]
                active = {
                    s.id: s
                    for s in ctx.store.subscribers.active_among([r.subscriber_id for r in window])
                }
            subscriber = active.get(row.subscriber_id)
            if subscriber is None:
                gone = ctx.store.subscribers.get_by_id(row.subscriber_id)
                deliveries.finish(
                    row.id, "skipped", ctx.clock(), gone.status if gone else "removed"
                )
                summary.skipped += 1
            elif row.state == "deferred" and row.attempts >= GIVE_UP_FACTOR * (mail.retries + 1):
                deliveries.finish(row.id, "failed", ctx.clock(), "gave up: still refused")
                summary.failed += 1
            else:
                raw = personalise(ctx, issue, subscriber, row.message_id)
                claimed = claims.claim(row, ctx.clock(), sent=accepted)
                accepted = None
                if claimed:
                    if interval:
                        wait = next_at - time.monotonic()
                        if wait > 0:
                            sleep(wait)
                        next_at = max(next_at, time.monotonic()) + interval
                    outcome = _deliver(ctx, transport, issue.slot, subscriber, raw, row, sleep)
                    if outcome == "sent":
                        accepted = row.id
                        summary.sent += 1
                        in_a_row = 0
                    elif outcome == "bounced":
                        summary.bounced += 1
                    else:
                        summary.failed += outcome == "failed"
                        summary.deferred += outcome == "deferred"
                        in_a_row += 1
            if progress:
                progress(done, len(rows))
            if in_a_row >= mail.max_failures:
                summary.paused = (
                    f"issue {issue.slot}: paused after {in_a_row} failed messages in a row "
                    "(the server is refusing us; see `newsdesk status`); "
                    "`newsdesk send --resume` goes on"
                )
                log.error(summary.paused)
                return
    finally:
        claims.close()
        if accepted is not None:
            deliveries.finish(accepted, "sent", ctx.clock())


class _Stop(Exception):
    """The server cannot be used (unreachable, TLS or login refused): pause the send."""


def _deliver(
    ctx: _Context,
    transport: Transport,
    slot: str,
    subscriber: Subscriber,
    raw: bytes,
    row: Delivery,
    sleep: Callable[[float], None],
) -> str:
    """Hand one claimed message over, retrying temporary refusals.

    A refusal is recorded here; an acceptance by the caller (see ``_work``)."""
    mail = ctx.config.mail
    deliveries = ctx.store.deliveries
    for attempt in range(mail.retries + 1):
        try:
            transport.send(ctx.sender_address, subscriber.email, raw, row.message_id)
        except DeliveryError as exc:
            if exc.temporary and attempt < mail.retries:
                sleep(mail.retry_backoff.total_seconds() * 2**attempt)
                continue
            now = ctx.clock()
            if exc.connection:
                # Not this message's fault: it goes back in the queue and the send stops.
                deliveries.finish(row.id, "queued", now, exc.reason)
                raise _Stop(exc.reason) from None
            state = "deferred" if exc.temporary else "failed"
            deliveries.finish(row.id, state, now, exc.reason)
            log.warning(
                "issue %s: %s: %s (%s)",
                slot,
                subscriber.email,
                exc.reason,
                state,
                extra={"issue": slot, "recipient": subscriber.email, "status": state},
            )
            if exc.bounced:
                ctx.store.subscribers.mark_bounced(subscriber.id, exc.reason, now=now)
                return "bounced"
            return state
        return "sent"  # recorded by the caller, with the next claim
    raise AssertionError("unreachable: the last attempt returns")


def personalise(ctx: _Context, issue: IssueRow, subscriber: Subscriber, msg_id: str) -> bytes:
    """The frozen issue with this subscriber's greeting and unsubscribe link, as bytes."""
    token = unsubscribe_token(subscriber.id, ctx.key)
    base = ctx.config.newsletter.base_url.rstrip("/")
    url = f"{base}/unsubscribe/{token}"
    if subscriber.name:
        greeting = ctx.labels["greeting"].replace("{name}", subscriber.name)
    else:
        greeting = ctx.labels["greeting_anonymous"]
    unsubscribe_to = ctx.config.mail.unsubscribe_mailto or ctx.sender_address
    template = ctx.templates.get(issue.id)
    if template is None:
        template = _IssueTemplate(
            MessageTemplate(subject=issue.subject, sender=ctx.config.newsletter.sender),
            text=Body(issue.text, _MARKERS),
            html=Body(issue.html, _MARKERS),
        )
        ctx.templates[issue.id] = template
    return template.message.render(
        to=subscriber.email,
        to_name=subscriber.name or "",
        text=template.text.fill([(UNSUBSCRIBE_MARKER, url), (GREETING_MARKER, greeting)]),
        html=template.html.fill(
            [(UNSUBSCRIBE_MARKER, html.escape(url)), (GREETING_MARKER, html.escape(greeting))]
        ),
        date=ctx.clock(),
        message_id=msg_id,
        unsubscribe_url=url,
        unsubscribe_mailto=mailto(unsubscribe_to, f"unsubscribe {token}"),
    )


@dataclass(frozen=True)
class DryRun:
    slot: str
    messages: int
    total_bytes: int
    warnings: tuple[str, ...]
    held: bool

    def line(self) -> str:
        average = self.total_bytes / self.messages / 1024 if self.messages else 0.0
        return (
            f"dry run: issue {self.slot}: {self.messages} messages rendered "
            f"({average:.1f} KB each), nothing sent"
        )


def dry_run(config: Config, store: Store, *, clock: Callable[[], datetime]) -> DryRun:
    """Render every message the next send would send; touch neither the ledger nor SMTP."""
    ctx = _context(config, store, clock)
    issue = store.issues.unfinished()
    warnings: tuple[str, ...] = ()
    held = False
    if issue is None:
        composed = compose(config, store, now=clock())
        warnings, held = composed.warnings, composed.held
        issue = draft_issue(config, composed, clock())
    total = 0
    subscribers = store.subscribers.active()
    for s in subscribers:
        total += len(personalise(ctx, issue, s, message_id(issue.slot, s.id, ctx.key, ctx.domain)))
    return DryRun(issue.slot, len(subscribers), total, warnings, held)


def draft_issue(config: Config, composed: ComposedIssue, now: datetime) -> IssueRow:
    """The issue as ``send`` would freeze it, without storing it (dry runs, benchmarks)."""
    sending = render_for_sending(config, composed)
    return IssueRow(
        id=0,
        slot=composed.slot,
        status="draft",
        subject=composed.plan.subject,
        preheader=composed.plan.preheader,
        html=sending.html,
        text=sending.text,
        created_at=now,
        sent_at=None,
    )


def send_test_copy(
    config: Config,
    store: Store,
    to: str,
    *,
    clock: Callable[[], datetime],
    transport: Transport | None = None,
) -> str:
    """The next issue (or the unfinished one) to one address, outside the ledger."""
    name, address = split_address(to)
    if "@" not in address:
        raise UsageError(f"--to {to!r}: not an email address")
    now = clock()
    composed = compose(config, store, now=now)
    r = composed.rendered
    text, body = r.text, r.html
    failing = failing_feeds(store.feeds.listed(), now, config.daemon.health_after)
    if failing:  # the curator's copy says which feeds have stopped feeding the issue
        text = report_text(failing) + "\n\n" + text
        body = _after_body_tag(body, report_html(failing))
    sender = split_address(config.newsletter.sender)[1]
    message = build_message(
        subject=f"[Test] {r.subject}",
        sender=config.newsletter.sender,
        to=address,
        to_name=name,
        text=text,
        html=body,
        date=clock(),
        message_id=make_msgid("test", domain=_domain_of(sender)),
        unsubscribe_url=preview_unsubscribe_url(config),
    )
    _send_one(config, transport, sender, address, message, what="test copy")
    warnings = "; ".join(composed.warnings)
    return f"test copy of issue {composed.slot} sent to {address}" + (
        f" (warnings: {warnings})" if warnings else ""
    )


def in_doubt_after(config: Config) -> timedelta:
    """How long a row may stay "sending" while its sender is alive: every attempt's
    timeout and backoff, and a minute more."""
    mail = config.mail
    attempts = mail.retries + 1
    backoff = mail.retry_backoff * ((1 << mail.retries) - 1)
    return mail.smtp.timeout * attempts + backoff + timedelta(minutes=1)


def _domain_of(address: str) -> str:
    """The domain of an address, for Message-IDs ("localhost" for a bare name)."""
    return address.rpartition("@")[2] or "localhost"


def _after_body_tag(page: str, block: str) -> str:
    start = page.find("<body")
    end = page.find(">", start) + 1 if start >= 0 else 0
    return page[:end] + block + page[end:]


def send_health_report(
    config: Config, store: Store, *, now: datetime, transport: Transport | None = None
) -> int:
    """Mail the feed-health report to ``[daemon] health_to``; the number of feeds in it."""
    to = config.daemon.health_to
    if not to:
        return 0
    failing = failing_feeds(store.feeds.listed(), now, config.daemon.health_after)
    if not failing:
        return 0
    name, address = split_address(to)
    sender = split_address(config.newsletter.sender)[1]
    text = report_text(failing)
    message = build_message(
        subject=f"{config.newsletter.name}: {len(failing)} feeds need attention",
        sender=config.newsletter.sender,
        to=address,
        to_name=name,
        text=text,
        html=f"<html><body><pre>{html.escape(text)}</pre></body></html>",
        date=now,
        message_id=make_msgid("health", domain=_domain_of(sender)),
    )
    _send_one(config, transport, sender, address, message, what="feed-health mail")
    return len(failing)


def _send_one(
    config: Config,
    transport: Transport | None,
    sender: str,
    address: str,
    message: EmailMessage,
    *,
    what: str,
) -> None:
    """One message outside the ledger (a test copy, a report); a refusal is one line."""
    own = transport is None
    transport = transport or transport_for(config)
    try:
        transport.send(sender, address, message.as_bytes(), message["Message-ID"])
    except DeliveryError as exc:
        raise UsageError(f"{what} to {address}: {exc.reason}") from None
    finally:
        if own:
            transport.close()


def _context(config: Config, store: Store, clock: Callable[[], datetime]) -> _Context:
    return _Context(config, store, signing_keys(config)[0], issue_labels(config), clock)


def _open(
    config: Config,
    store: Store,
    clock: Callable[[], datetime],
    *,
    force: bool,
    slot: str | None = None,
) -> IssueRow:
    composed = compose(config, store, now=clock(), slot=slot)
    if not force:
        refusals = [f"section {s.id!r} is short" for s in composed.plan.short_sections]
        if all(s.empty for s in composed.plan.sections):
            refusals.append("it is empty (no story, pick or photo)")
        if composed.oversize:
            refusals.append(f"the HTML part is {composed.rendered.size / 1024:.0f} KB (over 90 KB)")
        if refusals:
            raise UsageError(
                f"issue {composed.slot} held: "
                + "; ".join(refusals)
                + " (fix the picks, or send --force)"
            )
    issue, _created = open_issue(config, store, composed, now=clock())
    return issue


def _sync_subscribers(
    config: Config, store: Store, clock: Callable[[], datetime], summary: SendSummary
) -> None:
    path = config.subscribers.file
    if path is None:
        return
    result = store.subscribers.sync_file(path, now=clock())
    for problem in result.problems:
        log.warning(problem)
    summary.problems.extend(result.problems)

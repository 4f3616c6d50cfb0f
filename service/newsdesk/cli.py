"""The ``newsdesk`` command: the only place that turns errors into exit codes.

Exit codes: 0 ok, 1 a user-facing error (one line per problem on stderr, no traceback),
2 a usage error (click's own).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from zoneinfo import ZoneInfo

import click

from newsdesk import __version__, compose, delivery, jobs
from newsdesk.config import Config, config_path, load_config
from newsdesk.config_values import read_duration
from newsdesk.errors import ConfigError, NewsdeskError, UsageError
from newsdesk.identity import redact_url
from newsdesk.logs import setup_logging
from newsdesk.models import Feed, FeedSpec
from newsdesk.store import Store

if TYPE_CHECKING:
    from newsdesk.refresh import RefreshSummary

F = TypeVar("F", bound=Callable[..., Any])


class Context:
    """Lazily loaded config and store, shared by the sub-commands of one invocation."""

    def __init__(self, config_option: str | None, verbose: bool) -> None:
        self.path = config_path(config_option, os.environ)
        self.verbose = verbose
        self.daemon = False
        self._config: Config | None = None
        self._store: Store | None = None

    @property
    def config(self) -> Config:
        if self._config is None:
            self._config = load_config(self.path)
            level = self._config.log.level
            # One-shot commands print their own summary; their info lines would repeat it.
            if not (self.verbose or self.daemon) and level in ("debug", "info"):
                level = "warning"
            setup_logging("debug" if self.verbose else level, self._config.log.format)
        return self._config

    @property
    def store(self) -> Store:
        if self._store is None:
            self._store = jobs.open_app_store(self.config)
        return self._store

    def close(self) -> None:
        if self._store is not None:
            self._store.close()


pass_ctx = click.make_pass_decorator(Context)


@contextmanager
def _user_errors() -> Iterator[None]:
    try:
        yield
    except ConfigError as exc:
        for problem in exc.problems:
            click.echo(f"Error: {problem}", err=True)
        sys.exit(1)
    except NewsdeskError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(1)
    except OSError as exc:  # a file or directory the command was pointed at
        where = f"{exc.filename}: " if exc.filename else ""
        click.echo(f"Error: {where}{exc.strerror or exc}", err=True)
        sys.exit(1)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_option",
    metavar="PATH",
    help="Config file (default: $NEWSDESK_CONFIG, else config/newsdesk.toml).",
)
@click.option("-v", "--verbose", is_flag=True, help="Log every event (debug level).")
@click.version_option(__version__, prog_name="newsdesk")
@click.pass_context
def cli(click_ctx: click.Context, config_option: str | None, verbose: bool) -> None:
    """newsdesk: turn the feeds you follow into a finished email digest."""
    ctx = Context(config_option, verbose)
    click_ctx.obj = ctx
    click_ctx.call_on_close(ctx.close)


# -- set-up -----------------------------------------------------------------------------


@cli.command()
@click.argument("directory", default="config", type=click.Path(file_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Overwrite files that already exist.")
def init(directory: Path, force: bool) -> None:
    """Create a starter newsdesk.toml and sample feeds in DIRECTORY (default: config).

    The samples are local files, so the result runs offline:
    newsdesk --config DIRECTORY/newsdesk.toml run --once
    """
    with _user_errors():
        demo = resources.files("newsdesk") / "demo"
        written = _copy_tree(demo, directory, force=force)
        for path in written:
            click.echo(f"wrote {path}")
        click.echo(f"next: newsdesk --config {directory / 'newsdesk.toml'} run --once")


def _copy_tree(source: Any, target: Path, *, force: bool) -> list[Path]:
    written: list[Path] = []
    existing = [target / item.name for item in source.iterdir() if (target / item.name).exists()]
    if existing and not force:
        names = ", ".join(str(p) for p in existing)
        raise UsageError(f"{names}: already exists (use --force to overwrite)")
    target.mkdir(parents=True, exist_ok=True)
    for item in sorted(source.iterdir(), key=lambda i: i.name):
        if item.name.startswith(("_", ".")):
            continue
        destination = target / item.name
        if item.is_dir():
            written += _copy_tree(item, destination, force=True)
        else:
            with resources.as_file(item) as path:
                shutil.copyfile(path, destination)
            written.append(destination)
    return written


@cli.command()
@pass_ctx
def check(ctx: Context) -> None:
    """Validate config, picks and templates (rendering the next issue once).

    Every problem is printed as file: key: reason, or template-file:line: reason.
    """
    with _user_errors():
        config = ctx.config
        click.echo(f"{ctx.path}: ok ({len(config.feeds)} feeds, {len(config.sections)} sections)")
        picks = compose.issue_picks(config)
        click.echo(f"{picks.path}: ok ({len(picks.picks)} picks)")
        warnings = compose.check_digest(config, ctx.store, now=jobs.utcnow())
        click.echo("templates: ok (the next issue renders)")
        for warning in warnings:
            click.echo(f"Warning: {warning}", err=True)


# -- feeds ------------------------------------------------------------------------------


@cli.command()
@click.option("--all", "all_feeds", is_flag=True, help="Fetch every active feed, due or not.")
@click.option("--feed", "urls", multiple=True, metavar="URL", help="Fetch only this feed.")
@pass_ctx
def fetch(ctx: Context, all_feeds: bool, urls: tuple[str, ...]) -> None:
    """Fetch due feeds now and store new entries; print one summary line."""
    with _user_errors():
        store = ctx.store
        feeds = jobs.select_feeds(store, now=jobs.utcnow(), all_feeds=all_feeds, urls=urls)
        summary = _fetch_with_progress(ctx.config, store, feeds)
        click.echo(summary.line())
        for url, reason in summary.failures:
            click.echo(f"  failed: {url}: {reason}", err=True)


def _fetch_with_progress(config: Config, store: Store, feeds: list[Feed]) -> RefreshSummary:
    if not sys.stderr.isatty() or not feeds:
        return jobs.fetch_feeds(config, store, feeds)
    with click.progressbar(length=len(feeds), label="fetching", file=sys.stderr) as bar:
        return jobs.fetch_feeds(config, store, feeds, on_feed_done=lambda _f: bar.update(1))


@cli.group()
def feeds() -> None:
    """List, add, remove, revive, import and export feeds."""


@feeds.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@pass_ctx
def feeds_list(ctx: Context, as_json: bool) -> None:
    """Every feed with its health; failing feeds first, with the reason."""
    with _user_errors():
        listed = ctx.store.feeds.listed()
        if as_json:
            click.echo(json.dumps([_feed_json(f) for f in listed], indent=2))
            return
        _print_feed_table(listed)


@feeds.command("add")
@click.argument("url")
@click.option("--name", help="Name shown in the digest (default: the feed's title).")
@click.option("--section", help="Section the feed's stories go to.")
@click.option("--tag", "tags", multiple=True, help="Tag (repeatable).")
@pass_ctx
def feeds_add(
    ctx: Context, url: str, name: str | None, section: str | None, tags: tuple[str, ...]
) -> None:
    """Add a feed (kept in the store; feeds in newsdesk.toml are managed there)."""
    with _user_errors():
        from newsdesk.config_values import read_http_url

        try:
            read_http_url(url)
        except ValueError as exc:
            raise UsageError(f"{url}: {exc}") from None
        _check_section(ctx.config, section)
        feed = ctx.store.feeds.add(
            FeedSpec(url=url, name=name, section=section, tags=tags),
            source="cli",
            now=jobs.utcnow(),
        )
        click.echo(f"added {feed.shown_url}")


@feeds.command("remove")
@click.argument("url")
@pass_ctx
def feeds_remove(ctx: Context, url: str) -> None:
    """Stop fetching a feed (its stored entries stay)."""
    with _user_errors():
        ctx.store.feeds.remove(url)
        click.echo(f"removed {url}")


@feeds.command("revive")
@click.argument("urls", nargs=-1, metavar="URL...")
@click.option("--all-paused", is_flag=True, help="Revive every paused feed.")
@pass_ctx
def feeds_revive(ctx: Context, urls: tuple[str, ...], all_paused: bool) -> None:
    """Un-pause feeds (after fixing what made them fail) and fetch them next round."""
    with _user_errors():
        store = ctx.store
        if all_paused:
            urls += tuple(f.url for f in store.feeds.listed() if f.status == "paused")
        for feed in jobs.revive_feeds(store, urls, now=jobs.utcnow()):
            click.echo(f"revived {feed.shown_url}")


@feeds.command("import")
@click.argument("opml_file", type=click.Path(dir_okay=False, path_type=Path))
@pass_ctx
def feeds_import(ctx: Context, opml_file: Path) -> None:
    """Add every feed of an OPML file (folders become tags)."""
    from newsdesk.opml import read_opml

    with _user_errors():
        try:
            data = opml_file.read_bytes()
        except OSError as exc:
            raise UsageError(f"{opml_file}: cannot read: {exc.strerror}") from None
        specs, problems = read_opml(data, source=str(opml_file))
        for problem in problems:
            click.echo(f"skipped: {problem}", err=True)
        store, now = ctx.store, jobs.utcnow()
        listed = store.feeds.listed()
        known = {f.url for f in listed} | {f.declared_url for f in listed}
        added = 0
        for spec in specs:
            if spec.url not in known:
                store.feeds.add(spec, source="opml", now=now)
                added += 1
        click.echo(
            f"{added} feeds added, {len(specs) - added} already known, {len(problems)} skipped"
        )


@feeds.command("export")
@pass_ctx
def feeds_export(ctx: Context) -> None:
    """Print every feed as OPML."""
    from newsdesk.opml import write_opml

    with _user_errors():
        listed = [f for f in ctx.store.feeds.listed() if f.status != "removed"]
        sys.stdout.buffer.write(write_opml(listed, title=ctx.config.newsletter.name))


def _check_section(config: Config, section: str | None) -> None:
    known = [s.id for s in config.sections]
    if section and known and section not in known:
        raise UsageError(f"--section {section}: unknown section (known: {', '.join(known)})")


def _feed_json(f: Feed) -> dict[str, Any]:
    return {
        "url": f.shown_url,
        "declared_url": redact_url(f.declared_url),
        "name": f.display_name,
        "section": f.section,
        "tags": list(f.tags),
        "source": f.source,
        "status": f.status,
        "error_count": f.error_count,
        "last_error": f.last_error,
        "last_success_at": jobs.iso(f.last_success_at),
        "next_check_at": jobs.iso(f.next_check_at),
    }


def _print_feed_table(listed: list[Feed]) -> None:
    if not listed:
        click.echo(
            "no feeds yet: add [[feed]] blocks to newsdesk.toml or run `newsdesk feeds add URL`"
        )
        return
    click.echo(f"{'STATUS':<8} {'FAILS':>5}  {'LAST OK':<16}  FEED")
    for f in listed:
        last_ok = f.last_success_at.strftime("%Y-%m-%d %H:%M") if f.last_success_at else "never"
        click.echo(f"{f.status:<8} {f.error_count:>5}  {last_ok:<16}  {f.shown_url}")
        if f.last_error:
            click.echo(f"{'':<33}{f.last_error}")


# -- subscribers ------------------------------------------------------------------------


@cli.group()
def subscribers() -> None:
    """List, add, remove, import and export subscribers."""


@subscribers.command("list")
@click.option(
    "--status",
    type=click.Choice(["active", "unsubscribed", "bounced"]),
    help="Only subscribers with this status.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@pass_ctx
def subscribers_list(ctx: Context, status: str | None, as_json: bool) -> None:
    """Every subscriber by address, with status and where the address came from."""
    with _user_errors():
        listed = ctx.store.subscribers.listed(status)
        if as_json:
            rows = [
                {
                    "id": s.id,
                    "email": s.email,
                    "name": s.name,
                    "language": s.language,
                    "status": s.status,
                    "source": s.source,
                    "created_at": jobs.iso(s.created_at),
                    "updated_at": jobs.iso(s.updated_at),
                }
                for s in listed
            ]
            click.echo(json.dumps(rows, indent=2, ensure_ascii=False))
            return
        if not listed:
            click.echo("no subscribers" + (f" with status {status}" if status else ""))
            return
        click.echo(f"{'STATUS':<12} {'LANG':<5} {'SOURCE':<7} EMAIL")
        for s in listed:
            name = f"  ({s.name})" if s.name else ""
            click.echo(f"{s.status:<12} {s.language or '-':<5} {s.source:<7} {s.email}{name}")


@subscribers.command("add")
@click.argument("email")
@click.option("--name", help="Name for the To: header (and the greeting).")
@click.option("--language", metavar="L", help="Language code like de or en.")
@click.option("--resubscribe", is_flag=True, help="Subscribe an address that unsubscribed.")
@pass_ctx
def subscribers_add(
    ctx: Context, email: str, name: str | None, language: str | None, resubscribe: bool
) -> None:
    """Subscribe EMAIL. One that unsubscribed or bounced needs --resubscribe."""
    with _user_errors():
        added = ctx.store.subscribers.add(
            email, name=name, language=language, resubscribe=resubscribe, now=jobs.utcnow()
        )
        click.echo(f"added {added.email}")


@subscribers.command("remove")
@click.argument("email")
@pass_ctx
def subscribers_remove(ctx: Context, email: str) -> None:
    """Unsubscribe EMAIL (the record is kept, so no import subscribes it again)."""
    with _user_errors():
        before = ctx.store.subscribers.get(email)
        removed = ctx.store.subscribers.remove(email, now=jobs.utcnow())
        if before is not None and before.status == "unsubscribed":
            click.echo(f"{removed.email} was already unsubscribed")
        else:
            click.echo(f"removed {removed.email}")


@subscribers.command("import")
@click.argument("csv_file", type=click.Path(dir_okay=False, path_type=Path), metavar="CSV")
@pass_ctx
def subscribers_import(ctx: Context, csv_file: Path) -> None:
    """Add the subscribers of a CSV file (header: email[,name][,language]).

    Bad rows are reported one per line and the rest imported; addresses that
    unsubscribed or bounced are never subscribed again.
    """
    from newsdesk.store.subscribers import read_csv

    with _user_errors():
        rows = read_csv(csv_file)
        result = ctx.store.subscribers.import_rows(
            rows, source="import", now=jobs.utcnow(), where=str(csv_file)
        )
        click.echo(result.line())
        for problem in result.problems:
            click.echo(f"not imported: {problem}", err=True)


@subscribers.command("export")
@pass_ctx
def subscribers_export(ctx: Context) -> None:
    """Print every subscriber as CSV (email,name,language,status)."""
    with _user_errors():
        click.echo(ctx.store.subscribers.export(), nl=False)


# -- status, daemon, database -----------------------------------------------------------


# -- stories ----------------------------------------------------------------------------

DEFAULT_SINCE = "7d"


@cli.command()
@click.option(
    "--since",
    default=DEFAULT_SINCE,
    show_default=True,
    metavar="D",
    help="Stories with an entry since: a duration back from now (36h, 7d) or an ISO date.",
)
@click.option("--until", default=None, metavar="D", help="...and until (default: now).")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(min=1))
@click.option("--json", "as_json", is_flag=True, help="Print JSON (schema in the README).")
@pass_ctx
def stories(ctx: Context, since: str, until: str | None, limit: int, as_json: bool) -> None:
    """Candidate stories, best first: many outlets and recent news rank high."""
    with _user_errors():
        now = jobs.utcnow()
        tz = ctx.config.newsletter.timezone
        low = parse_when(since, now=now, timezone=tz, option="--since")
        high = parse_when(until, now=now, timezone=tz, option="--until") if until else now
        ranked = jobs.list_stories(
            ctx.config, ctx.store, now=now, since=low, until=high, limit=limit, hide=_hidden(ctx)
        )
        if as_json:
            click.echo(json.dumps([jobs.story_json(r) for r in ranked], indent=2))
            return
        if not ranked:
            click.echo(f"no stories between {jobs.iso(low)} and {jobs.iso(high)}")
            return
        click.echo(f"{'ID':>6}  {'SCORE':>6}  {'OUTLETS':>7}  {'LAST ENTRY':<16}  TITLE")
        for r in ranked:
            click.echo(
                f"{r.id:>6}  {r.score:>6.3g}  {len(r.read_on):>7}  "
                f"{r.last.strftime('%Y-%m-%d %H:%M'):<16}  {_clip(r.title, 80)}"
            )


def _hidden(ctx: Context) -> frozenset[int]:
    """Stories that are not candidates; a broken picks file hides only the sent ones."""
    try:
        return compose.hidden_stories(ctx.config, ctx.store)
    except ConfigError as exc:
        click.echo(f"Warning: skip tags not applied: {exc.problems[0]}", err=True)
        return ctx.store.issues.sent_story_ids()


@cli.group()
def story() -> None:
    """Inspect one story, or correct the clustering (merge, split)."""


@story.command("show")
@click.argument("story_id", type=int, metavar="ID")
@click.option("--json", "as_json", is_flag=True, help="Print JSON, every member included.")
@pass_ctx
def story_show(ctx: Context, story_id: int, as_json: bool) -> None:
    """Every entry of a story, its outlet, and why it joined (which signal)."""
    with _user_errors():
        r = jobs.show_story(ctx.config, ctx.store, story_id, now=jobs.utcnow())
        if as_json:
            click.echo(json.dumps(jobs.story_json(r, every_member=True), indent=2))
            return
        if r.id != story_id:
            click.echo(f"story {story_id} was merged into story {r.id}")
        click.echo(f"story {r.id}: {r.title}")
        click.echo(
            f"score {r.score:.3g}, {len(r.read_on)} outlets, {len(r.members)} entries, "
            f"{r.first.strftime('%Y-%m-%d %H:%M')} .. {r.last.strftime('%Y-%m-%d %H:%M')} UTC"
        )
        for m in r.members:
            why = m.signal if m.signal in ("first", "curator") else f"{m.signal} {m.similarity:.2f}"
            click.echo(
                f"  {m.published.strftime('%Y-%m-%d %H:%M')}  {_clip(m.feed_name, 24):<24}  "
                f"{why:<16}  {_clip(m.title, 70)}"
            )
            if m.url:
                click.echo(f"{'':>20}{m.url}")


@story.command("merge")
@click.argument("story_ids", type=int, nargs=-1, required=True, metavar="ID ID...")
@pass_ctx
def story_merge(ctx: Context, story_ids: tuple[int, ...]) -> None:
    """Fold the other stories into the first, for good."""
    with _user_errors():
        survivor = jobs.merge_stories(ctx.store, story_ids, now=jobs.utcnow())
        click.echo(f"merged into story {survivor}")


@story.command("split")
@click.argument("story_id", type=int, metavar="ID")
@click.argument("url")
@pass_ctx
def story_split(ctx: Context, story_id: int, url: str) -> None:
    """Move the entry with URL out of the story; the two stay apart from then on."""
    with _user_errors():
        new_id = jobs.split_story(ctx.store, story_id, url, now=jobs.utcnow())
        click.echo(f"moved {url} to new story {new_id}")


# -- the issue ---------------------------------------------------------------------------


@cli.command()
@click.argument("target", metavar="STORY")
@click.option("--section", metavar="S", help="Section id (default: the story's feed section).")
@click.option("--tag", "tags", multiple=True, metavar="T", help="Tag (repeatable).")
@click.option("--note", default="", metavar="TEXT", help="Your text shown with the story.")
@click.option("--headline", default="", help="Headline (required when STORY is a URL).")
@pass_ctx
def pick(
    ctx: Context, target: str, section: str | None, tags: tuple[str, ...], note: str, headline: str
) -> None:
    """Add STORY (an id from `newsdesk stories`, or a URL) to the picks file.

    The file keeps its comments and layout; the pick is appended at its end.
    """
    with _user_errors():
        line = compose.pick_story(
            ctx.config,
            ctx.store,
            target,
            section=section,
            tags=tags,
            note=note,
            headline=headline,
            now=jobs.utcnow(),
        )
        click.echo(line)


@cli.command()
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder for issue.html, issue.txt and issue.eml (default: preview/ beside the config).",
)
@pass_ctx
def preview(ctx: Context, out: Path | None) -> None:
    """Render the next issue to files, with every warning the curator should see."""
    with _user_errors():
        now = jobs.utcnow()
        composed = compose.compose(ctx.config, ctx.store, now=now)
        files = compose.write_preview(
            ctx.config, composed, out or ctx.config.base_dir / "preview", now=now
        )
        plan = composed.plan
        items = sum(s.count for s in plan.sections)
        click.echo(f"subject: {plan.subject}")
        click.echo(
            f"{files.html} ({files.size / 1024:.1f} KB HTML, {items} items in "
            f"{sum(1 for s in plan.sections if not s.empty)} sections)"
        )
        click.echo(f"{files.text}\n{files.eml}")
        for warning in files.warnings:
            click.echo(f"Warning: {warning}", err=True)


@cli.command()
@click.option("--dry-run", is_flag=True, help="Render every message; send nothing.")
@click.option("--to", "to", metavar="ADDR", help="Send a test copy to ADDR only (no ledger).")
@click.option("--resume", is_flag=True, help="Only finish an interrupted send.")
@click.option("--force", is_flag=True, help="Send even if a section is short or the HTML too big.")
@click.option(
    "--resend-unknown", is_flag=True, help="Re-send messages a crash left in doubt (same ID)."
)
@pass_ctx
def send(
    ctx: Context, dry_run: bool, to: str | None, resume: bool, force: bool, resend_unknown: bool
) -> None:
    """Compose and send the next issue to every subscriber, exactly once.

    An interrupted send (killed, paused) is finished by the next `send`: nobody gets the
    issue twice. Exit 1 when the send paused.
    """
    with _user_errors():
        if to:
            click.echo(delivery.send_test_copy(ctx.config, ctx.store, to, clock=jobs.utcnow))
            return
        if dry_run:
            result = delivery.dry_run(ctx.config, ctx.store, clock=jobs.utcnow)
            click.echo(result.line())
            for warning in result.warnings:
                click.echo(f"Warning: {warning}", err=True)
            return
        # One sender at a time: a second one would take the first one's messages in
        # flight for a crash's leftovers and send them again.
        with jobs.send_lock(ctx.store, "another process is sending an issue"):
            summary = _send_with_progress(ctx, resume=resume, force=force, resend=resend_unknown)
        for problem in summary.problems:
            click.echo(f"Warning: {problem}", err=True)
        click.echo(summary.line())
        if summary.paused:
            click.echo(f"Error: {summary.paused}", err=True)
            sys.exit(1)


def _send_with_progress(
    ctx: Context, *, resume: bool, force: bool, resend: bool
) -> delivery.SendSummary:
    args: dict[str, Any] = {
        "clock": jobs.utcnow,
        "resume": resume,
        "force": force,
        "resend_unknown": resend,
    }
    if not sys.stderr.isatty():
        return delivery.send_issue(ctx.config, ctx.store, **args)
    with click.progressbar(length=1, label="sending", file=sys.stderr) as bar:

        def progress(done: int, total: int) -> None:
            bar.length = total
            bar.update(1)

        return delivery.send_issue(ctx.config, ctx.store, progress=progress, **args)


def parse_when(value: str, *, now: datetime, timezone: str, option: str) -> datetime:
    """A duration back from ``now`` ("36h", "7d") or an ISO date or date-time.

    A date without a time is midnight, and a time without a zone is local, both in the
    newsletter's time zone.
    """
    try:
        return now - read_duration(timedelta(0))(value)
    except ValueError:
        pass
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise UsageError(
            f"{option}: expected a duration (36h, 7d) or an ISO date (2026-11-20), got {value!r}"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=ZoneInfo(timezone))
    return when.astimezone(UTC)


def _clip(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON (docs/status.schema.json).")
@click.option(
    "--check", is_flag=True, help="Exit 1 unless a daemon runs on this store (a health check)."
)
@pass_ctx
def status(ctx: Context, as_json: bool, check: bool) -> None:
    """The daemon and its jobs, feed health, the last issue and its deliveries."""
    with _user_errors():
        now = jobs.utcnow()
        report = jobs.status_report(ctx.store, now=now)
        if check:
            alive = [d for d in report["daemons"] if d["alive"]]
            if alive:
                click.echo(f"ok: daemon {alive[0]['instance']} alive")
                return
            last = report["daemons"][0]["heartbeat_at"] if report["daemons"] else None
            seen = f" (last heartbeat {last})" if last else " (none has run)"
            click.echo(f"unhealthy: no newsdesk daemon alive on this store{seen}")
            sys.exit(1)
        if as_json:
            click.echo(json.dumps(report, indent=2))
            return
        _print_status(report)


def _print_status(report: dict[str, Any]) -> None:
    alive = [d for d in report["daemons"] if d["alive"]]
    if alive:
        for d in alive:
            held = f", {d['feeds_claimed']} feeds claimed" if d["feeds_claimed"] else ""
            click.echo(f"daemon: {d['instance']} running since {d['started_at']}{held}")
    else:
        click.echo("daemon: not running")
    for job in report["jobs"]:
        last = job["last_finished_at"] or job["last_started_at"] or "never"
        click.echo(
            f"  {job['name']:<12} {job['outcome']:<9} last {last}, next {job['next_run_at'] or '-'}"
            + (f"\n               {_clip(job['message'], 100)}" if job["message"] else "")
        )
    counts = report["feeds"]
    click.echo(
        f"feeds: {counts['total']} ({counts['active']} active, {counts['paused']} paused, "
        f"{counts['retired']} retired), {counts['due']} due, {counts['failing']} failing"
    )
    store = report["store"]
    size = f", {store['size_bytes'] / 1e6:.1f} MB" if store["size_bytes"] is not None else ""
    click.echo(f"entries: {store['entries']} ({store['dialect']}{size})")
    counts = report["stories"]
    click.echo(
        f"stories: {counts['total']}, {counts['pending_entries']} entries waiting "
        "for the clustering"
    )
    for key, label in (("last_issue", "last issue"), ("unfinished_issue", "unfinished")):
        issue = report[key]
        if issue is None or (key == "unfinished_issue" and issue == report["last_issue"]):
            continue
        shown = ", ".join(f"{n} {state}" for state, n in issue["deliveries"].items() if n)
        click.echo(f"{label}: {issue['slot']} ({issue['status']}): {shown or 'no deliveries'}")
    for f in report["failing_feeds"]:
        click.echo(
            f"  {f['status']:<8} {f['error_count']:>3} failures  {f['url']}\n"
            f"           {f['last_error'] or ''}"
        )


@cli.command()
@click.option("--once", is_flag=True, help="Run one round of every due job, then exit.")
@pass_ctx
def run(ctx: Context, once: bool) -> None:
    """Run the daemon (or, with --once, one round of every due job).

    The daemon fetches due feeds every [daemon] tick, sends the issue at
    newsletter.schedule and runs the maintenance daily. SIGTERM stops it cleanly,
    SIGHUP reloads newsdesk.toml. One daemon per SQLite store.
    """
    with _user_errors():
        ctx.daemon = not once
        config, store = ctx.config, ctx.store
        if once:
            from newsdesk.scheduler.daemon import instance_name

            failed = False
            for name, result in jobs.run_once(config, store, instance=instance_name()):
                click.echo(f"{name}: {result.message}")
                failed = failed or result.outcome == "failed"
            if failed:
                sys.exit(1)
            return
        from newsdesk.scheduler.daemon import run_daemon

        if store.dialect != "sqlite":  # instances share a PostgreSQL store (feed claims)
            run_daemon(config, store)
            return
        with store.lock("daemon", what="another newsdesk daemon runs on this store"):
            run_daemon(config, store)


LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(1, 65535))
@pass_ctx
def serve(ctx: Context, host: str, port: int) -> None:
    """Serve the unsubscribe links (RFC 8058 one-click) and the archive of sent issues.

    Stops cleanly on SIGTERM or Ctrl-C. Put it behind a reverse proxy with TLS at
    newsletter.base_url.
    """
    with _user_errors():
        ctx.daemon = True
        config, store = ctx.config, ctx.store
        from newsdesk.web import serve as serve_site

        if host not in LOCAL_HOSTS:
            click.echo(
                f"note: listening on {host}, reachable from other machines; serve it over "
                "HTTPS through a reverse proxy",
                err=True,
            )
        shown = f"[{host}]" if ":" in host else host
        click.echo(f"serving {config.newsletter.name} on http://{shown}:{port}/")
        # uvicorn stops cleanly on Ctrl-C, then raises it again: nothing is left to say.
        with suppress(KeyboardInterrupt):
            serve_site(config, store, host=host, port=port)


@cli.group()
def db() -> None:
    """Database maintenance."""


@db.command("upgrade")
@pass_ctx
def db_upgrade(ctx: Context) -> None:
    """Apply pending schema migrations (also done on every start)."""
    from newsdesk.store import open_store

    with _user_errors():
        store = open_store(ctx.config.store_url, migrate=False)
        try:
            pending = store.pending_migrations()
            store.upgrade()
        finally:
            store.close()
        click.echo(f"applied {len(pending)} migrations" if pending else "schema is up to date")


@db.command("backup")
@click.argument("path", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--force", is_flag=True, help="Replace PATH if it exists.")
@pass_ctx
def db_backup(ctx: Context, path: Path, force: bool) -> None:
    """Copy the store to PATH while newsdesk runs, and verify the copy.

    SQLite: a database file. PostgreSQL: a pg_dump archive (custom format; restore it
    with pg_restore).
    """
    from newsdesk.store import open_store

    with _user_errors():
        # Not migrated first: the backup before an upgrade is the one worth having.
        store = open_store(ctx.config.store_url, migrate=False)
        try:
            result = store.backup(path, force=force)
        finally:
            store.close()
        click.echo(result.line())


@db.command("prune")
@click.option("--dry-run", is_flag=True, help="Count what would be pruned; delete nothing.")
@pass_ctx
def db_prune(ctx: Context, dry_run: bool) -> None:
    """Prune entries older than store.retention now (the daily maintenance does it too).

    An entry goes when it was published and first seen before the cutoff; a story goes
    when all of its entries do and no issue holds it. Tombstones keep feeds from bringing
    pruned entries back.
    """
    from newsdesk.store.retention import retention_cutoff

    with _user_errors():
        now = jobs.utcnow()
        cutoff = retention_cutoff(ctx.config.retention, now)
        if cutoff is None:
            click.echo("retention: off (store.retention = 0); nothing pruned")
            return
        if dry_run:
            click.echo(ctx.store.prunable(cutoff).line())
            return
        summary = ctx.store.prune(cutoff, now)
        ctx.store.maintain()
        click.echo(summary.line())


@db.command("copy")
@click.argument("url")
@click.option("--force", is_flag=True, help="Replace what the target database holds.")
@pass_ctx
def db_copy(ctx: Context, url: str, force: bool) -> None:
    """Copy the store into the database at URL.

    Moves a store from SQLite to PostgreSQL (or back) with every row and id. URL is a
    store URL (postgresql+psycopg://user@host/db, sqlite:///path); its schema
    is created. The target must be empty unless --force. The copy is one transaction:
    if it fails, the target is left as it was. Stop the daemon first: the copy reads
    one snapshot of the store, and what the daemon writes after it is not copied.
    Then point store.url at URL.
    """
    from newsdesk.store import open_store

    with _user_errors():
        store = open_store(ctx.config.store_url)
        try:
            with _progress_line() as progress:
                result = store.copy_to(url, force=force, progress=progress)
        finally:
            store.close()
        click.echo(result.line())


@contextmanager
def _progress_line() -> Iterator[Callable[[str, int, int], None] | None]:
    """On a terminal, one line on stderr that counts the rows copied, erased at the end."""
    if not sys.stderr.isatty():
        yield None
        return

    def show(table: str, done: int, total: int) -> None:
        click.echo(f"\r\033[Kcopying {table}: {done:,} of {total:,} rows", nl=False, err=True)

    try:
        yield show
    finally:
        click.echo("\r\033[K", nl=False, err=True)


def main() -> None:
    cli(prog_name="newsdesk")

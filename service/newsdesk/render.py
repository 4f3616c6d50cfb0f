"""Lays a :class:`~newsdesk.plan.DigestPlan` out as an email, and the archive as a page and feed.

The only room that imports Jinja2 and premailer. Templates are looked up in the curator's
folder first, then in the shipped ones, so a curator file of the same name replaces the
shipped one. The HTML templates are written with classes and one stylesheet
(``digest.css``); premailer then moves every rule into the elements' ``style`` attributes,
drops the classes and keeps only the ``@media`` rules in a ``<style>`` block: what email
clients need. The plain-text part is its own template, not a tag strip.

Every template error, at compile or render time, becomes a :class:`TemplateError` naming
the template file and line.
"""

from __future__ import annotations

import logging
import re
import textwrap
import traceback
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import babel
import babel.dates
import jinja2
import premailer
from jinja2 import nodes

from newsdesk.errors import ConfigError, TemplateError
from newsdesk.labels import BUILTIN_TEMPLATES
from newsdesk.plan import ArchivedIssue, DigestPlan, Item, Link, Section

HTML_SIZE_LIMIT = 90 * 1024
"""Gmail clips a message past ~102 KB; stay well under it."""

TEXT_WIDTH = 72
"""Columns of the plain-text part (URLs are never broken, so their lines may be longer)."""

CONTENT_WIDTH = 550
"""Pixels inside the 600 px container (1 px border, 24 px padding a side): the widest image."""

ARCHIVE_PAGE = "archive/{slug}.html"
ARCHIVE_INDEX = "archive/index.html"
ARCHIVE_FEED = "archive/feed.atom"
"""Where the archive's files live below the public base URL."""

_LINK_SCHEMES = frozenset({"http", "https"})
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


@dataclass(frozen=True)
class RenderedIssue:
    """One issue, ready for ``send``: both MIME parts and what the curator should know."""

    subject: str
    preheader: str
    html: str
    text: str
    warnings: tuple[str, ...] = ()
    """Render's own findings (dropped links, oversize HTML); the plan's are not repeated."""

    @property
    def size(self) -> int:
        """Bytes of the HTML part, as a mail client counts them before it clips."""
        return len(self.html.encode())


class Renderer:
    """Renders issues and the archive of one newsletter, in one language."""

    def __init__(
        self, *, language: str, labels: Mapping[str, str], folder: Path | None = None
    ) -> None:
        try:
            self._locale = babel.Locale.parse(language.replace("-", "_"))
        except (ValueError, babel.UnknownLocaleError) as exc:
            raise ConfigError([f"language {language!r}: not a known locale ({exc})"]) from None
        self.language = language
        self._labels = dict(labels)
        self._env = _environment(folder, self._locale)
        self._env.globals.update(t=self._label)
        # Network off: a template cannot make rendering fetch a stylesheet. Classes go
        # (the @media rules use element selectors); !important stays, because premailer
        # marks the @media declarations important so they beat the inline styles.
        self._inliner = premailer.Premailer(
            base_url=None,
            allow_network=False,
            allow_loading_external_files=False,
            disable_validation=True,
            remove_classes=True,
            strip_important=False,
            disable_basic_attributes=["width", "height", "align", "valign", "bgcolor"],
            cssutils_logging_level=logging.CRITICAL,
        )

    def issue(
        self,
        plan: DigestPlan,
        *,
        unsubscribe_url: str,
        online_url: str | None = None,
        greeting: str | None = None,
    ) -> RenderedIssue:
        """The HTML and text parts of ``plan``; empty sections are left out.

        ``greeting`` opens the issue when given ("Hallo Anna,"); ``send`` passes a marker
        that it replaces per subscriber, so the issue is rendered once, not per reader.
        """
        context, warnings = self._issue_context(plan, unsubscribe_url, online_url)
        context["greeting"] = greeting
        plan = context["plan"]
        html = self._inline(self._render("digest.html.j2", context))
        text = _tidy(self._render("digest.txt.j2", context))
        size = len(html.encode())
        if size > HTML_SIZE_LIMIT:
            warnings.append(
                f"HTML part is {size / 1024:.0f} KB ({size:,} bytes), over the "
                f"{HTML_SIZE_LIMIT // 1024} KB limit: Gmail clips it; shorten the issue"
            )
        return RenderedIssue(
            subject=plan.subject,
            preheader=plan.preheader,
            html=html,
            text=text,
            warnings=tuple(warnings),
        )

    def _issue_context(
        self, plan: DigestPlan, unsubscribe_url: str, online_url: str | None
    ) -> tuple[dict[str, Any], list[str]]:
        """What the digest templates see, and what the curator should know about it."""
        plan, warnings = _checked_links(plan)
        if plan.language != self.language:
            warnings.append(
                f"plan language {plan.language!r}: rendered with {self.language!r} labels"
            )
        context = {
            "plan": plan,
            "sections": [s for s in plan.sections if not s.empty],
            "date": _long_date(plan.issue_date, self._locale),
            "language": self.language,
            "unsubscribe_url": unsubscribe_url,
            "online_url": online_url,
            "greeting": None,
        }
        return context, warnings

    def archive_index(self, issues: Sequence[ArchivedIssue], *, name: str, base_url: str) -> str:
        """The archive's HTML page: every past issue, newest first, linked."""
        return self._render("archive_index.html.j2", self._archive_context(issues, name, base_url))

    def archive_feed(
        self, issues: Sequence[ArchivedIssue], *, name: str, base_url: str, updated: datetime
    ) -> str:
        """The archive as an Atom 1.0 feed, newest issue first."""
        context = self._archive_context(issues, name, base_url)
        context["updated"] = updated
        return self._render("archive.atom.j2", context)

    def _archive_context(
        self, issues: Sequence[ArchivedIssue], name: str, base_url: str
    ) -> dict[str, object]:
        base = base_url.rstrip("/")
        newest_first = sorted(issues, key=lambda i: (i.issue_date, i.sent_at), reverse=True)
        return {
            "name": name,
            "language": self.language,
            "index_url": f"{base}/{ARCHIVE_INDEX}",
            "feed_url": f"{base}/{ARCHIVE_FEED}",
            "entries": [
                {"issue": i, "url": f"{base}/{ARCHIVE_PAGE.format(slug=i.slug)}"}
                for i in newest_first
            ],
        }

    def _render(self, name: str, context: Mapping[str, object]) -> str:
        try:
            return self._env.get_template(name).render(context)
        except jinja2.TemplateSyntaxError as exc:
            raise TemplateError(f"{exc.filename or exc.name}:{exc.lineno}: {exc.message}") from exc
        except (jinja2.TemplateError, ArithmeticError, LookupError, TypeError, ValueError) as exc:
            where = _template_line(exc)
            if where is None:  # not raised by a template: a bug in this module
                raise
            raise TemplateError(f"{where}: {_reason(exc)}") from exc

    def _inline(self, html: str) -> str:
        inlined: str = self._inliner.transform(html)
        return inlined

    def _label(self, key: str, /, **values: object) -> str:
        """``t("footer", newsletter=...)`` in a template: the label, placeholders filled."""
        try:
            text = self._labels[key]
        except KeyError:
            raise jinja2.UndefinedError(f"no label {key!r} in templates/labels/") from None
        try:
            return text.format_map(_Placeholders(values))
        except (ValueError, LookupError, AttributeError) as exc:
            raise jinja2.TemplateRuntimeError(f"label {key!r} = {text!r}: {exc}") from None


def check_templates(folder: Path | None) -> list[str]:
    """Compile every shipped and curator template; each problem as ``file:line: message``.

    Also reports an include, import or extends naming a template that does not exist.
    """
    env = _environment(folder, babel.Locale("en"))
    problems: list[str] = []
    for base in (folder, BUILTIN_TEMPLATES):
        if base is None:
            continue
        for path in sorted(p for p in base.rglob("*") if p.suffix in (".j2", ".css")):
            name = path.relative_to(base).as_posix()
            try:
                source = path.read_text(encoding="utf-8")
                env.compile(source, name, str(path))
                tree = env.parse(source, name, str(path))
            except jinja2.TemplateSyntaxError as exc:
                problems.append(f"{path}:{exc.lineno}: {exc.message}")
                continue
            except (OSError, UnicodeDecodeError) as exc:
                problems.append(f"{path}:1: cannot read: {exc}")
                continue
            problems.extend(f"{path}:{line}: {why}" for line, why in _missing_templates(env, tree))
    return problems


def _environment(folder: Path | None, locale: babel.Locale) -> jinja2.Environment:
    searchpath = [str(folder)] if folder is not None else []
    searchpath.append(str(BUILTIN_TEMPLATES))
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(searchpath),
        autoescape=jinja2.select_autoescape(
            enabled_extensions=("html.j2", "atom.j2"), default_for_string=True, default=False
        ),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        auto_reload=False,
    )
    env.filters.update(
        wrap=_wrap,
        underline=_underline,
        host=_host,
        rfc3339=_rfc3339,
        xml_text=_xml_text,
        long_date=lambda day: _long_date(day, locale),
    )
    env.globals.update(fit=_fit)
    return env


def _missing_templates(env: jinja2.Environment, tree: nodes.Template) -> list[tuple[int, str]]:
    assert env.loader is not None
    missing = []
    for node in tree.find_all((nodes.Include, nodes.Import, nodes.FromImport, nodes.Extends)):
        target = getattr(node, "template", None)
        if isinstance(target, nodes.Const) and isinstance(target.value, str):
            try:
                env.loader.get_source(env, target.value)
            except jinja2.TemplateNotFound:
                missing.append((node.lineno, f"template {target.value!r} not found"))
    return missing


def _template_line(exc: BaseException) -> str | None:
    """``file:line`` of the innermost template frame (Jinja rewrites frames to .j2 lines)."""
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        if frame.filename.endswith(".j2"):
            return f"{frame.filename}:{frame.lineno}"
    return None


def _reason(exc: BaseException) -> str:
    if isinstance(exc, jinja2.TemplateNotFound):
        return f"template {exc.name!r} not found"
    if isinstance(exc, jinja2.TemplateError):
        return exc.message or type(exc).__name__
    return f"{type(exc).__name__}: {exc}"


class _Placeholders(dict[str, object]):
    """Fills the placeholders a label uses and leaves unknown ones as they are."""

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def _checked_links(plan: DigestPlan) -> tuple[DigestPlan, list[str]]:
    """The plan without links a reader should not follow (``javascript:``, relative...)."""
    warnings: list[str] = []

    def dropped(url: str, what: str) -> None:
        warnings.append(f"{what}: link {url[:80]!r} dropped: not an http(s) URL")

    def item(section: Section, it: Item) -> Item:
        url = it.url
        if url is not None and not _linkable(url):
            dropped(url, f"{section.title}: {it.headline}")
            url = None
        sources: list[Link] = []
        for link in it.sources:
            if _linkable(link.url):
                sources.append(link)
            else:
                dropped(link.url, f"{section.title}: {it.headline}: {link.outlet}")
        return replace(it, url=url, sources=tuple(sources))

    sections = []
    for section in plan.sections:
        photo = section.photo
        if photo is not None and not _linkable(photo.image):
            warnings.append(f"{section.title}: photo {photo.image[:80]!r} left out: not http(s)")
            photo = None
        elif photo is not None and photo.link is not None and not _linkable(photo.link):
            dropped(photo.link, f"{section.title}: photo")
            photo = replace(photo, link=None)
        items = tuple(item(section, it) for it in section.items)
        sections.append(replace(section, items=items, photo=photo))
    return replace(plan, sections=tuple(sections)), warnings


def _linkable(url: str) -> bool:
    parts = urlsplit(url.strip())
    return parts.scheme.lower() in _LINK_SCHEMES and bool(parts.netloc)


def _long_date(day: date, locale: babel.Locale) -> str:
    """``7. Dezember 2026``, ``December 7, 2026``: the way the language writes a date."""
    return babel.dates.format_date(day, format="long", locale=locale)


def _fit(photo: object, max_width: int = CONTENT_WIDTH) -> tuple[int, int]:
    """An image's display size: at most ``max_width`` wide, aspect ratio kept."""
    width, height = int(getattr(photo, "width", 0)), int(getattr(photo, "height", 0))
    if width <= 0 or height <= 0:
        return max_width, round(max_width * 2 / 3)
    shown = min(width, max_width)
    return shown, round(height * shown / width)


def _wrap(text: str, width: int = TEXT_WIDTH, indent: str = "", first: str | None = None) -> str:
    """Plain text filled to ``width`` columns; words (URLs) are never broken."""
    return textwrap.fill(
        " ".join(str(text).split()),
        width=width,
        initial_indent=indent if first is None else first,
        subsequent_indent=indent,
        break_long_words=False,
        break_on_hyphens=False,
    )


def _underline(text: str, char: str = "=", width: int = TEXT_WIDTH) -> str:
    """A heading for the text part: wrapped, then underlined as long as its longest line."""
    wrapped = _wrap(text, width)
    return f"{wrapped}\n{char * max(len(line) for line in wrapped.splitlines() or [''])}"


def _host(url: str) -> str:
    """``https://www.heise.de/news/...`` -> ``heise.de``: a link's short visible name."""
    host = urlsplit(url).hostname or url
    return host.removeprefix("www.")


def _rfc3339(moment: datetime) -> str:
    """An Atom timestamp; a naive datetime is taken as UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _xml_text(text: str) -> str:
    """Text without the control characters XML 1.0 forbids (escaping is autoescape's job)."""
    return _XML_INVALID.sub("", str(text))


def _tidy(text: str) -> str:
    """No trailing spaces, at most one blank line in a row, one final newline."""
    lines = [line.rstrip() for line in text.splitlines()]
    tidy = re.sub(r"\n{3,}", "\n\n", "\n".join(lines))
    return tidy.strip("\n") + "\n"

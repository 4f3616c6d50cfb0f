"""What the XML and JSON readers share: building entries and skipping broken ones."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

from newsdesk import identity
from newsdesk.models import ParsedEntry

_HTTP_SCHEMES = frozenset({"http", "https"})
_LANG_RE = re.compile(r"[a-z]{2,3}(?:-[a-z0-9]{1,8})*")
# The exceptions one odd entry can raise on the way from feedparser's dicts to ours.
_ENTRY_ERRORS = (ValueError, TypeError, LookupError, OverflowError)


def _collect_entries(
    raw_entries: list[Any], convert: Callable[[Any], ParsedEntry | None]
) -> tuple[list[ParsedEntry], int, list[str]]:
    """Converted entries, the number skipped, and why the broken ones were skipped.

    ``convert`` returns None for an entry with nothing to show; one that raises on odd
    data is skipped with a warning rather than failing the feed.
    """
    entries: list[ParsedEntry] = []
    problems: list[str] = []
    for position, raw in enumerate(raw_entries, start=1):
        try:
            entry = convert(raw)
        except _ENTRY_ERRORS as error:
            problems.append(f"entry {position} skipped: {type(error).__name__}: {error}")
            continue
        if entry is not None:
            entries.append(entry)
    return entries, len(raw_entries) - len(entries), problems


def _lang(value: object) -> str | None:
    """A lower-case language tag ("de", "en-us") from xml:lang, <language>, headers."""
    if not isinstance(value, str):
        return None
    tag = value.split(",")[0].split(";")[0].strip().replace("_", "-").lower()
    return tag if _LANG_RE.fullmatch(tag) else None


def _entry(
    *,
    guid: object,
    title: str,
    url: str | None,
    summary: str,
    content: str,
    author: str | None,
    published: datetime | None,
    updated: datetime | None,
    lang: str | None,
) -> ParsedEntry:
    """A ParsedEntry with its identity (canonical URL, content hash, key) filled in."""
    digest = identity.content_hash(title, url, content or summary)
    return ParsedEntry(
        key=identity.entry_key(guid if isinstance(guid, str) else None, url, digest),
        title=title,
        url=url,
        canonical_url=identity.canonical_url(url) if url else None,
        summary=summary,
        content=content,
        author=author,
        published=published,
        updated=updated,
        lang=lang,
        content_hash=digest,
    )

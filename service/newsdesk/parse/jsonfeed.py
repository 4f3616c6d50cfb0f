"""JSON Feed 1.0/1.1 documents (https://jsonfeed.org/version/1.1), read without feedparser."""

from __future__ import annotations

import html
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from newsdesk.errors import ParseError
from newsdesk.models import ParsedEntry, ParsedFeed
from newsdesk.parse.entries import _HTTP_SCHEMES, _collect_entries, _entry, _lang
from newsdesk.parse.sanitize import _absolute_url, _plain_text, sanitize_html

_JSON_FEED_VERSIONS = {
    "https://jsonfeed.org/version/1": "json10",
    "https://jsonfeed.org/version/1.1": "json11",
    # Not in the spec, but written by some generators (and gofeed's fixtures).
    "1.0": "json10",
    "1.1": "json11",
}


def _parse_json_feed(body: bytes, url: str, headers: Mapping[str, str]) -> ParsedFeed:
    """A JSON Feed 1.0/1.1 document (https://jsonfeed.org/version/1.1)."""
    document = _load_json(body, url)
    declared = str(document.get("version", "")).strip().rstrip("/")
    version = _JSON_FEED_VERSIONS.get(declared.replace("http://", "https://", 1))
    if version is None:
        raise ParseError(url, "not a feed: JSON document is not a JSON Feed")
    items = document.get("items")
    items = items if isinstance(items, list) else []
    lang = _lang(document.get("language")) or _lang(headers.get("content-language"))
    # Per the spec, the feed's authors are the authors of items that name none.
    feed_author = _json_author(document)

    def convert(item: Any) -> ParsedEntry | None:
        if not isinstance(item, dict):
            return None
        return _json_entry(item, base_url=url, feed_lang=lang, feed_author=feed_author)

    entries, skipped, problems = _collect_entries(items, convert)
    return ParsedFeed(
        title=_plain_text(_str(document.get("title")), is_html=False),
        site_url=_absolute_url(_str(document.get("home_page_url")), url, _HTTP_SCHEMES),
        lang=lang,
        version=version,
        ttl_minutes=None,
        entries=entries,
        warnings=problems,
        skipped=skipped,
    )


def _load_json(body: bytes, url: str) -> dict[str, Any]:
    """The top-level JSON object, or a ParseError saying why there is none."""
    try:
        document = json.loads(body.removeprefix(b"\xef\xbb\xbf"))
    except ValueError as error:  # JSONDecodeError and UnicodeDecodeError alike
        raise ParseError(url, f"invalid JSON: {error}") from None
    except RecursionError:
        raise ParseError(url, "invalid JSON: nested too deeply") from None
    if not isinstance(document, dict):
        raise ParseError(url, "not a feed: JSON document is not a JSON Feed")
    return document


def _json_entry(
    item: dict[str, Any], *, base_url: str, feed_lang: str | None, feed_author: str | None
) -> ParsedEntry | None:
    """One JSON Feed item as a ParsedEntry, or None when it has nothing to show."""
    url = _absolute_url(_str(item.get("url")), base_url, _HTTP_SCHEMES)
    url = url or _absolute_url(_str(item.get("external_url")), base_url, _HTTP_SCHEMES)
    title = _plain_text(_str(item.get("title")), is_html=False)
    content = sanitize_html(_str(item.get("content_html")) or "", url or base_url)
    if not content and (text := _str(item.get("content_text"))):
        content = html.escape(text, quote=False)
    summary = html.escape(_str(item.get("summary")) or "", quote=False)
    if not (title or url or summary or content):
        return None
    updated = _json_date(item.get("date_modified"))
    item_id = item.get("id")
    return _entry(
        guid=str(item_id) if isinstance(item_id, str | int) else None,
        title=title,
        url=url,
        summary=summary,
        content=content,
        author=_json_author(item) or feed_author,
        published=_json_date(item.get("date_published")) or updated,
        updated=updated,
        lang=_lang(item.get("language")) or feed_lang,
    )


def _str(value: object) -> str | None:
    """``value`` when it is a string: JSON Feed fields are sometimes numbers or null."""
    return value if isinstance(value, str) else None


def _json_author(node: Mapping[str, Any]) -> str | None:
    """The first author's name: ``authors`` (1.1) or ``author`` (1.0)."""
    authors = node.get("authors")
    author = authors[0] if isinstance(authors, list) and authors else node.get("author")
    name = author.get("name") if isinstance(author, dict) else None
    return _plain_text(_str(name), is_html=False) or None


def _json_date(value: object) -> datetime | None:
    """An RFC 3339 date as aware UTC; a date without offset is taken as UTC."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)

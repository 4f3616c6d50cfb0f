"""RSS, Atom and CDF documents through feedparser, under the malformed-document policy.

feedparser is handed the body as a stream and never a URL or a path; the policy it is
checked against is described in :mod:`newsdesk.parse`.
"""

from __future__ import annotations

import functools
import html
import io
import re
import warnings
import xml.sax
from collections.abc import Mapping
from datetime import UTC, datetime
from time import struct_time
from typing import Any
from urllib.parse import urljoin

import feedparser

from newsdesk.errors import ParseError
from newsdesk.models import ParsedEntry, ParsedFeed
from newsdesk.parse.entries import _HTTP_SCHEMES, _collect_entries, _entry, _lang
from newsdesk.parse.sanitize import _absolute_url, _plain_text, sanitize_html

_HTML_START_RE = re.compile(
    rb"\A\s*(?:<\?xml[^>]*>\s*)?(?:<!--.*?-->\s*)*<(?:!doctype\s+html|html|head|body)\b",
    re.I | re.S,
)
_ROOT_TAG_RE = re.compile(rb"<([A-Za-z_][\w:.-]*)")

_HARMLESS_ERRORS = (feedparser.CharacterEncodingOverride, feedparser.NonXMLContentType)
_XML_ERRORS = (xml.sax.SAXException, feedparser.UndeclaredNamespace)


def _parse_xml_feed(body: bytes, url: str, headers: Mapping[str, str]) -> ParsedFeed:
    """RSS, Atom or CDF through feedparser, checked against the malformed-document policy."""
    base_url = _document_base(url, headers)
    result = _run_feedparser(body, url, headers)
    feed = result.get("feed") or {}
    if not base_url.lower().startswith(("http://", "https://")):
        # A local file (fetch.allow_local_files) has no web address of its own: its
        # relative links mean the address the feed declares for itself.
        base_url = _declared_address(feed) or base_url
    title_detail = feed.get("title_detail") or {}
    title = _plain_text(title_detail.get("value"), "html" in (title_detail.get("type") or ""))
    problems = _check_document(result, body, url, recovered=bool(title or result["entries"]))
    lang = _lang(feed.get("language")) or _lang(title_detail.get("language"))
    lang = lang or _lang(headers.get("content-language"))  # The most general, so last.
    convert = functools.partial(_xml_entry, base_url=base_url, feed_lang=lang)
    entries, skipped, entry_problems = _collect_entries(result["entries"], convert)
    return ParsedFeed(
        title=title,
        site_url=_absolute_url(feed.get("link"), base_url, _HTTP_SCHEMES),
        lang=lang,
        version=result.get("version") or "unknown",
        ttl_minutes=_ttl(feed.get("ttl")),
        entries=entries,
        warnings=problems + entry_problems,
        skipped=skipped,
    )


def _document_base(url: str, headers: Mapping[str, str]) -> str:
    """The base URI of the document: Content-Location (resolved), else the URL."""
    location = _absolute_url(headers.get("content-location"), url, _HTTP_SCHEMES)
    return location or url


def _declared_address(feed: Mapping[str, Any]) -> str | None:
    """The feed's own http(s) address (Atom rel="self"), else its site link."""
    for link in feed.get("links") or ():
        found = _absolute_url(link.get("href"), None, _HTTP_SCHEMES)
        if link.get("rel") == "self" and found:
            return found
    return _absolute_url(feed.get("link"), None, _HTTP_SCHEMES)


def _run_feedparser(body: bytes, url: str, headers: Mapping[str, str]) -> Any:
    """feedparser's result for ``body``: handed as a stream, never as a URL or path."""
    # No Content-Location, although feedparser would resolve links against it: with a
    # base URI it re-resolves xml:base at every element, a third of its parsing time on
    # a plain RSS feed. Relative results are joined with the base here instead.
    response_headers = {
        # Without a Content-Type feedparser assumes ISO-8859-1 for undeclared XML;
        # RFC 7303 says UTF-8, which is also what such feeds nearly always are.
        "content-type": headers.get("content-type") or "application/xml",
    }
    # No Content-Language either: then an entry's language from feedparser is its own
    # (or its feed's) xml:lang, and the header can rank below <language>.
    try:
        with warnings.catch_warnings():
            # feedparser's internals may warn about deprecated APIs: not our callers' business.
            warnings.simplefilter("ignore", DeprecationWarning)
            return feedparser.parse(
                io.BytesIO(body),
                response_headers=response_headers,
                sanitize_html=False,
                resolve_relative_uris=False,
            )
    except Exception as error:
        # A feedparser crash on hostile input is a property of that feed, not a bug of
        # ours: fail the feed, not the batch.
        raise ParseError(url, f"parser crashed: {type(error).__name__}: {error}") from error


def _check_document(result: Any, body: bytes, url: str, *, recovered: bool) -> list[str]:
    """Warnings for a survivable document; ``ParseError`` for one that is not a feed."""
    error = result.get("bozo_exception") if result.get("bozo") else None
    if error is None or isinstance(error, _HARMLESS_ERRORS):
        if result.get("version") or recovered:
            return [_describe_harmless(error)] if error else []
        raise ParseError(url, _not_a_feed_reason(body))
    if not isinstance(error, _XML_ERRORS):
        if isinstance(error, feedparser.CharacterEncodingUnknown):
            raise ParseError(url, "unknown character encoding")
        raise ParseError(url, f"unreadable document: {error}")
    problem = _describe_xml_error(error, body)
    if recovered:
        return [f"invalid XML (read leniently): {problem}"]
    if _HTML_START_RE.match(body):
        raise ParseError(url, "not a feed: HTML page")
    if problem.startswith("no element found"):
        raise ParseError(url, "not a feed: empty document")  # Comments, whitespace only.
    raise ParseError(url, f"invalid XML: {problem}")


def _describe_harmless(error: Exception) -> str:
    if isinstance(error, feedparser.NonXMLContentType):
        return f"wrong content type: {error}"
    return f"wrong declared charset: {error}"


def _describe_xml_error(error: Exception, body: bytes) -> str:
    """Expat's message with its line in the body, e.g. "mismatched tag at line 3"."""
    if not isinstance(error, xml.sax.SAXParseException):
        return str(error)
    line = error.getLineNumber() or 1
    # feedparser put an XML declaration line in front of a body that had none.
    head = body[:64].replace(b"\x00", b"").lstrip(b"\xef\xbb\xbf\xfe\xff")
    if not head.startswith(b"<?xml") and line > 1:
        line -= 1
    return f"{error.getMessage()} at line {line}"


def _not_a_feed_reason(body: bytes) -> str:
    if _HTML_START_RE.match(body):
        return "not a feed: HTML page"
    root = _ROOT_TAG_RE.search(body[:4096].replace(b"<?", b"").replace(b"<!", b""))
    if root:
        name = root[1].decode("ascii", "replace")
        return f"not a feed: unrecognised XML document (root element <{name}>)"
    return "not a feed: unrecognised document"


def _xml_entry(raw: Any, *, base_url: str, feed_lang: str | None) -> ParsedEntry | None:
    """One feedparser entry as a ParsedEntry, or None when it has nothing to show."""
    # dict.get, not FeedParserDict.get: feedparser maps missing keys to others
    # ("updated" -> "published") with a DeprecationWarning.
    title_detail = dict.get(raw, "title_detail") or {}
    title = _plain_text(dict.get(raw, "title"), "html" in (title_detail.get("type") or ""))
    url = _absolute_url(dict.get(raw, "link"), base_url, _HTTP_SCHEMES)
    content_detail = _pick_content(dict.get(raw, "content"))
    content = _html_of(content_detail, base_url)
    summary_detail = dict.get(raw, "summary_detail")
    # Without a summary_detail, feedparser copied the content into "summary".
    summary = _html_of(summary_detail, base_url) if summary_detail else ""
    if not (title or url or summary or content):
        return None
    updated = _utc(dict.get(raw, "updated_parsed"))
    return _entry(
        guid=dict.get(raw, "id"),
        title=title,
        url=url,
        summary=summary,
        content=content,
        author=_author(raw),
        published=_utc(dict.get(raw, "published_parsed")) or updated,
        updated=updated,
        lang=_entry_lang(title_detail, content_detail, summary_detail) or feed_lang,
    )


def _entry_lang(*details: Mapping[str, Any] | None) -> str | None:
    """The xml:lang in effect for the entry's title, else its content or summary."""
    for detail in details:
        if detail and (lang := _lang(detail.get("language"))):
            return lang
    return None


def _pick_content(contents: list[Mapping[str, Any]] | None) -> Mapping[str, Any] | None:
    """The HTML alternative among an entry's contents, else the first."""
    if not contents:
        return None
    return next((c for c in contents if "html" in (c.get("type") or "")), contents[0])


def _html_of(detail: Mapping[str, Any] | None, base_url: str) -> str:
    """Sanitised HTML of a feedparser text construct (plain text gets escaped)."""
    if not detail or not (value := detail.get("value")):
        return ""
    kind = detail.get("type") or "text/html"
    if "html" in kind:
        # The base of the element (xml:base), relative to the document's.
        base = detail.get("base")
        return sanitize_html(value, urljoin(base_url, base) if base else base_url)
    if kind.startswith("text/"):
        return html.escape(value, quote=False)
    return ""  # Base64 images and other media in Atom content are not text.


def _author(raw: Any) -> str | None:
    """The author's name as plain text (feedparser's "author" may be "mail (name)")."""
    detail = dict.get(raw, "author_detail") or {}
    name = detail.get("name") or dict.get(raw, "author")
    return _plain_text(name, is_html=True) or None


def _utc(parsed: struct_time | None) -> datetime | None:
    """feedparser's UTC struct_time as an aware datetime; None when unusable."""
    if not parsed:
        return None
    try:
        return datetime(*parsed[:6], tzinfo=UTC)
    except (ValueError, TypeError, OverflowError):
        return None


def _ttl(value: object) -> int | None:
    """RSS <ttl> in minutes, when it is a positive integer."""
    text = str(value).strip() if value is not None else ""
    # ASCII digits only ("²".isdigit() is true), and no more than a year: the value only
    # makes checks rarer, within max_interval.
    if not re.fullmatch(r"[0-9]{1,7}", text) or int(text) == 0:
        return None
    return min(int(text), 366 * 24 * 60)

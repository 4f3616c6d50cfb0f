"""Turn the bytes of a feed document into a :class:`~newsdesk.models.ParsedFeed`.

The only module that imports feedparser (RSS 0.9x/1.0/2.0, Atom 0.3/1.0, CDF) and nh3
(HTML sanitising); JSON Feed 1.0/1.1, which feedparser 6 does not read, is parsed here.

feedparser is only ever handed the body wrapped in ``io.BytesIO`` plus the response
headers: given a ``str`` or ``bytes`` it would fetch URLs (without a timeout) and open
local paths. Its own sanitiser and relative-URI rewriting are off: they are slow, and the
sanitiser lets forms, password inputs and ``javascript:`` image sources through; nh3
does both jobs in one pass (:func:`sanitize_html`). feedparser still resolves links
against ``xml:base``; what stays relative is resolved here against the document's URL
(``Content-Location``, else ``url``).

Malformed-document policy. feedparser reports problems as a "bozo" exception:

- a wrong declared charset (``CharacterEncodingOverride``) or a non-XML
  ``Content-Type`` (``NonXMLContentType``) is harmless: it becomes a string in
  ``ParsedFeed.warnings``;
- a document that is not well-formed XML (``SAXParseException``, an undeclared
  namespace prefix...) is re-read by feedparser's lenient parser. When that recovers at
  least one entry or a feed title, the feed is accepted with a warning ("invalid XML
  (read leniently): ..."), because real feeds with a stray ``&`` or an unclosed tag are
  common and their readers expect them to work; otherwise it is a ``ParseError``;
- anything else (an unknown character encoding, ...) is a ``ParseError``.

A crash of feedparser itself on a hostile document is a ``ParseError`` ("parser crashed:
..."): it fails that feed, not the round.

A body that is empty, an HTML page, a JSON document that is not a JSON Feed, or XML
that feedparser does not recognise as a feed (no known version, no title, no entries)
is a ``ParseError`` too. A feed with a title and no entries is a valid, empty feed.
One bad entry never fails the feed: it is counted in ``ParsedFeed.skipped``.
"""

from __future__ import annotations

import functools
import html
import io
import json
import re
import warnings
import xml.sax
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from time import struct_time
from typing import Any
from urllib.parse import urljoin, urlsplit

import feedparser
import nh3

from newsdesk import identity
from newsdesk.errors import ParseError
from newsdesk.models import ParsedEntry, ParsedFeed

ALLOWED_TAGS = frozenset(
    {
        *("p", "br", "hr", "a", "b", "strong", "i", "em", "sub", "sup", "span"),
        *("ul", "ol", "li", "blockquote", "pre", "code"),
        *("h1", "h2", "h3", "h4", "h5", "h6", "img", "figure", "figcaption"),
        *("table", "caption", "thead", "tbody", "tfoot", "tr", "th", "td"),
    }
)
"""Tags kept by :func:`sanitize_html`; others are unwrapped (their text is kept)."""

DROPPED_CONTENT_TAGS = frozenset(
    {
        *("script", "style", "iframe", "frame", "frameset", "object", "embed", "applet"),
        *("form", "input", "button", "select", "textarea", "noscript", "template"),
        *("svg", "math", "head", "title"),
    }
)
"""Tags removed together with everything inside them."""

ALLOWED_ATTRIBUTES = {
    "*": {"title"},
    "a": {"href"},
    "img": {"src", "alt", "width", "height"},
}
URL_SCHEMES = frozenset({"http", "https", "mailto"})
LINK_REL = "noopener noreferrer nofollow"

PIXEL_URL_PARTS = (
    "feeds.feedburner.com/~r/",
    "feeds.feedburner.com/~ff/",
    "feedsportal.com/",
    "feedblitz.com/~/i/",
    "pixel.wp.com/",
    "stats.wordpress.com/",
    "pixel.quantserve.com/",
    "google-analytics.com/collect",
    "/__utm.gif",
    "doubleclick.net/",
    "amazon-adsystem.com/",
)
"""Image sources that are known to be tracking pixels, whatever their size."""

_HTTP_SCHEMES = frozenset({"http", "https"})
_JSON_FEED_VERSIONS = {
    "https://jsonfeed.org/version/1": "json10",
    "https://jsonfeed.org/version/1.1": "json11",
    # Not in the spec, but written by some generators (and gofeed's fixtures).
    "1.0": "json10",
    "1.1": "json11",
}
_DIMENSION_RE = re.compile(r"\s*(\d{1,5})(?:px)?\s*")
_IMG_TAG_RE = re.compile(r"<img\b[^>]*>")
# nh3 serialises every attribute as name="value" with '"' escaped, so this is exact.
_ATTR_RE = re.compile(r'([a-z-]+)="([^"]*)"')
_HTML_START_RE = re.compile(
    rb"\A\s*(?:<\?xml[^>]*>\s*)?(?:<!--.*?-->\s*)*<(?:!doctype\s+html|html|head|body)\b",
    re.I | re.S,
)
_ROOT_TAG_RE = re.compile(rb"<([A-Za-z_][\w:.-]*)")
_LANG_RE = re.compile(r"[a-z]{2,3}(?:-[a-z0-9]{1,8})*")
_TEXT_CLEANER = nh3.Cleaner(tags=set(), attributes={})
_ASCII_SPACE = " \t\n\r\f\v"
_SPACES_RE = re.compile(f"[{_ASCII_SPACE}]+")
# C0 controls other than whitespace, and DEL: never meant, sometimes in broken feeds.
_CONTROL_CHARS = dict.fromkeys([*range(0x09), *range(0x0E, 0x20), 0x7F])

_HARMLESS_ERRORS = (feedparser.CharacterEncodingOverride, feedparser.NonXMLContentType)
_XML_ERRORS = (xml.sax.SAXException, feedparser.UndeclaredNamespace)
# The exceptions one odd entry can raise on the way from feedparser's dicts to ours.
_ENTRY_ERRORS = (ValueError, TypeError, LookupError, OverflowError)


def parse_feed(body: bytes, *, url: str, headers: Mapping[str, str]) -> ParsedFeed:
    """Parse a feed document; ``url`` is the response URL, ``headers`` lower-cased.

    Raises :class:`ParseError` when the body is not a feed (see the module docstring).
    """
    if not body.strip():
        raise ParseError(url, "not a feed: empty document")
    if _looks_like_json(body, headers):
        return _parse_json_feed(body, url, headers)
    return _parse_xml_feed(body, url, headers)


def sanitize_html(html: str, base_url: str | None) -> str:
    """``html`` reduced to a strict allowlist of tags, attributes and URL schemes.

    Relative ``href``/``src`` are resolved against ``base_url`` (and dropped when there
    is none), links get ``rel="noopener noreferrer nofollow"``, tracking pixels go.
    """
    if not html:
        return ""
    cleaned: str = _cleaner(base_url).clean(html)
    if "<img" in cleaned:
        cleaned = _IMG_TAG_RE.sub(_drop_pixel, cleaned)
    return cleaned.strip()


# --- sanitising -----------------------------------------------------------------------


@functools.lru_cache(maxsize=64)
def _cleaner(base_url: str | None) -> Any:
    """An nh3 cleaner resolving relative URLs against ``base_url`` (entries share bases)."""
    return nh3.Cleaner(
        tags=set(ALLOWED_TAGS),
        clean_content_tags=set(DROPPED_CONTENT_TAGS),
        attributes={tag: set(names) for tag, names in ALLOWED_ATTRIBUTES.items()},
        attribute_filter=functools.partial(_filter_attribute, base_url),
        url_schemes=set(URL_SCHEMES),
        link_rel=LINK_REL,
    )


def _filter_attribute(base_url: str | None, tag: str, name: str, value: str) -> str | None:
    """nh3 callback: absolute URLs and plain pixel dimensions, else drop the attribute."""
    if name in ("href", "src"):
        return _absolute_url(value, base_url, URL_SCHEMES)
    if name in ("width", "height"):
        match = _DIMENSION_RE.fullmatch(value)
        return match[1] if match else None
    return value


def _drop_pixel(match: re.Match[str]) -> str:
    """Remove an <img> that is a tracking pixel or lost its source; keep others."""
    attrs = dict(_ATTR_RE.findall(match[0]))
    src = attrs.get("src", "")
    if not src or any(part in src for part in PIXEL_URL_PARTS):
        return ""
    sizes = (attrs.get("width", ""), attrs.get("height", ""))
    if any(size.isdigit() and int(size) <= 1 for size in sizes):
        return ""  # One invisible dimension is enough: 1x1, 1x0, 0x300 are all pixels.
    return match[0]


def _absolute_url(value: str | None, base_url: str | None, schemes: frozenset[str]) -> str | None:
    """``value`` resolved against ``base_url`` when its scheme is in ``schemes``, else None."""
    if not value or not (value := value.strip()):
        return None
    if value[:8].lower().startswith(("http://", "https://")) and "http" in schemes:
        return value  # Already absolute, the common case: urljoin is slow.
    try:
        absolute = urljoin(base_url, value) if base_url else value
        scheme = urlsplit(absolute).scheme.lower()
    except ValueError:
        return None
    return absolute if scheme in schemes else None


def _plain_text(value: str | None, is_html: bool) -> str:
    """Text for display as text: tags stripped and entities decoded when it is HTML."""
    if not value:
        return ""
    if is_html:
        value = html.unescape(_TEXT_CLEANER.clean(value))
    value = value.translate(_CONTROL_CHARS)
    # Only ASCII whitespace: a no-break or thin space in a title is meant.
    return _SPACES_RE.sub(" ", value).strip(_ASCII_SPACE)


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


# --- XML feeds (feedparser) ------------------------------------------------------------


def _parse_xml_feed(body: bytes, url: str, headers: Mapping[str, str]) -> ParsedFeed:
    """RSS, Atom or CDF through feedparser, checked against the malformed-document policy."""
    base_url = _document_base(url, headers)
    result = _run_feedparser(body, url, headers)
    feed = result.get("feed") or {}
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
    return int(text) if text.isdigit() and int(text) > 0 else None


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


# --- JSON Feed -------------------------------------------------------------------------


def _looks_like_json(body: bytes, headers: Mapping[str, str]) -> bool:
    """JSON when the body starts with "{", or is declared JSON and does not start "<"."""
    start = body.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    if start in (b"{", b"<"):
        return start == b"{"
    content_type = headers.get("content-type", "").split(";")[0].strip().lower()
    return content_type.endswith(("/json", "+json"))


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

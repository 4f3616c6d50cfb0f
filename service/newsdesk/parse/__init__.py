"""Turn the bytes of a feed document into a :class:`~newsdesk.models.ParsedFeed`.

The only room that imports feedparser and nh3: :mod:`~newsdesk.parse.xmlfeed` reads
RSS 0.9x/1.0/2.0, Atom 0.3/1.0 and CDF through feedparser, :mod:`~newsdesk.parse.jsonfeed`
reads JSON Feed 1.0/1.1 (which feedparser 6 does not), :mod:`~newsdesk.parse.sanitize`
cleans their HTML with nh3, and :mod:`~newsdesk.parse.entries` builds the entries both
return.

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

from collections.abc import Mapping

from newsdesk.errors import ParseError
from newsdesk.models import ParsedFeed
from newsdesk.parse.jsonfeed import _parse_json_feed
from newsdesk.parse.sanitize import sanitize_html
from newsdesk.parse.xmlfeed import _parse_xml_feed

__all__ = ["parse_feed", "sanitize_html"]


def parse_feed(body: bytes, *, url: str, headers: Mapping[str, str]) -> ParsedFeed:
    """Parse a feed document; ``url`` is the response URL, ``headers`` lower-cased.

    Raises :class:`ParseError` when the body is not a feed (see the module docstring).
    """
    if not body.strip():
        raise ParseError(url, "not a feed: empty document")
    if _looks_like_json(body, headers):
        return _parse_json_feed(body, url, headers)
    return _parse_xml_feed(body, url, headers)


def _looks_like_json(body: bytes, headers: Mapping[str, str]) -> bool:
    """JSON when the body starts with "{", or is declared JSON and does not start "<"."""
    start = body.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    if start in (b"{", b"<"):
        return start == b"{"
    content_type = headers.get("content-type", "").split(";")[0].strip().lower()
    return content_type.endswith(("/json", "+json"))

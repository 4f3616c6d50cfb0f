"""parse: feed bytes in, sanitised ParsedFeed out, or a ParseError saying why not."""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pytest

from newsdesk.errors import ParseError
from newsdesk.models import ParsedFeed
from newsdesk.parse import parse_feed, sanitize_html, xmlfeed

FEED_URL = "https://example.com/feed.xml"
BASE = "https://example.com/posts/1"
REL = 'rel="noopener noreferrer nofollow"'


def parse_doc(body: str | bytes, headers: Mapping[str, str] | None = None) -> ParsedFeed:
    """parse_feed on a document given inline, served as an RSS/Atom feed by default."""
    data = body.encode("utf-8") if isinstance(body, str) else body
    return parse_feed(data, url=FEED_URL, headers=headers or {})


def rss(items: str, channel: str = "<title>Example</title>") -> str:
    return f'<?xml version="1.0"?><rss version="2.0"><channel>{channel}{items}</channel></rss>'


def one_entry(items: str, **kwargs: Any) -> Any:
    feed = parse_doc(rss(items), **kwargs)
    assert len(feed.entries) == 1, feed
    return feed.entries[0]


# --- sanitize_html: what may reach a subscriber's inbox --------------------------------------

XSS = [
    # (html from a feed, what is left of it)
    ("<p>ok</p><script>alert(1)</script>", "<p>ok</p>"),
    ('<p onclick="steal()" onmouseover="x()">hi</p>', "<p>hi</p>"),
    ('<img src="x.png" onerror="alert(1)">', '<img src="https://example.com/posts/x.png">'),
    ('<a href="javascript:alert(1)">j</a>', f"<a {REL}>j</a>"),
    ('<a href="JaVaScRiPt:alert(1)">j</a>', f"<a {REL}>j</a>"),
    ('<a href="java&#x09;script:alert(1)">j</a>', f"<a {REL}>j</a>"),
    ('<a href="  javascript:alert(1)">j</a>', f"<a {REL}>j</a>"),
    ('<a href="vbscript:msgbox(1)">v</a>', f"<a {REL}>v</a>"),
    ('<a href="data:text/html,&lt;script&gt;alert(1)&lt;/script&gt;">d</a>', f"<a {REL}>d</a>"),
    ('<img src="javascript:alert(1)">', ""),
    ('<img src="data:image/svg+xml;base64,PHN2Zz4=">', ""),
    ('<form action="/login"><input type="password" name="p">Log in<button>Go</button></form>', ""),
    ("<textarea>t</textarea><select><option>o</option></select>", ""),
    ('<iframe src="https://evil.example/">fallback</iframe>', ""),
    ('<object data="x.swf">o</object><embed src="x.swf"><applet>a</applet>', ""),
    ("<style>body{display:none}</style><p>t</p>", "<p>t</p>"),
    ('<p style="background:url(javascript:x)" class="c" id="i">t</p>', "<p>t</p>"),
    ('<svg onload="alert(1)"><script>alert(1)</script></svg>', ""),
    ('<math><mi xlink:href="javascript:x">m</mi></math>', ""),
    ('<base href="https://evil.example/"><meta http-equiv="refresh" content="0">t', "t"),
    ("<noscript><img src=x.gif></noscript>", ""),
    ("<!-- <script>alert(1)</script> -->c", "c"),
]


@pytest.mark.parametrize(("dirty", "clean"), XSS)
def test_sanitize_html_removes_active_content(dirty: str, clean: str) -> None:
    assert sanitize_html(dirty, BASE) == clean


KEPT = [
    ("<p>a <b>b</b> <strong>s</strong> <i>i</i> <em>e</em> x<sub>2</sub>y<sup>3</sup></p>", None),
    ("<h2>Heading</h2><ul><li>one</li></ul><ol><li>two</li></ol><hr>", None),
    ("<blockquote>q</blockquote><pre><code>x &lt; y</code></pre>", None),
    ("<table><thead><tr><th>h</th></tr></thead><tbody><tr><td>1</td></tr></tbody></table>", None),
    (
        '<figure><img src="https://cdn.example/a.jpg" alt="A" title="T" width="600" height="400">'
        "<figcaption>c</figcaption></figure>",
        None,
    ),
    ('<a href="mailto:desk@example.com">m</a>', f'<a href="mailto:desk@example.com" {REL}>m</a>'),
    (
        '<a href="https://example.org/x" title="t">x</a>',
        f'<a href="https://example.org/x" title="t" {REL}>x</a>',
    ),
    ("<div><span>unwrapped</span> <font>text</font></div>", "<span>unwrapped</span> text"),
]


@pytest.mark.parametrize(("html", "expected"), KEPT)
def test_sanitize_html_keeps_basic_formatting(html: str, expected: str | None) -> None:
    assert sanitize_html(html, BASE) == (html if expected is None else expected)


@pytest.mark.parametrize(
    ("html", "expected"),
    [
        ('<a href="../2">r</a>', f'<a href="https://example.com/2" {REL}>r</a>'),
        ('<a href="/about">r</a>', f'<a href="https://example.com/about" {REL}>r</a>'),
        ('<img src="img/a.png">', '<img src="https://example.com/posts/img/a.png">'),
        ('<img src="//cdn.example/a.png">', '<img src="https://cdn.example/a.png">'),
    ],
)
def test_sanitize_html_resolves_relative_urls_against_the_base(html: str, expected: str) -> None:
    assert sanitize_html(html, BASE) == expected


def test_sanitize_html_drops_relative_urls_without_a_base() -> None:
    assert sanitize_html('<a href="/x">x</a><img src="y.png">', None) == f"<a {REL}>x</a>"


@pytest.mark.parametrize(
    "pixel",
    [
        '<img src="https://t.example/p.gif" width="1" height="1">',
        '<img src="https://t.example/p.gif" width="0" height="0">',
        '<img src="https://t.example/p.gif" width="1px" height="1px" alt="">',
        '<img src="https://t.example/p.gif" height="1">',
        '<img src="http://feeds.feedburner.com/~r/Example/~4/abc">',
        '<img src="https://pixel.wp.com/b.gif?host=example.com">',
        '<img srcset="a.jpg 1x" data-src="a.jpg">',  # Lazy images lose their (data:) src.
    ],
)
def test_sanitize_html_drops_tracking_pixels(pixel: str) -> None:
    assert sanitize_html(f"<p>text{pixel}</p>", BASE) == "<p>text</p>"


def test_sanitize_html_keeps_real_images() -> None:
    img = '<img src="https://example.com/photo.jpg" alt="Photo" width="640" height="1">'
    assert sanitize_html(img.replace('height="1"', 'height="480"'), BASE) == img.replace(
        'height="1"', 'height="480"'
    )


def test_sanitize_html_of_nothing_is_nothing() -> None:
    assert sanitize_html("", BASE) == ""


# --- parse_feed: feedparser is never handed a URL or a path ----------------------------------


def test_feedparser_only_ever_gets_a_stream(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[Any, dict[str, Any]]] = []
    feedparser_module = vars(xmlfeed)["feedparser"]  # Only parse/ imports feedparser.
    real_parse = feedparser_module.parse

    def spy(source: Any, **kwargs: Any) -> Any:
        calls.append((source, kwargs))
        return real_parse(source, **kwargs)

    monkeypatch.setattr(feedparser_module, "parse", spy)
    with pytest.raises(ParseError):
        parse_feed(b"http://127.0.0.1:9/feed.xml", url=FEED_URL, headers={})
    with pytest.raises(ParseError):
        parse_feed(b"/etc/passwd", url=FEED_URL, headers={})
    assert len(calls) == 2
    for source, kwargs in calls:
        assert isinstance(source, io.BytesIO)
        assert kwargs["sanitize_html"] is False
        assert kwargs["resolve_relative_uris"] is False
        assert "response_headers" in kwargs


# --- parse_feed: RSS and Atom ------------------------------------------------------------------

FULL_RSS = """<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/"
     xmlns:dc="http://purl.org/dc/elements/1.1/">
<channel>
  <title>Example &amp; Co</title>
  <link>https://example.com/</link>
  <language>de-DE</language>
  <ttl>60</ttl>
  <item>
    <title>First &lt;b&gt;post&lt;/b&gt;</title>
    <link>https://example.com/1?utm_source=rss</link>
    <guid isPermaLink="false">post-1</guid>
    <description>&lt;p&gt;Short &lt;a href="/more"&gt;more&lt;/a&gt;&lt;/p&gt;</description>
    <content:encoded><![CDATA[<p>Full <script>x()</script>text</p>]]></content:encoded>
    <dc:creator>Ada &lt;i&gt;Lovelace&lt;/i&gt;</dc:creator>
    <pubDate>Tue, 02 Jan 2024 10:00:00 +0200</pubDate>
  </item>
</channel>
</rss>"""


def test_parse_feed_reads_a_full_rss_item() -> None:
    feed = parse_doc(FULL_RSS)
    assert (feed.title, feed.site_url, feed.lang) == (
        "Example & Co",
        "https://example.com/",
        "de-de",
    )
    assert (feed.version, feed.ttl_minutes, feed.warnings, feed.skipped) == ("rss20", 60, [], 0)
    (entry,) = feed.entries
    assert entry.key == "guid:post-1"
    assert entry.title == "First post"
    assert entry.url == "https://example.com/1?utm_source=rss"
    assert entry.canonical_url == "https://example.com/1"
    assert entry.summary == f'<p>Short <a href="https://example.com/more" {REL}>more</a></p>'
    assert entry.content == "<p>Full text</p>"
    assert entry.author == "Ada Lovelace"
    assert entry.published == datetime(2024, 1, 2, 8, 0, tzinfo=UTC)
    assert entry.lang == "de-de"
    assert len(entry.content_hash) == 32


ATOM = """<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="en" xml:base="https://blog.example/">
  <title type="html">A &lt;em&gt;blog&lt;/em&gt;</title>
  <link href="/"/>
  <entry xml:base="2024/">
    <title>Entry</title>
    <id>tag:blog.example,2024:1</id>
    <link rel="alternate" href="entry.html"/>
    <updated>2024-03-01T12:00:00-05:00</updated>
    <author><name>Bob</name><email>bob@example.com</email></author>
    <content type="html" xml:lang="fr"
      >&lt;img src="pic.png"&gt;&lt;a href="../about"&gt;a&lt;/a&gt;</content>
  </entry>
</feed>"""


def test_parse_feed_reads_atom_and_resolves_xml_base() -> None:
    feed = parse_doc(ATOM, {"content-type": "application/atom+xml"})
    assert (feed.title, feed.site_url, feed.version) == (
        "A blog",
        "https://blog.example/",
        "atom10",
    )
    (entry,) = feed.entries
    assert entry.url == "https://blog.example/2024/entry.html"
    assert entry.key == "guid:tag:blog.example,2024:1"
    assert entry.content == (
        '<img src="https://blog.example/2024/pic.png">'
        f'<a href="https://blog.example/about" {REL}>a</a>'
    )
    assert entry.summary == ""  # Atom gave no summary; feedparser's copy is not one.
    assert entry.published == entry.updated == datetime(2024, 3, 1, 17, 0, tzinfo=UTC)
    assert entry.author == "Bob"
    assert entry.lang == "en"  # The title's language: the entry's own, not its content's.


def test_relative_links_resolve_against_the_response_url() -> None:
    entry = one_entry("<item><title>t</title><link>/a/1</link></item>")
    assert entry.url == "https://example.com/a/1"


def test_content_location_overrides_the_response_url_as_base() -> None:
    headers = {"content-location": "https://mirror.example/feeds/main.xml"}
    entry = one_entry("<item><title>t</title><link>1.html</link></item>", headers=headers)
    assert entry.url == "https://mirror.example/feeds/1.html"


@pytest.mark.parametrize("link", ["javascript:alert(1)", "ftp://example.com/x", "mailto:a@b.c"])
def test_entry_links_are_http_only(link: str) -> None:
    entry = one_entry(f"<item><title>t</title><link>{link}</link></item>")
    assert entry.url is None
    assert entry.canonical_url is None
    assert entry.key.startswith("hash:")


def test_entry_key_falls_back_to_the_canonical_url() -> None:
    entry = one_entry("<item><title>t</title><link>https://Example.com/1#x</link></item>")
    assert entry.key == "url:https://example.com/1#x"  # the fragment may tell entries apart
    assert entry.canonical_url == "https://example.com/1"


@pytest.mark.parametrize(
    ("title", "expected"),
    [
        ("AT&amp;T  results\n", "AT&T results"),
        ("&lt;b&gt;Bold&lt;/b&gt; news", "Bold news"),
        ("<![CDATA[Fish &amp; <i>Chips</i>]]>", "Fish & Chips"),
        ("no\u00a0break", "no\u00a0break"),
        ("ctrl\x08char", "ctrlchar"),
    ],
)
def test_titles_are_plain_text(title: str, expected: str) -> None:
    entry = one_entry(f"<item><title>{title}</title></item>".replace("\x08", "&#8;"))
    assert entry.title == expected


@pytest.mark.parametrize(
    ("date", "expected"),
    [
        ("<pubDate>Tue, 02 Jan 2024 10:00:00 GMT</pubDate>", datetime(2024, 1, 2, 10, 0)),
        ("<pubDate>Tue, 02 Jan 2024 10:00:00 -0800</pubDate>", datetime(2024, 1, 2, 18, 0)),
        ("<pubDate>Tue, 02 Jan 2024 10:00:00 EST</pubDate>", datetime(2024, 1, 2, 15, 0)),
        ("<dc:date>2024-01-02T10:00:00+05:30</dc:date>", datetime(2024, 1, 2, 4, 30)),
        ("<pubDate>Fri, 01 Jan 2100 00:00:00 GMT</pubDate>", datetime(2100, 1, 1)),  # Kept.
        ("<pubDate>yesterday-ish</pubDate>", None),
        ("", None),
    ],
)
def test_dates_are_aware_utc(date: str, expected: datetime | None) -> None:
    channel = '<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/"><channel>'
    doc = f"{channel}<title>x</title><item><title>t</title>{date}</item></channel></rss>"
    (entry,) = parse_doc(doc).entries
    assert entry.published == (expected.replace(tzinfo=UTC) if expected else None)


def test_published_falls_back_to_updated() -> None:
    doc = ATOM.replace("<updated>", "<published>2024-02-01T00:00:00Z</published><updated>")
    (entry,) = parse_doc(doc).entries
    assert entry.published == datetime(2024, 2, 1, tzinfo=UTC)
    assert entry.updated == datetime(2024, 3, 1, 17, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("channel", "headers", "expected"),
    [
        ("<language>en-US</language>", {}, "en-us"),
        ("<language>de_DE</language>", {"content-language": "fr"}, "de-de"),
        ("", {"content-language": "fr, en"}, "fr"),
        ("<language>English</language>", {}, None),
        ("", {}, None),
    ],
)
def test_language_from_feed_or_content_language(
    channel: str, headers: dict[str, str], expected: str | None
) -> None:
    feed = parse_doc(rss("<item><title>t</title></item>", "<title>x</title>" + channel), headers)
    assert feed.lang == expected
    assert feed.entries[0].lang == expected


@pytest.mark.parametrize(("ttl", "expected"), [("30", 30), (" 5 ", 5), ("soon", None), ("0", None)])
def test_ttl_in_minutes_when_an_integer(ttl: str, expected: int | None) -> None:
    feed = parse_doc(rss("", f"<title>x</title><ttl>{ttl}</ttl>"))
    assert feed.ttl_minutes == expected


def test_plain_text_summaries_are_escaped() -> None:
    doc = ATOM.replace(
        "<content", '<summary type="text">1 &lt; 2 &amp; &lt;b&gt;</summary><content'
    )
    (entry,) = parse_doc(doc).entries
    assert entry.summary == "1 &lt; 2 &amp; &lt;b&gt;"


# --- parse_feed: charsets ----------------------------------------------------------------------

LATIN1 = rss("<item><title>Café Müller</title></item>").encode("latin-1")


def test_charset_from_content_type_header() -> None:
    feed = parse_doc(LATIN1, {"content-type": "application/rss+xml; charset=iso-8859-1"})
    assert feed.entries[0].title == "Café Müller"
    assert feed.warnings == []


def test_undeclared_utf8_without_content_type_is_utf8() -> None:
    feed = parse_doc(rss("<item><title>Café – ½</title></item>"))
    assert feed.entries[0].title == "Café – ½"
    assert feed.warnings == []


def test_wrong_declared_charset_is_a_warning() -> None:
    body = LATIN1.replace(b'<?xml version="1.0"?>', b'<?xml version="1.0" encoding="utf-8"?>')
    feed = parse_doc(body, {"content-type": "application/xml"})
    assert feed.entries[0].title == "Café Müller"
    (warning,) = feed.warnings
    assert warning.startswith("wrong declared charset: document declared as utf-8, but parsed as")


def test_feed_served_as_text_html_is_a_warning() -> None:
    feed = parse_doc(rss("<item><title>t</title></item>"), {"content-type": "text/html"})
    assert feed.warnings == ["wrong content type: text/html is not an XML media type"]
    assert len(feed.entries) == 1


# --- parse_feed: what is not a feed ----------------------------------------------------------

NOT_FEEDS = [
    (b"", "not a feed: empty document"),
    (b"  \n\t ", "not a feed: empty document"),
    (b"<?xml version='1.0'?>\n<!-- nothing -->\n", "not a feed: empty document"),
    (
        b"<!DOCTYPE html><html><head><title>Hi</title></head><body>x</body></html>",
        "not a feed: HTML page",
    ),
    (b"<html><body><p>Unclosed<br></body></html>", "not a feed: HTML page"),
    (b"<head><title>Moved</title></head><body><a HREF=x>here</a></body>", "not a feed: HTML page"),
    (
        b"<?xml version='1.0'?><note><to>Tove</to></note>",
        "not a feed: unrecognised XML document (root element <note>)",
    ),
    (b"<rss version='2.0'><channel><title>t</ti", "invalid XML: unclosed token at line 1"),
    (
        b"<?xml version='1.0'?>\n<rss>\n<channel><title>t</x>",
        "invalid XML: mismatched tag at line 3",
    ),
    (b"just some text", "invalid XML: syntax error at line 1"),
]


@pytest.mark.parametrize(("body", "reason"), NOT_FEEDS)
def test_not_a_feed_is_a_parse_error_with_a_reason(body: bytes, reason: str) -> None:
    with pytest.raises(ParseError) as caught:
        parse_feed(body, url=FEED_URL, headers={"content-type": "text/html"})
    assert caught.value.reason == reason
    assert caught.value.url == FEED_URL
    assert str(caught.value) == f"{FEED_URL}: {reason}"


def test_broken_xml_read_leniently_is_a_warning() -> None:
    body = rss("<item><title>Fish & Chips</title><link>https://example.com/1</link></item>")
    feed = parse_doc(body)
    assert feed.warnings == [
        "invalid XML (read leniently): not well-formed (invalid token) at line 1"
    ]
    assert [e.title for e in feed.entries] == ["Fish & Chips"]


def test_a_feed_with_a_title_and_no_entries_is_valid() -> None:
    feed = parse_doc(rss(""))
    assert (feed.title, feed.entries, feed.skipped, feed.warnings) == ("Example", [], 0, [])


# --- parse_feed: bad entries are skipped, never fatal ----------------------------------------


def test_an_entry_with_nothing_to_show_is_skipped() -> None:
    items = "<item><pubDate>Tue, 02 Jan 2024 10:00:00 GMT</pubDate></item>"
    items += "<item><title>ok</title></item>"
    feed = parse_doc(rss(items))
    assert [e.title for e in feed.entries] == ["ok"]
    assert feed.skipped == 1


def test_an_entry_that_breaks_is_skipped_with_a_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    real_entry = xmlfeed._xml_entry

    def fragile(raw: Any, **kwargs: Any) -> Any:
        if dict.get(raw, "title") == "boom":
            raise ValueError("odd data")
        return real_entry(raw, **kwargs)

    monkeypatch.setattr(xmlfeed, "_xml_entry", fragile)
    feed = parse_doc(rss("<item><title>boom</title></item><item><title>fine</title></item>"))
    assert [e.title for e in feed.entries] == ["fine"]
    assert feed.skipped == 1
    assert feed.warnings == ["entry 1 skipped: ValueError: odd data"]


# --- parse_feed: JSON Feed -------------------------------------------------------------------

JSON_FEED: dict[str, Any] = {
    "version": "https://jsonfeed.org/version/1.1",
    "title": "JSON Example",
    "home_page_url": "https://example.org/",
    "language": "en-GB",
    "items": [
        {
            "id": "2",
            "url": "/second",
            "title": "Second",
            "content_html": '<p>Hi<script>alert(1)</script> <img src="a.png"></p>',
            "summary": "Short <not html>",
            "date_published": "2024-05-01T10:00:00.52+02:00",
            "date_modified": "2024-05-02T10:00:00Z",
            "authors": [{"name": "Ann"}],
        },
        {"id": 1, "content_text": "Plain & simple", "date_modified": "2024-04-01T00:00:00"},
        "not an item",
        {"id": "empty"},
    ],
}


def test_json_feed_is_parsed_like_any_feed() -> None:
    body = json.dumps(JSON_FEED).encode()
    feed = parse_feed(body, url="https://example.org/feed.json", headers={})
    assert (feed.title, feed.site_url, feed.lang, feed.version) == (
        "JSON Example",
        "https://example.org/",
        "en-gb",
        "json11",
    )
    assert feed.skipped == 2
    second, first = feed.entries
    assert second.key == "guid:2"
    assert second.url == "https://example.org/second"
    assert second.content == '<p>Hi <img src="https://example.org/a.png"></p>'
    assert second.summary == "Short &lt;not html&gt;"
    assert second.published == datetime(2024, 5, 1, 8, 0, 0, 520000, tzinfo=UTC)
    assert second.updated == datetime(2024, 5, 2, 10, 0, tzinfo=UTC)
    assert second.author == "Ann"
    assert second.lang == "en-gb"
    assert first.key == "guid:1"
    assert first.content == "Plain &amp; simple"
    assert first.published == datetime(2024, 4, 1, tzinfo=UTC)  # No offset: taken as UTC.


def test_json_feed_authors_are_the_authors_of_items_naming_none() -> None:
    document = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": "t",
        "authors": [{"name": "Desk"}],
        "items": [
            {"id": "1", "title": "a"},
            {"id": "2", "title": "b", "authors": [{"name": "Bo"}]},
        ],
    }
    feed = parse_feed(json.dumps(document).encode(), url=FEED_URL, headers={})
    assert [e.author for e in feed.entries] == ["Desk", "Bo"]


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        ("http://jsonfeed.org/version/1", "json10"),
        ("https://jsonfeed.org/version/1", "json10"),
        ("https://jsonfeed.org/version/1.1", "json11"),
        ("1.0", "json10"),
        ("1.1", "json11"),
    ],
)
def test_json_feed_versions(version: str, expected: str) -> None:
    body = json.dumps({"version": version, "title": "t", "items": []}).encode()
    assert parse_feed(body, url=FEED_URL, headers={}).version == expected


def test_json_feed_1_0_author_and_bom() -> None:
    document = {
        "version": "https://jsonfeed.org/version/1",
        "title": "t",
        "items": [{"id": "1", "title": "x", "author": {"name": "Old"}}],
    }
    body = b"\xef\xbb\xbf \n" + json.dumps(document).encode()
    (entry,) = parse_feed(
        body, url=FEED_URL, headers={"content-type": "application/feed+json"}
    ).entries
    assert entry.author == "Old"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b'{"version": "2.0", "items": []}', "not a feed: JSON document is not a JSON Feed"),
        (b"{}", "not a feed: JSON document is not a JSON Feed"),
        (b'{"verion": "1.0"', "invalid JSON: Expecting ',' delimiter: line 1 column 17 (char 16)"),
        (b"[1, 2]", "not a feed: JSON document is not a JSON Feed"),
        (b"[" * 100_000, "invalid JSON: nested too deeply"),
    ],
)
def test_json_that_is_not_a_json_feed(body: bytes, reason: str) -> None:
    with pytest.raises(ParseError) as caught:
        parse_feed(body, url=FEED_URL, headers={"content-type": "application/json"})
    assert caught.value.reason == reason


def test_relative_links_in_a_local_file_resolve_against_the_feeds_own_address() -> None:
    body = b"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>Local</title>
<link rel="self" href="https://news.example.de/feed.atom"/>
<link rel="alternate" href="https://news.example.de/"/>
<updated>2026-11-20T10:00:00Z</updated><id>urn:x</id>
<entry><title>Eins</title><link rel="alternate" href="/2026/11/eins"/><id>urn:x:1</id>
<updated>2026-11-20T10:00:00Z</updated></entry></feed>"""
    parsed = parse_feed(body, url="file:samples/local.atom", headers={})
    assert parsed.entries[0].url == "https://news.example.de/2026/11/eins"

"""identity: how newsdesk decides that two links, or two entries, are the same."""

from __future__ import annotations

import pytest

from newsdesk.identity import (
    MAX_KEY_VALUE,
    TRACKING_PARAMS,
    canonical_url,
    content_hash,
    entry_key,
    normalize_text,
    redact_url,
)

# --- canonical_url ------------------------------------------------------------------------

CANONICAL_URLS = [
    # (what a feed says, what we compare)
    ("HTTP://Example.COM", "http://example.com/"),
    ("https://example.com", "https://example.com/"),
    ("  https://example.com/a  \n", "https://example.com/a"),
    ("http://example.com:80/a", "http://example.com/a"),
    ("https://example.com:443/a", "https://example.com/a"),
    ("http://example.com:443/a", "http://example.com:443/a"),
    ("https://example.com:8443/a", "https://example.com:8443/a"),
    ("https://example.com/a#comments", "https://example.com/a"),
    ("http://@example.com/a", "http://example.com/a"),
    ("http://:@example.com/a", "http://example.com/a"),
    ("http://user:pw@example.com/a", "http://user:pw@example.com/a"),
    ("https://bücher.de/", "https://xn--bcher-kva.de/"),
    ("https://example.com/straße?q=ä", "https://example.com/stra%C3%9Fe?q=%C3%A4"),
    ("https://example.com/a b", "https://example.com/a%20b"),
    ("https://example.com/a%20b", "https://example.com/a%20b"),
    ("http://[::1]:80/x", "http://[::1]/x"),
    ("https://example.com/Path/Keeps/Case", "https://example.com/Path/Keeps/Case"),
]

TRACKING = [
    ("https://example.com/a?utm_source=rss&utm_medium=feed", "https://example.com/a"),
    ("https://example.com/a?UTM_Campaign=x&id=7", "https://example.com/a?id=7"),
    ("https://example.com/a?utm_whatever_new=1", "https://example.com/a"),
    ("https://example.com/a?fbclid=1&gclid=2&dclid=3&msclkid=4", "https://example.com/a"),
    ("https://example.com/a?mc_cid=1&mc_eid=2&igshid=3&yclid=4", "https://example.com/a"),
    ("https://example.com/a?_hsenc=1&_hsmi=2&ref_src=twsrc", "https://example.com/a"),
    # The others stay, in their order and spelling.
    ("https://example.com/a?b=2&utm_source=x&a=1", "https://example.com/a?b=2&a=1"),
    ("https://example.com/a?q=a+b&x=%2F", "https://example.com/a?q=a+b&x=%2F"),
    ("https://example.com/a?ref=main", "https://example.com/a?ref=main"),
    ("https://example.com/a?a=1&&b=2", "https://example.com/a?a=1&b=2"),
    ("https://example.com/a?", "https://example.com/a"),
]

NOT_HTTP = [
    "javascript:alert(1)",
    "mailto:editor@example.com",
    "ftp://example.com/file",
    "data:text/html,<script>alert(1)</script>",
    "//cdn.example.com/x",  # Protocol-relative without a base.
    "/relative/path",
    "",
    "   ",
    "http:///no-host",
    "http://[::1",  # Broken IPv6 literal.
    "http://example.com:99999/",  # Port out of range.
    "http://example.com:port/",
    "https://exa mple.com/",
    "http://a\x00b.com/",
]


@pytest.mark.parametrize(("url", "expected"), CANONICAL_URLS + TRACKING)
def test_canonical_url(url: str, expected: str) -> None:
    assert canonical_url(url) == expected


@pytest.mark.parametrize("url", NOT_HTTP)
def test_canonical_url_is_none_for_anything_but_http(url: str) -> None:
    assert canonical_url(url) is None


@pytest.mark.parametrize("garbage", [None, 42, b"http://example.com/", ["http://x/"]])
def test_canonical_url_never_raises_on_garbage(garbage: object) -> None:
    assert canonical_url(garbage) is None  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("url", "base", "expected"),
    [
        ("../b?x=1#f", "https://Example.com/dir/sub/page.html", "https://example.com/dir/b?x=1"),
        ("//cdn.example.com/x", "https://example.com/", "https://cdn.example.com/x"),
        ("/a?utm_source=x", "http://example.com/feed", "http://example.com/a"),
        ("https://other.example/", "https://example.com/", "https://other.example/"),
        ("javascript:alert(1)", "https://example.com/", None),
    ],
)
def test_canonical_url_resolves_against_base(url: str, base: str, expected: str | None) -> None:
    assert canonical_url(url, base) == expected


@pytest.mark.parametrize(("url", "_"), CANONICAL_URLS + TRACKING)
def test_canonical_url_is_idempotent(url: str, _: str) -> None:
    once = canonical_url(url)
    assert once is not None
    assert canonical_url(once) == once


def test_tracking_params_are_lower_case() -> None:
    assert all(name == name.lower() for name in TRACKING_PARAMS)


# --- entry_key ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("guid", "url", "expected"),
    [
        ("tag:example.com,2024:1", "https://example.com/1", "guid:tag:example.com,2024:1"),
        ("  42  ", None, "guid:42"),
        ("", "https://Example.com/1?utm_source=rss", "url:https://example.com/1"),
        ("   ", "https://example.com/1", "url:https://example.com/1"),
        (None, "https://example.com/1#top", "url:https://example.com/1#top"),
        (None, "javascript:void(0)", "hash:c0ffee"),
        (None, None, "hash:c0ffee"),
    ],
)
def test_entry_key_prefers_guid_then_url_then_hash(
    guid: str | None, url: str | None, expected: str
) -> None:
    assert entry_key(guid, url, "c0ffee") == expected


def test_entry_key_hashes_long_guids_and_urls_to_fit_an_index() -> None:
    long_guid = "x" * (MAX_KEY_VALUE + 1)
    key = entry_key(long_guid, None, "c0ffee")
    assert key.startswith("guid-hash:")
    assert len(key) < 100
    assert key == entry_key(long_guid, None, "other")  # Stable.
    assert entry_key("x" * MAX_KEY_VALUE, None, "h") == "guid:" + "x" * MAX_KEY_VALUE

    long_url = "https://example.com/" + "a" * MAX_KEY_VALUE
    assert entry_key(None, long_url, "c0ffee").startswith("url-hash:")


# --- content_hash ---------------------------------------------------------------------------


def test_content_hash_is_a_stable_hex_digest() -> None:
    digest = content_hash("Title", "https://example.com/1", "<p>Text</p>")
    assert digest == content_hash("Title", "https://example.com/1", "<p>Text</p>")
    assert len(digest) == 32
    int(digest, 16)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (("Title", None, "<p>Some text</p>"), ("Title", None, "<div>Some  text</div>")),
        (("Title", None, "caf\u00e9"), ("TITLE", None, "cafe\u0301")),
        (("Title", None, "a &amp; b"), ("Title", None, "a & b")),
        (("Title", "", "text"), ("Title", None, "text")),
    ],
)
def test_content_hash_ignores_markup_case_and_unicode_form(
    a: tuple[str, str | None, str], b: tuple[str, str | None, str]
) -> None:
    assert content_hash(*a) == content_hash(*b)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (("Title", None, "one word"), ("Title", None, "one other word")),
        (("Title", "https://example.com/1", "x"), ("Title", "https://example.com/2", "x")),
        (("ab", None, "c"), ("a", None, "bc")),  # Moving text between parts matters.
    ],
)
def test_content_hash_notices_real_changes(
    a: tuple[str, str | None, str], b: tuple[str, str | None, str]
) -> None:
    assert content_hash(*a) != content_hash(*b)


def test_content_hash_survives_lone_surrogates() -> None:
    assert len(content_hash("broken \udcff title", None, "")) == 32


# --- normalize_text -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Hello   World\n", "hello world"),
        ("<p>First</p><p>Second</p>", "first second"),
        ("<b>Hel</b>lo <a href='x'>wor</a>ld", "hello world"),  # Inline tags join.
        ("Line<br>break", "line break"),
        ("a &amp; b &lt;tag&gt; &#8220;q&#8221;", "a & b <tag> \u201cq\u201d"),
        ("Stra\u00dfe", "strasse"),  # casefold, not lower.
        ("\uff26\uff55\uff4c\uff4c width \u2460", "full width 1"),  # NFKC.
        ("caf\u00e9 = cafe\u0301", "caf\u00e9 = caf\u00e9"),
        ("no\u00a0break", "no break"),
        ("<script>alert(1)</script>kept<style>p{}</style><!-- gone -->", "kept"),
        ("2 < 3 and 5 > 4", "2 < 3 and 5 > 4"),  # Not tags.
        ("", ""),
    ],
)
def test_normalize_text(text: str, expected: str) -> None:
    assert normalize_text(text) == expected


def test_entry_key_keeps_the_fragment_that_tells_entries_apart() -> None:
    """A feed without GUIDs linking one page's anchors has one entry per anchor."""
    v1 = entry_key(None, "https://ex.org/changelog#v1", "h1")
    v2 = entry_key(None, "https://ex.org/changelog?utm_source=rss#v2", "h2")
    assert (v1, v2) == ("url:https://ex.org/changelog#v1", "url:https://ex.org/changelog#v2")
    assert entry_key(None, "https://ex.org/page", "h") == "url:https://ex.org/page"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://user:s3cret@feeds.example/rss", "https://user:***@feeds.example/rss"),
        ("https://user:p%40ss@feeds.example:8443/rss", "https://user:***@feeds.example:8443/rss"),
        ("https://user@feeds.example/rss", "https://user@feeds.example/rss"),
        ("https://feeds.example/rss?token=x", "https://feeds.example/rss?token=x"),
        ("not a url", "not a url"),
    ],
)
def test_passwords_in_feed_urls_are_never_shown(url: str, shown: str) -> None:
    assert redact_url(url) == shown

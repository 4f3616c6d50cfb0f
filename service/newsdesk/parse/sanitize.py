"""HTML made safe to show: a strict nh3 allowlist, absolute links, no tracking pixels.

:func:`sanitize_html` keeps the tags, attributes and URL schemes listed here, resolves
relative links, and drops images that are known tracking pixels or one pixel in size;
``_plain_text`` turns HTML (or text) into one clean line of text.
"""

from __future__ import annotations

import functools
import html
import re
from typing import Any
from urllib.parse import urljoin, urlsplit

import nh3

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

_DIMENSION_RE = re.compile(r"\s*(\d{1,5})(?:px)?\s*")
_IMG_TAG_RE = re.compile(r"<img\b[^>]*>")
# nh3 serialises every attribute as name="value" with '"' escaped, so this is exact.
_ATTR_RE = re.compile(r'([a-z-]+)="([^"]*)"')
_TEXT_CLEANER = nh3.Cleaner(tags=set(), attributes={})
_ASCII_SPACE = " \t\n\r\f\v"
_SPACES_RE = re.compile(f"[{_ASCII_SPACE}]+")
# C0 controls other than whitespace, and DEL: never meant, sometimes in broken feeds.
_CONTROL_CHARS = dict.fromkeys([*range(0x09), *range(0x0E, 0x20), 0x7F])


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

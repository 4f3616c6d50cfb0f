"""OPML import and export of the feed list (pure: bytes in, specs out, and back)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from urllib.parse import urlsplit

from newsdesk.errors import UsageError
from newsdesk.models import Feed, FeedSpec


def read_opml(data: bytes, *, source: str) -> tuple[list[FeedSpec], list[str]]:
    """Feeds in an OPML document, and one problem line per outline that was skipped.

    Nested outlines are categories: their title becomes a tag of the feeds inside.
    Python's expat refuses entity-expansion bombs, and ElementTree never resolves
    external entities, so an OPML file from elsewhere cannot reach the file system.
    """
    try:
        root = ET.fromstring(data)
    except (ET.ParseError, LookupError, ValueError) as exc:  # LookupError: unknown encoding
        raise UsageError(f"{source}: not an OPML file: {exc}") from None
    body = root.find("body")
    if root.tag != "opml" or body is None:
        raise UsageError(f"{source}: not an OPML file: no <opml><body>")
    specs: list[FeedSpec] = []
    problems: list[str] = []
    seen: set[str] = set()

    def walk(node: ET.Element, tags: tuple[str, ...]) -> None:
        for outline in node.findall("outline"):
            url = (outline.get("xmlUrl") or "").strip()
            title = (outline.get("title") or outline.get("text") or "").strip() or None
            if not url:
                walk(outline, (*tags, title) if title else tags)
                continue
            if urlsplit(url).scheme.lower() not in {"http", "https"}:
                problems.append(f"{source}: outline {title or url!r}: not an http(s) URL: {url}")
                continue
            if url not in seen:
                seen.add(url)
                specs.append(FeedSpec(url=url, name=title, tags=tags))

    try:
        walk(body, ())
    except RecursionError:
        raise UsageError(f"{source}: outlines nested too deep") from None
    return specs, problems


def write_opml(feeds: Sequence[Feed], *, title: str) -> bytes:
    """An OPML 2.0 document listing ``feeds``."""
    root = ET.Element("opml", version="2.0")
    head = ET.SubElement(root, "head")
    ET.SubElement(head, "title").text = title
    body = ET.SubElement(root, "body")
    for feed in feeds:
        attrs = {"type": "rss", "text": feed.display_name, "xmlUrl": feed.url}
        if feed.name or feed.title:
            attrs["title"] = feed.display_name
        if feed.site_url:
            attrs["htmlUrl"] = feed.site_url
        ET.SubElement(body, "outline", attrs)
    ET.indent(root)
    document: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return document + b"\n"

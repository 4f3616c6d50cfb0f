"""The curator's picks for the next issue: ``picks.toml``, read, validated and edited.

Reading collects every problem at once, as ``config/picks.toml: pick[2].section: unknown
section 'newz' (known: lead, news)``, like newsdesk.toml. Editing (``newsdesk pick``) goes
through tomlkit, so the curator's comments, order and formatting survive.

A missing picks file is an empty one: newsdesk then composes a fully automatic issue.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomlkit
import tomlkit.exceptions
from tomlkit.items import AoT

from newsdesk.config import Table as ConfigTable
from newsdesk.config import Validator
from newsdesk.config_values import (
    read_http_url,
    read_int,
    read_nonempty,
    read_str,
    read_str_list,
)
from newsdesk.errors import ConfigError
from newsdesk.plan import Photo

DEFAULT_SKIP_TAGS: tuple[str, ...] = ("skip",)

FRESH_PICKS = """\
# Picks for the next issue of the newsletter. Every key is explained in
# config/picks.example.toml; `newsdesk pick STORY --section S` adds a pick here,
# keeping your comments. With no picks, the issue is filled with the top stories.

[issue]
subject = ""                     # default: the newsletter's name and the lead headline
preheader = ""                   # the inbox preview line after the subject
intro = ""                       # your opening words (blank lines separate paragraphs)
{skip_tags}# a story picked with one of these tags is left out
"""


@dataclass(frozen=True, slots=True)
class Source:
    """A source a curator names by hand (for a URL pick or a background explainer)."""

    url: str
    title: str = ""
    outlet: str = ""


@dataclass(frozen=True, slots=True)
class Pick:
    index: int
    """Position in the file, counted from 1: ``pick[3]`` in messages."""
    section: str
    story: int | None = None
    url: str | None = None
    headline: str = ""
    subheadline: str = ""
    text: tuple[str, ...] = ()
    """The curator's paragraphs."""
    why: tuple[str, ...] = ()
    hide: tuple[str, ...] = ()
    """Sources left out of the "Read on" list: outlet (``nytimes.com``) or article URL."""
    sources: tuple[Source, ...] = ()
    tags: tuple[str, ...] = ()

    @property
    def where(self) -> str:
        return f"pick[{self.index}]"


@dataclass(frozen=True, slots=True)
class Picks:
    path: Path
    subject: str = ""
    preheader: str = ""
    intro: tuple[str, ...] = ()
    skip_tags: tuple[str, ...] = DEFAULT_SKIP_TAGS
    photo: Photo | None = None
    picks: tuple[Pick, ...] = ()

    def skipped(self, pick: Pick) -> bool:
        return any(tag in self.skip_tags for tag in pick.tags)


def load_picks(path: Path, section_ids: Sequence[str]) -> Picks:
    """Read and validate ``path``; a missing file is an empty one."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8-sig"))
    except FileNotFoundError:
        return Picks(path=path)
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([f"{path}: cannot read: {exc}"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{path}: invalid TOML: {exc}"]) from None
    return _PicksReader(path, section_ids).picks(raw)


def picks_keys() -> set[str]:
    """Every key a picks file may hold, as ``issue.subject`` or ``pick[1].why``."""
    reader = _PicksReader(Path("picks.toml"), ())
    # The empty blocks lack their required keys; only the keys asked for matter.
    with contextlib.suppress(ConfigError):
        reader.picks({"issue": {}, "photo": {}, "pick": [{"sources": [{}]}]})
    return reader.v.asked


class _PicksReader:
    def __init__(self, path: Path, section_ids: Sequence[str]) -> None:
        self.v = Validator(path, {})
        self.path = path
        self.section_ids = tuple(section_ids)

    def picks(self, raw: dict[str, Any]) -> Picks:
        root = ConfigTable(self.v, raw, "")
        issue = root.table("issue")
        subject = issue.get("subject", read_str, "")
        preheader = issue.get("preheader", read_str, "")
        no_text: tuple[str, ...] = ()
        intro = issue.get("intro", read_paragraphs, no_text)
        skip_tags = issue.get("skip_tags", read_str_list, tuple(DEFAULT_SKIP_TAGS))
        issue.done()
        photo = self.photo(root.table("photo")) if "photo" in raw else None
        picks = tuple(self.pick(t, i) for i, t in enumerate(root.array("pick"), 1))
        root.done()
        self.duplicates(picks)
        if self.v.problems:
            raise ConfigError(self.v.problems)
        return Picks(
            path=self.path,
            subject=subject,
            preheader=preheader,
            intro=intro,
            skip_tags=skip_tags,
            photo=photo,
            picks=picks,
        )

    def photo(self, t: ConfigTable) -> Photo:
        result = Photo(
            image=t.get("image", read_http_url, "", required=True),
            width=t.get("width", read_int(1, 2000), 0, required=True),
            height=t.get("height", read_int(1, 4000), 0, required=True),
            alt=t.get("alt", read_nonempty, "", required=True),
            prompt=t.get("prompt", read_str, ""),
            credit=t.get("credit", read_str, ""),
            caption=t.get("caption", read_str, ""),
            link=t.get("link", read_http_url, None),
        )
        t.done()
        return result

    def pick(self, t: ConfigTable, index: int) -> Pick:
        story = t.get("story", read_int(1), None)
        url = t.get("url", read_http_url, None)
        if story is None and url is None and "story" not in t.raw and "url" not in t.raw:
            self.v.problem(t.where("story"), "missing: name a story id or a url")
        if story is not None and url is not None:
            self.v.problem(t.where("url"), "a pick names a story or a url, not both")
        section = t.get("section", read_nonempty, "", required=True)
        if section and section not in self.section_ids:
            known = ", ".join(self.section_ids)
            self.v.problem(t.where("section"), f"unknown section {section!r} (known: {known})")
        headline = t.get("headline", read_str, "")
        if url is not None and story is None and not headline:
            self.v.problem(t.where("headline"), "missing: a url pick needs its headline")
        result = Pick(
            index=index,
            section=section,
            story=story,
            url=url,
            headline=headline,
            subheadline=t.get("subheadline", read_str, ""),
            text=t.get("text", read_paragraphs, ()),
            why=t.get("why", read_str_list, ()),
            hide=t.get("hide", read_str_list, ()),
            sources=self.sources(t),
            tags=t.get("tags", read_str_list, ()),
        )
        t.done()
        return result

    def sources(self, t: ConfigTable) -> tuple[Source, ...]:
        t.used.add("sources")
        self.v.asked.add(t.where("sources"))
        raw = t.raw.get("sources", [])
        if not isinstance(raw, list):
            self.v.problem(t.where("sources"), "expected a list of URLs or tables")
            return ()
        out = []
        for i, item in enumerate(raw, 1):
            where = f"{t.where('sources')}[{i}]"
            if isinstance(item, str):
                item = {"url": item}
            st = ConfigTable(self.v, item, where)
            url = st.get("url", read_http_url, "", required=True)
            source = Source(
                url=url,
                title=st.get("title", read_str, ""),
                outlet=st.get("outlet", read_str, ""),
            )
            st.done()
            if url:
                out.append(source)
        return tuple(out)

    def duplicates(self, picks: Sequence[Pick]) -> None:
        seen: dict[object, Pick] = {}
        for pick in picks:
            key = ("story", pick.story) if pick.story is not None else ("url", pick.url)
            if key[1] is None:
                continue
            if key in seen:
                first = seen[key]
                self.v.problem(
                    pick.where + "." + key[0], f"{key[0]} {key[1]} is already {first.where}"
                )
            seen.setdefault(key, pick)


def read_paragraphs(value: Any) -> tuple[str, ...]:
    """A multi-line string: paragraphs are separated by blank lines; line breaks inside
    a paragraph are spaces (the text is re-flowed for the email)."""
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {type(value).__name__}")
    paragraphs = []
    for block in value.replace("\r\n", "\n").split("\n\n"):
        text = " ".join(block.split())
        if text:
            paragraphs.append(text)
    return tuple(paragraphs)


# --- editing --------------------------------------------------------------------------


def add_pick(
    path: Path,
    *,
    section: str,
    story: int | None = None,
    url: str | None = None,
    tags: Sequence[str] = (),
    note: str = "",
    headline: str = "",
) -> int:
    """Append a ``[[pick]]`` to ``path`` (created when missing); returns its index.

    The caller has validated the section and the story; duplicates are checked here,
    against the file as it is now.
    """
    text = path.read_text(encoding="utf-8-sig") if path.exists() else fresh_picks()
    try:
        existing = tomlkit.parse(text).get("pick")
    except tomlkit.exceptions.TOMLKitError as exc:
        raise ConfigError([f"{path}: invalid TOML: {exc}"]) from None
    if existing is not None and not isinstance(existing, AoT):
        raise ConfigError([f"{path}: pick: expected [[pick]] blocks"])
    for i, table in enumerate(existing or [], 1):
        if story is not None and table.get("story") == story:
            raise ConfigError([f"{path}: pick[{i}]: story {story} is already picked"])
        if url is not None and table.get("url") == url:
            raise ConfigError([f"{path}: pick[{i}]: {url} is already picked"])
    table = tomlkit.table()
    if story is not None:
        table["story"] = story
    if url is not None:
        table["url"] = url
    if headline:
        table["headline"] = headline
    table["section"] = section
    if tags:
        table["tags"] = list(tags)
    if note:
        table["text"] = _multiline(note)
    # Appended as text: the curator's file above it stays byte for byte as it was.
    block = tomlkit.dumps({"pick": _aot(table)})
    write_atomically(path, text.rstrip("\n") + "\n\n" + block)
    return len(existing or []) + 1


def _aot(table: Any) -> AoT:
    aot = tomlkit.aot()
    aot.append(table)
    return aot


def _multiline(text: str) -> Any:
    if "\n" not in text:
        return text
    return tomlkit.string(text.strip() + "\n", multiline=True)


def fresh_picks(skip_tags: Sequence[str] = DEFAULT_SKIP_TAGS) -> str:
    """The text of an empty picks file (what a sent issue's picks are replaced with)."""
    line = f"skip_tags = {tomlkit.item(list(skip_tags)).as_string()}"
    return FRESH_PICKS.format(skip_tags=line.ljust(33))


def write_atomically(path: Path, text: str) -> None:
    """Write next to ``path`` and rename over it: a crash leaves the old or the new file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise

"""The curator's picks file: read with every problem at once, edited keeping comments."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from newsdesk.config import load_config
from newsdesk.errors import ConfigError
from newsdesk.picks import add_pick, fresh_picks, load_picks, picks_keys

ROOT = Path(__file__).parents[1]
EXAMPLE = ROOT / "config" / "picks.example.toml"
SECTIONS = ["lead", "photo", "second", "tools", "news", "background"]


def write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "picks.toml"
    path.write_text(textwrap.dedent(body), encoding="utf-8")
    return path


def problems(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_picks(path, SECTIONS)
    return info.value.problems


def test_the_documented_example_is_valid_for_the_example_config() -> None:
    config = load_config(ROOT / "config" / "newsdesk.example.toml", {})
    picks = load_picks(EXAMPLE, [s.id for s in config.sections])
    assert [p.section for p in picks.picks] == ["lead", "second", "tools", "news", "background"]
    assert picks.photo is not None and (picks.photo.width, picks.photo.height) == (600, 400)
    assert picks.picks[0].why[0].startswith("Der Preis")
    assert len(picks.picks[0].text) == 2  # two paragraphs


def test_every_key_is_documented_in_the_example() -> None:
    # Set, or commented out, at the start of a line or inside an inline table.
    key = r"(?:^|[{,])[ \t]*#?[ \t]*(\w+)[ \t]*="
    documented = set(re.findall(key, EXAMPLE.read_text(encoding="utf-8"), re.M))
    missing = {k for k in picks_keys() if k.rsplit(".", 1)[-1] not in documented}
    assert missing == set()


def test_a_missing_file_is_an_empty_issue(tmp_path: Path) -> None:
    picks = load_picks(tmp_path / "picks.toml", SECTIONS)
    assert (picks.picks, picks.photo, picks.subject, picks.skip_tags) == ((), None, "", ("skip",))


def test_every_problem_is_reported_at_once_with_file_and_entry(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        [issue]
        subject = "two\\nlines"
        colour = "blue"
        [photo]
        image = "https://img.example/p.jpg"
        alt = "A robot"
        [[pick]]
        story = 4
        section = "newz"
        [[pick]]
        url = "https://app.example/"
        section = "tools"
        [[pick]]
        story = 5
        url = "https://other.example/"
        section = "news"
        [[pick]]
        story = 4
        section = "lead"
        """,
    )
    assert problems(path) == [
        f"{path}: issue.subject: must be a single line",
        f"{path}: issue.colour: unknown key",
        f"{path}: photo.width: missing (required)",
        f"{path}: photo.height: missing (required)",
        f"{path}: pick[1].section: unknown section 'newz' (known: {', '.join(SECTIONS)})",
        f"{path}: pick[2].headline: missing: a url pick needs its headline",
        f"{path}: pick[3].url: a pick names a story or a url, not both",
        f"{path}: pick[4].story: story 4 is already pick[1]",
    ]


def test_broken_toml_names_the_file_and_line(tmp_path: Path) -> None:
    (problem,) = problems(write(tmp_path, "[[pick]]\nstory = \n"))
    assert problem.startswith(f"{path_of(tmp_path)}: invalid TOML:") and "line 2" in problem


def path_of(tmp_path: Path) -> Path:
    return tmp_path / "picks.toml"


COMMENTED = """\
# This week's picks. Keep it short!
[issue]
subject = "KI-Briefing #12"   # the lead is about Musk again

# the big one
[[pick]]
story = 7
section = "lead"
why = [
  "It is big.",   # really
]
"""


def test_pick_appends_and_keeps_the_curators_comments_byte_for_byte(tmp_path: Path) -> None:
    path = write(tmp_path, COMMENTED)
    index = add_pick(path, section="news", story=9, tags=("chips", "ai"), note="Kurz notiert.")
    assert index == 2
    assert path.read_text(encoding="utf-8") == COMMENTED + (
        '\n[[pick]]\nstory = 9\nsection = "news"\ntags = ["chips", "ai"]\ntext = "Kurz notiert."\n'
    )
    picks = load_picks(path, SECTIONS)
    assert [(p.story, p.section, p.tags, p.text) for p in picks.picks] == [
        (7, "lead", (), ()),
        (9, "news", ("chips", "ai"), ("Kurz notiert.",)),
    ]


def test_a_duplicate_pick_is_refused_naming_file_and_entry(tmp_path: Path) -> None:
    path = write(tmp_path, COMMENTED)
    with pytest.raises(ConfigError) as info:
        add_pick(path, section="news", story=7)
    assert info.value.problems == [f"{path}: pick[1]: story 7 is already picked"]
    assert path.read_text(encoding="utf-8") == COMMENTED  # untouched


def test_pick_starts_a_documented_file_when_there_is_none(tmp_path: Path) -> None:
    path = tmp_path / "picks.toml"
    add_pick(path, section="tools", url="https://app.example/", headline="App", note="A\n\nB")
    text = path.read_text(encoding="utf-8")
    assert text.startswith("# Picks for the next issue")
    (pick,) = load_picks(path, SECTIONS).picks
    assert (pick.url, pick.headline, pick.text) == ("https://app.example/", "App", ("A", "B"))


def test_a_fresh_file_keeps_the_skip_tags(tmp_path: Path) -> None:
    path = write(tmp_path, fresh_picks(("skip", "sport")))
    picks = load_picks(path, SECTIONS)
    assert picks.skip_tags == ("skip", "sport")
    assert picks.picks == ()

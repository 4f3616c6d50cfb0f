"""The next issue from a real store and picks file: compose, preview, pick, check, archive.

Store tests run on SQLite and PostgreSQL; the CLI tests run the real command on the
demo that ``newsdesk init`` writes.
"""

from __future__ import annotations

import email
import email.policy
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from conftest import write_config
from newsdesk import compose
from newsdesk.config import Config, load_config
from newsdesk.picks import load_picks
from newsdesk.store import Store, open_store
from test_cli import run
from test_stories import NOW, STREAM, ingest

SECTIONS = """
[newsletter]
name = "KI-Übersicht"
language = "de"
timezone = "Europe/Berlin"
sender = "KI-Übersicht <briefing@example.org>"
base_url = "https://briefing.example.org"

[store]
url = "{url}"

[[section]]
id = "lead"
title = "Top-Story"
kind = "featured"
auto = 1

[[section]]
id = "news"
title = "KI und Tech News"
kind = "list"
auto = 3
"""


@pytest.fixture
def setup(store_url: str, tmp_path: Path) -> Iterator[tuple[Config, Store]]:
    config = load_config(write_config(tmp_path, SECTIONS.format(url=store_url)), {})
    store = open_store(config.store_url)
    ingest(store, STREAM)
    yield config, store
    store.close()


def headlines(issue: compose.ComposedIssue) -> dict[str, list[str]]:
    return {s.id: [i.headline for i in s.items] for s in issue.plan.sections}


def test_an_empty_picks_file_still_makes_a_complete_issue(setup: tuple[Config, Store]) -> None:
    config, store = setup
    issue = compose.compose(config, store, now=NOW)
    shown = headlines(issue)
    assert len(shown["lead"]) == 1 and len(shown["news"]) == 3
    assert "97.4" in shown["lead"][0]  # four outlets: the biggest story leads
    assert issue.slot == "2026-11-18"  # the issue's date in Europe/Berlin
    assert issue.plan.subject == f"KI-Übersicht: {shown['lead'][0]}"
    assert issue.warnings == ()
    for headline in shown["lead"] + shown["news"]:
        assert headline.split()[0] in issue.rendered.text


def test_sending_archives_the_issue_and_its_stories_are_not_candidates_again(
    setup: tuple[Config, Store],
) -> None:
    config, store = setup
    picks = config.digest.picks
    picks.write_text('[issue]\nskip_tags = ["skip", "sport"]\n# mine\n', encoding="utf-8")
    first = compose.compose(config, store, now=NOW)
    issue, created = compose.open_issue(config, store, first, now=NOW)
    assert created and issue.status == "sending"
    again, created_again = compose.open_issue(config, store, first, now=NOW)
    assert (again.id, created_again) == (issue.id, False)  # once per slot
    store.issues.mark_sent(issue.id, NOW)

    assert issue.slug == "2026-11-18"
    kept = config.digest.issues / "2026-11-18.toml"
    assert kept.read_text(encoding="utf-8").endswith("# mine\n")
    assert load_picks(picks, ["lead", "news"]).skip_tags == ("skip", "sport")  # fresh file
    archive = config.digest.archive
    assert (archive / "2026-11-18.html").read_text(encoding="utf-8") == first.rendered.html
    assert "2026-11-18.html" in (archive / "index.html").read_text(encoding="utf-8")
    feed = ET.parse(archive / "feed.atom").getroot()
    (entry,) = feed.findall("{http://www.w3.org/2005/Atom}entry")
    assert entry.findtext("{http://www.w3.org/2005/Atom}title") == first.plan.subject

    second = compose.compose(config, store, now=NOW + timedelta(hours=1))
    assert second.slot == "2026-11-18-2"
    assert not set(first.plan.story_ids) & set(second.plan.story_ids)
    assert store.issues.sent_story_ids() >= set(first.plan.story_ids)


def test_a_sent_story_merged_into_another_keeps_the_survivor_out(
    setup: tuple[Config, Store],
) -> None:
    config, store = setup
    first = compose.compose(config, store, now=NOW)
    compose.open_issue(config, store, first, now=NOW)
    sent_lead = first.plan.sections[0].items[0].story_id
    assert sent_lead is not None
    ingest(store, [(10.0, "nasa.gov", "Mars rover finds water ice near the equator")], 100)
    (other,) = compose.compose(config, store, now=NOW).plan.story_ids  # the new story
    assert other not in store.issues.sent_story_ids()
    survivor = store.stories.merge(other, sent_lead, NOW).id
    assert survivor in store.issues.sent_story_ids()


# -- the command line, on the demo ------------------------------------------------------


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("demo") / "config"
    assert run("init", str(directory)).returncode == 0
    once = run("--config", str(directory / "newsdesk.toml"), "run", "--once")
    assert once.returncode == 0, once.stderr
    return directory


def nd(demo: Path, *args: str) -> tuple[int, str, str]:
    done = run("--config", str(demo / "newsdesk.toml"), *args)
    return done.returncode, done.stdout, done.stderr


def test_preview_writes_html_text_and_a_well_formed_email(demo: Path, tmp_path: Path) -> None:
    code, out, err = nd(demo, "preview", "--out", str(tmp_path))
    assert code == 0, err
    assert f"{tmp_path / 'issue.html'} (" in out and "KB HTML" in out
    html = (tmp_path / "issue.html").read_text(encoding="utf-8")
    text = (tmp_path / "issue.txt").read_text(encoding="utf-8")
    assert "Read on, my dear:" in html and "Read on, my dear:" in text  # the demo's label
    assert "utm_source" not in html and "fbclid" not in html  # tracking stays behind
    msg = email.message_from_bytes(
        (tmp_path / "issue.eml").read_bytes(), policy=email.policy.default
    )
    assert msg["Subject"].startswith("KI-Briefing (Demo): ")
    assert msg.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]
    parts = list(msg.iter_parts())
    # On the wire, lines end in CRLF (RFC 5322).
    assert parts[0].get_content().replace("\r\n", "\n") == text
    assert parts[1].get_content().replace("\r\n", "\n") == html


def test_pick_adds_to_the_picks_file_and_the_issue_follows(demo: Path, tmp_path: Path) -> None:
    picks = demo / "picks.toml"
    before = picks.read_text(encoding="utf-8")
    code, out, err = nd(demo, "pick", "2", "--section", "lead", "--note", "Rekord.")
    assert code == 0, err
    assert out.startswith(f"{picks}: pick[5] story 2: Nvidia")
    assert picks.read_text(encoding="utf-8").startswith(before)  # comments and all kept
    code, _, err = nd(demo, "preview", "--out", str(tmp_path))
    assert code == 0, err
    text = (tmp_path / "issue.txt").read_text(encoding="utf-8")
    lead = text.split("TOP-STORY", 1)[1]
    assert lead.lstrip("=\n").startswith("Nvidia reports record")
    assert "Rekord." in lead


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("999", "--section", "lead"), "picks.toml: story 999 not found"),
        (("1", "--section", "sport"), "picks.toml: unknown section 'sport' (known: lead,"),
        (("https://app.example/",), "picks.toml: a URL pick needs --headline"),
    ],
)
def test_pick_refuses_what_it_cannot_pick_naming_the_file(
    demo: Path, args: tuple[str, ...], message: str
) -> None:
    code, out, err = nd(demo, "pick", *args)
    assert code == 1 and out == ""
    assert err.startswith("Error: ") and message in err and err.count("\n") == 1


def test_picking_the_same_story_twice_names_the_first_pick(demo: Path) -> None:
    first = nd(demo, "pick", "3", "--section", "news")
    assert first[0] == 0, first[2]
    code, _, err = nd(demo, "pick", "3", "--section", "news")
    assert code == 1
    assert "picks.toml: pick[" in err and "story 3 is already picked" in err


def test_a_story_picked_with_a_skip_tag_leaves_the_candidates(demo: Path) -> None:
    code, _, err = nd(demo, "pick", "4", "--section", "news", "--tag", "skip")
    assert code == 0, err
    _, out, _ = nd(demo, "stories", "--since", "366d")
    assert "Produktivitäts-Apps im November" not in out
    assert "Nvidia" in out


def test_check_renders_once_and_names_a_broken_template_file_and_line(
    demo: Path, tmp_path: Path
) -> None:
    code, out, err = nd(demo, "check")
    assert code == 0, err
    assert "templates: ok" in out
    own = demo / "my-templates" / "partials"
    own.mkdir(parents=True)
    (own / "list.html.j2").write_text("<p>\n{% for x in %}\n</p>\n", encoding="utf-8")
    config = demo / "newsdesk.toml"
    original = config.read_text(encoding="utf-8")
    config.write_text(original + '\n[digest]\ntemplates = "my-templates"\n', encoding="utf-8")
    try:
        code, _, err = nd(demo, "check")
    finally:
        config.write_text(original, encoding="utf-8")
    assert code == 1
    assert f"{own / 'list.html.j2'}:2:" in err

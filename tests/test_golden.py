"""The sample issue, rendered, equals the reviewed golden files byte for byte.

A change to a template, the stylesheet or the renderer shows up here as a diff to read.
Regenerate: NEWSDESK_REGEN_GOLDEN=1 python3 -m pytest tests/test_golden.py
(the store-based issue runs on SQLite and PostgreSQL and must give the same bytes).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import write_config
from digest_samples import ONLINE_URL, UNSUBSCRIBE_URL, sample_plan
from golden_files import check_golden
from newsdesk import compose
from newsdesk.config import load_config
from newsdesk.labels import load_labels
from newsdesk.render import Renderer
from newsdesk.store import open_store
from test_stories import NOW, STREAM, ingest


@pytest.mark.parametrize("part", ["html", "txt"])
@pytest.mark.parametrize("language", ["de", "en"])
def test_the_sample_issue_matches_its_golden_file(language: str, part: str) -> None:
    issue = Renderer(language=language, labels=load_labels(language)).issue(
        sample_plan(language), unsubscribe_url=UNSUBSCRIBE_URL, online_url=ONLINE_URL
    )
    check_golden(f"issue.{language}.{part}", issue.html if part == "html" else issue.text)


# -- the whole path: a fixed store and picks file -> the issue ----------------------------

STORE_PICKS = """\
[issue]
intro = \"\"\"
Guten Morgen! Eine Übernahme, die keine ist, und ein Sturm über Wales.
\"\"\"

[photo]
image = "https://images.example.org/robot-cafe.jpg"
width = 600
height = 400
alt = "Ein Roboter-Barista gießt Latte Art"
prompt = "a robot barista pouring latte art, morning light"
credit = "Midjourney / Jana Beispiel"

[[pick]]
story = 1
section = "lead"
headline = "Und immer wieder Elon Musk…"
subheadline = "97,4 Milliarden Dollar für eine Firma, die nicht verkauft wird"
text = \"\"\"
Ein Konsortium um Elon Musk bietet für die gemeinnützige Mutter von OpenAI.

Sam Altman lehnt ab – der Preis jeder Umwandlung steigt trotzdem.
\"\"\"
why = ["Die Umwandlung wird teurer.", "Der Rechtsstreit bekommt eine neue Front."]
hide = ["cnbc.com"]

[[pick]]
url = "https://apps.example.org/notiz"
section = "tools"
headline = "Notiz"
text = "Schreibt mit, fasst zusammen & findet alles wieder."
"""

STORE_CONFIG = """\
[newsletter]
name = "{name}"
language = "{language}"
timezone = "Europe/Berlin"
base_url = "https://briefing.example.org"

[store]
url = "{url}"

[[section]]
id = "lead"
title = "{lead}"
kind = "featured"
auto = 1

[[section]]
id = "photo"
title = "{photo}"
kind = "photo"

[[section]]
id = "tools"
title = "Tools"
kind = "tools"

[[section]]
id = "news"
title = "{news}"
kind = "list"
auto = 3
"""

TITLES = {
    "de": {"name": "KI-Briefing", "lead": "Top-Story", "photo": "AI-Photo des Tages",
           "news": "KI und Tech News"},
    "en": {"name": "AI Briefing", "lead": "Top story", "photo": "Photo of the day",
           "news": "AI and tech news"},
}  # fmt: skip


@pytest.mark.parametrize("language", ["de", "en"])
def test_a_fixed_store_and_picks_file_make_the_golden_issue(
    store_url: str, tmp_path: Path, language: str
) -> None:
    """Stories ranked and clustered from a real store (SQLite and PostgreSQL alike),
    the curator's picks applied, rendered: the same bytes every time."""
    body = STORE_CONFIG.format(url=store_url, language=language, **TITLES[language])
    config = load_config(write_config(tmp_path, body), {})
    config.digest.picks.write_text(STORE_PICKS, encoding="utf-8")
    store = open_store(config.store_url)
    try:
        numbering = ingest(store, STREAM)
        assert min(numbering) == 1  # story 1, picked above, is the bid: the first entry
        issue = compose.compose(config, store, now=NOW)
    finally:
        store.close()
    assert issue.warnings == ()
    check_golden(f"store-issue.{language}.html", issue.rendered.html)
    check_golden(f"store-issue.{language}.txt", issue.rendered.text)

"""The sample issue, rendered, equals the reviewed golden files byte for byte.

A change to a template, the stylesheet or the renderer shows up here as a diff to read.
Regenerate: NEWSDESK_REGEN_GOLDEN=1 python3 -m pytest tests/test_golden.py
"""

from __future__ import annotations

import pytest

from digest_samples import ONLINE_URL, UNSUBSCRIBE_URL, sample_plan
from golden_files import check_golden
from newsdesk.labels import load_labels
from newsdesk.render import Renderer


@pytest.mark.parametrize("part", ["html", "txt"])
@pytest.mark.parametrize("language", ["de", "en"])
def test_the_sample_issue_matches_its_golden_file(language: str, part: str) -> None:
    issue = Renderer(language=language, labels=load_labels(language)).issue(
        sample_plan(language), unsubscribe_url=UNSUBSCRIBE_URL, online_url=ONLINE_URL
    )
    check_golden(f"issue.{language}.{part}", issue.html if part == "html" else issue.text)

"""Golden files: output pinned byte for byte in tests/golden/, reviewed like code.

A test calls ``check_golden("issue.de.html", actual)``. When the output changes on
purpose, regenerate with ``NEWSDESK_REGEN_GOLDEN=1 python3 -m pytest <test file>`` and
review the diff before committing; a regenerating run fails, so it can never pass unseen.
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path

import pytest

GOLDEN = Path(__file__).parent / "golden"
REGEN = "NEWSDESK_REGEN_GOLDEN"
DIFF_LINES = 40


def check_golden(name: str, actual: str) -> None:
    """Fail unless ``actual`` equals tests/golden/<name> exactly (or rewrite it on request)."""
    __tracebackhide__ = True
    path = GOLDEN / name
    hint = f"to accept the new output: {REGEN}=1 python3 -m pytest {_test_file()}"
    if os.environ.get(REGEN) and (not path.exists() or path.read_bytes() != actual.encode()):
        # A test with several golden files stops at the first rewritten one: run again
        # until the run passes (unchanged files do not fail it).
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(actual, encoding="utf-8", newline="")
        pytest.fail(f"{path}: regenerated, review the diff (git diff {path})")
    if not path.exists():
        pytest.fail(f"{path}: missing; {hint}")
    expected = path.read_bytes().decode("utf-8")  # exactly: no newline translation
    if actual != expected:
        diff = difflib.unified_diff(
            expected.splitlines(),
            actual.splitlines(),
            f"golden/{name}",
            "actual",
            lineterm="",
        )
        shown = list(diff)[:DIFF_LINES]
        pytest.fail(f"{path} differs from the output:\n" + "\n".join(shown) + f"\n{hint}")


def _test_file() -> str:
    """The running test's file, for the hint (``tests/test_golden.py``)."""
    current = os.environ.get("PYTEST_CURRENT_TEST", "tests/")
    return current.split("::", 1)[0]

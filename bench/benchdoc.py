"""Shared by the benchmark scripts: the machine line and docs/benchmarks.md sections."""

from __future__ import annotations

import hashlib
import os
import platform
import re
import subprocess
from datetime import date
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "benchmarks.md"


def machine_line() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    commit = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return (
        f"Date: {date.today().isoformat()}. Machine: {os.cpu_count()} cores, {cpu}, "
        f"Python {platform.python_version()}. Code: commit {commit or 'unknown'}."
    )


def git(*args: str) -> str:
    result = subprocess.run(
        ["git", "-C", str(REPO), *args], capture_output=True, text=True, check=False
    )
    return result.stdout.strip()


def code_state() -> str:
    """The commit measured, and a digest of uncommitted changes to the package, if any."""
    head = git("rev-parse", "--short", "HEAD") or "unknown"
    diff = git("diff", "HEAD", "--", "service") + git(
        "ls-files", "--others", "--exclude-standard", "--", "service"
    )
    if not diff:
        return f"commit {head}"
    digest = hashlib.sha1(diff.encode()).hexdigest()[:8]
    return f"commit {head} + uncommitted changes in service/ (diff {digest})"


def write_section(heading: str, body: str) -> None:
    """Replace (or append) the ``## heading`` section of docs/benchmarks.md."""
    section = f"## {heading}\n\n{body.strip()}\n"
    text = DOC.read_text(encoding="utf-8") if DOC.exists() else "# Benchmarks\n\n"
    pattern = re.compile(rf"^## {re.escape(heading)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(text):
        text = pattern.sub(lambda _m: section + "\n", text, count=1)
    else:
        text = text.rstrip("\n") + "\n\n" + section
    DOC.write_text(text.rstrip("\n") + "\n", encoding="utf-8")

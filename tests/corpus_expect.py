"""Expectations carried by the shared feed corpus, read safely.

feedparser's test documents state their expected result as a Python expression in an
``Expect:`` comment. It is never evaluated: the clauses about titles, links, dates and
entry counts are read with ``ast`` and compared field by field; the rest is ignored.
"""

from __future__ import annotations

import ast
import html
import re
from dataclasses import dataclass
from typing import Any

# Fields of feedparser's result that have an equivalent in ours, by kind.
FIELD_KINDS = {
    ("feed", "title"): "title",
    ("feed", "title_detail", "value"): "title",
    ("feed", "link"): "link",
    ("entries", "title"): "title",
    ("entries", "title_detail", "value"): "title",
    ("entries", "link"): "link",
    ("entries", "published_parsed"): "date",
    ("entries", "updated_parsed"): "date",
}


def same_text(ours: object, theirs: object) -> bool:
    """Equal, or equal as text: our titles are plain text, others keep HTML markup."""
    if ours == theirs:
        return True
    if not (isinstance(ours, str) and isinstance(theirs, str)):
        return False
    text = html.unescape(re.sub(r"<[^>]*>", "", theirs))
    return ours == re.sub(r"[ \t\r\n]+", " ", text).strip(" \t\r\n")


@dataclass(frozen=True)
class Expectation:
    kind: str
    path: tuple[str | int, ...]
    expected: Any


def _literal(node: ast.expr) -> Any:
    """The value of a literal, or of literal strings joined with "+"."""
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _literal(node.left) + _literal(node.right)
    return ast.literal_eval(node)


def _field_path(node: ast.expr) -> tuple[str | int, ...] | None:
    """``entries[0]['title']`` -> ("entries", 0, "title"); None for anything else."""
    path: list[str | int] = []
    while isinstance(node, ast.Subscript | ast.Attribute):
        if isinstance(node, ast.Attribute):
            path.append(node.attr)
        elif isinstance(node.slice, ast.Constant) and isinstance(node.slice.value, str | int):
            path.append(node.slice.value)
        else:
            return None
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    path.append(node.id)
    return tuple(reversed(path))


def _expectation(clause: ast.expr) -> Expectation | None:
    """A clause we know how to check, or None (bozo, encoding, other fields...)."""
    if not (
        isinstance(clause, ast.Compare)
        and len(clause.ops) == 1
        and isinstance(clause.ops[0], ast.Eq)
    ):
        return None
    left, right = clause.left, clause.comparators[0]
    try:
        expected = _literal(right)
    except (ValueError, TypeError, SyntaxError):
        return None
    if isinstance(left, ast.Call) and isinstance(left.func, ast.Name) and left.func.id == "len":
        if len(left.args) == 1 and _field_path(left.args[0]) == ("entries",):
            return Expectation("count", ("entries",), expected)
        return None
    path = _field_path(left)
    if path is None:
        return None
    key = path[:1] + path[2:] if path[0] == "entries" else path
    if path[0] == "entries" and (len(path) < 2 or not isinstance(path[1], int)):
        return None
    kind = FIELD_KINDS.get(key)  # type: ignore[arg-type]
    return Expectation(kind, path, expected) if kind else None


def expectations(text: str) -> list[Expectation]:
    match = re.search(r"Expect:\s*(.*?)\s*(?:-->|$)", text, re.M)
    if not match:
        return []
    try:
        tree = ast.parse(match[1], mode="eval").body
    except SyntaxError:
        return []
    clauses = (
        tree.values if isinstance(tree, ast.BoolOp) and isinstance(tree.op, ast.And) else [tree]
    )
    return [e for e in map(_expectation, clauses) if e is not None]

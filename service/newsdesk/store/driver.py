"""Statements handed straight to the driver.

For the few hot paths where SQLAlchemy's per-row work costs more than the database's
own (the clustering's bulk writes, the send ledger's claim, the retention's recount):
the placeholder the driver takes, and each column's conversion done as Core does it, so
the rows stored are the same. And how many values one IN (...) list may carry, for
every store module that looks rows up by a list of keys.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

from sqlalchemy import Dialect, Float, Integer, String
from sqlalchemy.types import TypeEngine

IN_CHUNK = 500
"""Values per IN (...) list: well under SQLite's and PostgreSQL's parameter limits."""


def chunks(values: Sequence[Any]) -> Iterator[Sequence[Any]]:
    """``values`` in slices of ``IN_CHUNK``, one IN (...) list each."""
    for start in range(0, len(values), IN_CHUNK):
        yield values[start : start + IN_CHUNK]


def mark(dialect: Dialect) -> str:
    """The placeholder of the two stores' drivers: sqlite3 takes "?", psycopg "%s"."""
    return "?" if dialect.paramstyle == "qmark" else "%s"


def converter(type_: TypeEngine[Any], dialect: Dialect) -> Callable[[Any], Any] | None:
    """What turns a Python value into the driver's for a column of ``type_``, as Core
    does (UTC datetimes into SQLite's text, booleans); None for numbers and text, which
    go as they are (a float's processor would only copy it)."""
    impl = type_.dialect_impl(dialect)
    if isinstance(impl, (Float, Integer, String)):
        return None
    return impl.bind_processor(dialect)

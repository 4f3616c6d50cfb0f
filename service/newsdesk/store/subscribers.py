"""Subscribers: who gets the issue, and the record of everyone who asked to stop.

A subscriber's row is never deleted: an unsubscribe or a bounce is a status, so that it
wins over a later import or ``[subscribers] file`` sync that still lists the address.
Addresses are matched case-insensitively (``Bob@Example.org`` is ``bob@example.org``)
for the same reason: a change of case in a file must not subscribe anyone again.
"""

from __future__ import annotations

import csv
import io
import logging
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, Row, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from newsdesk.config_values import read_language
from newsdesk.errors import UsageError
from newsdesk.store.engine import write_lock
from newsdesk.store.schema import subscribers

__all__ = [
    "STATUSES",
    "ImportResult",
    "Subscriber",
    "SubscriberStore",
    "check_name",
    "normalise_address",
    "read_csv",
]

STATUSES = ("active", "unsubscribed", "bounced")
COLUMNS = ("email", "name", "language", "status")
"""Columns of an import file (``email`` required) and of an export, in this order."""
MAX_NAME = 200

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Subscriber:
    id: int
    email: str
    name: str | None
    language: str | None
    status: str
    """active | unsubscribed | bounced"""
    source: str
    """Where the address came from: "cli", "import", "file"."""
    created_at: datetime
    updated_at: datetime


@dataclass
class ImportResult:
    added: int = 0
    updated: int = 0
    """Known active addresses whose name or language changed (or that a file marked
    unsubscribed or bounced)."""
    unchanged: int = 0
    skipped: int = 0
    """Addresses that unsubscribed or bounced: never subscribed again by a file."""
    problems: list[str] = field(default_factory=list)
    """One "file: row N: reason" line per row that was not imported."""

    def line(self) -> str:
        return (
            f"{self.added} added, {self.updated} updated, {self.unchanged} unchanged, "
            f"{self.skipped} skipped (unsubscribed or bounced), {len(self.problems)} problems"
        )


def normalise_address(text: str) -> str:
    """The address as stored: syntax checked, domain lower-cased; ValueError if invalid."""
    # Imported here: it brings dnspython and certifi, which no other command needs.
    from email_validator import EmailNotValidError, validate_email

    address = text.strip()
    try:
        checked = validate_email(address, check_deliverability=False)
    except EmailNotValidError:
        raise ValueError(f"{address!r}: not an email address") from None
    return checked.normalized


def check_name(text: str | None) -> str | None:
    """A display name fit for a To: header: one line, no control characters, 200 at most."""
    if text is None:
        return None
    name = text.strip()
    if any(unicodedata.category(c) in ("Cc", "Zl", "Zp") for c in name):
        raise ValueError(f"name {name!r}: no line breaks or control characters allowed")
    if len(name) > MAX_NAME:
        raise ValueError(f"name {name[:20]!r}...: longer than {MAX_NAME} characters")
    return name or None


def check_language(text: str | None) -> str | None:
    if text is None or not text.strip():
        return None
    try:
        return read_language(text.strip())
    except ValueError as exc:
        raise ValueError(f"language: {exc}") from None


def read_csv(path: Path) -> list[dict[str, str]]:
    """The rows of a subscribers CSV (header ``email[,name][,language][,status]``).

    UsageError when nothing can be read: no file, not UTF-8, no ``email`` column.
    """
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise UsageError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise UsageError(f"{path}: not UTF-8 text") from None
    reader = csv.reader(io.StringIO(text, newline=""))
    header = [h.strip().lower() for h in next(reader, [])]
    if "email" not in header:
        raise UsageError(
            f"{path}: row 1: expected a header with an email column (email,name,language)"
        )
    unknown = [h for h in header if h not in COLUMNS]
    if unknown:
        raise UsageError(
            f"{path}: row 1: unknown column {unknown[0]!r} (known: {','.join(COLUMNS)})"
        )
    # A blank line is kept (as an empty row) so that the rows after it keep their numbers.
    return [dict(zip(header, row, strict=False)) for row in reader]


def _subscriber(row: Row[Any]) -> Subscriber:
    return Subscriber(
        id=row.id,
        email=row.email,
        name=row.name,
        language=row.language,
        status=row.status,
        source=row.source,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


class SubscriberStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # -- one address -----------------------------------------------------------------

    def add(
        self,
        email: str,
        *,
        name: str | None = None,
        language: str | None = None,
        source: str = "cli",
        resubscribe: bool = False,
        now: datetime,
    ) -> Subscriber:
        """Subscribe an address; one that unsubscribed or bounced only with ``resubscribe``."""
        try:
            address, name, language = (
                normalise_address(email),
                check_name(name),
                check_language(language),
            )
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        with self.engine.begin() as conn:
            write_lock(conn)
            row = _find(conn, address)
            if row is None:
                try:
                    new_id = conn.execute(
                        insert(subscribers)
                        .values(
                            email=address,
                            name=name,
                            language=language,
                            status="active",
                            source=source,
                            created_at=now,
                            updated_at=now,
                        )
                        .returning(subscribers.c.id)
                    ).scalar_one()
                except IntegrityError:  # a concurrent add of the same address won
                    raise UsageError(f"{address}: already subscribed") from None
                return _get(conn, new_id)
            if row.status == "active":
                raise UsageError(f"{row.email}: already subscribed")
            if not resubscribe:
                raise UsageError(
                    f"{row.email}: {row.status}; add it again only if they asked to (--resubscribe)"
                )
            changes: dict[str, Any] = {"status": "active", "updated_at": now}
            if name is not None:
                changes["name"] = name
            if language is not None:
                changes["language"] = language
            conn.execute(update(subscribers).where(subscribers.c.id == row.id).values(changes))
            return _get(conn, row.id)

    def remove(self, email: str, *, now: datetime) -> Subscriber:
        """Unsubscribe an address by hand; the row stays, so no file sync brings it back."""
        with self.engine.begin() as conn:
            write_lock(conn)
            row = _find(conn, _address_or_text(email))
            if row is None:
                raise UsageError(f"{email.strip()}: not a subscriber")
            if row.status != "unsubscribed":
                conn.execute(
                    update(subscribers)
                    .where(subscribers.c.id == row.id)
                    .values(status="unsubscribed", updated_at=now)
                )
            return _get(conn, row.id)

    def get(self, email: str) -> Subscriber | None:
        with self.engine.connect() as conn:
            row = _find(conn, _address_or_text(email))
        return _subscriber(row) if row is not None else None

    def get_by_id(self, subscriber_id: int) -> Subscriber | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(subscribers).where(subscribers.c.id == subscriber_id)).first()
        return _subscriber(row) if row is not None else None

    def unsubscribe(self, subscriber_id: int, *, now: datetime) -> bool:
        """The one-click unsubscribe: True when this call changed the status.

        A bounced address that unsubscribes is recorded as unsubscribed: their own wish
        is the stronger record. A replay (or an unknown id) returns False.
        """
        with self.engine.begin() as conn:
            changed = conn.execute(
                update(subscribers)
                .where(subscribers.c.id == subscriber_id, subscribers.c.status != "unsubscribed")
                .values(status="unsubscribed", updated_at=now)
            ).rowcount
        if changed:
            log.info("subscriber unsubscribed", extra={"subscriber_id": subscriber_id})
        return bool(changed)

    def mark_bounced(self, subscriber_id: int, reason: str, *, now: datetime) -> bool:
        """Stop sending to an address the mail server refused for good.

        True when this call changed it; an unsubscribed address stays unsubscribed. The
        reason is logged (the subscribers table has no column for it yet).
        """
        with self.engine.begin() as conn:
            changed = conn.execute(
                update(subscribers)
                .where(subscribers.c.id == subscriber_id, subscribers.c.status == "active")
                .values(status="bounced", updated_at=now)
            ).rowcount
        if changed:
            log.warning(
                "subscriber bounced: %s",
                " ".join(reason.split())[:500],
                extra={"subscriber_id": subscriber_id},
            )
        return bool(changed)

    # -- lists -----------------------------------------------------------------------

    def listed(self, status: str | None = None) -> list[Subscriber]:
        """Every subscriber (or those with ``status``), by address."""
        by_address = (func.lower(subscribers.c.email), subscribers.c.email, subscribers.c.id)
        query = select(subscribers).order_by(*by_address)
        if status is not None:
            if status not in STATUSES:
                raise UsageError(f"status {status!r}: expected one of {', '.join(STATUSES)}")
            query = query.where(subscribers.c.status == status)
        with self.engine.connect() as conn:
            return [_subscriber(r) for r in conn.execute(query)]

    def active(self) -> list[Subscriber]:
        """Who gets the next issue, in the order they subscribed."""
        query = (
            select(subscribers).where(subscribers.c.status == "active").order_by(subscribers.c.id)
        )
        with self.engine.connect() as conn:
            return [_subscriber(r) for r in conn.execute(query)]

    def active_among(self, ids: Sequence[int]) -> list[Subscriber]:
        """Those of ``ids`` who are still active (a send re-reads its next few rows)."""
        if not ids:
            return []
        query = select(subscribers).where(
            subscribers.c.status == "active", subscribers.c.id.in_(ids)
        )
        with self.engine.connect() as conn:
            return [_subscriber(r) for r in conn.execute(query)]

    def count_by_status(self) -> dict[str, int]:
        """``{"active": n, "unsubscribed": n, "bounced": n}``, zeros included."""
        query = select(subscribers.c.status, func.count()).group_by(subscribers.c.status)
        counts = dict.fromkeys(STATUSES, 0)
        with self.engine.connect() as conn:
            counts.update({row[0]: row[1] for row in conn.execute(query)})
        return counts

    # -- files -----------------------------------------------------------------------

    def import_rows(
        self, rows: Iterable[Mapping[str, str]], *, source: str, now: datetime, where: str
    ) -> ImportResult:
        """Add the rows of a subscribers CSV; every bad row is one problem, the rest go in.

        Rows are counted as a spreadsheet shows them: the header is row 1, so a blank
        line must come as an empty row (as :func:`read_csv` gives it). An address
        that unsubscribed or bounced is never made active again (it is skipped); a
        ``status`` column of unsubscribed/bounced (as ``export`` writes) is recorded.
        """
        result = ImportResult()
        wanted: dict[str, tuple[str, dict[str, str | None]]] = {}
        first_row: dict[str, int] = {}
        for number, row in enumerate(rows, 2):
            if not any((value or "").strip() for value in row.values()):
                continue  # a blank line
            try:
                address, values = _checked_row(row)
            except ValueError as exc:
                result.problems.append(f"{where}: row {number}: {exc}")
                continue
            key = address.lower()
            if key in first_row:
                result.problems.append(
                    f"{where}: row {number}: {address}: listed again (first in row "
                    f"{first_row[key]}); the first one counts"
                )
                continue
            first_row[key] = number
            wanted[key] = (address, values)
        with self.engine.begin() as conn:
            write_lock(conn)
            known = {r.email.lower(): r for r in conn.execute(select(subscribers))}
            for key, (address, values) in wanted.items():
                found = known.get(key)
                if found is None:
                    conn.execute(
                        insert(subscribers).values(
                            {
                                "status": "active",
                                **values,
                                "email": address,
                                "source": source,
                                "created_at": now,
                                "updated_at": now,
                            }
                        )
                    )
                    result.added += 1
                elif found.status != "active":
                    result.skipped += 1
                elif all(getattr(found, column) == value for column, value in values.items()):
                    result.unchanged += 1
                else:
                    conn.execute(
                        update(subscribers)
                        .where(subscribers.c.id == found.id)
                        .values({**values, "updated_at": now})
                    )
                    result.updated += 1
        return result

    def sync_file(self, path: Path, *, now: datetime) -> ImportResult:
        """The ``[subscribers] file`` sync before a send: new addresses added, names
        updated, unsubscribes and bounces kept. Addresses no longer in the file stay."""
        rows = read_csv(path)
        result = self.import_rows(rows, source="file", now=now, where=str(path))
        log.info(
            "subscribers file synced: %s",
            result.line(),
            extra={"file": str(path), "problems": len(result.problems)},
        )
        return result

    def export(self) -> str:
        """Every subscriber as CSV (email,name,language,status), by address: importing
        it elsewhere keeps the unsubscribes."""
        out = io.StringIO(newline="")
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(COLUMNS)
        for s in self.listed():
            writer.writerow([s.email, s.name or "", s.language or "", s.status])
        return out.getvalue()


def _checked_row(row: Mapping[str, str]) -> tuple[str, dict[str, str | None]]:
    """The address of a CSV row and the columns it sets; a column the file lacks is
    left as it is in the store (a file without names keeps the names given by hand)."""
    raw = (row.get("email") or "").strip()
    if not raw:
        raise ValueError("no email address")
    address = normalise_address(raw)
    values: dict[str, str | None] = {}
    if "name" in row:
        values["name"] = check_name(row["name"] or "")
    if "language" in row:
        values["language"] = check_language(row["language"])
    if "status" in row:
        status = (row["status"] or "").strip().lower() or "active"
        if status not in STATUSES:
            raise ValueError(f"status {status!r}: expected one of {', '.join(STATUSES)}")
        values["status"] = status
    return address, values


def _address_or_text(email: str) -> str:
    """The normalised address; the text itself when it is not one (it then matches none)."""
    try:
        return normalise_address(email)
    except ValueError:
        return email.strip()


def _find(conn: Connection, address: str) -> Row[Any] | None:
    """The row of ``address``, ignoring case: exact match first (the unique index)."""
    exact = conn.execute(select(subscribers).where(subscribers.c.email == address)).first()
    if exact is not None:
        return exact
    query = select(subscribers).where(func.lower(subscribers.c.email) == address.lower())
    return conn.execute(query.order_by(subscribers.c.id)).first()


def _get(conn: Connection, subscriber_id: int) -> Subscriber:
    row = conn.execute(select(subscribers).where(subscribers.c.id == subscriber_id)).one()
    return _subscriber(row)

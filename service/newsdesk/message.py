"""One email of an issue, as ``email.message.EmailMessage`` builds it (pure, no I/O).

multipart/alternative with the plain text first and the HTML last (clients show the
last part they can display). Subject and display names are RFC 2047-encoded by the
``email`` package's policy, so umlauts round-trip. Every text that reaches a header is
made one line here (control characters and line breaks become spaces), whatever the
caller did before: a header is never built from raw feed or config text.

``List-Unsubscribe`` carries the one-click https link and a mailto, and
``List-Unsubscribe-Post: List-Unsubscribe=One-Click`` marks the link as one-click
(RFC 8058). Both are plain ASCII, so the policy folds them at spaces, never into
encoded-words (which some receivers would not decode).
"""

from __future__ import annotations

import re
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, parseaddr
from urllib.parse import quote

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u0085]+")
SUBJECT_MAX = 250
"""Characters; longer subjects are cut (RFC 5322 allows long headers, clients do not)."""


def header_text(text: str, limit: int = SUBJECT_MAX) -> str:
    """``text`` as one header line: no control characters, no line breaks, trimmed."""
    return " ".join(_CONTROL.sub(" ", text).split())[:limit].strip()


def build_message(
    *,
    subject: str,
    sender: str,
    to: str,
    text: str,
    html: str,
    date: datetime,
    message_id: str,
    to_name: str = "",
    unsubscribe_url: str | None = None,
    unsubscribe_mailto: str | None = None,
) -> EmailMessage:
    """The message for one recipient. ``sender`` is ``Name <addr>`` or a bare address."""
    msg = EmailMessage(policy=SMTP)
    msg["Subject"] = header_text(subject)
    msg["From"] = _address(*reversed(parseaddr(sender)))
    msg["To"] = _address(to, to_name)
    msg["Date"] = format_datetime(date)
    msg["Message-ID"] = header_text(message_id, 998)
    links = []
    if unsubscribe_url:
        links.append(f"<{header_text(unsubscribe_url, 900)}>")
    if unsubscribe_mailto:
        links.append(f"<{header_text(unsubscribe_mailto, 900)}>")
    if links:
        msg["List-Unsubscribe"] = ", ".join(links)
    if unsubscribe_url:
        msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    msg.set_content(text, subtype="plain", charset="utf-8", cte="quoted-printable")
    msg.add_alternative(html, subtype="html", charset="utf-8", cte="quoted-printable")
    return msg


def mailto(address: str, subject: str) -> str:
    """A ``mailto:`` URI with a subject (for List-Unsubscribe)."""
    return f"mailto:{quote(address, safe='@')}?subject={quote(subject, safe='')}"


def _address(addr: str, name: str) -> Address:
    local, _, domain = header_text(addr, 320).rpartition("@")
    return Address(display_name=header_text(name, 200), username=local, domain=domain)

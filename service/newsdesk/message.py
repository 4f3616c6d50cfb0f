"""One email of an issue, as ``email.message.EmailMessage`` builds it (no I/O).

multipart/alternative with the plain text first and the HTML last (clients show the
last part they can display). The subject and display names are RFC 2047-encoded by the
``email`` package's default policy, so umlauts round-trip. Header values are checked
for line breaks here as well as upstream: a header is never built from raw feed text.
"""

from __future__ import annotations

from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime

from newsdesk.errors import UsageError


def build_message(
    *,
    subject: str,
    sender: str,
    to: str,
    text: str,
    html: str,
    date: datetime,
    message_id: str,
    extra_headers: dict[str, str] | None = None,
) -> EmailMessage:
    headers = {
        "Subject": subject,
        "From": sender,
        "To": to,
        "Date": format_datetime(date),
        "Message-ID": message_id,
        **(extra_headers or {}),
    }
    msg = EmailMessage()
    for name, value in headers.items():
        if "\r" in value or "\n" in value:
            raise UsageError(f"header {name}: contains a line break")
        msg[name] = value
    msg.set_content(text, subtype="plain", charset="utf-8", cte="quoted-printable")
    msg.add_alternative(html, subtype="html", charset="utf-8", cte="quoted-printable")
    return msg

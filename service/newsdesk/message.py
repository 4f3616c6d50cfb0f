"""One email of an issue, as ``email.message.EmailMessage`` builds it (pure, no I/O).

multipart/alternative with the plain text first and the HTML last (clients show the
last part they can display).

Headers are written here, byte by byte, not by the ``email`` package's policy: the
policy decodes RFC 2047 encoded-words it finds in the text it is given, so a subject
of ``=?utf-8?q?a=0D=0ABcc:...?=`` would come out as a second header line, and its
folder loses spaces and quotes in long display names (CPython before 3.13). Here every
text that reaches a header is made one line first (control characters and line breaks
become spaces); plain ASCII words stay readable, anything else (non-ASCII, quotes,
``=?``) becomes B-encoded words of at most 75 characters, one per line.

``List-Unsubscribe`` carries the one-click https link and a mailto, and
``List-Unsubscribe-Post: List-Unsubscribe=One-Click`` marks the link as one-click
(RFC 8058). Both are ASCII we built, folded only between their ``<...>`` parts, never
into encoded-words (which receivers would not decode in this header).
"""

from __future__ import annotations

import binascii
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import EmailPolicy
from email.utils import format_datetime
from urllib.parse import quote

# refold_source="none": build_message's EmailMessage writes the header bytes made here
# back unchanged instead of refolding (and re-decoding) them.
POLICY = EmailPolicy(linesep="\r\n", refold_source="none")
CRLF = "\r\n"


def _fold_list(name: str, value: str) -> bytes:
    """A list of ``<...>`` parts, folded only between them."""
    parts = [part.strip() for part in value.split(",")]
    return (f"{name}: " + f",{CRLF} ".join(parts) + CRLF).encode("ascii")


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u0085]+")
SUBJECT_MAX = 250
"""Characters; longer subjects are cut (RFC 5322 allows long headers, clients do not)."""


def header_text(text: str, limit: int | None = SUBJECT_MAX) -> str:
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
    """The message for one recipient. ``sender`` is ``Name <addr>`` or a bare address.

    The same bytes as :meth:`MessageTemplate.render`, as an ``EmailMessage``.
    """
    raw = MessageTemplate(subject=subject, sender=sender).render(
        to=to,
        to_name=to_name,
        text=text,
        html=html,
        date=date,
        message_id=message_id,
        unsubscribe_url=unsubscribe_url,
        unsubscribe_mailto=unsubscribe_mailto,
    )
    msg = BytesParser(EmailMessage, policy=POLICY).parsebytes(raw)
    assert isinstance(msg, EmailMessage)
    return msg


@dataclass(frozen=True, slots=True)
class Encoded:
    """A part's body already encoded: quoted-printable, CRLF line ends (``Body.fill``)."""

    data: bytes


class Body:
    """A part's text with placeholders, as quoted-printable, filled in per message.

    Quoted-printable works line by line (a soft break never spans a line end), so the
    lines without a placeholder are encoded once, and a message encodes only the few
    with one: ``b2a_qp`` takes ~20 ns a byte, ~0.3 ms for a whole issue. A value that
    is empty or holds a line break could change the lines around it; such a message is
    encoded whole, as before.
    """

    def __init__(self, text: str, placeholders: Sequence[str]) -> None:
        self._text = text
        self._placeholders = tuple(placeholders)
        self._pieces: list[bytes | str] = []
        """Encoded runs of lines without a placeholder, and lines with one (to fill)."""
        run: list[str] = []
        for line in _normalised(text).split("\n")[:-1]:
            if any(p in line for p in self._placeholders):
                if run:
                    self._pieces.append(_encoded("".join(run)))
                    run = []
                self._pieces.append(line + "\n")
            else:
                run.append(line + "\n")
        if run:
            self._pieces.append(_encoded("".join(run)))

    def fill(self, values: Sequence[tuple[str, str]]) -> Encoded:
        """The body with each placeholder replaced by its value, in this order."""
        if any(not value or "\r" in value or "\n" in value for _, value in values):
            text = self._text
            for placeholder, value in values:
                text = text.replace(placeholder, value)
            return Encoded(_encoded(_normalised(text)))
        encoded = []
        for piece in self._pieces:
            if isinstance(piece, str):
                for placeholder, value in values:
                    piece = piece.replace(placeholder, value)
                piece = _encoded(piece)
            encoded.append(piece)
        return Encoded(b"".join(encoded))


class MessageTemplate:
    """The messages of one issue: what all share is encoded once, the rest per recipient.

    Building each message with the ``email`` package costs ~8 ms (its generator is pure
    Python); here a message is its headers plus both parts encoded by
    ``binascii.b2a_qp`` (C): a few hundred microseconds, or a few dozen when the parts
    come as :class:`Encoded` (from a :class:`Body` made once per issue).
    """

    def __init__(self, *, subject: str, sender: str) -> None:
        name, address = split_address(sender)
        self._shared = _unstructured("Subject", header_text(subject)) + _mailbox(
            "From", address, name
        )
        # "=" never appears unencoded in quoted-printable, so no body line can look like
        # a boundary that starts with "=_".
        self._boundary = f"=_newsdesk_{secrets.token_hex(12)}"

    def render(
        self,
        *,
        to: str,
        to_name: str,
        text: str | Encoded,
        html: str | Encoded,
        date: datetime,
        message_id: str,
        unsubscribe_url: str | None = None,
        unsubscribe_mailto: str | None = None,
    ) -> bytes:
        head = [
            self._shared,
            _mailbox("To", to, to_name),
            # Short ASCII made here (a date, an id of hex digits): no folding to do.
            _raw("Date", format_datetime(date)),
            _raw("Message-ID", header_text(message_id, 900)),
        ]
        links = [f"<{header_text(u, 900)}>" for u in (unsubscribe_url, unsubscribe_mailto) if u]
        if links:
            head.append(_fold_list("List-Unsubscribe", ", ".join(links)))
        if unsubscribe_url:
            head.append(b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n")
        boundary = self._boundary.encode("ascii")
        head.append(
            b'MIME-Version: 1.0\r\nContent-Type: multipart/alternative;\r\n boundary="'
            + boundary
            + b'"\r\n\r\n'
        )
        return b"".join(
            [
                *head,
                _part(boundary, "plain", text),
                _part(boundary, "html", html),
                b"--" + boundary + b"--\r\n",
            ]
        )


def _part(boundary: bytes, subtype: str, body: str | Encoded) -> bytes:
    encoded = body.data if isinstance(body, Encoded) else _encoded(_normalised(body))
    return (
        b"--"
        + boundary
        + b"\r\nContent-Type: text/"
        + subtype.encode("ascii")
        + b'; charset="utf-8"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n'
        + encoded
        + b"\r\n"  # the line break before a boundary belongs to the boundary (RFC 2046)
    )


def _normalised(body: str) -> str:
    """Every line break as LF, and one at the end."""
    lines = body.replace("\r\n", "\n").replace("\r", "\n")
    return lines if lines.endswith("\n") else lines + "\n"


def _encoded(lines: str) -> bytes:
    """Normalised lines as quoted-printable with CRLF line ends."""
    return binascii.b2a_qp(lines.encode("utf-8"), istext=True).replace(b"\n", b"\r\n")


def _raw(name: str, value: str) -> bytes:
    return f"{name}: {value}\r\n".encode("ascii", "replace")


_PHRASE_ATOMS = re.compile(r"[A-Za-z0-9 !#$%&'*+\-/^_`{|}~]*")
_LINE = 78
_CHUNK_BYTES = 45
"""UTF-8 bytes per encoded-word: base64 makes 60 characters, 72 with =?utf-8?b?...?=."""


def _unstructured(name: str, text: str) -> bytes:
    """A Subject: printable ASCII folded at spaces, anything else as encoded-words."""
    if text.isascii() and text.isprintable() and "=?" not in text:
        return _fold_words(name, text.split(" "))
    return _fold_words(name, _encoded_words(text))


def _mailbox(name: str, address: str, display: str) -> bytes:
    """From/To: ``display <address>``; a name that is not plain atoms is encoded."""
    address = header_text(address, 320)
    display = header_text(display, 200)
    if not display:
        return _raw(name, address) if address.isascii() else _utf8(name, address)
    words = display.split(" ") if _PHRASE_ATOMS.fullmatch(display) else _encoded_words(display)
    if not address.isascii():
        return _utf8(name, f"{' '.join(words)} <{address}>")
    return _fold_words(name, [*words, f"<{address}>"])


def _fold_words(name: str, words: list[str]) -> bytes:
    """Words joined by spaces, a new line before a word that would pass 78 columns."""
    lines, line = [], f"{name}:"
    for word in words:
        if not word:
            continue
        if len(line) + 1 + len(word) > _LINE and line != f"{name}:":
            lines.append(line)
            line = ""
        line += f" {word}"
    lines.append(line)
    return ("\r\n".join(lines) + "\r\n").encode("ascii")


def _encoded_words(text: str) -> list[str]:
    """RFC 2047 B-encoded words, split between characters (a decoder joins them as one)."""
    words, chunk = [], b""
    for char in text:
        raw = char.encode("utf-8")
        if len(chunk) + len(raw) > _CHUNK_BYTES:
            words.append(chunk)
            chunk = b""
        chunk += raw
    if chunk:
        words.append(chunk)
    return [f"=?utf-8?b?{binascii.b2a_base64(w, newline=False).decode()}?=" for w in words]


def _utf8(name: str, value: str) -> bytes:
    """An internationalised address (RFC 6532): only an SMTPUTF8 server takes it."""
    return f"{name}: {value}\r\n".encode()


def split_address(text: str) -> tuple[str, str]:
    """``Name <addr>`` or ``"Quoted, Name" <addr>`` or ``addr`` -> (name, addr).

    Unlike ``email.utils.parseaddr``, any display name survives: the address is what the
    last ``<...>`` holds, the name everything before it (unquoted)."""
    text = text.strip()
    if not (text.endswith(">") and "<" in text):
        return "", text
    name, _, address = text[:-1].rpartition("<")
    name = name.strip()
    if len(name) >= 2 and name[0] == name[-1] == '"':
        name = re.sub(r"\\(.)", r"\1", name[1:-1], flags=re.DOTALL)
    return name, address.strip()


def mailto(address: str, subject: str) -> str:
    """A ``mailto:`` URI with a subject (for List-Unsubscribe)."""
    return f"mailto:{quote(address, safe='@')}?subject={quote(subject, safe='')}"

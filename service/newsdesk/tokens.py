"""Signed values that leave the machine: unsubscribe tokens and Message-IDs (pure).

Both are HMAC-SHA256 under a *signing key* that has an id. The newest key signs; every
key still listed verifies, so rotating keys (add a new first line to the keys file) never
breaks an unsubscribe link in an old issue. Comparisons are constant-time.

An unsubscribe token is ``<key id>.<subscriber id>.<mac>``: short enough for a URL and a
mailto subject, and useless for anyone but the subscriber it was made for. A Message-ID
is stable for one (issue, subscriber), so a re-sent message after a crash is recognised
as the same message, but it cannot be guessed without the key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field

from newsdesk.errors import ConfigError

_KEY_ID = re.compile(r"[A-Za-z0-9_-]{1,16}")
_MIN_SECRET = 32
_MAC_BYTES = 16


@dataclass(frozen=True, slots=True)
class SigningKey:
    id: str
    secret: bytes = field(repr=False)


def parse_keys(text: str, where: str) -> tuple[SigningKey, ...]:
    """``<id> <secret>`` per line (secret: URL-safe base64 of at least 32 bytes), the
    signing key first. Blank lines and ``#`` comments are ignored. Commas separate keys
    too, so that one environment variable can hold several."""
    keys: list[SigningKey] = []
    problems: list[str] = []
    lines = [
        part.strip()
        for line in text.splitlines()
        if not line.lstrip().startswith("#")
        for part in line.split(",")
    ]
    for n, line in enumerate(lines, 1):
        if not line:
            continue
        key_id, _, encoded = line.replace(":", " ", 1).partition(" ")
        encoded = encoded.strip()
        try:
            secret = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
        except ValueError:
            secret = b""
        if not _KEY_ID.fullmatch(key_id):
            problems.append(f"{where}: key {n}: the id must be 1-16 letters, digits, - or _")
        elif len(secret) < _MIN_SECRET:
            problems.append(
                f"{where}: key {key_id}: the secret must be URL-safe base64 of at least "
                f"{_MIN_SECRET} bytes"
            )
        elif any(k.id == key_id for k in keys):
            problems.append(f"{where}: key {key_id}: listed twice")
        else:
            keys.append(SigningKey(key_id, secret))
    if not keys and not problems:
        problems.append(f"{where}: no signing key")
    if problems:
        raise ConfigError(problems)
    return tuple(keys)


def new_key_line(key_id: str) -> str:
    """A fresh key, as a line of the keys file."""
    secret = base64.urlsafe_b64encode(secrets.token_bytes(_MIN_SECRET)).decode().rstrip("=")
    return f"{key_id} {secret}"


def unsubscribe_token(subscriber_id: int, key: SigningKey) -> str:
    payload = f"{key.id}.{subscriber_id}"
    return f"{payload}.{_b64(_mac(key, 'unsubscribe', payload))}"


def verify_unsubscribe_token(token: str, keys: Sequence[SigningKey]) -> int | None:
    """The subscriber id a genuine token names; None for anything else."""
    if not token.isascii():  # compare_digest refuses non-ASCII text: no token has any
        return None
    parts = token.split(".")
    if len(parts) != 3 or not parts[1].isdigit() or len(parts[1]) > 18:
        return None
    key_id, subscriber, mac = parts
    key = next((k for k in keys if hmac.compare_digest(k.id, key_id)), None)
    if key is None:
        return None
    expected = _b64(_mac(key, "unsubscribe", f"{key_id}.{subscriber}"))
    if not hmac.compare_digest(expected.encode(), mac.encode()):
        return None
    return int(subscriber)


def message_id(issue_slot: str, subscriber_id: int, key: SigningKey, domain: str) -> str:
    """``<32 hex digits@domain>``, the same for one issue and subscriber under one key."""
    digest = _mac(key, "message", f"{issue_slot}\n{subscriber_id}").hex()
    return f"<{digest}@{domain}>"


def _mac(key: SigningKey, purpose: str, payload: str) -> bytes:
    # The purpose keeps a token from ever passing for a Message-ID digest and back.
    message = f"newsdesk/{purpose}\n{payload}".encode()
    return hmac.new(key.secret, message, hashlib.sha256).digest()[:_MAC_BYTES]


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")

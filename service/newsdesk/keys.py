"""The signing keys of this installation: from NEWSDESK_MAIL_SIGNING_KEYS, else a file.

The file is created with one fresh key (mode 0600) the first time a key is needed, so a
new installation signs its unsubscribe links without a set-up step. To rotate, put a new
line first: it signs from then on, and the old keys below it keep verifying old links.
"""

from __future__ import annotations

import os
from pathlib import Path

from newsdesk.config import Config
from newsdesk.errors import ConfigError
from newsdesk.tokens import SigningKey, new_key_line, parse_keys

HEADER = (
    "# newsdesk signing keys: '<id> <secret>' per line, the first one signs.\n"
    "# To rotate, add a new first line; keep the old ones while old issues are in inboxes.\n"
)


def signing_keys(config: Config) -> tuple[SigningKey, ...]:
    if config.mail.signing_keys:
        return parse_keys(config.mail.signing_keys, "NEWSDESK_MAIL_SIGNING_KEYS")
    path = config.mail.signing_keys_file
    if not path.exists():
        _create(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read the signing keys: {exc.strerror}"]) from None
    return parse_keys(text, str(path))


def _create(path: Path) -> None:
    """A new keys file, readable by its owner only; a concurrent creator wins the race."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(HEADER + new_key_line("k1") + "\n")

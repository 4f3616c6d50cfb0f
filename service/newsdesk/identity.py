"""Identity of entries: canonical URLs, entry keys, content hashes, normalised text.

Pure functions (no I/O, no clock), shared by ``parse`` (keys of new entries) and
``cluster`` (the same article across feeds). They never raise on garbage input: a URL
that cannot be made sense of is simply ``None``.
"""

from __future__ import annotations

import hashlib
import html
import re
import unicodedata
from urllib.parse import quote, unquote_plus, urljoin, urlsplit, urlunsplit

TRACKING_PARAMS: frozenset[str] = frozenset(
    {
        # Ad and social click identifiers.
        "fbclid",
        "gclid",
        "gclsrc",
        "gbraid",
        "wbraid",
        "dclid",
        "msclkid",
        "yclid",
        "twclid",
        "ttclid",
        "igshid",
        "li_fat_id",
        "epik",
        "rb_clickid",
        "wickedid",
        # Mailing-list and marketing-automation tags.
        "mc_cid",
        "mc_eid",
        "_hsenc",
        "_hsmi",
        "__hssc",
        "__hstc",
        "__hsfp",
        "hsctatracking",
        "mkt_tok",
        "vero_conv",
        "vero_id",
        "oly_anon_id",
        "oly_enc_id",
        "_ga",
        "_gl",
        "s_cid",
        # Referral markers added by share buttons and aggregators.
        "ref_src",
        "ref_url",
    }
)
"""Query parameters that only track the reader; compared case-insensitively."""

TRACKING_PREFIXES: tuple[str, ...] = ("utm_",)
"""Parameter-name prefixes that are tracking whatever follows (``utm_source``...)."""

MAX_KEY_VALUE = 500
"""Longer GUIDs/URLs are hashed, so that an entry key fits an indexed column."""

_DEFAULT_PORTS = {"http": 80, "https": 443}

# Characters a browser would send percent-encoded; "%" is safe so existing escapes stay.
_PATH_SAFE = "/%:@!$&'()*+,;=~-._"
_QUERY_SAFE = _PATH_SAFE + "?"

_HOST_RE = re.compile(r"[a-z0-9_~.-]+")

_BLOCK_CONTENT_RE = re.compile(r"<(script|style)\b.*?</\1\s*>|<!--.*?-->", re.I | re.S)
# Inline tags vanish without a trace ("<b>Hel</b>lo" is one word); every other tag
# separates words, as paragraphs and line breaks do when rendered.
_INLINE_TAG_RE = re.compile(
    r"</?(?:a|abbr|b|bdi|bdo|cite|code|del|dfn|em|font|i|ins|kbd|mark|q|s|samp|small"
    r"|span|strike|strong|sub|sup|time|tt|u|var|wbr)\b[^>]*>",
    re.I,
)
_TAG_RE = re.compile(r"</?[a-zA-Z!?][^>]*>")


def canonical_url(url: str, base: str | None = None) -> str | None:
    """The comparable form of an http(s) URL, or None when it is not one.

    Resolves against ``base``, lower-cases scheme and host (IDNA for non-ASCII hosts),
    drops default ports, empty userinfo, the fragment and tracking parameters (keeping
    the others in order), and percent-encodes spaces and non-ASCII in path and query.
    """
    try:
        return _canonical_url(url, base)
    except (ValueError, TypeError, AttributeError):
        # urlsplit rejects bad IPv6 literals and ports, the idna codec bad labels.
        return None


def _canonical_url(url: str, base: str | None) -> str | None:
    url = url.strip()
    if base:
        url = urljoin(base.strip(), url)
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        return None
    host = _canonical_host(parts.hostname or "")
    if not host:
        return None
    netloc = host
    port = parts.port
    if port is not None and port != _DEFAULT_PORTS[scheme]:
        netloc = f"{netloc}:{port}"
    userinfo = parts.netloc.rpartition("@")[0] if "@" in parts.netloc else ""
    if userinfo.strip(":"):
        netloc = f"{userinfo}@{netloc}"
    path = quote(parts.path, safe=_PATH_SAFE) or "/"
    query = _strip_tracking(quote(parts.query, safe=_QUERY_SAFE))
    return urlunsplit((scheme, netloc, path, query, ""))


def _canonical_host(host: str) -> str:
    """Lower-case host, IDNA-encoded when not ASCII, IPv6 in brackets; "" when invalid."""
    if ":" in host:
        return f"[{host}]"
    if not host.isascii():
        host = host.encode("idna").decode("ascii")
    host = host.lower()
    # Spaces, controls, quotes...: not a host name, whatever urlsplit let through.
    return host if _HOST_RE.fullmatch(host) else ""


def _strip_tracking(query: str) -> str:
    """``query`` without tracking parameters (and empty pieces), others untouched."""
    if not query:
        return ""
    kept = []
    for piece in query.split("&"):
        if not piece:
            continue
        name = unquote_plus(piece.partition("=")[0]).strip().lower()
        if name in TRACKING_PARAMS or name.startswith(TRACKING_PREFIXES):
            continue
        kept.append(piece)
    return "&".join(kept)


def plain_text(text: str) -> str:
    """Text as a reader sees it: tags stripped, entities decoded, NFKC, case kept.

    Whitespace runs become one space.
    """
    if "<" in text:
        text = _BLOCK_CONTENT_RE.sub(" ", text)
        text = _INLINE_TAG_RE.sub("", text)
        text = _TAG_RE.sub(" ", text)
    if "&" in text:
        text = html.unescape(text)
    return " ".join(unicodedata.normalize("NFKC", text).split())


def normalize_text(text: str) -> str:
    """Plain, comparable text: :func:`plain_text`, casefolded.

    Meant for comparing and clustering, not display.
    """
    return plain_text(text).casefold()


def content_hash(title: str, url: str | None, text: str) -> str:
    """A stable 32-hex-digit digest of the normalised title, URL and text.

    Markup-only changes do not change it; a changed word does.
    """
    parts = (normalize_text(title), (url or "").strip(), normalize_text(text))
    # Length-prefixed, so that moving text between parts changes the digest.
    payload = "".join(f"{len(part)}:{part}" for part in parts)
    return _digest(payload)


def entry_key(guid: str | None, url: str | None, content_hash: str) -> str:
    """Identity of an entry within its feed: ``guid:…``, else ``url:…``, else ``hash:…``.

    GUIDs and URLs longer than :data:`MAX_KEY_VALUE` become ``guid-hash:``/``url-hash:``
    plus a digest, so that every key fits an indexed column.
    """
    guid = guid.strip() if guid else ""
    if guid:
        return _bounded_key("guid", guid)
    canonical = canonical_url(url) if url else None
    if canonical:
        # The fragment stays in the key: feeds without GUIDs link "changelog#v2" and
        # "changelog#v1" as two entries (canonical_url, for clustering, drops it).
        fragment = urlsplit(url.strip()).fragment if url else ""
        return _bounded_key("url", f"{canonical}#{fragment}" if fragment else canonical)
    return f"hash:{content_hash}"


def _bounded_key(kind: str, value: str) -> str:
    if len(value) > MAX_KEY_VALUE:
        return f"{kind}-hash:{_digest(value)}"
    return f"{kind}:{value}"


def _digest(text: str) -> str:
    # surrogatepass: a lone surrogate from a broken feed must not make hashing raise.
    data = text.encode("utf-8", "surrogatepass")
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def redact_url(url: str) -> str:
    """``url`` with the password of its user info replaced by ``***``: how a feed URL
    with credentials is shown in logs, errors and output."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return url
    if not password:
        return url
    userinfo, _, hostport = parts.netloc.rpartition("@")
    user = userinfo.split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{hostport}"))

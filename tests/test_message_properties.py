"""Properties of one email (``newsdesk.message``) and of the signed tokens
(``newsdesk.tokens``), for any text a feed, a subscriber or a curator can supply.

Each message is serialised (``as_bytes()``) and read back from the bytes, so the
properties hold for what a receiving server gets, not for the builder's objects.

Two things about the ``email`` package shape what is asserted:

- Bodies: ``set_content`` splits a text at CR, LF and CRLF (``bytes.splitlines``) and joins
  the lines with CRLF, adding a final line break when there is none. Every other character
  (NUL, VT, FF, NEL, U+2028, U+2029, emoji) survives quoted-printable unchanged. That is
  the asserted body property, exactly.
- Display names: the standard library's own parser keeps the space between two adjacent
  encoded-words of a display name (python/cpython#128110, fixed after 3.13), which
  RFC 2047 (6.2) says a reader ignores. So the display names are decoded from the raw
  header by ``decode_phrase`` below, the way RFC 2047 and RFC 5322 read them; the
  address itself is still checked with the standard parser.
"""

from __future__ import annotations

import email
import email.header
import email.policy
import re
from datetime import UTC, datetime
from email.message import EmailMessage

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from newsdesk.message import Body, Encoded, MessageTemplate, build_message, header_text, mailto
from newsdesk.tokens import SigningKey, message_id, unsubscribe_token, verify_unsubscribe_token

PROPERTY = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
DATE = datetime(2026, 11, 23, 7, 0, tzinfo=UTC)
SENDER = "desk@news.example.org"
TO = "reader@example.net"
KEY = SigningKey("k1", b"\x01" * 32)
MESSAGE_ID = message_id("2026-11-23", 7, KEY, "news.example.org")
HEADERS = [
    "Subject",
    "From",
    "To",
    "Date",
    "Message-ID",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
    "MIME-Version",
    "Content-Type",
]

# What feeds and forms really send, and what breaks headers: line breaks of every kind,
# NUL and other controls, RFC 5322 specials, encoded-word punctuation, umlauts, emoji.
TRICKY = "\r\n\x00\t\x0b\x0c\x1b\x7f\x85\u2028\u2029 äöüßÄÖÜ€😀👍🏽\"\\<>()[],;:@.=?_'"
_PIECES = st.one_of(
    st.text(st.characters(codec="utf-8"), max_size=12),
    st.text(st.sampled_from(TRICKY), min_size=1, max_size=3),
    st.sampled_from(["\r\n", "=?", "?=", "=?utf-8?q?", " \u2028 ", '\\"', "\x00"]),
)
_SHORT = st.lists(_PIECES, max_size=12).map("".join)
TEXTS = st.one_of(
    _SHORT,
    # Long texts (up to 2000 characters) as a short one repeated: generating 2000
    # random characters per example would make Hypothesis the slow part.
    st.tuples(_SHORT, st.integers(min_value=20, max_value=400)).map(
        lambda pair: (pair[0] * pair[1])[:2000]
    ),
)
SUBSCRIBER_IDS = st.integers(min_value=0, max_value=10**18 - 1)
"""What ``verify_unsubscribe_token`` accepts: at most 18 digits (store ids are far smaller)."""
KEYS = st.builds(
    SigningKey,
    st.from_regex(r"[A-Za-z0-9_-]{1,16}", fullmatch=True),
    st.binary(min_size=32, max_size=64),
)
HOSTS = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?(\.[a-z]{2,12}){1,3}", fullmatch=True)


def quoted_sender(name: str) -> str:
    """``"Name" <address>``, the way a careful curator writes any name in the config."""
    escaped = name.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}" <{SENDER}>'


def build(
    *,
    subject: str = "Issue 1",
    to_name: str = "",
    sender_name: str = "Desk",
    text: str = "Hello\n",
    html: str = "<p>Hello</p>\n",
    unsubscribe_url: str = "https://news.example.org/unsubscribe/k1.7.mac",
) -> EmailMessage:
    token = unsubscribe_url.rpartition("/")[2]
    return build_message(
        subject=subject,
        sender=quoted_sender(sender_name),
        to=TO,
        to_name=to_name,
        text=text,
        html=html,
        date=DATE,
        message_id=MESSAGE_ID,
        unsubscribe_url=unsubscribe_url,
        unsubscribe_mailto=mailto(SENDER, f"unsubscribe {token}"),
    )


def parse(raw: bytes) -> EmailMessage:
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def raw_fields(raw: bytes) -> list[tuple[str, str]]:
    """The top-level header fields as sent: (name, unfolded value), in order."""
    head = raw.split(b"\r\n\r\n", 1)[0].decode("ascii")
    fields = []
    for field in re.split(r"\r\n(?![ \t])", head):
        name, _, value = field.partition(":")
        fields.append((name, value.replace("\r\n", "").strip()))
    return fields


def raw_field(raw: bytes, name: str) -> str:
    (value,) = [v for n, v in raw_fields(raw) if n.lower() == name.lower()]
    return value


_PHRASE_TOKEN = re.compile(
    r'(?P<ew>=\?[^?\s]+\?[bBqQ]\?[^?\s]*\?=)|(?P<qs>"(?:\\.|[^"\\])*")|(?P<ws>[ \t]+)'
    r'|(?P<atom>[^\s"]+)'
)


def decode_phrase(phrase: str) -> str:
    """An RFC 5322 display-name as a reader shows it: encoded-words decoded, the space
    between two adjacent encoded-words dropped (RFC 2047, 6.2), quoted strings unquoted,
    any other run of white space one space."""
    out: list[str] = []
    space = last_ew = False
    position = 0
    for match in _PHRASE_TOKEN.finditer(phrase.strip()):
        assert match.start() == position, f"unparsable display name: {phrase!r}"
        position = match.end()
        kind, token = match.lastgroup, match.group()
        if kind == "ws":
            space = True
            continue
        if space and not (kind == "ew" and last_ew):
            out.append(" ")
        if kind == "ew":
            ((data, charset),) = email.header.decode_header(token)
            assert isinstance(data, bytes) and charset is not None
            out.append(data.decode(charset))
        elif kind == "qs":
            out.append(re.sub(r"\\(.)", r"\1", token[1:-1], flags=re.DOTALL))
        else:
            out.append(token)
        space, last_ew = False, kind == "ew"
    return "".join(out)


def display_name(raw: bytes, header: str) -> tuple[str, str]:
    """(display name, address) of a one-mailbox address header, decoded from the raw bytes."""
    value = raw_field(raw, header)
    if not value.endswith(">"):
        return "", value
    phrase, _, address = value[:-1].rpartition("<")
    return decode_phrase(phrase), address


def wire_body(text: str) -> str:
    """A body text as the message carries it: CR, LF and CRLF each become CRLF, and the
    last line ends with one."""
    body = re.sub(r"\r\n|\r|\n", "\r\n", text)
    return body if body.endswith("\r\n") else body + "\r\n"


# -- message.build_message ---------------------------------------------------------------


@PROPERTY
@given(subject=TEXTS, to_name=TEXTS, sender_name=TEXTS, text=TEXTS, html=TEXTS)
# A long display name with commas is folded without its quotes: several addresses.
@example(subject="Issue 1", to_name="a," * 100, sender_name="Desk", text="", html="")
def test_no_text_can_add_or_remove_a_header(
    subject: str, to_name: str, sender_name: str, text: str, html: str
) -> None:
    raw = build(
        subject=subject, to_name=to_name, sender_name=sender_name, text=text, html=html
    ).as_bytes()
    assert sorted(name for name, _ in raw_fields(raw)) == sorted(HEADERS)
    parsed = parse(raw)
    assert sorted(parsed.keys()) == sorted(HEADERS)
    assert [a.addr_spec for a in parsed["To"].addresses] == [TO]
    assert [a.addr_spec for a in parsed["From"].addresses] == [SENDER]
    assert [sorted(part.keys()) for part in parsed.iter_parts()] == [
        ["Content-Transfer-Encoding", "Content-Type"]
    ] * 2
    assert parsed["Date"].datetime == DATE
    assert str(parsed["Message-ID"]) == MESSAGE_ID


@PROPERTY
@given(subject=TEXTS, to_name=TEXTS, sender_name=TEXTS)
# The folder moves a space out of an encoded-word, between two of them: readers drop it.
@example(subject="Issue 1", to_name="m¾ :" * 20, sender_name="Desk")
def test_subject_and_display_names_arrive_as_their_one_line_form(
    subject: str, to_name: str, sender_name: str
) -> None:
    raw = build(subject=subject, to_name=to_name, sender_name=sender_name).as_bytes()
    parsed = parse(raw)
    assert str(parsed["Subject"]) == header_text(subject)
    # Display names are cut at 200 characters (message._address), subjects at 250.
    assert display_name(raw, "To") == (header_text(to_name, 200), TO)
    assert display_name(raw, "From") == (header_text(sender_name, 200), SENDER)
    assert [a.addr_spec for a in parsed["To"].addresses] == [TO]
    assert [a.addr_spec for a in parsed["From"].addresses] == [SENDER]


ENCODED_WORDS = st.builds(
    lambda charset, q, text: (
        email.header.Header(text, charset).encode(splitchars=" ", maxlinelen=10_000)
        if not q
        else "=?utf-8?q?" + "".join(f"={b:02X}" for b in text.encode()) + "?="
    ),
    st.sampled_from(["utf-8", "iso-8859-1"]),
    st.booleans(),
    st.text(st.sampled_from("\r\n\x00Bcc: x@evil.example.äöü"), min_size=1, max_size=40),
).filter(lambda word: "\n" not in word)


@PROPERTY
@example(prefix="Issue ", word="=?utf-8?q?=0D=0ABcc:_x@evil.example?=", suffix="")
@given(prefix=TEXTS, word=ENCODED_WORDS, suffix=TEXTS)
def test_text_that_looks_encoded_stays_text(prefix: str, word: str, suffix: str) -> None:
    """A feed title or a subscriber name may contain ``=?utf-8?q?...?=`` itself."""
    tricky = f"{prefix} {word} {suffix}"
    raw = build(subject=tricky, to_name=tricky).as_bytes()
    assert sorted(name for name, _ in raw_fields(raw)) == sorted(HEADERS)
    assert str(parse(raw)["Subject"]) == header_text(tricky)
    assert display_name(raw, "To") == (header_text(tricky, 200), TO)


@PROPERTY
@given(subscriber=SUBSCRIBER_IDS, key=KEYS, host=HOSTS, path=st.sampled_from(["", "/n" * 60]))
def test_list_unsubscribe_stays_plain_ascii(
    subscriber: int, key: SigningKey, host: str, path: str
) -> None:
    token = unsubscribe_token(subscriber, key)
    url = f"https://{host}{path}/unsubscribe/{token}"
    raw = build(unsubscribe_url=url).as_bytes()
    expected = f"<{url}>, <{mailto(SENDER, f'unsubscribe {token}')}>"
    sent = raw_field(raw, "List-Unsubscribe")
    assert "=?" not in sent
    assert " ".join(sent.split()) == expected  # folded at the space only
    parsed = parse(raw)
    assert " ".join(str(parsed["List-Unsubscribe"]).split()) == expected
    assert str(parsed["List-Unsubscribe-Post"]) == "List-Unsubscribe=One-Click"


@PROPERTY
@given(text=TEXTS, html=TEXTS)
@example(text="", html="")
@example(text="a\rb\r\nc\nd\u2028e\x00f\x0bg\x85h  ", html="<p>\r\r\n\n</p>")
def test_plain_first_html_last_bodies_intact_up_to_line_endings(text: str, html: str) -> None:
    parsed = parse(build(text=text, html=html).as_bytes())
    assert parsed.get_content_type() == "multipart/alternative"
    plain, rich = parsed.iter_parts()
    assert (plain.get_content_type(), rich.get_content_type()) == ("text/plain", "text/html")
    for part, body in ((plain, text), (rich, html)):
        assert part.get_content_charset() == "utf-8"
        assert part["Content-Transfer-Encoding"] == "quoted-printable"
        assert part.get_content() == wire_body(body)


@PROPERTY
@given(subject=TEXTS, to_name=TEXTS, sender_name=TEXTS, text=TEXTS, html=TEXTS)
# IndexError inside the email package's folder.
@example(subject="Issue 1", to_name="", sender_name=":" * 200, text="", html="")
def test_every_line_is_short_ascii_and_ends_in_crlf(
    subject: str, to_name: str, sender_name: str, text: str, html: str
) -> None:
    raw = build(
        subject=subject, to_name=to_name, sender_name=sender_name, text=text, html=html
    ).as_bytes()
    assert raw.isascii()
    assert raw.endswith(b"\r\n")
    lines = raw.split(b"\r\n")
    assert not any(b"\r" in line or b"\n" in line for line in lines)  # no bare CR or LF
    assert max(len(line) for line in lines) <= 998  # RFC 5322, 2.1.1


MARKERS = ("<<LINK>>", "<<NAME>>")
_BODY_PIECES = st.one_of(_PIECES, st.sampled_from(MARKERS), st.sampled_from([".", " ", "x" * 80]))
BODIES = st.lists(_BODY_PIECES, max_size=30).map("".join)
VALUES = st.one_of(TEXTS, st.sampled_from(["", "\n", "https://news.example.org/u/" + "k" * 90]))


@PROPERTY
@given(body=BODIES, link=VALUES, name=VALUES)
@example(body="a\n<<LINK>>", link="", name="")  # an empty value at the end
@example(body="<<LINK>>x", link="a\r", name="b")  # a line break in a value
@example(body="a <<LINK>> b\r\n.\n" + "y" * 100, link="x" * 70, name="")
def test_a_body_filled_in_gives_the_bytes_of_the_filled_text(
    body: str, link: str, name: str
) -> None:
    # A Body encodes the lines without a placeholder once per issue; each message must
    # still get exactly the bytes that rendering the filled-in text would give.
    values = [("<<LINK>>", link), ("<<NAME>>", name)]
    filled = body
    for placeholder, value in values:
        filled = filled.replace(placeholder, value)
    template = MessageTemplate(subject="Issue 1", sender=SENDER)

    def render(text: str | Encoded) -> bytes:
        return template.render(
            to=TO, to_name="", text=text, html=text, date=DATE, message_id=MESSAGE_ID
        )

    assert render(Body(body, MARKERS).fill(values)) == render(filled)


# -- tokens --------------------------------------------------------------------------------


@PROPERTY
@given(subscriber=SUBSCRIBER_IDS, key=KEYS)
def test_unsubscribe_token_round_trips(subscriber: int, key: SigningKey) -> None:
    token = unsubscribe_token(subscriber, key)
    assert re.fullmatch(r"[A-Za-z0-9_-]+\.[0-9]+\.[A-Za-z0-9_-]{22}", token)
    assert verify_unsubscribe_token(token, [key]) == subscriber


def _changed(token: str, position: int, char: str) -> str:
    position %= len(token)
    return token[:position] + char + token[position + 1 :]


@PROPERTY
@given(
    subscriber=SUBSCRIBER_IDS,
    key=KEYS,
    other=KEYS,
    position=st.integers(min_value=0),
    char=st.characters(max_codepoint=127),
)
def test_a_token_changed_in_one_ascii_character_is_refused(
    subscriber: int, key: SigningKey, other: SigningKey, position: int, char: str
) -> None:
    token = unsubscribe_token(subscriber, key)
    changed = _changed(token, position, char)
    if changed != token:
        assert verify_unsubscribe_token(changed, [key, other]) is None


@PROPERTY
@example(subscriber=5, key=KEY, position=0, char="é")
@given(
    subscriber=SUBSCRIBER_IDS,
    key=KEYS,
    position=st.integers(min_value=0),
    char=st.characters(min_codepoint=128, codec="utf-8"),
)
def test_a_token_changed_in_one_unicode_character_is_refused(
    subscriber: int, key: SigningKey, position: int, char: str
) -> None:
    """URL paths are percent-decoded before the web app sees them: any character arrives."""
    changed = _changed(unsubscribe_token(subscriber, key), position, char)
    assert verify_unsubscribe_token(changed, [key]) is None


@PROPERTY
@given(subscriber=SUBSCRIBER_IDS, old=KEYS, new=KEYS)
def test_tokens_of_the_old_key_verify_after_rotation(
    subscriber: int, old: SigningKey, new: SigningKey
) -> None:
    if old.id == new.id:
        new = SigningKey(new.id + "n" if len(new.id) < 16 else "n", new.secret)
    rotated = [new, old]  # a new first line in the keys file
    assert verify_unsubscribe_token(unsubscribe_token(subscriber, old), rotated) == subscriber
    assert verify_unsubscribe_token(unsubscribe_token(subscriber, new), rotated) == subscriber
    assert verify_unsubscribe_token(unsubscribe_token(subscriber, old), [new]) is None


@PROPERTY
@given(
    slot=st.text(max_size=40),
    subscriber=SUBSCRIBER_IDS,
    other=SUBSCRIBER_IDS,
    key=KEYS,
    host=HOSTS,
)
def test_message_id_is_stable_and_differs_across_subscribers(
    slot: str, subscriber: int, other: int, key: SigningKey, host: str
) -> None:
    first = message_id(slot, subscriber, key, host)
    assert re.fullmatch(rf"<[0-9a-f]{{32}}@{re.escape(host)}>", first)
    assert message_id(slot, subscriber, key, host) == first
    assert (message_id(slot, other, key, host) == first) == (other == subscriber)
    assert message_id(slot + "x", subscriber, key, host) != first

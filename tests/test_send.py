"""The SMTP transport's own mail transaction: the bytes a server receives and the
replies it classifies.

The transport does what ``smtplib.sendmail`` does for one recipient, except that it
dot-stuffs with ``bytes.replace``; the property below holds it to smtplib's bytes.
"""

from __future__ import annotations

import smtplib

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from newsdesk.send import DeliveryError, SmtpSettings, SmtpTransport, path, stuffed
from smtpserver import Reply, SMTPServer

SENDER = "briefing@example.org"

# Lines that start with dots, bare CR and LF, and a missing final line break.
pieces = st.sampled_from([b".", b"..", b"\r\n", b"\n", b"\r", b"a", b" ", b"=", b"\xc3\xa4"])
messages = st.lists(pieces, max_size=40).map(b"".join) | st.binary(max_size=200)


@settings(max_examples=500, deadline=None)
@given(messages)
@example(b".")
@example(b".\r\n")
@example(b"a\r\n.\r\n..\r\n.b")
@example(b"")
def test_stuffing_gives_the_bytes_smtplib_sends(message: bytes) -> None:
    expected = smtplib._quote_periods(message)  # what smtplib's data() sends
    if not expected.endswith(b"\r\n"):
        expected += b"\r\n"
    assert stuffed(message) == expected


ATOM = "abcxyzABCXYZ0189!#$%&'*+/=?^_`{|}~-"
LABEL = "abcxyzABCXYZ0189-"


def dotted(alphabet: str) -> st.SearchStrategy[str]:
    return st.lists(st.text(alphabet, min_size=1, max_size=6), min_size=1, max_size=3).map(".".join)


PLAIN = st.tuples(dotted(ATOM), dotted(LABEL)).map("@".join)
ADDRESSES = PLAIN | st.text(max_size=40) | st.sampled_from(['"a b"@x.org', "A <a@x.org>"])


@settings(max_examples=200, deadline=None)
@given(ADDRESSES)
@example("reader00001@example.org")
@example("a..b@example.org")
def test_an_address_is_written_as_smtplib_writes_it(address: str) -> None:
    assert path(address) == smtplib.quoteaddr(address)


def message(message_id: str, body: str) -> bytes:
    head = f"From: {SENDER}\r\nSubject: dots\r\nMessage-ID: {message_id}\r\n\r\n"
    return (head + body).encode()


def test_lines_starting_with_a_dot_arrive_as_they_were_written() -> None:
    # A lone "." would end the message early; ".." would lose a dot without stuffing.
    body = ".\r\n..\r\n.hidden line\r\nplain\r\n...\r\n"
    with SMTPServer() as server:
        transport = SmtpTransport(SmtpSettings(host=server.host, port=server.port, security="none"))
        for n in range(3):
            transport.send(SENDER, f"r{n}@example.net", message(f"<{n}@x>", body), f"<{n}@x>")
        transport.close()
        assert [m.raw for m in server.messages] == [message(f"<{n}@x>", body) for n in range(3)]
        assert server.connections == 1


@pytest.mark.parametrize(
    ("reply", "temporary", "bounced", "connections"),
    [
        (Reply(550, "5.1.1 No such user"), False, True, 1),
        (Reply(451, "4.3.0 Try later"), True, False, 1),
        (Reply(554, "5.7.1 Rejected", at="data"), False, False, 1),
        (Reply(452, "4.3.1 Out of storage", at="data"), True, False, 1),
        # 421: the server closes the connection; the next message opens a new one.
        (Reply(421, "4.7.0 Closing"), True, False, 2),
    ],
)
def test_a_refusal_keeps_its_code_and_the_next_message_goes_out(
    reply: Reply, temporary: bool, bounced: bool, connections: int
) -> None:
    with SMTPServer(script={"r@example.net": [reply]}) as server:
        transport = SmtpTransport(SmtpSettings(host=server.host, port=server.port, security="none"))
        with pytest.raises(DeliveryError) as refused:
            transport.send(SENDER, "r@example.net", message("<1@x>", "a\r\n"), "<1@x>")
        assert refused.value.reason == f"{reply.code} {reply.text}"
        assert (refused.value.temporary, refused.value.bounced) == (temporary, bounced)
        transport.send(SENDER, "ok@example.net", message("<2@x>", "b\r\n"), "<2@x>")
        transport.close()
        assert server.message_ids() == {"<2@x>": 1}
        assert server.connections == connections

"""The scriptable SMTP server of the delivery tests, driven by the stdlib ``smtplib``: each
behaviour shows the client what a real server would, and the records are right."""

from __future__ import annotations

import smtplib
import ssl
import subprocess
import sys
import time
from pathlib import Path

import pytest

from smtpserver import Accept, Behaviour, Command, Drop, Reply, SMTPServer, Stall

SENDER = "newsdesk@example.org"


def message(message_id: str = "<1@example.org>", to: str = "reader@example.net") -> bytes:
    head = f"From: {SENDER}\r\nTo: {to}\r\nSubject: Issue 1\r\nMessage-ID: {message_id}\r\n"
    return (head + "\r\n" + "A line of the digest.\r\n" * 40).encode()


def test_accepts_and_records_each_message() -> None:
    with SMTPServer(server_hostname="mail.test") as server:
        with smtplib.SMTP(server.host, server.port, timeout=5) as client:
            code, greeting = client.ehlo()
            assert (code, greeting.split(b"\n")[0]) == (250, b"mail.test")
            assert not client.has_extn("auth")
            assert client.sendmail(SENDER, ["a@example.net"], message("<1@x>")) == {}
            assert client.sendmail(SENDER, ["b@example.net"], message("<2@x>")) == {}
            assert client.sendmail(SENDER, ["a@example.net"], message("<1@x>")) == {}
        first = server.messages[0]
        assert (first.connection, first.mail_from, first.rcpt_tos) == (
            1,
            SENDER,
            ("a@example.net",),
        )
        assert first.raw == message("<1@x>")
        assert server.message_ids() == {"<1@x>": 2, "<2@x>": 1}


@pytest.mark.parametrize(
    ("code", "text"),
    [(450, "4.2.1 Mailbox busy"), (451, "4.3.0 Try later"), (550, "5.1.1 No such user")],
)
def test_reply_at_rcpt_refuses_the_recipient_and_keeps_the_connection(code: int, text: str) -> None:
    with SMTPServer(script={"gone@example.net": [Reply(code, text)]}) as server:
        with smtplib.SMTP(server.host, server.port, timeout=5) as client:
            with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
                client.sendmail(SENDER, ["gone@example.net"], message())
            assert refused.value.recipients == {"gone@example.net": (code, text.encode())}
            assert client.noop()[0] == 250
        assert server.messages == []


def test_421_at_rcpt_closes_the_connection_after_replying() -> None:
    script = {"a@example.net": [Reply(421, "4.7.0 Try again later")]}
    with (
        SMTPServer(script=script) as server,
        smtplib.SMTP(server.host, server.port, timeout=5) as client,
    ):
        client.ehlo()
        client.mail(SENDER)
        assert client.rcpt("a@example.net") == (421, b"4.7.0 Try again later")
        with pytest.raises(smtplib.SMTPServerDisconnected):
            client.noop()


@pytest.mark.parametrize(
    ("code", "text"),
    [(552, "5.2.2 Mailbox full"), (554, "5.7.1 Rejected"), (421, "4.7.0 Shutting down")],
)
def test_reply_at_data_fails_the_message(code: int, text: str) -> None:
    script = {"a@example.net": [Reply(code, text, at="data")]}
    with SMTPServer(script=script) as server:
        with smtplib.SMTP(server.host, server.port, timeout=5) as client:
            with pytest.raises(smtplib.SMTPDataError) as failed:
                client.sendmail(SENDER, ["a@example.net"], message())
            assert (failed.value.smtp_code, failed.value.smtp_error) == (code, text.encode())
            if code == 421:
                with pytest.raises(smtplib.SMTPServerDisconnected):
                    client.noop()
            else:
                assert client.noop()[0] == 250
        assert server.messages == []


def test_script_is_consumed_per_rcpt_and_its_last_behaviour_repeats() -> None:
    script: dict[str, list[Behaviour]] = {
        "A@example.net": [Reply(451, "4.3.0 Try later"), Accept()]
    }
    with SMTPServer(script=script) as server:
        with smtplib.SMTP(server.host, server.port, timeout=5) as client:
            with pytest.raises(smtplib.SMTPRecipientsRefused):
                client.sendmail(SENDER, ["a@example.net"], message("<1@x>"))
            client.sendmail(SENDER, ["a@example.net"], message("<2@x>"))
            client.sendmail(SENDER, ["a@example.net"], message("<3@x>"))
        assert server.message_ids() == {"<2@x>": 1, "<3@x>": 1}


def test_one_transaction_with_a_refused_recipient_delivers_to_the_others() -> None:
    script = {"gone@example.net": [Reply(550, "5.1.1 No such user")]}
    with SMTPServer(script=script) as server:
        with smtplib.SMTP(server.host, server.port, timeout=5) as client:
            refused = client.sendmail(SENDER, ["a@example.net", "gone@example.net"], message())
        assert refused == {"gone@example.net": (550, b"5.1.1 No such user")}
        assert [m.rcpt_tos for m in server.messages] == [("a@example.net",)]


def test_drop_aborts_the_connection_in_the_middle_of_data() -> None:
    with SMTPServer(script={"a@example.net": [Drop(after=100), Accept()]}) as server:
        with (
            smtplib.SMTP(server.host, server.port, timeout=5) as client,
            pytest.raises(smtplib.SMTPServerDisconnected),
        ):
            client.sendmail(SENDER, ["a@example.net"], message())
        assert server.dropped == [message()[:100]]
        assert server.messages == []
        with smtplib.SMTP(server.host, server.port, timeout=5) as client:
            client.sendmail(SENDER, ["a@example.net"], message())  # the script moved on
        assert len(server.messages) == 1


def test_drop_at_rcpt_aborts_instead_of_replying() -> None:
    with SMTPServer(script={"a@example.net": [Drop(at="rcpt")]}) as server:
        with smtplib.SMTP(server.host, server.port, timeout=5) as client:
            client.ehlo()
            client.mail(SENDER)
            with pytest.raises(smtplib.SMTPServerDisconnected):
                client.rcpt("a@example.net")
        assert server.dropped == []


def test_stall_longer_than_the_client_timeout_times_out_and_delivers_nothing() -> None:
    script = {"a@example.net": [Stall(0.6), Stall(0.05)]}
    with SMTPServer(script=script) as server:
        started = time.monotonic()
        with (
            smtplib.SMTP(server.host, server.port, timeout=0.2) as client,
            pytest.raises(smtplib.SMTPServerDisconnected, match="timed out"),
        ):
            client.sendmail(SENDER, ["a@example.net"], message("<late@x>"))
        assert time.monotonic() - started < 0.5
        time.sleep(0.6)  # past the stall: the hung-up client's message was not kept
        assert server.messages == []
        with smtplib.SMTP(server.host, server.port, timeout=0.2) as client:
            client.sendmail(SENDER, ["a@example.net"], message("<soon@x>"))
        assert server.message_ids() == {"<soon@x>": 1}


def test_stall_at_rcpt_holds_the_rcpt_reply() -> None:
    script = {"a@example.net": [Stall(0.6, at="rcpt")]}
    with SMTPServer(script=script) as server:
        client = smtplib.SMTP(server.host, server.port, timeout=0.2)
        client.ehlo()
        client.mail(SENDER)
        with pytest.raises(smtplib.SMTPServerDisconnected, match="timed out"):
            client.rcpt("a@example.net")


def test_connections_counts_tcp_connections_not_messages() -> None:
    with SMTPServer() as server:
        assert server.connections == 0  # start()'s own probe is not counted
        with smtplib.SMTP(server.host, server.port, timeout=5) as client:
            for n in range(3):
                client.sendmail(SENDER, ["a@example.net"], message(f"<{n}@x>"))
        assert server.connections == 1
        with smtplib.SMTP(server.host, server.port, timeout=5) as client:
            client.sendmail(SENDER, ["a@example.net"], message("<3@x>"))
        assert server.connections == 2
        assert [m.connection for m in server.messages] == [1, 1, 1, 2]


def test_commands_are_logged_without_credentials() -> None:
    with SMTPServer(auth=("newsdesk", "s3cret")) as server:
        with smtplib.SMTP(server.host, server.port, timeout=5) as client:
            client.login("newsdesk", "s3cret")
            client.sendmail(SENDER, ["a@example.net"], message())
        verbs = [c.verb for c in server.commands]
        assert verbs == ["EHLO", "AUTH", "MAIL", "RCPT", "DATA", "QUIT"]
        assert Command(1, "AUTH", "PLAIN") in server.commands
        assert "s3cret" not in repr(server.commands)


def test_auth_is_required_before_mail() -> None:
    with SMTPServer(auth=("newsdesk", "s3cret")) as server:
        with smtplib.SMTP(server.host, server.port, timeout=5) as client:
            with pytest.raises(smtplib.SMTPSenderRefused) as refused:
                client.sendmail(SENDER, ["a@example.net"], message())
            assert refused.value.smtp_code == 530
            with pytest.raises(smtplib.SMTPAuthenticationError):
                client.login("newsdesk", "wrong")
        for mechanism in ("PLAIN", "LOGIN"):
            with smtplib.SMTP(server.host, server.port, timeout=5) as client:
                client.ehlo()
                client.user, client.password = "newsdesk", "s3cret"
                auth = getattr(client, f"auth_{mechanism.lower()}")
                assert client.auth(mechanism, auth)[0] == 235
                client.sendmail(SENDER, ["a@example.net"], message(f"<{mechanism}@x>"))
        assert server.message_ids() == {"<PLAIN@x>": 1, "<LOGIN@x>": 1}


def test_starttls_verifies_against_ca_file_and_is_required() -> None:
    with SMTPServer(tls="starttls", auth=("newsdesk", "s3cret")) as server:
        trusted = ssl.create_default_context(cafile=server.ca_file)
        with smtplib.SMTP(server.host, server.port, timeout=5) as client:
            client.ehlo()
            assert client.has_extn("starttls")
            assert not client.has_extn("auth")  # no credentials in clear text
            client.starttls(context=trusted)
            client.login("newsdesk", "s3cret")
            client.sendmail(SENDER, ["a@example.net"], message())
        assert len(server.messages) == 1
        with smtplib.SMTP("localhost", server.port, timeout=5) as client:
            client.starttls(context=trusted)  # the name is in the certificate too
        with (
            smtplib.SMTP(server.host, server.port, timeout=5) as client,
            pytest.raises(ssl.SSLCertVerificationError),
        ):
            client.starttls(context=ssl.create_default_context())
        with smtplib.SMTP(server.host, server.port, timeout=5) as client:
            with pytest.raises(smtplib.SMTPSenderRefused) as refused:
                client.sendmail(SENDER, ["a@example.net"], message())
            assert refused.value.smtp_code == 530


def test_ssl_verifies_against_ca_file() -> None:
    with SMTPServer(tls="ssl", auth=("newsdesk", "s3cret")) as server:
        trusted = ssl.create_default_context(cafile=server.ca_file)
        with smtplib.SMTP_SSL(server.host, server.port, timeout=5, context=trusted) as client:
            client.login("newsdesk", "s3cret")
            client.sendmail(SENDER, ["a@example.net"], message())
        assert len(server.messages) == 1
        with pytest.raises(ssl.SSLCertVerificationError):
            smtplib.SMTP_SSL(
                server.host, server.port, timeout=5, context=ssl.create_default_context()
            )


def test_stop_ends_open_connections() -> None:
    server = SMTPServer().start()
    client = smtplib.SMTP(server.host, server.port, timeout=5)
    try:
        client.ehlo()
        server.stop()
        with pytest.raises(smtplib.SMTPServerDisconnected):
            client.noop()
    finally:
        client.close()


def test_main_serves_another_process_and_appends_message_ids(tmp_path: Path) -> None:
    ids = tmp_path / "ids.txt"
    script = Path(__file__).with_name("smtpserver.py")
    command = [sys.executable, str(script), "--port", "0", "--count-file", str(ids)]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as process:
        try:
            assert process.stdout is not None
            _, host, port = process.stdout.readline().split()
            with smtplib.SMTP(host, int(port), timeout=5) as client:
                client.sendmail(SENDER, ["a@example.net"], message("<1@x>"))
                assert ids.read_text() == "<1@x>\n"  # written before the 250
                client.sendmail(SENDER, ["b@example.net"], message("<2@x>"))
            assert ids.read_text().splitlines() == ["<1@x>", "<2@x>"]
        finally:
            process.terminate()
            assert process.wait(timeout=10) == 0

"""A real SMTP server on 127.0.0.1 (aiosmtpd in a thread), scriptable per recipient.

Used by the delivery tests: one server can refuse one recipient, hang up on the next and
accept the rest, all in one send run, and it records what it accepted.

    script = {"gone@example.org": [Reply(550, "5.1.1 No such user")],
              "busy@example.org": [Reply(451, "4.3.0 Try later"), Accept()]}
    with SMTPServer(script=script, auth=("newsdesk", "secret"), tls="starttls") as server:
        context = ssl.create_default_context(cafile=server.ca_file)
        with smtplib.SMTP(server.host, server.port) as client:
            client.starttls(context=context)
            client.login("newsdesk", "secret")
            client.sendmail(...)
        assert server.message_ids()["<id@example.org>"] == 1
        assert server.connections == 1

Each RCPT of a scripted address consumes its next behaviour; the last one repeats, and an
address that is not scripted is accepted. What a client (``smtplib``) sees:

=====================================  ==================================================
``Accept()``                           250 to RCPT and to the end of DATA; recorded.
``Reply(code, text)``                  that reply to RCPT; the recipient is not added
                                       (``SMTPRecipientsRefused`` when it was the only one).
``Reply(code, text, at="data")``       250 to RCPT, that reply to the end of DATA; not
                                       recorded (``SMTPDataError``).
``Drop()`` (``at="data"``)             354, then the server reads ``after`` bytes of the
                                       message and aborts the connection
                                       (``SMTPServerDisconnected``); kept in ``dropped``.
``Drop(at="rcpt")``                    the connection is aborted instead of answering RCPT.
``Stall(seconds)`` (``at="data"``)     the reply to the end of DATA comes ``seconds`` late,
                                       then 250; a client that hangs up first (its timeout:
                                       ``SMTPServerDisconnected``) leaves nothing recorded.
``Stall(seconds, at="rcpt")``          the reply to RCPT comes late, then 250.
=====================================  ==================================================

A reply with code 421 closes the connection once it is sent, as RFC 5321 (3.8) says. When
several recipients of one transaction have a DATA behaviour, the first one in RCPT order
decides the reply to DATA (a transaction has one reply).

From another process (the fault-injection test kills ``newsdesk send`` mid-run)::

    python tests/smtpserver.py --port 0 --count-file ids.txt

prints ``listening 127.0.0.1 <port>`` once it serves, accepts everything, and appends the
Message-ID of each accepted message as a line of ``ids.txt``, flushed before the 250.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import email.parser
import ipaddress
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any, Literal, NoReturn

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

__all__ = [
    "Accept",
    "Behaviour",
    "Command",
    "Drop",
    "Received",
    "Reply",
    "SMTPServer",
    "Stall",
]

Stage = Literal["rcpt", "data"]


@dataclass(frozen=True)
class Accept:
    """250 to RCPT and to the end of DATA."""

    at: Stage = "data"


@dataclass(frozen=True)
class Reply:
    """Answer ``code text`` at RCPT (the default) or at the end of DATA."""

    code: int
    text: str
    at: Stage = "rcpt"


@dataclass(frozen=True)
class Drop:
    """Abort the TCP connection: mid-DATA after ``after`` bytes, or instead of the RCPT reply."""

    at: Stage = "data"
    after: int = 256
    """Bytes of the message to read before hanging up (fewer if the message is shorter)."""


@dataclass(frozen=True)
class Stall:
    """Hold the reply (at the end of DATA by default) for ``seconds``, then accept."""

    seconds: float
    at: Stage = "data"


Behaviour = Accept | Reply | Drop | Stall


@dataclass(frozen=True)
class Received:
    """One accepted message."""

    connection: int
    """The number of the TCP connection it came on (1 for the first)."""
    mail_from: str
    rcpt_tos: tuple[str, ...]
    raw: bytes
    """The message as sent, CRLF line endings, dot-stuffing undone."""
    message_id: str | None


@dataclass(frozen=True)
class Command:
    """One command line a client sent (AUTH without its credentials)."""

    connection: int
    verb: str
    arg: str


class SMTPServer:
    """A scriptable SMTP server on a free port of 127.0.0.1; a context manager."""

    host = "127.0.0.1"

    def __init__(
        self,
        *,
        script: Mapping[str, Iterable[Behaviour]] | None = None,
        auth: tuple[str, str] | None = None,
        tls: Literal["starttls", "ssl"] | None = None,
        server_hostname: str = "localhost",
        port: int = 0,
        on_message: Callable[[Received], None] | None = None,
    ) -> None:
        """``auth``: (user, password) required before MAIL, by AUTH PLAIN or LOGIN (after
        STARTTLS when ``tls="starttls"``, which is then required too). ``on_message`` runs
        in the server thread for each accepted message, before the 250."""
        self.auth = auth
        self.tls = tls
        self.server_hostname = server_hostname
        self.on_message = on_message
        self._port = port
        self._lock = threading.Lock()
        self._script: dict[str, list[Behaviour]] = {}
        for address, behaviours in (script or {}).items():
            self.set_script(address, *behaviours)
        self._messages: list[Received] = []
        self._commands: list[Command] = []
        self._dropped: list[bytes] = []
        self._connections = 0
        self._live: set[_ScriptedSMTP] = set()
        self._controller: _Controller | None = None
        self._certs: Path | None = None

    # -- the test's side -----------------------------------------------------------------

    def set_script(self, address: str, *behaviours: Behaviour) -> None:
        """Replace the behaviours of one recipient address (matched case-insensitively)."""
        with self._lock:
            self._script[address.lower()] = list(behaviours) or [Accept()]

    @property
    def port(self) -> int:
        if self._controller is None:
            raise RuntimeError("the SMTP server is not running")
        return int(self._controller.port)

    @property
    def ca_file(self) -> str:
        """The PEM certificate of the CA that signed the server's certificate."""
        if self._certs is None:
            raise RuntimeError("the SMTP server runs without TLS (tls=None)")
        return str(self._certs / "ca.pem")

    @property
    def messages(self) -> list[Received]:
        """Accepted messages, oldest first."""
        with self._lock:
            return list(self._messages)

    def message_ids(self) -> collections.Counter[str | None]:
        """How many times each Message-ID was accepted (None: a message without one)."""
        with self._lock:
            return collections.Counter(m.message_id for m in self._messages)

    @property
    def connections(self) -> int:
        """TCP connections accepted so far."""
        with self._lock:
            return self._connections

    @property
    def commands(self) -> list[Command]:
        with self._lock:
            return list(self._commands)

    @property
    def dropped(self) -> list[bytes]:
        """What the server had read of each message when a ``Drop`` hung up."""
        with self._lock:
            return list(self._dropped)

    def start(self) -> SMTPServer:
        """Bind, serve in a daemon thread, and return once the server answers."""
        tls_context = None
        if self.tls is not None:
            self._certs = Path(tempfile.mkdtemp(prefix="smtpserver-"))
            _write_certificates(self._certs, self.server_hostname)
            tls_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            tls_context.load_cert_chain(self._certs / "cert.pem", self._certs / "key.pem")
        smtp_kwargs: dict[str, Any] = {
            # Implicit TLS is invisible to aiosmtpd's AUTH check, so it only applies there
            # to STARTTLS; AUTH is required by the MAIL hook instead (auth_required=True
            # without TLS would warn, and warnings are errors in the tests).
            "auth_require_tls": self.tls == "starttls",
            "authenticator": self._authenticate,
        }
        if self.tls == "starttls":
            smtp_kwargs.update(tls_context=tls_context, require_starttls=True)
        self._controller = _Controller(
            self,
            _Handler(self),
            hostname=self.host,
            port=self._port,
            ssl_context=tls_context if self.tls == "ssl" else None,
            server_hostname=self.server_hostname,
            **smtp_kwargs,
        )
        self._controller.start()
        self._controller.serving = True
        return self

    def stop(self) -> None:
        """Abort open connections, stop the thread and delete the certificates."""
        controller = self._controller
        if controller is not None:
            # Connections left open would be garbage-collected later as unclosed
            # transports (a ResourceWarning, which is an error in the tests).
            asyncio.run_coroutine_threadsafe(self._abort_all(), controller.loop).result(5)
            controller.stop()
            self._controller = None
        if self._certs is not None:
            shutil.rmtree(self._certs, ignore_errors=True)
            self._certs = None

    def __enter__(self) -> SMTPServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- the server's side (the event loop thread) -----------------------------------------

    async def _abort_all(self) -> None:
        for smtp in list(self._live):
            smtp.abort()
        for _ in range(3):  # let connection_lost() run
            await asyncio.sleep(0)

    def _next_behaviour(self, address: str) -> Behaviour:
        with self._lock:
            behaviours = self._script.get(address.lower())
            if not behaviours:
                return Accept()
            return behaviours.pop(0) if len(behaviours) > 1 else behaviours[0]

    def _connected(self, smtp: _ScriptedSMTP) -> int:
        with self._lock:
            self._live.add(smtp)
            self._connections += 1
            return self._connections

    def _log(self, command: Command) -> None:
        with self._lock:
            self._commands.append(command)

    def _record(self, smtp: _ScriptedSMTP, envelope: Envelope) -> None:
        raw = bytes(envelope.original_content or b"")
        headers = email.parser.BytesHeaderParser().parsebytes(raw)
        message_id = headers["Message-ID"]
        received = Received(
            connection=smtp.number,
            mail_from=envelope.mail_from or "",
            rcpt_tos=tuple(envelope.rcpt_tos),
            raw=raw,
            message_id=" ".join(str(message_id).split()) if message_id is not None else None,
        )
        if self.on_message is not None:
            self.on_message(received)
        with self._lock:
            self._messages.append(received)

    def _record_drop(self, partial: bytes) -> None:
        with self._lock:
            self._dropped.append(partial)

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        if (
            self.auth is not None
            and mechanism in {"PLAIN", "LOGIN"}
            and isinstance(data, LoginPassword)
            and (data.login, data.password) == tuple(s.encode() for s in self.auth)
        ):
            return AuthResult(success=True, auth_data=data.login.decode())
        return AuthResult(success=False, handled=False)


class _Handler:
    """aiosmtpd hooks: the script, AUTH-before-MAIL, and recording."""

    def __init__(self, owner: SMTPServer) -> None:
        self.owner = owner

    async def handle_EHLO(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        session.host_name = hostname  # this form of the hook has to set it itself
        if self.owner.auth is None:
            return [line for line in responses if not line[4:].startswith("AUTH")]
        return responses

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if self.owner.auth is not None and not session.authenticated:
            return "530 5.7.0 Authentication required"
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(
        self,
        server: _ScriptedSMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        options: list[str],
    ) -> str:
        behaviour = self.owner._next_behaviour(address)
        if behaviour.at == "rcpt":
            if isinstance(behaviour, Reply):
                return f"{behaviour.code} {behaviour.text}"
            if isinstance(behaviour, Drop):
                await server.hang_up(abort=True)
            if isinstance(behaviour, Stall):
                await asyncio.sleep(behaviour.seconds)
        else:
            server.data_behaviours.append(behaviour)
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        return "250 OK"

    async def handle_DATA(self, server: _ScriptedSMTP, session: Session, envelope: Envelope) -> str:
        behaviour = server.data_behaviour()
        if isinstance(behaviour, Reply):
            return f"{behaviour.code} {behaviour.text}"
        if isinstance(behaviour, Stall):
            # A client that hangs up meanwhile cancels this task: nothing is recorded.
            await asyncio.sleep(behaviour.seconds)
        self.owner._record(server, envelope)
        return f"250 2.0.0 Ok: queued as {len(self.owner.messages)}"


class _ScriptedSMTP(SMTP):
    """One connection: numbered, logged, able to hang up mid-DATA, closing after a 421."""

    def __init__(self, owner: SMTPServer, number: int, *args: Any, **kwargs: Any) -> None:
        self.owner = owner
        self.number = number
        self.data_behaviours: list[Behaviour] = []
        super().__init__(*args, **kwargs)
        self._smtp_methods = {
            verb: self._logged(verb, method) for verb, method in self._smtp_methods.items()
        }

    def _logged(self, verb: str, method: Callable[[str | None], Any]) -> Callable[..., Any]:
        async def logged(arg: str | None) -> None:
            shown = (arg or "").split()[0] if verb == "AUTH" and arg else (arg or "")
            self.owner._log(Command(self.number, verb, shown))
            await method(arg)

        return logged

    def _create_envelope(self) -> Envelope:
        self.data_behaviours = []
        return super()._create_envelope()

    def data_behaviour(self) -> Behaviour:
        """What the end of DATA does for this transaction: the first non-Accept wins."""
        return next((b for b in self.data_behaviours if not isinstance(b, Accept)), Accept())

    def connection_lost(self, error: Exception | None) -> None:
        self.owner._live.discard(self)
        super().connection_lost(error)

    def abort(self) -> None:
        for transport in (self.transport, self._original_transport):
            if transport is not None:
                transport.abort()  # type: ignore[attr-defined]

    async def hang_up(self, *, abort: bool) -> NoReturn:
        """Close (after a 421) or abort (a crash) the connection, and read no more."""
        if abort:
            self.abort()
        elif self.transport is not None:
            self.transport.close()
        # connection_lost() cancels this task; until then, pipelined lines stay unread.
        await asyncio.get_running_loop().create_future()
        raise AssertionError("unreachable")

    async def push(self, status: str | bytes) -> None:
        await super().push(status)  # type: ignore[type-var]
        if status[:3] in ("421", b"421"):  # str, or bytes from the AUTH challenges
            await self.hang_up(abort=False)

    async def smtp_DATA(self, arg: str) -> None:
        behaviour = self.data_behaviour()
        if not isinstance(behaviour, Drop) or arg or self.envelope is None:
            await super().smtp_DATA(arg)
            return
        if not self.envelope.rcpt_tos:  # the usual 503, from aiosmtpd
            await super().smtp_DATA(arg)
            return
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        partial = b""
        while len(partial) < behaviour.after and not partial.endswith(b"\r\n.\r\n"):
            chunk = await self._reader.read(behaviour.after - len(partial))
            if not chunk:
                break
            partial += chunk
        self.owner._record_drop(partial)
        await self.hang_up(abort=True)


class _Controller(Controller):
    """aiosmtpd's threaded controller on port 0, making numbered ``_ScriptedSMTP``s."""

    def __init__(self, owner: SMTPServer, handler: _Handler, **kwargs: Any) -> None:
        self.owner = owner
        self.serving = False
        """False while start() makes its own probe connection, which is not counted."""
        super().__init__(handler, **kwargs)

    def factory(self) -> SMTP:
        smtp = _ScriptedSMTP(self.owner, 0, self.handler, **self.SMTP_kwargs)
        if self.serving:
            smtp.number = self.owner._connected(smtp)
        return smtp

    def _trigger_server(self) -> None:
        # Bound to port 0: the probe connection needs the port the system chose.
        assert isinstance(self.server, asyncio.Server)
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()  # type: ignore[no-untyped-call]


def _write_certificates(directory: Path, hostname: str) -> None:
    """A throwaway CA (``ca.pem``) and a server certificate it signed (``cert.pem``,
    ``key.pem``) for 127.0.0.1, localhost and ``hostname``."""
    names = sorted({"localhost", hostname} - {"127.0.0.1"})
    try:
        import cryptography  # noqa: F401
    except ImportError:
        _write_certificates_openssl(directory, names)
    else:
        _write_certificates_cryptography(directory, names)


def _write_certificates_cryptography(directory: Path, names: list[str]) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.now(UTC)

    def usage(*, sign_certs: bool) -> x509.KeyUsage:
        return x509.KeyUsage(
            digital_signature=not sign_certs,
            content_commitment=False,
            key_encipherment=False,
            data_encipherment=False,
            key_agreement=False,
            key_cert_sign=sign_certs,
            crl_sign=sign_certs,
            encipher_only=False,
            decipher_only=False,
        )

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "smtpserver test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(usage(sign_certs=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    alt_names: list[x509.GeneralName] = [x509.DNSName(n) for n in names]
    alt_names.append(x509.IPAddress(ipaddress.ip_address("127.0.0.1")))
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(usage(sign_certs=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    (directory / "ca.pem").write_bytes(ca.public_bytes(pem))
    (directory / "cert.pem").write_bytes(cert.public_bytes(pem))
    (directory / "key.pem").write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )


def _write_certificates_openssl(directory: Path, names: list[str]) -> None:
    """The same with the ``openssl`` command, where ``cryptography`` is not installed."""
    alt = ",".join([f"DNS:{n}" for n in names] + ["IP:127.0.0.1"])
    (directory / "leaf.ext").write_text(
        f"subjectAltName={alt}\nbasicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n"
        "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n"
    )
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    commands = [
        ["req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
         "-subj", "/CN=smtpserver test CA",
         "-addext", "basicConstraints=critical,CA:TRUE,pathlen:0",
         "-addext", "keyUsage=critical,keyCertSign,cRLSign"],
        ["req", "-new", *ec, "-keyout", "key.pem", "-out", "cert.csr", "-subj", f"/CN={names[0]}"],
        ["x509", "-req", "-in", "cert.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
         "-CAcreateserial", "-days", "2", "-extfile", "leaf.ext", "-out", "cert.pem"],
    ]  # fmt: skip
    for command in commands:
        subprocess.run(["openssl", *command], cwd=directory, check=True, capture_output=True)


def main(argv: list[str] | None = None) -> int:
    """Serve until SIGTERM or Ctrl-C, appending each accepted Message-ID to a file."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="0: a free port (printed)")
    parser.add_argument("--count-file", type=Path, required=True)
    args = parser.parse_args(argv)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    with args.count_file.open("a", encoding="utf-8") as out:

        def write(received: Received) -> None:
            out.write(f"{received.message_id or ''}\n")
            out.flush()

        with SMTPServer(port=args.port, on_message=write) as server:
            print(f"listening {server.host} {server.port}", flush=True)
            while not stop.wait(0.2):
                pass
    return 0


if __name__ == "__main__":
    sys.exit(main())

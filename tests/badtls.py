"""Hostile TLS for tests: bad certificates made with openssl, and fake IMAP/SMTP servers that record what arrives."""

from __future__ import annotations

import base64
import contextlib
import datetime
import re
import socket
import ssl
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, NamedTuple

from tests.servers import _EC_KEY, HOST, TlsMaterial, _openssl

CONNECTION_TIMEOUT = 5.0
# How the fake server treats TLS: implicit TLS, STARTTLS that works, STARTTLS not offered
# (a stripped capability list), or STARTTLS offered but answered with an error (a stripped command).
MODES = ("tls", "starttls", "not-offered", "refused")


class Certificate(NamedTuple):
    """A server certificate and its key."""

    cert_file: Path
    key_file: Path


# --------------------------------------------------------------------------- certificates

_GOOD_NAMES = "DNS:localhost, IP:127.0.0.1"

# A minimal `openssl ca` set-up: the only openssl 3.0 command that takes explicit start and end dates.
_CA_CONFIG = """\
[ca]
default_ca = test_ca
[test_ca]
database = index.txt
new_certs_dir = .
serial = serial
default_md = sha256
policy = any_name
unique_subject = no
[any_name]
commonName = supplied
[server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = {names}
"""


def _stamp(moment: datetime.datetime) -> str:
    """`moment` as openssl ca's -startdate/-enddate want it."""
    return moment.strftime("%Y%m%d%H%M%SZ")


def signed_by(ca: TlsMaterial, directory: Path, common_name: str, names: str, not_before: datetime.datetime,
              not_after: datetime.datetime) -> Certificate:
    """A server certificate for the subjectAltName `names`, valid between the two moments, signed by `ca`."""
    directory.mkdir(parents=True)
    (directory / "ca.cnf").write_text(_CA_CONFIG.format(names=names))
    (directory / "index.txt").write_text("")
    (directory / "serial").write_text("01\n")
    _openssl("req", "-new", *_EC_KEY, "-keyout", "server.key", "-out", "server.csr",
             "-subj", f"/CN={common_name}", cwd=directory)
    # make_tls_material keeps the CA's key beside its certificate.
    _openssl("ca", "-batch", "-config", "ca.cnf", "-cert", str(ca.ca_file),
             "-keyfile", str(ca.ca_file.with_name("ca.key")), "-in", "server.csr", "-out", "server.pem",
             "-extensions", "server", "-notext",
             "-startdate", _stamp(not_before), "-enddate", _stamp(not_after), cwd=directory)
    return Certificate(directory / "server.pem", directory / "server.key")


def self_signed(directory: Path) -> Certificate:
    """A certificate for localhost/127.0.0.1, valid now, that signs itself (no CA the relay trusts)."""
    directory.mkdir(parents=True)
    _openssl("req", "-x509", *_EC_KEY, "-keyout", "server.key", "-out", "server.pem", "-days", "2",
             "-subj", "/CN=localhost", "-addext", f"subjectAltName={_GOOD_NAMES}",
             "-addext", "basicConstraints=critical,CA:FALSE", cwd=directory)
    return Certificate(directory / "server.pem", directory / "server.key")


def bad_certificates(ca: TlsMaterial, directory: Path) -> dict[str, Certificate]:
    """Each certificate has exactly one fault; "good" is the control, faultless and from `ca`."""
    now = datetime.datetime.now(datetime.timezone.utc)
    hour, day = datetime.timedelta(hours=1), datetime.timedelta(days=1)
    return {
        "good": Certificate(ca.cert_file, ca.key_file),
        "self-signed": self_signed(directory / "self-signed"),
        "wrong-host": signed_by(ca, directory / "wrong-host", "other.example", "DNS:other.example",
                                now - hour, now + 2 * day),
        "expired": signed_by(ca, directory / "expired", "localhost", _GOOD_NAMES, now - 30 * day, now - day),
    }


def server_context(certificate: Certificate) -> ssl.SSLContext:
    """A server context presenting `certificate`."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(certificate.cert_file), str(certificate.key_file))
    return context


# --------------------------------------------------------------------------- what a server saw


@dataclass
class Connection:
    """Everything one client connection sent: the bytes (decrypted once TLS is up) and the command verbs."""

    received: bytearray = field(default_factory=bytearray)
    commands: list[str] = field(default_factory=list)
    tls: bool = False  # a TLS handshake completed
    handshake_error: str | None = None


def carries_secret(data: bytes, secret: str) -> bool:
    """Whether `secret` is in `data` as is or inside a base64 word (SMTP AUTH sends it so)."""
    if secret.encode() in data:
        return True
    for word in re.findall(rb"[A-Za-z0-9+/=]{8,}", data):
        try:
            decoded = base64.b64decode(word + b"=" * (-len(word) % 4), validate=True)
        except ValueError:
            continue
        if secret.encode() in decoded:
            return True
    return False


# --------------------------------------------------------------------------- the fake servers


class _Conversation:
    """One client connection: reads lines, records every byte, can switch to TLS."""

    def __init__(self, sock: socket.socket, record: Connection) -> None:
        self.sock = sock
        self.record = record
        self.buffer = b""

    def send(self, *lines: str) -> None:
        self.sock.sendall("".join(line + "\r\n" for line in lines).encode())

    def read_line(self) -> bytes | None:
        """The next line with its end, or None when the client has gone."""
        while b"\n" not in self.buffer:
            if not self._receive():
                return None
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line + b"\n"

    def read_exactly(self, count: int) -> bytes | None:
        while len(self.buffer) < count:
            if not self._receive():
                return None
        data, self.buffer = self.buffer[:count], self.buffer[count:]
        return data

    def _receive(self) -> bool:
        try:
            chunk = self.sock.recv(4096)
        except OSError:  # timeout, reset, or closed by stop()
            return False
        self.record.received += chunk
        self.buffer += chunk
        return bool(chunk)

    def start_tls(self, context: ssl.SSLContext) -> bool:
        """Handshake as the server; False (and the reason recorded) when the client breaks it off."""
        try:
            self.sock = context.wrap_socket(self.sock, server_side=True)
        except (ssl.SSLError, OSError) as error:
            self.record.handshake_error = f"{type(error).__name__}: {error}"
            return False
        self.record.tls = True
        return True


def _verb(words: list[bytes], index: int) -> str:
    return words[index].decode("ascii", "replace").upper() if len(words) > index else ""


def _imap(conversation: _Conversation, mode: str, context: ssl.SSLContext | None) -> None:
    """Enough of an IMAP server that a client which trusted it would go on to LOGIN."""
    conversation.send("* OK fake IMAP ready")
    while (line := conversation.read_line()) is not None:
        line = _with_literal(conversation, line)
        if line is None:
            return
        words = line.split()
        tag, verb = (words[0].decode("ascii", "replace") if words else "*"), _verb(words, 1)
        conversation.record.commands.append(verb)
        if verb == "CAPABILITY":
            offered = mode in ("starttls", "refused") and not conversation.record.tls
            conversation.send("* CAPABILITY IMAP4rev1 AUTH=PLAIN" + (" STARTTLS" if offered else ""),
                              f"{tag} OK CAPABILITY completed")
        elif verb == "STARTTLS" and mode == "starttls" and not conversation.record.tls:
            conversation.send(f"{tag} OK Begin TLS negotiation now")
            if not conversation.start_tls(context):
                return
        elif verb == "STARTTLS":
            conversation.send(f"{tag} BAD not now")  # says nothing of TLS, as an attacker would
        elif verb in ("LOGIN", "AUTHENTICATE"):
            conversation.send(f"{tag} NO [AUTHENTICATIONFAILED] fake server")
        elif verb == "LOGOUT":
            conversation.send("* BYE fake server", f"{tag} OK LOGOUT completed")
            return
        else:
            conversation.send(f"{tag} BAD not understood")


def _with_literal(conversation: _Conversation, line: bytes) -> bytes | None:
    """The whole command line when it ends in an IMAP literal {n} (a password can be sent as one)."""
    while (match := re.search(rb"\{(\d+)\+?\}\r?\n$", line)):
        if b"+}" not in match.group(0):  # a LITERAL+ literal follows without waiting
            conversation.send("+ go ahead")
        literal = conversation.read_exactly(int(match.group(1)))
        rest = conversation.read_line()
        if literal is None or rest is None:
            return None
        line = line + literal + rest
    return line


def _smtp(conversation: _Conversation, mode: str, context: ssl.SSLContext | None) -> None:
    """Enough of an SMTP server that a client which trusted it would go on to AUTH and send the mail."""
    conversation.send("220 fake.test ESMTP")
    while (line := conversation.read_line()) is not None:
        verb = _verb(line.split(), 0)
        conversation.record.commands.append(verb)
        if verb == "EHLO":
            offered = mode in ("starttls", "refused") and not conversation.record.tls
            conversation.send("250-fake.test", *(["250-STARTTLS"] if offered else []),
                              "250-AUTH PLAIN LOGIN", "250 8BITMIME")
        elif verb == "HELO":
            conversation.send("250 fake.test")
        elif verb == "STARTTLS" and mode == "starttls" and not conversation.record.tls:
            conversation.send("220 2.0.0 Ready to start TLS")
            if not conversation.start_tls(context):
                return
        elif verb == "STARTTLS":
            conversation.send("454 4.7.0 not now")  # says nothing of TLS, as an attacker would
        elif verb == "AUTH":
            conversation.send("535 5.7.8 Authentication credentials invalid")
        elif verb in ("MAIL", "RCPT", "RSET", "NOOP"):
            conversation.send("250 2.0.0 OK")
        elif verb == "DATA":
            conversation.send("354 go ahead")
            while (data := conversation.read_line()) not in (None, b".\r\n", b".\n"):
                pass
            conversation.send("250 2.0.0 queued")
        elif verb == "QUIT":
            conversation.send("221 2.0.0 bye")
            return
        else:
            conversation.send("502 5.5.2 not understood")


_PROTOCOLS: dict[str, Callable[[_Conversation, str, ssl.SSLContext | None], None]] = {"imap": _imap, "smtp": _smtp}


class FakeServer:
    """A fake IMAP or SMTP server on 127.0.0.1 in one thread, one connection at a time, recording each.

    `mode` is one of MODES; "tls" and "starttls" present `certificate`.
    """

    host = HOST

    def __init__(self, protocol: str, mode: str, certificate: Certificate | None = None) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}")
        if mode in ("tls", "starttls") and certificate is None:
            raise ValueError(f"mode {mode} needs a certificate")
        self.protocol, self.mode = _PROTOCOLS[protocol], mode
        self.context = server_context(certificate) if certificate else None
        self.connections: list[Connection] = []
        self._listener = socket.create_server((HOST, 0))
        self._listener.settimeout(0.05)
        self.port = self._listener.getsockname()[1]
        self._stopping = threading.Event()
        self._current: _Conversation | None = None
        self._thread = threading.Thread(target=self._serve, name=f"fake-{protocol}-{mode}", daemon=True)

    def __enter__(self) -> FakeServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def stop(self) -> None:
        """Let the connection in hand end (the client has usually gone), then cut it and wait for the thread."""
        self._stopping.set()
        with contextlib.suppress(OSError):  # wakes a waiting accept(); a connection in hand goes on
            self._listener.shutdown(socket.SHUT_RDWR)
        self._thread.join(0.2)
        current = self._current
        if self._thread.is_alive() and current is not None:
            with contextlib.suppress(OSError):  # wakes the thread's recv; close() alone would not
                current.sock.shutdown(socket.SHUT_RDWR)
        self._thread.join(CONNECTION_TIMEOUT)
        self._listener.close()
        if self._thread.is_alive():
            raise RuntimeError(f"{self._thread.name} did not stop")

    def _serve(self) -> None:
        while not self._stopping.is_set():
            try:
                sock, _address = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with sock:
                self._handle(sock)

    def _handle(self, sock: socket.socket) -> None:
        sock.settimeout(CONNECTION_TIMEOUT)
        record = Connection()
        self.connections.append(record)
        conversation = self._current = _Conversation(sock, record)
        try:
            if self.mode != "tls" or conversation.start_tls(self.context):
                self.protocol(conversation, self.mode, self.context)
        except OSError:  # the client went away mid-reply
            pass
        finally:
            if conversation.sock is not sock:
                conversation.sock.close()
            self._current = None

    @property
    def received(self) -> bytes:
        """Every byte all connections sent (decrypted where TLS was up)."""
        return b"".join(bytes(connection.received) for connection in self.connections)

    @property
    def commands(self) -> list[str]:
        """The command verbs all connections sent, in order."""
        return [verb for connection in self.connections for verb in connection.commands]

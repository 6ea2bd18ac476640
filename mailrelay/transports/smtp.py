"""Forwards over SMTP: the only module that imports smtplib."""
from __future__ import annotations

import contextlib
import re
import smtplib
import socket
import ssl
from typing import Iterator

from mailrelay.config import SmtpSettings
from mailrelay.model import Forward
from mailrelay.tls import tls_context
from mailrelay.transports.base import Delivery, Status

_CONNECTION_ERRORS = (smtplib.SMTPException, OSError, ssl.SSLError, socket.timeout)
_LEADING_DOT = re.compile(rb"(?m)^\.")
# RFC 5321 4.5.3.2.6: wait up to 10 minutes for the reply to the final dot.
_FINAL_REPLY_TIMEOUT = 600.0


class SmtpTransport:
    """One connection per poll, opened when the first forward needs it."""

    def __init__(self, settings: SmtpSettings):
        self.settings = settings

    @contextlib.contextmanager
    def open(self) -> Iterator["SmtpSession"]:
        session = SmtpSession(self.settings)
        try:
            yield session
        finally:
            session.close()


class SmtpSession:
    def __init__(self, settings: SmtpSettings):
        self.settings = settings
        self._client: smtplib.SMTP | None = None
        # Set when the server, the login or our sender address fails: the rest of this poll's
        # mails are deferred at once instead of each waiting for the same failure.
        self._unusable: str | None = None

    def send(self, forward: Forward) -> Delivery:
        if self._unusable:
            return Delivery(Status.TEMPORARY, f"not tried: {self._unusable}")
        try:
            client = self._client or self._connect()
            return _transaction(client, forward, max(self.settings.server.timeout, _FINAL_REPLY_TIMEOUT))
        except smtplib.SMTPSenderRefused as error:
            return self._give_up(f"sender {forward.sender} refused: {_reply_text(error.smtp_code, error.smtp_error)}")
        except smtplib.SMTPResponseException as error:
            if self._client is None:  # refused while connecting or logging in: about us, not this mail
                return self._give_up(f"session refused: {_reply_text(error.smtp_code, error.smtp_error)}")
            self._reset_if_broken(error.smtp_code)
            return _by_code(error.smtp_code, _reply_text(error.smtp_code, error.smtp_error))
        except _CONNECTION_ERRORS as error:
            # Includes a connection lost after the final dot: the outcome is unknown, so try
            # again later; the forward's Message-ID stays the same and tells the copies apart.
            if self._client is None:
                return self._give_up(f"connection: {type(error).__name__}: {error}")
            self.close()
            return Delivery(Status.TEMPORARY, f"connection: {type(error).__name__}: {error}")

    def _give_up(self, reason: str) -> Delivery:
        self.close()
        self._unusable = reason
        return Delivery(Status.TEMPORARY, reason)

    def _connect(self) -> smtplib.SMTP:
        server = self.settings.server
        context = tls_context(server.ca_file)
        if server.security == "tls":
            client = smtplib.SMTP_SSL(server.host, server.port, timeout=server.timeout, context=context)
        else:
            client = smtplib.SMTP(server.host, server.port, timeout=server.timeout)
        try:  # a session refused half-way is closed at once, not left to the garbage collector
            if server.security == "starttls":
                _starttls(client, context)
            client.ehlo_or_helo_if_needed()
            if server.username:
                client.login(server.username, server.password.read())
        except BaseException:
            client.close()
            raise
        # DATA goes out in slices (see _data); without this, Nagle's algorithm holds the short last one back
        # until the server's delayed ACK, some 40 ms a mail.
        client.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._client = client
        return client

    def _reset_if_broken(self, code: int) -> None:
        if code == 421 or self._client is None:
            self.close()
        else:
            with contextlib.suppress(*_CONNECTION_ERRORS):
                self._client.rset()

    def close(self) -> None:
        if self._client is not None:
            with contextlib.suppress(*_CONNECTION_ERRORS):
                self._client.quit()
            self._client = None


def _starttls(client: smtplib.SMTP, context: ssl.SSLContext) -> None:
    """STARTTLS, refusals named as such: a refused upgrade may be an attacker stripping it."""
    try:
        client.starttls(context=context)
    except smtplib.SMTPResponseException as error:
        raise smtplib.SMTPResponseException(error.smtp_code, f"STARTTLS refused: {_text(error.smtp_error)}") from error


def _transaction(client: smtplib.SMTP, forward: Forward, final_reply_timeout: float) -> Delivery:
    options = ["BODY=8BITMIME"] if client.has_extn("8bitmime") and not forward.data.isascii() else []
    code, reply = client.mail(forward.sender, options)
    if code != 250:
        raise smtplib.SMTPSenderRefused(code, reply, forward.sender)
    refused = {}
    for recipient in forward.recipients:
        code, reply = client.rcpt(recipient)
        if code not in (250, 251):
            refused[recipient] = (code, reply)
    if len(refused) == len(forward.recipients):
        client.rset()
        worst = min(code for code, _ in refused.values())  # any 4xx means worth retrying
        return _by_code(worst, "; ".join(f"{r}: {_reply_text(c, m)}" for r, (c, m) in refused.items()))
    code, reply = _data(client, forward.data, final_reply_timeout)
    if code != 250:
        return _by_code(code, _reply_text(code, reply))
    refusals = tuple(f"{r}: {_reply_text(c, m)}" for r, (c, m) in sorted(refused.items()))
    return Delivery(Status.ACCEPTED, _reply_text(code, reply), refusals)


def _data(client: smtplib.SMTP, data: bytes, final_reply_timeout: float) -> tuple[int, bytes]:
    """DATA as smtplib does it, without its three whole-message copies (a 20 MB forward would be 80 MB):
    the forward is CRLF already and goes out in slices of itself, with a dot sent before each line that
    starts with one. The reply to the final dot may take long: servers scan the content first."""
    client.putcmd("data")
    code, reply = client.getreply()
    if code != 354:
        raise smtplib.SMTPDataError(code, reply)
    view, position = memoryview(data), 0
    for match in _LEADING_DOT.finditer(data):  # each line that starts with "." gets one more
        client.send(view[position:match.start()])
        client.send(b".")
        position = match.start()
    client.send(view[position:])
    client.send(b".\r\n" if data.endswith(b"\r\n") else b"\r\n.\r\n")
    client.sock.settimeout(final_reply_timeout)
    return client.getreply()


def _by_code(code: int, text: str) -> Delivery:
    return Delivery(Status.PERMANENT if 500 <= code < 600 else Status.TEMPORARY, text)


def _reply_text(code: int, reply: bytes | str) -> str:
    return f"{code} {_text(reply)}"


def _text(reply: bytes | str) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)

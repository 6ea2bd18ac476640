"""TLS with real sockets: bad certificates and stripped STARTTLS are refused, for IMAP and SMTP, and no password leaves.

The bad servers are fakes from tests/badtls.py that speak just enough IMAP or SMTP for a client that
trusted them to go on to LOGIN/AUTH and to send the mail; they record every byte that arrives
(decrypted once TLS is up). The control tests run the same fakes with a good certificate and show
that the password would be seen there.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import NamedTuple

import pytest

from tests.badtls import Certificate, FakeServer, bad_certificates, carries_secret
from tests.helpers import REPO
from tests.relaytest import audit_events, mail_states, once, write_config

APPLICATION = (REPO / "mailrelay" / "demo" / "mails" / "01-application-state-ministry.eml").read_bytes()

CANARY = "canary-Zq7vTls-pw-41"
PASSWORD_COMMANDS = {"LOGIN", "AUTHENTICATE", "AUTH"}


class Fault(NamedTuple):
    """A certificate with one fault, the host name the relay is configured with, and what its error must say."""

    certificate: str
    host: str
    reason: str


CERTIFICATE_FAULTS = {
    "self-signed": Fault("self-signed", "127.0.0.1", "self-signed certificate"),
    "wrong-host": Fault("wrong-host", "127.0.0.1", "IP address mismatch"),
    "wrong-host-by-name": Fault("wrong-host", "localhost", "Hostname mismatch"),
    "expired": Fault("expired", "127.0.0.1", "certificate has expired"),
}
# "not-offered": the capability list lacks STARTTLS; "refused": it is listed, but the command gets an error.
STRIPPED = ["not-offered", "refused"]


class _ImapEndpoint(NamedTuple):
    """What write_config reads of a Dovecot, pointing at a fake server instead."""

    password: str
    tls_port: int
    ca_file: Path


@pytest.fixture(scope="session")
def certificates(tls_material, tmp_path_factory) -> dict[str, Certificate]:
    """Each bad certificate (and the good control) by name; the bad ones from the trusted test CA where they can be."""
    return bad_certificates(tls_material, tmp_path_factory.mktemp("bad-tls"))


def _imap_config(tmp_path: Path, server: FakeServer, host: str, security: str, ca_file: Path, sink) -> Path:
    """The relay's config with [imap] at the fake server, `security`, the test CA trusted, the canary as password."""
    config = write_config(tmp_path, _ImapEndpoint(CANARY, server.port, ca_file), "relay-user", sink)
    text = config.read_text().replace('security = "tls"', f'security = "{security}"', 1)
    config.write_text(text.replace('host = "127.0.0.1"', f'host = "{host}"', 1))
    return config


def _smtp_config(tmp_path: Path, dovecot, user: str, server: FakeServer, host: str, security: str) -> Path:
    """The relay's config with the real Dovecot inbox and [smtp] at the fake server, the canary as password."""
    (tmp_path / "smtp.secret").write_text(CANARY + "\n", encoding="utf-8")
    smtp = (f'[smtp]\nhost = "{host}"\nport = {server.port}\nsecurity = "{security}"\n'
            f'ca_file = "{dovecot.ca_file}"\nusername = "relay-user"\npassword_file = "smtp.secret"\ntimeout = 5\n')
    return write_config(tmp_path, dovecot, user, smtp=smtp)


def _assert_no_password_reached(server: FakeServer, *logs: str) -> None:
    """The relay did talk to the server, but sent it no password (plain or base64) and no login command."""
    assert server.connections, "the relay never connected: this test proves nothing"
    assert not carries_secret(server.received, CANARY), server.received
    assert not PASSWORD_COMMANDS & set(server.commands), server.commands
    assert all(CANARY not in log for log in logs)


def _assert_handshake_broken_off(server: FakeServer, security: str) -> None:
    """One connection, whose TLS handshake the relay broke off; under STARTTLS nothing came after the command."""
    [connection] = server.connections
    assert not connection.tls and connection.handshake_error, connection
    if security == "starttls":
        assert connection.commands[-1] == "STARTTLS", connection.commands


def _assert_mail_waits(tmp_path: Path, dovecot, user: str, server: FakeServer) -> str:
    """The mail was not sent and waits in the inbox for a retry; returns the deferral's reply for the test to read."""
    assert "MAIL" not in server.commands and "DATA" not in server.commands, server.commands
    assert len(dovecot.messages(user, "INBOX")) == 1
    assert [state for state, _, _ in mail_states(tmp_path)] == ["retry"]
    [deferred] = [detail for _, event, detail in audit_events(tmp_path) if event == "mail.deferred"]
    return deferred["reply"]


# --------------------------------------------------------------------------- IMAP


@pytest.mark.parametrize("security", ["tls", "starttls"])
@pytest.mark.parametrize("fault", CERTIFICATE_FAULTS)
def test_imap_bad_certificate_fails_the_poll_before_login(tmp_path, certificates, tls_material, smtp_sink, capsys,
                                                          fault, security):
    """A self-signed, wrong-host or expired IMAP certificate ends the poll (exit 1) naming the fault; no LOGIN."""
    certificate, host, reason = CERTIFICATE_FAULTS[fault]
    with FakeServer("imap", security, certificates[certificate]) as server:
        code = once(_imap_config(tmp_path, server, host, security, tls_material.ca_file, smtp_sink))
    output = capsys.readouterr()
    assert code == 1
    assert "die Abfrage konnte nicht laufen" in output.err and "CERTIFICATE_VERIFY_FAILED" in output.err
    assert reason in output.err, output.err
    _assert_handshake_broken_off(server, security)
    _assert_no_password_reached(server, output.out, output.err)
    assert smtp_sink.received == []


@pytest.mark.parametrize("stripped", STRIPPED)
def test_imap_stripped_starttls_fails_the_poll_before_login(tmp_path, tls_material, smtp_sink, capsys, stripped):
    """With security = "starttls", a server that does not offer STARTTLS or answers it with BAD gets no LOGIN."""
    with FakeServer("imap", stripped) as server:
        code = once(_imap_config(tmp_path, server, "127.0.0.1", "starttls", tls_material.ca_file, smtp_sink))
    output = capsys.readouterr()
    assert code == 1
    assert "die Abfrage konnte nicht laufen" in output.err and "STARTTLS" in output.err, output.err
    if stripped == "refused":
        assert "STARTTLS" in server.commands and "BAD" in output.err
    _assert_no_password_reached(server, output.out, output.err)
    assert smtp_sink.received == []


# --------------------------------------------------------------------------- SMTP


@pytest.mark.parametrize("security", ["tls", "starttls"])
@pytest.mark.parametrize("fault", CERTIFICATE_FAULTS)
def test_smtp_bad_certificate_defers_the_mail_without_auth(tmp_path, certificates, dovecot, imap_user, capsys,
                                                           fault, security):
    """A self-signed, wrong-host or expired SMTP certificate: no AUTH, no mail; it waits, the deferral names why."""
    certificate, host, reason = CERTIFICATE_FAULTS[fault]
    dovecot.append(imap_user, "INBOX", APPLICATION)
    with FakeServer("smtp", security, certificates[certificate]) as server:
        assert once(_smtp_config(tmp_path, dovecot, imap_user, server, host, security)) == 0
    reply = _assert_mail_waits(tmp_path, dovecot, imap_user, server)
    assert "CERTIFICATE_VERIFY_FAILED" in reply and reason in reply, reply
    _assert_handshake_broken_off(server, security)
    output = capsys.readouterr()
    _assert_no_password_reached(server, output.out, output.err, json.dumps(audit_events(tmp_path)))


@pytest.mark.parametrize("stripped", STRIPPED)
def test_smtp_stripped_starttls_defers_the_mail_without_auth(tmp_path, dovecot, imap_user, capsys, stripped):
    """With security = "starttls", a server that does not offer STARTTLS or refuses it gets no AUTH and no mail."""
    dovecot.append(imap_user, "INBOX", APPLICATION)
    with FakeServer("smtp", stripped) as server:
        assert once(_smtp_config(tmp_path, dovecot, imap_user, server, "127.0.0.1", "starttls")) == 0
    reply = _assert_mail_waits(tmp_path, dovecot, imap_user, server)
    if stripped == "not-offered":
        assert "STARTTLS" in reply, reply
    else:
        assert "STARTTLS" in server.commands and "454" in reply, reply
    output = capsys.readouterr()
    _assert_no_password_reached(server, output.out, output.err, json.dumps(audit_events(tmp_path)))


def test_smtp_refused_starttls_is_named_in_the_deferral(tmp_path, dovecot, imap_user):
    """A server answering STARTTLS with an error: the deferral says STARTTLS was refused, whatever the text."""
    dovecot.append(imap_user, "INBOX", APPLICATION)
    with FakeServer("smtp", "refused") as server:
        assert once(_smtp_config(tmp_path, dovecot, imap_user, server, "127.0.0.1", "starttls")) == 0
    reply = _assert_mail_waits(tmp_path, dovecot, imap_user, server)
    assert "STARTTLS" in reply, reply


# --------------------------------------------------------------------------- controls


@pytest.mark.parametrize("security", ["tls", "starttls"])
def test_control_imap_fake_sees_the_password_behind_a_good_certificate(tmp_path, certificates, tls_material,
                                                                       smtp_sink, security):
    """The same fake, with a certificate the relay trusts, receives LOGIN with the canary: the IMAP checks can fail."""
    with FakeServer("imap", security, certificates["good"]) as server:
        assert once(_imap_config(tmp_path, server, "127.0.0.1", security, tls_material.ca_file, smtp_sink)) == 1
    [connection] = server.connections
    assert connection.tls and "LOGIN" in connection.commands
    assert carries_secret(server.received, CANARY)


@pytest.mark.parametrize("security", ["tls", "starttls"])
def test_control_smtp_fake_sees_the_password_behind_a_good_certificate(tmp_path, certificates, dovecot, imap_user,
                                                                       security):
    """The same fake, with a certificate the relay trusts, gets AUTH with the canary in base64: the checks can fail."""
    dovecot.append(imap_user, "INBOX", APPLICATION)
    with FakeServer("smtp", security, certificates["good"]) as server:
        assert once(_smtp_config(tmp_path, dovecot, imap_user, server, "127.0.0.1", security)) == 0
    [connection] = server.connections
    assert connection.tls and "AUTH" in connection.commands
    assert CANARY.encode() not in server.received and carries_secret(server.received, CANARY)

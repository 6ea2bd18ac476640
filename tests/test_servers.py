"""The test servers themselves: Dovecot and the SMTP sink behave as the other tests assume."""

from __future__ import annotations

import smtplib
import ssl
import uuid

import imapclient
import pytest

from tests.servers import CLIENT_TIMEOUT, Received, client_ssl_context

MAIL = (b"From: sender@example.org\r\nTo: rcpt@example.net\r\nSubject: Probe \xc3\xa4\r\n"
        b"Message-ID: <probe@example.org>\r\n\r\nLine one\r\n.dot-leading line\r\n")


def test_fresh_users_have_separate_empty_inboxes(dovecot, imap_user):
    """A new user sees an empty INBOX, and another user's mail stays out of it."""
    other_user = f"t-{uuid.uuid4().hex}"
    dovecot.append(other_user, "INBOX", MAIL)
    assert dovecot.messages(imap_user, "INBOX") == []
    assert dovecot.messages(other_user, "INBOX") == [MAIL]


def test_append_and_fetch_round_trip_exact_bytes_over_verified_tls(dovecot, imap_user):
    """Bytes appended over CA-verified TLS come back identical, in UID order, nested mailboxes too."""
    second = MAIL.replace(b"Probe", b"Second")
    dovecot.append(imap_user, "Archive/2024", MAIL, flags=[imapclient.SEEN])
    dovecot.append(imap_user, "Archive/2024", second)
    assert dovecot.messages(imap_user, "Archive/2024") == [MAIL, second]
    assert dovecot.messages(imap_user, "Missing") == []
    assert {"Archive", "Archive/2024", "INBOX"} <= set(dovecot.mailboxes(imap_user))


def test_tls_without_the_test_ca_fails_verification(dovecot):
    """A client with only the system trust store refuses Dovecot's certificate."""
    with pytest.raises(ssl.SSLCertVerificationError):
        imapclient.IMAPClient(dovecot.host, port=dovecot.tls_port, ssl=True,
                              ssl_context=ssl.create_default_context(), timeout=CLIENT_TIMEOUT)


def test_plain_listener_offers_starttls_and_move(dovecot, imap_user):
    """The plain listener upgrades with STARTTLS against the CA and the server offers MOVE."""
    client = imapclient.IMAPClient(dovecot.host, port=dovecot.plain_port, ssl=False,
                                   timeout=CLIENT_TIMEOUT)
    try:
        client.starttls(client_ssl_context(dovecot.ca_file))
        client.login(imap_user, dovecot.password)
        assert client.has_capability("MOVE")
        assert client.has_capability("UIDPLUS")
    finally:
        client.logout()


def test_wrong_password_is_refused(dovecot, imap_user):
    """Only the instance's password logs in."""
    client = imapclient.IMAPClient(dovecot.host, port=dovecot.tls_port, ssl=True,
                                   ssl_context=client_ssl_context(dovecot.ca_file),
                                   timeout=CLIENT_TIMEOUT)
    try:
        with pytest.raises(imapclient.exceptions.LoginError):
            client.login(imap_user, dovecot.password + "-wrong")
    finally:
        client.shutdown()


def test_sink_records_a_mail_sent_with_smtplib(smtp_sink):
    """The sink records envelope sender, recipients and the exact message bytes."""
    with smtplib.SMTP(smtp_sink.host, smtp_sink.port, timeout=CLIENT_TIMEOUT) as smtp:
        smtp.sendmail("sender@example.org", ["a@example.net", "b@example.net"], MAIL)
    assert smtp_sink.received == [
        Received("sender@example.org", ("a@example.net", "b@example.net"), MAIL)]


def test_sink_rejects_the_next_message_at_data_then_accepts(smtp_sink):
    """A 451 queued for DATA surfaces as SMTPDataError once, and the retry is recorded."""
    smtp_sink.reject_next(1, code=451, stage="data")
    with smtplib.SMTP(smtp_sink.host, smtp_sink.port, timeout=CLIENT_TIMEOUT) as smtp:
        with pytest.raises(smtplib.SMTPDataError) as refused:
            smtp.sendmail("sender@example.org", ["a@example.net"], MAIL)
        assert refused.value.smtp_code == 451
        smtp.sendmail("sender@example.org", ["a@example.net"], MAIL)
    assert len(smtp_sink.received) == 1


def test_sink_rejects_recipients_with_451(smtp_sink):
    """A 451 queued for RCPT surfaces as SMTPRecipientsRefused and nothing is recorded."""
    smtp_sink.reject_next(1, code=451, stage="rcpt")
    with smtplib.SMTP(smtp_sink.host, smtp_sink.port, timeout=CLIENT_TIMEOUT) as smtp:
        with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
            smtp.sendmail("sender@example.org", ["a@example.net"], MAIL)
    assert refused.value.recipients["a@example.net"][0] == 451
    assert smtp_sink.received == []


def test_sink_starttls_verifies_against_the_test_ca(make_smtp_sink, tls_material):
    """STARTTLS to the sink succeeds with the test CA and then AUTH and delivery work."""
    sink = make_smtp_sink(tls=True, auth=("relay", "secret"))
    with smtplib.SMTP(sink.host, sink.port, timeout=CLIENT_TIMEOUT) as smtp:
        smtp.starttls(context=client_ssl_context(tls_material.ca_file))
        smtp.login("relay", "secret")
        smtp.sendmail("sender@example.org", ["a@example.net"], MAIL)
    assert [mail.data for mail in sink.received] == [MAIL]


def test_sink_with_auth_refuses_mail_before_login(make_smtp_sink):
    """A sink configured with AUTH refuses MAIL FROM from an unauthenticated client."""
    sink = make_smtp_sink(auth=("relay", "secret"))
    with smtplib.SMTP(sink.host, sink.port, timeout=CLIENT_TIMEOUT) as smtp:
        with pytest.raises(smtplib.SMTPSenderRefused):
            smtp.sendmail("sender@example.org", ["a@example.net"], MAIL)
        with pytest.raises(smtplib.SMTPAuthenticationError):
            smtp.login("relay", "wrong")
    assert sink.received == []


def test_sink_implicit_tls_verifies_against_the_test_ca(make_smtp_sink, tls_material):
    """The implicit-TLS sink accepts SMTP_SSL with the test CA and refuses one without it."""
    sink = make_smtp_sink(implicit_tls=True)
    context = client_ssl_context(tls_material.ca_file)
    with smtplib.SMTP_SSL(sink.host, sink.port, context=context, timeout=CLIENT_TIMEOUT) as smtp:
        smtp.sendmail("sender@example.org", ["a@example.net"], MAIL)
    with pytest.raises(ssl.SSLCertVerificationError):
        smtplib.SMTP_SSL(sink.host, sink.port, context=ssl.create_default_context(),
                         timeout=CLIENT_TIMEOUT)
    assert len(sink.received) == 1

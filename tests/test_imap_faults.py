"""IMAP faults against the real Dovecot: a connection lost mid-fetch, a mailbox deleted and created again,
and the same bytes arriving twice while the first copy waits for a retry."""
from __future__ import annotations

import sqlite3

from mailrelay.cli import main
from tests.helpers import REPO
from tests.relaytest import alerts, audit_events, forwards, make_retries_due, once, write_config
from tests.servers import CuttingProxy

MAILS = REPO / "mailrelay" / "demo" / "mails"
APPLICATION = (MAILS / "01-application-state-ministry.eml").read_bytes()


def _application(number: int, padding: int = 0) -> bytes:
    """A distinct application; `padding` lines of body text make its FETCH response larger."""
    mail = APPLICATION.replace(b"<demo-01@", f"<fault-{number}@".encode())
    return mail.rstrip(b"\r\n") + b"\r\n" + b"Weitere Angaben zur Bewerbung folgen.\r\n" * padding


def _relay_mailbox(config, name: str = "Relay"):
    """The relay reads `name` instead of INBOX: unlike INBOX, it can be deleted and created again."""
    config.write_text(config.read_text().replace('password_file = "imap.secret"',
                                                 f'password_file = "imap.secret"\nmailbox = "{name}"'))
    return config


def _recreate(dovecot, user: str, name: str, mails: list[bytes]) -> None:
    with dovecot.client(user) as client:
        client.delete_folder(name)
        client.create_folder(name)
    for mail in mails:
        dovecot.append(user, name, mail)


def _originals(received) -> list[str]:
    """The Message-IDs of the mails these forwards pass on."""
    import email

    return [email.message_from_bytes(item.data)["In-Reply-To"] for item in received]


def test_connection_lost_mid_fetch_loses_nothing_and_doubles_nothing(tmp_path, dovecot, imap_user, smtp_sink):
    """The server's answer is cut in the middle of the backlog: that poll fails, the mails it recorded stay
    recorded, and the next poll forwards exactly the rest."""
    mails = [_application(number, padding=400) for number in range(6)]  # about 16 kB each
    for mail in mails:
        dovecot.append(imap_user, "INBOX", mail)
    with CuttingProxy(dovecot.tls_port, cut_after=sum(map(len, mails)) // 2) as proxy:
        config = write_config(tmp_path, dovecot, imap_user, smtp_sink, imap_port=proxy.port)
        config.write_text(config.read_text().replace("timeout = 10", "timeout = 10\nbatch_size = 2", 1))
        assert once(config) == 1
        assert proxy.cuts == 1
        first = len(forwards(smtp_sink))
        assert 0 < first < len(mails)  # the cut fell inside the backlog, after some mails were handled
        with sqlite3.connect(tmp_path / "state.sqlite") as db:
            recorded = db.execute("SELECT count(*) FROM mails").fetchone()[0]
        assert recorded == first  # nothing is recorded that was not handled
        assert once(config) == 0
    sent = _originals(forwards(smtp_sink))
    assert len(sent) == len(mails) and len(set(sent)) == len(mails)
    assert dovecot.messages(imap_user, "INBOX") == []


def test_recreated_mailbox_holding_the_mails_it_had_forwards_nothing_twice(tmp_path, dovecot, imap_user,
                                                                            smtp_sink):
    """The mailbox is deleted and restored with the same mails (new UIDs, new UIDVALIDITY): they are
    matched by their bytes, the one waiting for a retry is sent once, the handled one not again."""
    config = _relay_mailbox(write_config(tmp_path, dovecot, imap_user, smtp_sink))
    handled, waiting = _application(1), _application(2)
    dovecot.append(imap_user, "Relay", handled)
    assert once(config) == 0 and len(forwards(smtp_sink)) == 1
    dovecot.append(imap_user, "Relay", waiting)
    smtp_sink.reject_next(1, code=451)
    assert once(config) == 0 and len(forwards(smtp_sink)) == 1
    _recreate(dovecot, imap_user, "Relay", [handled, waiting])
    assert once(config) == 0
    sent = _originals(forwards(smtp_sink))
    assert len(sent) == 2 and len(set(sent)) == 2
    assert dovecot.messages(imap_user, "Relay") == []
    assert "mailbox.recreated" in [event for _, event, _ in audit_events(tmp_path)]


def test_recreated_mailbox_missing_most_expected_mails_pauses_and_alerts(tmp_path, dovecot, imap_user, smtp_sink):
    """After the mailbox is recreated, the mails the store expects there are gone and others are in it:
    not the mailbox we knew. Nothing is forwarded, the editors are told, `resume` lets the relay go on."""
    config = _relay_mailbox(write_config(tmp_path, dovecot, imap_user, smtp_sink))
    for number in (1, 2):
        dovecot.append(imap_user, "Relay", _application(number))
    smtp_sink.reject_next(2, code=451)
    assert once(config) == 0 and forwards(smtp_sink) == []
    _recreate(dovecot, imap_user, "Relay", [_application(3), _application(4)])
    assert once(config) == 0
    assert forwards(smtp_sink) == [] and len(alerts(smtp_sink)) == 1
    assert b"mailrelay resume" in alerts(smtp_sink)[0].data
    assert len(dovecot.messages(imap_user, "Relay")) == 2
    assert main(["--config", str(config), "resume"]) == 0
    assert once(config) == 0
    assert sorted(_originals(forwards(smtp_sink))) == [
        "<fault-3@wirtschaft.niedersachsen.de>", "<fault-4@wirtschaft.niedersachsen.de>"]
    events = [event for _, event, _ in audit_events(tmp_path)]
    assert "mailbox.replaced" in events and "relay.paused" in events


def test_second_copy_of_a_waiting_mail_is_archived_and_the_first_sent_once(tmp_path, dovecot, imap_user,
                                                                           smtp_sink):
    """The same bytes at a second UID while the first copy waits for its retry: the copy is archived as a
    duplicate, the first copy stays tracked and is sent once when due, and the inbox ends empty."""
    config = write_config(tmp_path, dovecot, imap_user, smtp_sink, schedule="retry_min_seconds = 3600")
    dovecot.append(imap_user, "INBOX", APPLICATION)
    smtp_sink.reject_next(1, code=451)
    assert once(config) == 0
    dovecot.append(imap_user, "INBOX", APPLICATION)
    assert once(config) == 0 and forwards(smtp_sink) == []
    assert len(dovecot.messages(imap_user, "INBOX")) == 1
    make_retries_due(tmp_path)
    assert once(config) == 0
    assert len(forwards(smtp_sink)) == 1 and dovecot.messages(imap_user, "INBOX") == []

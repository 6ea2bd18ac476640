"""The flood brake tells a backlog (mail that arrived while the relay was away) from lost state."""
from __future__ import annotations

import mailbox
import os
import sqlite3
from datetime import datetime, timedelta, timezone

from mailrelay.sources.maildir import MaildirSource
from mailrelay.state.sqlite import SqliteStore as Store
from tests.helpers import REPO
from tests.relaytest import alerts, audit_events, forwards, once, write_config

APPLICATION = (REPO / "mailrelay" / "demo" / "mails" / "02-application-research-institute.eml").read_bytes()
LIMIT, BACKLOG = 20, 31  # 200 and 312 in the field; smaller here to keep the test quick


def _config(tmp_path, dovecot, imap_user, smtp_sink):
    config = write_config(tmp_path, dovecot, imap_user, smtp_sink)
    config.write_text(config.read_text().replace(
        'id = "test-relay"', f'id = "test-relay"\nmax_forwards_per_poll = {LIMIT}\n'
                             "max_forwards_per_sender_per_hour = 100\nmax_forwards_per_thread_per_hour = 100"))
    return config


def _deliver(dovecot, user: str, count: int, arrived: datetime) -> None:
    """`count` different applications whose INTERNALDATE is `arrived` (IMAP APPEND sets it)."""
    with dovecot.client(user) as client:
        for number in range(count):
            data = APPLICATION.replace(b"<demo-02@", f"<backlog-{number}@".encode())
            client.append("INBOX", data, msg_time=arrived)


def _paused(directory) -> str | None:
    store = Store(directory / "state.sqlite", read_only=True)
    try:
        return store.paused()
    finally:
        store.close()


def test_a_backlog_that_arrived_while_the_relay_was_away_is_forwarded_in_full(tmp_path, dovecot, imap_user,
                                                                            smtp_sink):
    """More new mails than the limit, all arrived after the last full poll began, all go out in one poll."""
    config = _config(tmp_path, dovecot, imap_user, smtp_sink)
    assert once(config) == 0  # the last good poll, before the outage
    _deliver(dovecot, imap_user, BACKLOG, datetime.now(timezone.utc) + timedelta(seconds=1))
    assert once(config) == 0
    assert len(forwards(smtp_sink)) == BACKLOG and alerts(smtp_sink) == []
    assert _paused(tmp_path) is None and dovecot.messages(imap_user, "INBOX") == []


def test_after_the_state_file_is_emptied_a_reforward_still_stops_at_the_limit(tmp_path, dovecot, imap_user,
                                                                            smtp_sink):
    """Handled mail moved back into the inbox of a relay whose state file was deleted stops at the limit."""
    config = _config(tmp_path, dovecot, imap_user, smtp_sink)
    assert once(config) == 0
    _deliver(dovecot, imap_user, BACKLOG, datetime.now(timezone.utc) + timedelta(seconds=1))
    assert once(config) == 0 and len(forwards(smtp_sink)) == BACKLOG
    for suffix in ("", "-wal", "-shm"):
        (tmp_path / f"state.sqlite{suffix}").unlink(missing_ok=True)
    with dovecot.client(imap_user) as client:  # MOVE keeps each mail's INTERNALDATE
        client.select_folder("Processed")
        client.move(client.search("ALL"), "INBOX")
    assert once(config) == 0
    assert len(forwards(smtp_sink)) == BACKLOG + LIMIT and len(alerts(smtp_sink)) == 1
    assert "mailrelay resume" in _paused(tmp_path)
    assert len(dovecot.messages(imap_user, "INBOX")) == BACKLOG - LIMIT


def test_unknown_mail_older_than_the_last_full_poll_still_brakes(tmp_path, dovecot, imap_user, smtp_sink):
    """With a full poll on record, mail the state does not know that arrived hours before it is handled
    mail coming back (lost state), and counts toward the brake."""
    config = _config(tmp_path, dovecot, imap_user, smtp_sink)
    assert once(config) == 0
    _deliver(dovecot, imap_user, BACKLOG, datetime.now(timezone.utc) - timedelta(hours=2))
    assert once(config) == 0
    assert len(forwards(smtp_sink)) == LIMIT and _paused(tmp_path) is not None
    assert "relay.paused" in [event for _, event, _ in audit_events(tmp_path)]


def test_the_arrival_time_is_recorded_from_internaldate(tmp_path, dovecot, imap_user, smtp_sink):
    """The INTERNALDATE fetched with the body is what the state keeps as the mail's arrival."""
    config = _config(tmp_path, dovecot, imap_user, smtp_sink)
    arrived = datetime(2026, 3, 4, 5, 6, 7, tzinfo=timezone.utc)
    _deliver(dovecot, imap_user, 1, arrived)
    assert once(config) == 0
    with sqlite3.connect(tmp_path / "state.sqlite") as db:
        [(recorded,)] = db.execute("SELECT arrived FROM mails").fetchall()
    assert datetime.fromisoformat(recorded) == arrived


def test_a_maildir_mail_arrives_when_its_file_was_written(tmp_path):
    """A Maildir mail's arrival is its file's modification time."""
    box = mailbox.Maildir(tmp_path / "inbox", create=True)
    key = box.add(APPLICATION)
    moment = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    [path] = [p for p in (tmp_path / "inbox").rglob(f"{key}*")]
    os.utime(path, (moment.timestamp(), moment.timestamp()))
    with MaildirSource(tmp_path / "inbox").open(None) as inbox:
        [raw] = list(inbox.fetch_new())
    assert raw.arrived == moment

"""`mailrelay migrate`: a SQLite state into an empty PostgreSQL database, its audit chain intact."""
from __future__ import annotations

import sqlite3

import psycopg
import pytest

from mailrelay.cli import main
from mailrelay.state import PendingAck
from mailrelay.state.migrate import MigrationError, migrate
from mailrelay.state.postgres import PostgresStore
from mailrelay.state.sqlite import SqliteStore
from tests.nodes import maildir_config, split_url


def _state(path) -> SqliteStore:
    """A state with a little of everything: mails in several states, kept bytes, an answer queued and one
    sent, flags, a mailbox position, and events without a mail."""
    store = SqliteStore(path)
    first = store.add_mail("a" * 64, "<one@example.de>", "imap:INBOX/1", "anna@example.de", "Bewerbung", b"one\r\n" * 10)
    store.update(first, "mail.decided", {"rule": "bund"}, state="decided", route="desk-a", rule="bund", kind="application")
    store.update(first, "mail.forwarded", {"desk": "desk-a"}, ack=PendingAck(first, "anna@example.de", "<ack1@r>", b"ack"),
                 state="forwarded", forwarded_at="2026-11-30T10:00:00.000+00:00")
    store.ack_result(first, "ack.sent", {"to": "anna@example.de"}, "sent")
    store.update(first, "mail.archived", {"mailbox": "Processed"}, archived_to="Processed")
    second = store.add_mail("b" * 64, "<two@example.de>", "imap:INBOX/2", "bob@example.de", "Frage", bytes(range(256)))
    store.update(second, "mail.failed", {"error": "x"}, state="quarantined", reason="x")
    store.update(second, "mail.archived", {"mailbox": "Quarantine"}, archived_to="Quarantine", queue_key="imap:Quarantine/9")
    store.update(second, "mail.sending", {}, forward_message_id="<fwd@r>")
    store.add_mail("c" * 64, "<three@example.de>", "imap:INBOX/3", "cem@example.de", "Noch offen", b"three")
    store.set_flags(last_poll_ok="2026-11-30T10:00:01.000+00:00", rules_version="abc123")
    store.pause("too many")
    store.set_mailbox_position("INBOX", 77, 3)
    store.event(None, "config.reloaded", {"rules_version": "abc123", "Umlaut": "Prüfung"})
    return store


def test_a_state_moves_whole_and_its_chain_still_verifies(tmp_path, postgres_url):
    source = _state(tmp_path / "state.sqlite")
    records, head = source.audit_head()
    mails = [source.get(mail_id) for mail_id in (1, 2, 3)]
    source.close()

    moved = migrate(tmp_path / "state.sqlite", postgres_url)

    assert (moved.records, moved.head) == (records, head)
    assert moved.counts["mails"] == 3 and moved.counts["events"] == records
    target = PostgresStore(postgres_url)
    assert target.audit_head() == (records, head)
    assert [target.get(mail_id) for mail_id in (1, 2, 3)] == mails
    assert target.raw("b" * 64) == bytes(range(256))
    assert target.answered_since("anna@example.de", "2000-01-01") is True
    assert target.paused() == "too many" and target.flag("rules_version") == "abc123"
    assert target.mailbox_position("INBOX") == (77, 3)
    assert target.unfinished_keys("imap:INBOX/") == ["imap:INBOX/3"]
    # The chain goes on from the moved head; new mails get new numbers.
    new = target.add_mail("d" * 64, "<four@example.de>", "imap:INBOX/4", "dora@example.de", "Neu", b"four")
    assert new == 4
    assert target.audit_head()[0] == records + 1
    target.close()
    assert main(["--config", str(maildir_config(tmp_path, postgres_url)), "audit", "verify"]) == 0


def test_the_command_refuses_a_target_that_is_not_empty_and_leaves_it_as_it_was(tmp_path, postgres_url, capsys):
    _state(tmp_path / "state.sqlite").close()
    password, url = split_url(postgres_url)
    (tmp_path / "db.secret").write_text(password + "\n")
    arguments = ["--lang", "en", "migrate", "--from", str(tmp_path / "state.sqlite"), "--to", url,
                 "--password-file", str(tmp_path / "db.secret")]
    assert main(arguments) == 0
    assert "audit trail intact before and after" in capsys.readouterr().out
    head = PostgresStore(postgres_url).audit_head()
    assert main(arguments) == 1
    assert "not empty" in capsys.readouterr().err
    assert PostgresStore(postgres_url).audit_head() == head


def test_a_broken_chain_is_not_moved(tmp_path, postgres_url):
    _state(tmp_path / "state.sqlite").close()
    with sqlite3.connect(tmp_path / "state.sqlite") as db:
        db.execute("UPDATE events SET detail = '{\"rule\": \"other\"}' WHERE id = 2")
    with pytest.raises(MigrationError, match="(?i)prüfkette|audit trail"):
        migrate(tmp_path / "state.sqlite", postgres_url)
    with psycopg.connect(postgres_url) as db:  # not even the tables were made
        assert db.execute("SELECT to_regclass('mails')").fetchone()[0] is None


def test_a_state_in_use_is_not_moved(tmp_path, postgres_url):
    running = _state(tmp_path / "state.sqlite")
    running.lock()
    try:
        with pytest.raises(MigrationError, match="systemctl stop"):
            migrate(tmp_path / "state.sqlite", postgres_url)
    finally:
        running.close()

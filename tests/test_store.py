"""The SQLite store: instance lock, migration of older state files, read-only opening."""
from __future__ import annotations

import sqlite3

import pytest

from mailrelay.state import AlreadyRunning
from mailrelay.state.sqlite import SqliteStore as Store


# The mails table of the first state files, before the retry, thread and queue columns.
_FIRST_MAILS_TABLE = (
    "CREATE TABLE mails (id INTEGER PRIMARY KEY, sha256 TEXT NOT NULL UNIQUE, message_id TEXT NOT NULL,"
    " source_key TEXT NOT NULL, from_address TEXT NOT NULL, subject TEXT NOT NULL, state TEXT NOT NULL,"
    " kind TEXT, sender TEXT, level TEXT, country TEXT, route TEXT, rule TEXT, rules_version TEXT,"
    " reason TEXT, forward_message_id TEXT, archived_to TEXT, attempts INTEGER NOT NULL DEFAULT 0,"
    " first_seen TEXT NOT NULL, updated TEXT NOT NULL)")


def test_second_lock_on_the_same_state_is_refused(tmp_path):
    """Only one relay may hold a state store."""
    first, second = Store(tmp_path / "s.sqlite"), Store(tmp_path / "s.sqlite")
    first.lock()
    with pytest.raises(AlreadyRunning):
        second.lock()
    first.close(), second.close()


def test_a_state_file_from_before_the_retry_columns_is_migrated(tmp_path):
    """A mails table without the later columns gets them added, and the store works on it."""
    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as db:
        db.execute(_FIRST_MAILS_TABLE)
    store = Store(path)
    mail_id = store.add_mail("ab" * 32, "<m@x>", "k", "a@x", "s", b"raw")
    assert store.get(mail_id).tries == 0 and store.find("ab" * 32).next_attempt is None
    store.close()


def test_read_only_store_does_not_create_a_missing_file(tmp_path):
    """Opening read-only never creates a database where none was."""
    with pytest.raises(sqlite3.OperationalError):
        Store(tmp_path / "missing.sqlite", read_only=True).find("x")
    assert not (tmp_path / "missing.sqlite").exists()


def test_an_audit_trail_from_before_the_hash_chain_is_chained_and_says_so(tmp_path):
    """Older records get their hashes in order, a record says how many there were, and the chain verifies."""
    from mailrelay import audit

    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE events (id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, mail_id INTEGER,"
                   " event TEXT NOT NULL, detail TEXT NOT NULL)")
        db.executemany("INSERT INTO events (at, mail_id, event, detail) VALUES (?, NULL, ?, '{}')",
                       [("2026-01-01T00:00:00.000+00:00", "config.reloaded"),
                        ("2026-01-02T00:00:00.000+00:00", "relay.paused")])
    Store(path).close()
    with audit.open_trail(path) as db:
        verdict = audit.verify(db)
        events = [row["event"] for row in db.execute("SELECT event FROM events ORDER BY id")]
    assert verdict.intact and verdict.records == 3
    assert events == ["config.reloaded", "relay.paused", "audit.chained"]


def test_raw_mails_from_before_get_their_bytes_column_last_and_keep_them(tmp_path):
    """Only a last column lets SQLite write a large mail without holding it twice; older files are rebuilt."""
    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE raw_mails (sha256 TEXT PRIMARY KEY, data BLOB NOT NULL, stored_at TEXT NOT NULL)")
        db.execute("INSERT INTO raw_mails VALUES ('ab', x'0102', '2026-01-01')")
    store = Store(path)
    store.add_mail("cd" * 32, "<m@x>", "k", "a@x", "s", b"new bytes")
    store.close()
    with sqlite3.connect(path) as db:
        columns = [row[1] for row in db.execute("PRAGMA table_info(raw_mails)")]
        rows = db.execute("SELECT sha256, data FROM raw_mails ORDER BY sha256").fetchall()
    assert columns[-1] == "data"
    assert rows == [("ab", b"\x01\x02"), ("cd" * 32, b"new bytes")]


def test_the_queues_count_what_waits_and_not_what_an_editor_released(tmp_path):
    """A quarantined mail is in the quarantine queue and its counts until an editor's request takes it out."""
    store = Store(tmp_path / "s.sqlite")
    first = store.add_mail("01" * 32, "<1@x>", "k1", "a@x", "one", b"1")
    second = store.add_mail("02" * 32, "<2@x>", "k2", "a@x", "two", b"2")
    review = store.add_mail("03" * 32, "<3@x>", "k3", "a@x", "three", b"3")
    store.update(first, "mail.quarantined", {}, state="quarantined")
    store.update(second, "mail.quarantined", {}, state="quarantined")
    store.update(review, "mail.forwarded", {}, state="forwarded", queue="review", queued_at="2026-01-01T00:00:00")
    counts = store.mail_counts("2000-01-01")
    assert (counts["quarantined"], counts["in_quarantine"], counts["in_review"]) == (2, 2, 1)
    assert [record.id for record in store.queue("quarantine")] == [first, second]
    store.update(first, "queue.release_requested", {}, request='{"action": "release"}')
    counts = store.mail_counts("2000-01-01")
    assert (counts["quarantined"], counts["in_quarantine"]) == (1, 1)
    assert [record.id for record in store.queue("quarantine")] == [second]
    assert [record.subject for record in store.queue("review")] == ["three"]
    store.close()


def test_mails_quarantined_before_the_queue_existed_join_it_on_migration(tmp_path):
    """An older state file's quarantined mails wait in the quarantine queue once it is opened."""
    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as db:
        db.execute(_FIRST_MAILS_TABLE)
        db.execute("INSERT INTO mails (sha256, message_id, source_key, from_address, subject, state, first_seen,"
                   " updated) VALUES ('aa', '<q@x>', 'k', 'a@x', 'held', 'quarantined', '2026-01-01', '2026-01-02')")
    store = Store(path)
    assert [(record.subject, record.queued_at) for record in store.queue("quarantine")] == [("held", "2026-01-02")]
    store.close()

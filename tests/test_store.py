"""The state stores: what the SQLite file and the PostgreSQL database both keep and answer alike, then
each one's own (SQLite's instance lock, older files and read-only opening; PostgreSQL's writers on more
than one node, the lease's fence and a lost connection)."""
from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path

import psycopg
import pytest

from mailrelay.state import AlreadyRunning, LeaseLost, PendingAck, StoreUnavailable, open_store
from mailrelay.state.sqlite import SqliteStore as Store
from tests.storekinds import chain_breaks, event_rows

PAST, FUTURE = "2000-01-01T00:00:00.000+00:00", "2999-01-01T00:00:00.000+00:00"


@pytest.fixture
def where(state_url, tmp_path) -> Path | str:
    """Where a new, empty store of the kind under test lives: a file path or a connection string."""
    return state_url or tmp_path / "s.sqlite"


@pytest.fixture
def store(where):
    store = open_store(where)
    yield store
    store.close()


def _mail(store, number: int, key: str = "imap:INBOX:1:", sender: str = "a@x") -> int:
    return store.add_mail(f"{number:02x}" * 32, f"<{number}@x>", f"{key}{number}", sender, f"subject {number}",
                          f"raw {number}".encode())


# Both stores


def test_a_mail_is_found_by_its_hash_its_copy_and_its_number_with_its_bytes(store):
    """What add_mail records comes back the same way from every lookup, and its bytes are kept."""
    mail_id = store.add_mail("ab" * 32, "<m@x>", "imap:INBOX:1:7", "a@x", "Antrag", b"raw\x00bytes",
                             thread="<t@x>", arrived="2026-01-01T00:00:00.000+00:00")
    record = store.get(mail_id)
    assert (record.state, record.source_key, record.tries, record.arrived) == (
        "received", "imap:INBOX:1:7", 0, "2026-01-01T00:00:00.000+00:00")
    assert store.find("ab" * 32) == store.find_id(mail_id) == store.find_copy("<m@x>", "a@x", "Antrag") == record
    assert store.find("cd" * 32) is None and store.find_id(mail_id + 1) is None
    assert store.find_copy("<m@x>", "a@x", "other") is None
    assert store.raw("ab" * 32) == b"raw\x00bytes"
    assert [(found.id, data) for found, data in store.handled_since(PAST)] == [(mail_id, b"raw\x00bytes")]


def test_a_mail_is_fetched_again_until_it_is_final_and_archived_and_its_retry_is_due(store):
    """unfinished_keys names the mails under a prefix not yet done with, once their next attempt is due."""
    done, waiting, due = (_mail(store, number) for number in (1, 2, 3))
    _mail(store, 4, key="imap:Other:1:")
    store.update(done, "mail.archived", {}, state="forwarded", archived_to="Processed", forwarded_at=PAST)
    store.update(waiting, "mail.deferred", {}, state="retry", next_attempt=FUTURE)
    store.update(due, "mail.deferred", {}, state="retry", next_attempt=PAST, attempts=1)
    assert sorted(store.unfinished_keys("imap:INBOX:1:")) == ["imap:INBOX:1:3"]
    assert [record.id for record in store.left_in("imap:INBOX:1:")] == [waiting, due]
    assert store.get(waiting).waiting and not store.get(due).waiting and store.get(due).attempts == 1
    assert store.forwards_from("a@x", PAST) == 1 and store.forwards_from("a@x", FUTURE) == 0
    assert store.unfinished_keys("imap:Other:1:") == ["imap:Other:1:4"]


def test_an_acknowledgement_is_queued_with_its_forward_and_kept_until_it_is_final(store):
    """An ack queued with a mail's update is due and counts as an answer; once sent its text is gone."""
    mail_id = _mail(store, 1)
    store.update(mail_id, "mail.forwarded", {}, PendingAck(mail_id, "b@x", "<ack@x>", b"ack text"),
                 state="forwarded")
    assert store.due_acks() == [PendingAck(mail_id, "b@x", "<ack@x>", b"ack text", 0)]
    assert store.answered_since("b@x", FUTURE) and not store.answered_since("c@x", PAST)
    store.ack_result(mail_id, "ack.deferred", {}, "pending", next_attempt=FUTURE)
    assert store.due_acks() == []
    store.ack_result(mail_id, "ack.sent", {}, "sent")
    assert store.due_acks() == [] and store.answered_since("b@x", PAST) and not store.answered_since("b@x", FUTURE)


def test_the_raw_bytes_of_finished_archived_mails_are_purged_and_their_record_stays(store):
    """purge_raw drops only what is done with and older than asked; the mail's record is kept."""
    finished, open_mail = _mail(store, 1), _mail(store, 2)
    store.update(finished, "mail.archived", {}, state="ignored", archived_to="Ignored")
    assert store.purge_raw(PAST) == 0
    assert store.purge_raw(FUTURE) == 1
    assert store.raw("01" * 32) is None and store.raw("02" * 32) == b"raw 2"
    assert store.get(finished).state == "ignored" and store.get(open_mail).state == "received"


def test_pause_flags_and_mailbox_positions_are_kept(store):
    """A pause until resumed, named flags until cleared, and a mailbox's UIDVALIDITY and last UID."""
    assert store.paused() is None and not store.resume()
    store.pause("flood")
    assert store.paused() == "flood"
    assert store.resume() and store.paused() is None
    store.set_flags(smtp_down="2026-01-01", other="x")
    store.set_flags(other=None)
    assert (store.flag("smtp_down"), store.flag("other")) == ("2026-01-01", None)
    assert store.mailbox_position("INBOX") is None
    store.set_mailbox_position("INBOX", 7, 10)
    store.set_mailbox_position("INBOX", 7, 12)
    assert store.mailbox_position("INBOX") == (7, 12)


def test_the_queues_count_what_waits_and_not_what_an_editor_released(store):
    """A quarantined mail is in the quarantine queue and its counts until an editor's request takes it out."""
    first, second, review = _mail(store, 1), _mail(store, 2), _mail(store, 3)
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
    assert [record.subject for record in store.queue("review")] == ["subject 3"]
    assert [record.id for record in store.requested()] == [first]


def test_every_record_is_numbered_and_chained_and_the_head_is_the_last(store, where):
    """Each write appends its records numbered 1..n, each hash chained to the one before; the head says so."""
    mail_id = _mail(store, 1)
    store.update(mail_id, "mail.decided", {"route": "desk", "umlaut": "Bewerbung für Öl"}, state="decided")
    store.event(None, "config.reloaded", {"version": "abc"})
    store.pause("why")
    rows = event_rows(where)
    assert [row[3] for row in rows] == ["mail.received", "mail.decided", "config.reloaded", "relay.paused"]
    assert chain_breaks(rows) == []
    assert store.audit_head() == (4, rows[-1][5])


def test_a_read_only_store_reads_what_the_service_recorded(store, where):
    """A store opened read-only beside the service's sees its mails, records and flags."""
    mail_id = _mail(store, 1)
    store.pause("flood")
    reader = open_store(where, read_only=True)
    try:
        assert reader.get(mail_id) == store.get(mail_id) and reader.raw("01" * 32) == b"raw 1"
        assert reader.paused() == "flood" and reader.audit_head() == store.audit_head()
    finally:
        reader.close()


# The SQLite file


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


# PostgreSQL


def _appending(store, writer: str, count: int, failures: list) -> None:
    try:
        for number in range(count):
            if number % 5 == 0:
                store.add_mail(f"{writer}{number:04d}".ljust(64, "0"), f"<{writer}{number}@x>", "k", "a@x", "s", b"r")
            else:
                store.event(None, "test.appended", {"writer": writer, "number": number})
    except Exception as error:  # the main thread reports it
        failures.append(error)


def test_two_stores_appending_at_once_keep_the_trail_gapless_and_chained(postgres_url):
    """Two nodes' stores writing records at the same time: numbered 1..n without a gap, each chained."""
    stores = [open_store(postgres_url), open_store(postgres_url)]
    failures: list[Exception] = []
    threads = [threading.Thread(target=_appending, args=(store, writer, 150, failures))
               for store, writer in zip(stores, "ab")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert failures == []
    rows = event_rows(postgres_url)
    assert [row[0] for row in rows] == list(range(1, 301)) and chain_breaks(rows) == []
    assert stores[0].audit_head() == stores[1].audit_head() == (300, rows[-1][5])
    for writer in "ab":  # each writer's records in the order it wrote them
        numbers = [detail["number"] for detail in map(json.loads, (row[4] for row in rows))
                   if detail.get("writer") == writer]
        assert len(numbers) == 120 and numbers == sorted(numbers)
    for store in stores:
        store.close()


def _counts(url: str) -> tuple[int, int, int]:
    with psycopg.connect(url) as db:
        return db.execute("SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM mails),"
                          " (SELECT count(*) FROM flags)").fetchone()


def test_a_store_fenced_by_an_older_epoch_records_nothing(postgres_url):
    """Once the lease row holds another epoch, every write of a store holding the old one raises LeaseLost
    and leaves no trace; a store with the row's epoch writes."""
    store = open_store(postgres_url)
    mail_id = _mail(store, 1)
    store.epoch = 1
    with psycopg.connect(postgres_url, autocommit=True) as db:
        db.execute("UPDATE lease SET epoch = 5")
    before = _counts(postgres_url)
    writes = [lambda: _mail(store, 2), lambda: store.update(mail_id, "mail.decided", {}, state="decided"),
              lambda: store.event(None, "config.reloaded", {}), lambda: store.pause("flood"),
              lambda: store.set_flags(smtp_down="now"), lambda: store.set_mailbox_position("INBOX", 1, 2),
              lambda: store.ack_result(mail_id, "ack.sent", {}, "sent")]
    for write in writes:
        with pytest.raises(LeaseLost):
            write()
    assert _counts(postgres_url) == before and store.get(mail_id).state == "received"
    assert store.mailbox_position("INBOX") is None
    store.epoch = 5
    store.event(None, "config.reloaded", {})
    assert _counts(postgres_url)[0] == before[0] + 1
    store.close()


def test_a_read_only_store_does_not_create_the_tables_in_an_empty_database(postgres_url):
    """Opening read-only never makes a state where none was: reading an empty database fails."""
    reader = open_store(postgres_url, read_only=True)
    with pytest.raises(psycopg.errors.UndefinedTable):
        reader.find("x")
    reader.close()
    with psycopg.connect(postgres_url) as db:
        assert db.execute("SELECT to_regclass('mails')").fetchone() == (None,)


def test_a_cut_connection_fails_one_call_and_the_next_reconnects(postgres_url):
    """When the server ends the store's session, the next call raises StoreUnavailable and the one after
    opens a new session and works; for a write too."""
    store = open_store(postgres_url)
    mail_id = _mail(store, 1)
    for call in (lambda: store.get(mail_id), lambda: store.event(mail_id, "mail.noted", {})):
        pid = store._query("SELECT pg_backend_pid() AS pid")[0]["pid"]
        with psycopg.connect(postgres_url, autocommit=True) as db:
            assert db.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone() == (True,)
        with pytest.raises(StoreUnavailable):
            call()
        call()
        assert store._query("SELECT pg_backend_pid() AS pid")[0]["pid"] != pid
    assert chain_breaks(event_rows(postgres_url)) == [] and store.audit_head()[0] == 2
    store.close()

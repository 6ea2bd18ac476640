"""The state and audit trail in one SQLite file: the embedded default store."""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sqlite3
import threading
from pathlib import Path
from typing import Iterator

from mailrelay.state.records import (GENESIS, QUEUES, AlreadyRunning, MailRecord, PendingAck,
                                     event_hash, now_iso)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS mails (
    id INTEGER PRIMARY KEY,
    sha256 TEXT NOT NULL UNIQUE,
    message_id TEXT NOT NULL,
    source_key TEXT NOT NULL,
    from_address TEXT NOT NULL,
    subject TEXT NOT NULL,
    state TEXT NOT NULL,
    kind TEXT, sender TEXT, level TEXT, country TEXT,
    route TEXT, rule TEXT, rules_version TEXT, reason TEXT,
    forward_message_id TEXT,
    archived_to TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt TEXT,
    tries INTEGER NOT NULL DEFAULT 0,
    forwarded_at TEXT,
    first_seen TEXT NOT NULL,
    updated TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS mails_state ON mails(state);
CREATE INDEX IF NOT EXISTS mails_message_id ON mails(message_id);
CREATE INDEX IF NOT EXISTS mails_from ON mails(from_address, state);
CREATE TABLE IF NOT EXISTS raw_mails (
    sha256 TEXT PRIMARY KEY,
    stored_at TEXT NOT NULL,
    data BLOB NOT NULL  -- last: only there is a zeroblob() kept unmaterialised while the blob is written
);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    mail_id INTEGER REFERENCES mails(id),
    event TEXT NOT NULL,
    detail TEXT NOT NULL,
    hash TEXT
);
CREATE INDEX IF NOT EXISTS events_mail ON events(mail_id);
CREATE TABLE IF NOT EXISTS flags (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS acks (
    mail_id INTEGER PRIMARY KEY REFERENCES mails(id),
    address TEXT NOT NULL,
    message_id TEXT NOT NULL,
    data BLOB NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt TEXT,
    created TEXT NOT NULL,
    sent_at TEXT
);
CREATE INDEX IF NOT EXISTS acks_address ON acks(address);
CREATE TABLE IF NOT EXISTS mailboxes (
    name TEXT PRIMARY KEY,
    uidvalidity INTEGER NOT NULL,
    last_uid INTEGER NOT NULL
);
"""

# Columns added after the first schema, in order; _migrate adds them to older state files.
_ADDED_COLUMNS = (("next_attempt", "TEXT"), ("tries", "INTEGER NOT NULL DEFAULT 0"), ("forwarded_at", "TEXT"),
                  ("thread", "TEXT"), ("queue", "TEXT"), ("queued_at", "TEXT"), ("queue_left", "TEXT"),
                  ("queue_key", "TEXT"), ("request", "TEXT"), ("confidence", "REAL"), ("arrived", "TEXT"))
# The editors' queues: `queue` names the one a mail entered last ('quarantine' or 'review'; kept, so the
# audit can list what was sent for review), `queue_left` when an editor's release or drop took it out,
# `queue_key` where its copy lies in the quarantine mailbox, `request` a release or drop an editor asked
# for that the next poll has not yet carried out.
_WAITING = "queue = ? AND queue_left IS NULL AND request IS NULL"

# A mail the relay has not finished with: not in a final state, or not yet out of the inbox.
_OPEN = "(state NOT IN ('forwarded', 'ignored', 'quarantined') OR archived_to IS NULL)"
_BLOB_PIECE = 1024 * 1024



class SqliteStore:
    """One SQLite file; every method commits before it returns (inside a group(): when the group ends),
    so a crash loses nothing recorded."""

    def __init__(self, path: Path, read_only: bool = False):
        self.path = path
        # The daemon polls in a worker thread and records reloads from the main thread:
        # one connection, every use serialised by the lock.
        self._lock = threading.RLock()
        self._lock_file = None
        self._grouped = False  # inside group(): the records join its one transaction
        self._unsynced = True  # committed here and not yet synced (at the start: whatever came before)
        if read_only:  # for replay beside the running service; a wrong path is an error, not a new file
            self._db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, isolation_level=None, timeout=30,
                                       check_same_thread=False)
            self._db.row_factory = sqlite3.Row
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, isolation_level=None, timeout=30, check_same_thread=False)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        # Every commit survives the process being killed. What must also survive a power loss is made so
        # by sync() before each step that leaves this machine (SMTP, IMAP): one fsync there instead of one
        # per record.
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._migrate()

    def _migrate(self) -> None:
        """Add the columns a state file from an older version lacks (CREATE IF NOT EXISTS cannot)."""
        present = {row["name"] for row in self._db.execute("PRAGMA table_info(mails)")}
        for column, definition in _ADDED_COLUMNS:
            if column not in present:
                self._db.execute(f"ALTER TABLE mails ADD COLUMN {column} {definition}")
        if "queue" not in present:  # mails quarantined before the queue existed wait in it; reviews were
            # worked by mail before, so only new ones join that queue
            self._db.execute("UPDATE mails SET queue = 'quarantine', queued_at = updated WHERE state = 'quarantined'")
        raw_columns = [row["name"] for row in self._db.execute("PRAGMA table_info(raw_mails)")]
        if raw_columns[-1] != "data":  # a state file from before: the bytes column moves to the end
            with self._transaction():
                self._db.execute("ALTER TABLE raw_mails RENAME TO raw_mails_before")
                self._db.execute("CREATE TABLE raw_mails (sha256 TEXT PRIMARY KEY, stored_at TEXT NOT NULL,"
                                 " data BLOB NOT NULL)")
                self._db.execute("INSERT INTO raw_mails SELECT sha256, stored_at, data FROM raw_mails_before")
                self._db.execute("DROP TABLE raw_mails_before")
        self._db.execute("CREATE INDEX IF NOT EXISTS mails_thread ON mails(thread)")
        self._db.execute("CREATE INDEX IF NOT EXISTS mails_forwarded_at ON mails(forwarded_at)")
        # The queues are a few mails among many: `list`, `status` and each poll ask for them alone.
        self._db.execute("CREATE INDEX IF NOT EXISTS mails_queue ON mails(queue, queued_at) WHERE queue IS NOT NULL")
        self._db.execute("CREATE INDEX IF NOT EXISTS mails_waiting ON mails(queue, queued_at)"
                         " WHERE queue_left IS NULL AND request IS NULL")
        self._db.execute("CREATE INDEX IF NOT EXISTS mails_request ON mails(id) WHERE request IS NOT NULL")
        # The few mails not finished: what every poll asks for, whatever the number handled.
        self._db.execute(f"CREATE INDEX IF NOT EXISTS mails_open ON mails(source_key) WHERE {_OPEN}")
        if "hash" not in {row["name"] for row in self._db.execute("PRAGMA table_info(events)")}:
            with self._transaction():  # records from before the chain are chained as they are
                self._db.execute("ALTER TABLE events ADD COLUMN hash TEXT")
                previous = GENESIS
                rows = self._db.execute("SELECT * FROM events ORDER BY id").fetchall()
                for row in rows:
                    previous = event_hash(previous, row["at"], row["mail_id"], row["event"], row["detail"])
                    self._db.execute("UPDATE events SET hash = ? WHERE id = ?", (previous, row["id"]))
                if rows:  # says from where on the chain vouches for what it holds
                    self._event(None, "audit.chained", {"records_before": len(rows)})

    def sync(self) -> None:
        """Make every record committed so far durable on disk, as synchronous=FULL would at each commit:
        in WAL mode a commit is its frames in the -wal file, so syncing that file is enough."""
        wal = f"{self.path}-wal"
        with self._lock:
            if not self._unsynced:  # nothing committed here since the last sync
                return
            try:
                descriptor = os.open(wal, os.O_RDONLY)
            except FileNotFoundError:  # nothing written since the last checkpoint: all is in the main file
                self._unsynced = False
                return
            try:
                os.fsync(descriptor)
            finally:
                os.close(descriptor)
            self._unsynced = False

    @contextlib.contextmanager
    def group(self, durable: bool = False) -> Iterator[None]:
        """The records written inside share one transaction, committed when the group ends (none of them
        if it raises): one commit instead of one per record. Durable only with `durable` (then synced),
        else at the next sync(). The store's lock is held throughout, so a group is for steps that do
        not wait on the network."""
        with self._lock:
            if self._grouped:  # a group inside a group joins it
                yield
                return
            with self._transaction():
                self._grouped = True
                try:
                    yield
                finally:
                    self._grouped = False
            if durable:
                self.sync()

    def close(self) -> None:
        self._db.close()
        if self._lock_file:
            self._lock_file.close()

    def lock(self) -> None:
        """Take the instance lock: one relay per state store (and so per mailbox)."""
        handle = open(f"{self.path}.lock", "a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise AlreadyRunning(f"another mailrelay is already using {self.path}") from None
        handle.seek(0), handle.truncate(), handle.write(f"{os.getpid()}\n"), handle.flush()
        self._lock_file = handle

    def find(self, sha256: str) -> MailRecord | None:
        rows = self._query("SELECT * FROM mails WHERE sha256 = ?", (sha256,))
        return _record(rows[0]) if rows else None

    def find_copy(self, message_id: str, from_address: str, subject: str) -> MailRecord | None:
        """A mail with the same Message-ID, sender and subject: the same mail delivered again (through two
        aliases, or with other Received lines), though its bytes differ."""
        rows = self._query("SELECT * FROM mails WHERE message_id = ? AND from_address = ? AND subject = ?"
                           " ORDER BY id LIMIT 1", (message_id, from_address, subject))
        return _record(rows[0]) if rows else None

    def get(self, mail_id: int) -> MailRecord:
        return _record(self._query("SELECT * FROM mails WHERE id = ?", (mail_id,))[0])

    def find_id(self, mail_id: int) -> MailRecord | None:
        rows = self._query("SELECT * FROM mails WHERE id = ?", (mail_id,))
        return _record(rows[0]) if rows else None

    def add_mail(self, sha256: str, message_id: str, source_key: str, from_address: str, subject: str,
                 raw: bytes, thread: str | None = None, arrived: str | None = None) -> int:
        """Record a newly seen mail and keep its raw bytes; returns its id. `arrived`: when it reached the
        mailbox (IMAP INTERNALDATE), if the source can tell."""
        now = now_iso()
        with self._transaction():
            cursor = self._db.execute(
                "INSERT INTO mails (sha256, message_id, source_key, from_address, subject, state, first_seen, updated,"
                " thread, arrived) VALUES (?, ?, ?, ?, ?, 'received', ?, ?, ?, ?)",
                (sha256, message_id, source_key, from_address, subject, now, now, thread, arrived),
            )
            self._store_raw(sha256, raw, now)
            mail_id = cursor.lastrowid
            self._event(mail_id, "mail.received", {"source": source_key, "sha256": sha256})
        return mail_id

    def _store_raw(self, sha256: str, raw: bytes, now: str) -> None:
        """Write the bytes in pieces into a blob of their size: binding them whole makes SQLite copy a
        20 MB mail twice more in memory."""
        cursor = self._db.execute("INSERT OR IGNORE INTO raw_mails (sha256, stored_at, data) VALUES (?, ?, zeroblob(?))",
                                  (sha256, now, len(raw)))
        if cursor.rowcount != 1 or not raw:
            return
        view = memoryview(raw)
        with self._db.blobopen("raw_mails", "data", cursor.lastrowid) as blob:
            for offset in range(0, len(raw), _BLOB_PIECE):
                blob.write(view[offset:offset + _BLOB_PIECE])

    def update(self, mail_id: int, event: str, detail: dict, ack: PendingAck | None = None,
               **columns: object) -> None:
        """Change a mail's columns and append the event that says why, in one transaction; with `ack`,
        the acknowledgement it is to get is queued in the same transaction."""
        if columns.get("state") == "quarantined":  # whatever put it there, a quarantined mail waits for the editors
            columns.setdefault("queue", "quarantine")
            columns.setdefault("queued_at", now_iso())
            columns.setdefault("queue_left", None)
        assignments = ", ".join(f"{name} = ?" for name in columns)
        with self._transaction():
            if columns:
                self._db.execute(f"UPDATE mails SET {assignments}, updated = ? WHERE id = ?",
                                 (*columns.values(), now_iso(), mail_id))
            self._event(mail_id, event, detail)
            if ack is not None:
                self._db.execute("INSERT OR IGNORE INTO acks (mail_id, address, message_id, data, state, created)"
                                 " VALUES (?, ?, ?, ?, 'pending', ?)",
                                 (mail_id, ack.address, ack.message_id, ack.data, now_iso()))
                self._event(mail_id, "ack.queued", {"to": ack.address, "message_id": ack.message_id})

    def answered_since(self, address: str, since: str) -> bool:
        """Whether this address was answered (or has an answer queued) since `since`."""
        rows = self._query("SELECT 1 FROM acks WHERE address = ? AND (state = 'pending' OR sent_at >= ?) LIMIT 1",
                           (address, since))
        return bool(rows)

    def due_acks(self) -> list[PendingAck]:
        rows = self._query("SELECT * FROM acks WHERE state = 'pending' AND (next_attempt IS NULL OR next_attempt <= ?)"
                           " ORDER BY mail_id", (now_iso(),))
        return [PendingAck(row["mail_id"], row["address"], row["message_id"], bytes(row["data"]), row["attempts"])
                for row in rows]

    def ack_result(self, mail_id: int, event: str, detail: dict, state: str, next_attempt: str | None = None) -> None:
        """Record what became of an acknowledgement; once it is final its text is not kept."""
        with self._transaction():
            self._db.execute(
                "UPDATE acks SET state = ?, attempts = attempts + 1, next_attempt = ?,"
                " sent_at = CASE WHEN ? = 'sent' THEN ? ELSE sent_at END,"
                " data = CASE WHEN ? = 'pending' THEN data ELSE x'' END WHERE mail_id = ?",
                (state, next_attempt, state, now_iso(), state, mail_id))
            self._event(mail_id, event, detail)

    def event(self, mail_id: int | None, event: str, detail: dict) -> None:
        with self._transaction():
            self._event(mail_id, event, detail)

    def unfinished_keys(self, prefix: str) -> list[str]:
        """Source keys under `prefix` of mails not yet final and archived, and due: they are fetched again."""
        rows = self._query(
            f"SELECT source_key FROM mails INDEXED BY mails_open WHERE {_OPEN} AND substr(source_key, 1, ?) = ?"
            " AND (next_attempt IS NULL OR next_attempt <= ?)",
            (len(prefix), prefix, now_iso()),
        )
        return [row["source_key"] for row in rows]

    def left_in(self, prefix: str) -> list[MailRecord]:
        """Mails under the source key `prefix` that were never archived: the store expects them there."""
        rows = self._query("SELECT * FROM mails WHERE substr(source_key, 1, ?) = ? AND archived_to IS NULL"
                           " ORDER BY id", (len(prefix), prefix))
        return [_record(row) for row in rows]

    def raw(self, sha256: str) -> bytes | None:
        """A mail's kept bytes, or None once they were purged."""
        rows = self._query("SELECT data FROM raw_mails WHERE sha256 = ?", (sha256,))
        return bytes(rows[0]["data"]) if rows else None

    def requested(self) -> list[MailRecord]:
        """Mails with an editor's release or drop not yet carried out, in the order asked for."""
        return [_record(row) for row in self._query("SELECT * FROM mails WHERE request IS NOT NULL ORDER BY id")]

    def handled_since(self, since: str) -> list[tuple[MailRecord, bytes]]:
        """Mails first seen at or after `since` (ISO 8601, UTC) whose raw bytes are still kept."""
        rows = self._query("SELECT mails.*, raw_mails.data AS raw FROM mails JOIN raw_mails USING (sha256)"
                           " WHERE first_seen >= ? ORDER BY mails.id", (since,))
        return [(_record(row), bytes(row["raw"])) for row in rows]

    def forwards_in_thread(self, thread: str, since: str) -> int:
        """How many mails of this thread (its first Message-ID, or the mail that started it) were forwarded
        since `since`."""
        rows = self._query("SELECT count(*) AS n FROM mails WHERE (thread = ? OR message_id = ?)"
                           " AND state = 'forwarded' AND forwarded_at >= ?", (thread, thread, since))
        return rows[0]["n"]

    def forwards_from(self, from_address: str, since: str) -> int:
        """How many mails from this sender were forwarded since `since`."""
        rows = self._query("SELECT count(*) AS n FROM mails WHERE from_address = ? AND state = 'forwarded'"
                           " AND forwarded_at >= ?", (from_address, since))
        return rows[0]["n"]

    def purge_raw(self, before: str) -> int:
        """Drop the raw bytes of finished mails first seen before `before`; the metadata stays."""
        with self._transaction():
            cursor = self._db.execute(
                "DELETE FROM raw_mails WHERE sha256 IN (SELECT sha256 FROM mails WHERE first_seen < ?"
                " AND state IN ('forwarded', 'ignored', 'quarantined') AND archived_to IS NOT NULL)", (before,))
            if cursor.rowcount:
                self._event(None, "raw.purged", {"before": before, "mails": cursor.rowcount})
        return cursor.rowcount

    def paused(self) -> str | None:
        """Why forwarding is paused, or None when it is not."""
        rows = self._query("SELECT value FROM flags WHERE name = 'paused'")
        return rows[0]["value"] if rows else None

    def pause(self, reason: str) -> None:
        with self._transaction():
            self._db.execute("INSERT OR REPLACE INTO flags VALUES ('paused', ?)", (reason,))
            self._event(None, "relay.paused", {"reason": reason})

    def resume(self) -> bool:
        """Lift a pause; False when there was none."""
        with self._transaction():
            lifted = self._db.execute("DELETE FROM flags WHERE name = 'paused'").rowcount > 0
            if lifted:
                self._event(None, "relay.resumed", {})
        return lifted

    def flag(self, name: str) -> str | None:
        rows = self._query("SELECT value FROM flags WHERE name = ?", (name,))
        return rows[0]["value"] if rows else None

    def set_flags(self, **values: str | None) -> None:
        """Set (or, for None, clear) named values of the relay's health: not audit records."""
        with self._transaction():
            for name, value in values.items():
                if value is None:
                    self._db.execute("DELETE FROM flags WHERE name = ?", (name,))
                else:
                    self._db.execute("INSERT OR REPLACE INTO flags VALUES (?, ?)", (name, value))

    def mail_counts(self, since: str) -> dict:
        """Figures for the health report: mails waiting for a retry (and the oldest of them), quarantined
        since `since` and not released or dropped since, the last forward, and the editors' two queues
        now (a mail an editor released or dropped no longer counts, though the next poll carries it out)."""
        row = self._query(
            "SELECT (SELECT count(*) FROM mails WHERE state = 'retry') AS waiting,"
            " (SELECT min(first_seen) FROM mails WHERE state = 'retry') AS oldest_waiting,"
            f" (SELECT count(*) FROM mails WHERE {_WAITING} AND queued_at >= ?) AS quarantined,"
            " (SELECT max(forwarded_at) FROM mails) AS last_forward,"
            f" (SELECT count(*) FROM mails WHERE {_WAITING}) AS in_quarantine,"
            f" (SELECT count(*) FROM mails WHERE {_WAITING}) AS in_review",
            ("quarantine", since, "quarantine", "review"))[0]
        return dict(row)

    def queue(self, name: str) -> list[MailRecord]:
        """The mails waiting in the editors' queue `name` ('quarantine' or 'review'), oldest first; a mail an
        editor has released or dropped is no longer among them."""
        if name not in QUEUES:
            raise ValueError(f"no queue {name!r}: {', '.join(QUEUES)}")
        rows = self._query(f"SELECT * FROM mails WHERE {_WAITING} ORDER BY queued_at, id", (name,))
        return [_record(row) for row in rows]

    def mailbox_position(self, name: str) -> tuple[int, int] | None:
        """(UIDVALIDITY, highest UID durably recorded) for a mailbox, or None if never seen."""
        rows = self._query("SELECT uidvalidity, last_uid FROM mailboxes WHERE name = ?", (name,))
        return (rows[0]["uidvalidity"], rows[0]["last_uid"]) if rows else None

    def set_mailbox_position(self, name: str, uidvalidity: int, last_uid: int) -> None:
        with self._transaction():
            self._db.execute(
                "INSERT INTO mailboxes VALUES (?, ?, ?) ON CONFLICT(name) DO UPDATE"
                " SET uidvalidity = excluded.uidvalidity, last_uid = excluded.last_uid",
                (name, uidvalidity, last_uid),
            )

    def _query(self, query: str, args: tuple = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._db.execute(query, args).fetchall()

    def _event(self, mail_id: int | None, event: str, detail: dict) -> None:
        """Append one audit record, chained to the one before it (inside the caller's transaction)."""
        last = self._db.execute("SELECT hash FROM events ORDER BY id DESC LIMIT 1").fetchone()
        at, text = now_iso(), json.dumps(detail, ensure_ascii=False, default=str, sort_keys=True)
        digest = event_hash(last["hash"] if last else GENESIS, at, mail_id, event, text)
        self._db.execute("INSERT INTO events (at, mail_id, event, detail, hash) VALUES (?, ?, ?, ?, ?)",
                         (at, mail_id, event, text, digest))

    def audit_head(self) -> tuple[int, str]:
        """The newest audit record's number (records are numbered from 1, none removed: `audit verify`
        checks) and its hash: logged, it anchors the chain outside
        this file, so even a truncated or rewritten chain is found out by comparing with the journal."""
        rows = self._query("SELECT id, hash FROM events ORDER BY id DESC LIMIT 1")  # ids never repeat or skip
        return (rows[0]["id"], rows[0]["hash"]) if rows else (0, GENESIS)

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on error; one thread at a time. Inside a group, the
        group's transaction."""
        with self._lock:
            if self._grouped:
                yield
                return
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield
                self._db.execute("COMMIT")
                self._unsynced = True
            except BaseException:
                if self._db.in_transaction:  # SQLite may have rolled back by itself already
                    self._db.execute("ROLLBACK")
                raise


def _record(row: sqlite3.Row) -> MailRecord:
    return MailRecord(**{name: row[name] for name in MailRecord.__dataclass_fields__})

"""The audit trail read back from either store: one read-only snapshot, the `Trail`, giving plain dicts."""
from __future__ import annotations

import contextlib
import itertools
import re
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Protocol

from mailrelay.i18n import tr

if TYPE_CHECKING:
    import psycopg

LIST_COLUMNS = ("id", "first_seen", "state", "kind", "route", "from_address", "subject", "message_id")
EXPORT_COLUMNS = ("id", "at", "mail_id", "message_id", "from_address", "subject", "event", "detail", "hash")
_TABLES = ("mails", "events", "audit_head")  # what the audit reads from a PostgreSQL state database
_EXPORT = ("SELECT events.id, events.at, events.mail_id, mails.message_id, mails.from_address, mails.subject,"
           " events.event, events.detail, events.hash FROM events LEFT JOIN mails ON mails.id = events.mail_id")


class TrailError(Exception):
    """The state store is missing or unreachable, or holds no readable audit trail."""


@dataclass(frozen=True)
class MailFilter:
    """The filters of `audit list`; each given one must hold."""

    since: str | None = None
    sender: str | None = None
    desk: str | None = None
    kind: str | None = None
    state: str | None = None
    review: bool = False  # only mails sent to the editors for review (waiting or worked)


class Trail(Protocol):
    """A read-only snapshot of the audit trail and the mails it is about: every call sees the same state,
    however much the relay appends meanwhile."""

    def events(self) -> Iterator[dict]:
        """Every record (id, at, mail_id, event, detail, hash) in id order."""
        ...

    def last_issued(self) -> int:
        """The highest record number the store ever gave out: a record removed from the end still counts."""
        ...

    def mails(self, where: MailFilter) -> list[dict]:
        """The mails the filters select (LIST_COLUMNS), oldest first."""
        ...

    def find_mails(self, identifier: str) -> list[dict]:
        """Whole mail rows by Message-ID (angle brackets optional), else mail number, else sha256 prefix."""
        ...

    def events_of(self, mail_id: int) -> list[dict]:
        """One mail's records (id, at, event, detail, hash) in order."""
        ...

    def export(self, since: str | None) -> Iterator[dict]:
        """Every record at or after `since` (EXPORT_COLUMNS), oldest first, with its mail's fields."""
        ...


class _SqlTrail:
    """The queries both stores answer alike; they are written with '?' and hold no literal '?' or '%'."""

    _position = "instr"  # the function giving the 1-based position of a text in another, 0 if absent

    def _fetch(self, query: str, args: tuple = ()) -> list[dict]:
        raise NotImplementedError

    def _stream(self, query: str, args: tuple = ()) -> Iterator[dict]:
        raise NotImplementedError

    def events(self) -> Iterator[dict]:
        return self._stream("SELECT id, at, mail_id, event, detail, hash FROM events ORDER BY id")

    def mails(self, where: MailFilter) -> list[dict]:
        clauses = [(f"{column} {operator} ?", value) for column, operator, value in
                   (("first_seen", ">=", where.since), ("route", "=", where.desk), ("kind", "=", where.kind),
                    ("state", "=", where.state), ("queue", "=", "review" if where.review else None))
                   if value is not None]
        condition = " WHERE " + " AND ".join(clause for clause, _ in clauses) if clauses else ""
        mails = self._fetch(f"SELECT {', '.join(LIST_COLUMNS)} FROM mails{condition} ORDER BY id",
                            tuple(value for _, value in clauses))
        if where.sender:  # in Python: SQLite's lower() knows only ASCII
            needle = where.sender.casefold()
            mails = [mail for mail in mails if needle in mail["from_address"].casefold()]
        return mails

    def find_mails(self, identifier: str) -> list[dict]:
        """Several mails may share a Message-ID: all are returned."""
        bare = identifier.strip().removeprefix("<").removesuffix(">").strip()
        if not bare:
            return []
        rows = self._fetch(f"SELECT * FROM mails WHERE message_id = ? OR {self._position}(message_id, ?) > 0"
                           " ORDER BY id", (bare, f"<{bare}>"))
        if not rows and bare.isdigit() and int(bare) < 2 ** 63:  # beyond BIGINT no mail has that number
            rows = self._fetch("SELECT * FROM mails WHERE id = ?", (int(bare),))
        if not rows and re.fullmatch(r"[0-9a-fA-F]{8,64}", bare):
            rows = self._fetch("SELECT * FROM mails WHERE substr(sha256, 1, ?) = ? ORDER BY id",
                               (len(bare), bare.lower()))
        return rows

    def events_of(self, mail_id: int) -> list[dict]:
        return self._fetch("SELECT id, at, event, detail, hash FROM events WHERE mail_id = ? ORDER BY id", (mail_id,))

    def export(self, since: str | None) -> Iterator[dict]:
        if since:
            return self._stream(f"{_EXPORT} WHERE events.at >= ? ORDER BY events.id", (since,))
        return self._stream(f"{_EXPORT} ORDER BY events.id")


class SqliteTrail(_SqlTrail):
    """The trail in a SQLite state file, over a connection already inside its read transaction."""

    def __init__(self, db: sqlite3.Connection):
        self._db = db

    def execute(self, query: str, args: tuple = ()) -> sqlite3.Cursor:
        """Raw SQL on the snapshot, for callers from before the Trail (SQLite only; new code uses the methods)."""
        return self._db.execute(query, args)

    def last_issued(self) -> int:
        try:
            row = self._db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'events'").fetchone()
        except sqlite3.OperationalError:  # no AUTOINCREMENT table has ever been written
            return 0
        return int(row["seq"]) if row else 0

    def _fetch(self, query: str, args: tuple = ()) -> list[dict]:
        return [dict(row) for row in self._db.execute(query, args)]

    def _stream(self, query: str, args: tuple = ()) -> Iterator[dict]:
        return (dict(row) for row in self._db.execute(query, args))


class PostgresTrail(_SqlTrail):
    """The trail in a PostgreSQL state database, over a connection inside one REPEATABLE READ transaction."""

    _position = "strpos"
    _cursors = itertools.count(1)

    def __init__(self, db: "psycopg.Connection[dict[str, Any]]"):
        self._db = db

    def last_issued(self) -> int:
        # max(): the head is one row; whatever its key column is called, this reads it
        row = self._db.execute("SELECT max(last_id) AS last_id FROM audit_head").fetchone()
        return int(row["last_id"]) if row and row["last_id"] is not None else 0

    def _fetch(self, query: str, args: tuple = ()) -> list[dict]:
        return self._db.execute(query.replace("?", "%s"), args).fetchall()

    def _stream(self, query: str, args: tuple = ()) -> Iterator[dict]:
        """A server-side cursor: an export of years of records never sits whole in memory."""
        with self._db.cursor(name=f"trail_{next(self._cursors)}") as cursor:
            cursor.execute(query.replace("?", "%s"), args)
            yield from cursor


@contextlib.contextmanager
def open_sqlite_trail(path: Path) -> Iterator[SqliteTrail]:
    """A read-only connection (no lock, so it runs beside the service) inside one read transaction:
    every query sees the same snapshot while the relay goes on appending."""
    if not path.exists():
        raise TrailError(f"no state file at {path}: nothing has been recorded yet")
    db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, isolation_level=None, timeout=30)
    db.row_factory = sqlite3.Row
    try:
        db.execute("BEGIN")
        columns = {row["name"] for row in db.execute("PRAGMA table_info(events)")}
        if "hash" not in columns:
            raise TrailError(f"{path} has no hash-chained audit trail"
                             + (" yet: the relay chains it when it next starts" if columns else ""))
        yield SqliteTrail(db)
    except sqlite3.DatabaseError as error:
        raise TrailError(f"{path} is not a readable state file: {error}") from error
    finally:
        db.close()


@contextlib.contextmanager
def open_postgres_trail(conninfo: str) -> Iterator[PostgresTrail]:
    """One READ ONLY, REPEATABLE READ transaction: it takes no lock the relay waits for, and every query
    sees the snapshot of its first one while the nodes go on appending."""
    import psycopg
    from psycopg.rows import dict_row

    try:
        db = psycopg.connect(conninfo, row_factory=dict_row)
    except psycopg.Error as error:
        raise TrailError(tr(f"die Zustandsdatenbank ist nicht erreichbar: {error}",
                            f"the state database cannot be reached: {error}")) from error
    db.isolation_level, db.read_only = psycopg.IsolationLevel.REPEATABLE_READ, True
    try:
        _require_tables(db)
        yield PostgresTrail(db)
    except psycopg.Error as error:
        raise TrailError(tr(f"die Zustandsdatenbank ist nicht lesbar: {error}",
                            f"the state database cannot be read: {error}")) from error
    finally:
        db.close()


def _require_tables(db: "psycopg.Connection[dict[str, Any]]") -> None:
    present = db.execute("SELECT " + ", ".join(f"to_regclass('{name}') IS NOT NULL AS {name}" for name in _TABLES)
                         ).fetchone()
    missing = [name for name in _TABLES if not present[name]]
    if missing:
        raise TrailError(tr(f"die Zustandsdatenbank enthält keine Prüfkette (es fehlt {', '.join(missing)}):"
                            " das Relay legt sie beim ersten Start an",
                            f"the state database holds no audit trail (missing: {', '.join(missing)}):"
                            " the relay creates it when it first starts"))

"""`mailrelay migrate --from PATH --to URL`: an existing SQLite state into an empty PostgreSQL database,
with its audit chain as it is (every record's time, text and hash unchanged, so it verifies there too).

The chain is verified before (a broken one is not moved) and after (the copy must end in the same record
and hash). The SQLite file is locked for the whole move, so a relay cannot write to it meanwhile; the
copy is one transaction, so a failed move leaves the database empty and can simply be run again."""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

from mailrelay.i18n import tr

_TABLES = ("mails", "raw_mails", "events", "flags", "acks", "mailboxes")  # in this order: the references
_ROWS_PER_BATCH = 500


class MigrationError(Exception):
    """The move was refused or failed; nothing was left half-written in the target."""


@dataclass(frozen=True)
class Moved:
    counts: dict[str, int]
    records: int
    head: str

    def describe(self) -> str:
        tables = ", ".join(f"{name} {count}" for name, count in self.counts.items())
        return tr(f"übertragen: {tables}; Prüfkette unversehrt vor und nach der Übertragung ({self.records} Einträge,"
                  f" zuletzt {self.head[:16]})",
                  f"moved: {tables}; audit trail intact before and after ({self.records} records, head {self.head[:16]})")


def migrate(source: Path, conninfo: str) -> Moved:
    """Move the state at `source` into the empty database at `conninfo`; raises MigrationError."""
    from mailrelay.audit import verify
    from mailrelay.state import AlreadyRunning, StoreUnavailable
    from mailrelay.state.postgres import PostgresStore
    from mailrelay.state.sqlite import SqliteStore
    from mailrelay.state.trails import TrailError, open_postgres_trail, open_sqlite_trail

    if not source.is_file():
        raise MigrationError(tr(f"keine Zustandsdatei unter {source}", f"no state file at {source}"))
    with contextlib.ExitStack() as stack:
        sqlite = SqliteStore(source)  # brings an older file up to the current tables first
        stack.callback(sqlite.close)
        try:
            sqlite.lock()
        except AlreadyRunning:
            raise MigrationError(tr(f"ein mailrelay benutzt {source} gerade: erst den Dienst anhalten"
                                    " (systemctl stop mailrelay)",
                                    f"a mailrelay is using {source}: stop the service first")) from None
        try:
            with open_sqlite_trail(source) as trail:
                before = verify(trail)
        except TrailError as error:
            raise MigrationError(str(error)) from None
        if not before.intact:
            raise MigrationError(tr("die Prüfkette der Quelle ist nicht unversehrt, sie wird nicht übertragen:\n",
                                    "the source's audit trail is not intact; it is not moved:\n") + before.describe())
        try:
            target = PostgresStore(conninfo)
            target.prepare()
        except StoreUnavailable as error:
            raise MigrationError(str(error)) from None
        stack.callback(target.close)
        counts = _copy(sqlite, target)
        try:
            with open_postgres_trail(conninfo) as trail:
                after = verify(trail)
        except TrailError as error:
            raise MigrationError(str(error)) from None
        if not after.intact or (after.records, after.head) != (before.records, before.head):
            raise MigrationError(tr("die übertragene Prüfkette stimmt nicht mit der Quelle überein:\n",
                                    "the moved audit trail does not match the source:\n") + after.describe())
        return Moved(counts, after.records, after.head)


def _copy(sqlite, target) -> dict[str, int]:
    """Every row of every table, in one transaction of the target; refused unless the target is empty."""
    source_db = sqlite._db
    counts: dict[str, int] = {}
    with target._transaction(fenced=False) as db:
        if db.execute("SELECT (SELECT count(*) FROM mails) + (SELECT count(*) FROM events)"
                      " + (SELECT count(*) FROM flags) + (SELECT count(*) FROM mailboxes) AS n").fetchone()["n"] \
                or db.execute("SELECT last_id FROM audit_head WHERE id = 1").fetchone()["last_id"]:
            raise MigrationError(tr("die Zieldatenbank ist nicht leer: eine Übertragung geht nur in eine leere",
                                    "the target database is not empty: a state moves only into an empty one"))
        for table in _TABLES:
            columns = _shared_columns(source_db, db, table)
            listed = ", ".join(columns)
            marks = ", ".join(["%s"] * len(columns))
            cursor = source_db.execute(f"SELECT {listed} FROM {table} ORDER BY rowid")
            counts[table] = 0
            while rows := cursor.fetchmany(_ROWS_PER_BATCH):
                with db.cursor() as out:
                    out.executemany(f"INSERT INTO {table} ({listed}) VALUES ({marks})",
                                    [tuple(_value(value) for value in row) for row in rows])
                counts[table] += len(rows)
        last = source_db.execute("SELECT id, hash FROM events ORDER BY id DESC LIMIT 1").fetchone()
        issued = source_db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'events'").fetchone()
        if last is not None:
            db.execute("UPDATE audit_head SET last_id = %s, hash = %s WHERE id = 1",
                       (max(last["id"], issued["seq"] if issued else 0), last["hash"]))
        db.execute("SELECT setval(pg_get_serial_sequence('mails', 'id'), greatest(1, (SELECT max(id) FROM mails)),"
                   " (SELECT count(*) > 0 FROM mails))")
    return counts


def _shared_columns(source_db, db, table: str) -> list[str]:
    present = [row["name"] for row in source_db.execute(f"PRAGMA table_info({table})")]
    wanted = {row["column_name"] for row in db.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema()"
        " AND table_name = %s", (table,))}
    return [name for name in present if name in wanted]


def _value(value: object) -> object:
    return bytes(value) if isinstance(value, memoryview) else value

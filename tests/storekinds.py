"""The two kinds of state store in tests that run against both: the store's class, and its audit records
read from the tables themselves (not through the store under test)."""
from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

from mailrelay.state import GENESIS, event_hash


def store_class(where: Path | str) -> type:
    """The class open_store gives for a location: PostgresStore for a connection string, else SqliteStore."""
    if isinstance(where, str):
        from mailrelay.state.postgres import PostgresStore

        return PostgresStore
    from mailrelay.state.sqlite import SqliteStore

    return SqliteStore


def event_rows(where: Path | str) -> list[tuple]:
    """Every audit record as (id, at, mail_id, event, detail, hash), in id order."""
    statement = "SELECT id, at, mail_id, event, detail, hash FROM events ORDER BY id"
    if isinstance(where, str):
        import psycopg

        with psycopg.connect(where) as db:
            return db.execute(statement).fetchall()
    with contextlib.closing(sqlite3.connect(where)) as db:
        return db.execute(statement).fetchall()


def chain_breaks(rows: list[tuple]) -> list[str]:
    """What is wrong with a trail's records: a number out of 1..n, or a hash that is not its fields
    chained to the record before it. Empty for an intact trail."""
    breaks, previous = [], GENESIS
    for number, (record_id, at, mail_id, event, detail, digest) in enumerate(rows, start=1):
        if record_id != number:
            breaks.append(f"record {record_id} where {number} belongs")
        if digest != event_hash(previous, at, mail_id, event, detail):
            breaks.append(f"record {record_id} does not chain to the one before it")
        previous = digest
    return breaks

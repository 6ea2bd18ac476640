"""Which of several nodes on one PostgreSQL state acts: a session advisory lock plus a lease row.

- The advisory lock is held by the active node's lease connection. When that node dies its session ends
  and the lock is free at once: a standby that asks every second takes over within a second or two.
- The lease row (table `lease`, one row) holds an epoch that grows by one on every take-over, the holder's
  name and session, and when it last renewed (the database's clock). The active node renews it every
  failover_seconds / 6. A node that is frozen (SIGSTOP, a long pause) or cut off keeps its session, and
  so the lock, as far as the server knows: a standby that finds the row silent for failover_seconds
  ends that session (pg_terminate_backend, allowed for sessions of the same role) and takes the lock.
- Fencing: the store refuses every write whose transaction finds another epoch in the row (see
  mailrelay.state.postgres), and `check()` refuses every step that leaves the machine once the node's
  own clock says its last renewal is failover_seconds / 2 old. The holder stops acting well before a
  standby may take over: a node that wakes after losing the lease neither records, sends nor moves."""
from __future__ import annotations

import contextlib
import threading
import time
from typing import Callable

import psycopg
from psycopg.rows import dict_row

from mailrelay.logs import get_logger
from mailrelay.state.records import LeaseLost, StoreUnavailable

LOCK_KEY = 0x6D61696C  # "mail": the advisory lock of the active node (classid 0, objid this, in pg_locks)


class Lease:
    """This node's claim to act on one shared store; `acquire_once` in a standby's loop, `check` before
    each outward step, `release` on a clean stop."""

    def __init__(self, conninfo: str, node: str, failover_seconds: float,
                 on_lost: Callable[[str], None] = lambda why: None, prepare: Callable[[], None] = lambda: None):
        self.conninfo = conninfo
        self.node = node
        self.failover = failover_seconds
        self.on_lost = on_lost  # called once, from the renewing thread, when the lease is gone
        self.prepare = prepare  # makes the tables if need be (the store's first connection)
        self._unreachable: str | None = None  # the last connection error said, so it is said once
        self.epoch: int | None = None
        self.log = get_logger()
        self._db: psycopg.Connection | None = None
        self._renewed = 0.0  # time.monotonic() when the last successful renewal was begun
        self._lost: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()  # the lease connection: the renewing thread and release()

    @property
    def held(self) -> bool:
        return self.epoch is not None and self._lost is None

    def check(self) -> None:
        """Raise LeaseLost unless this node may still act: it holds the lease and renewed it within half
        the failover time (the other half is the margin before a standby may end its session)."""
        if self.epoch is None:
            raise LeaseLost("this node does not hold the lease")
        if self._lost:
            raise LeaseLost(self._lost)
        silent = time.monotonic() - self._renewed
        if silent > self.failover / 2:
            raise LeaseLost(f"the lease was last renewed {silent:.1f} s ago (allowed: {self.failover / 2:.1f} s)")

    def acquire_once(self) -> bool:
        """One attempt to become the active node; True when this node now holds the lease."""
        try:
            self.prepare()
            with self._lock:
                db = self._connect()
                if not db.execute("SELECT pg_try_advisory_lock(%s) AS got", (LOCK_KEY,)).fetchone()["got"]:
                    self._end_silent_holder(db)
                    return False
                begun = time.monotonic()
                with db.transaction():
                    before = db.execute("SELECT epoch, holder FROM lease WHERE id = 1 FOR UPDATE").fetchone()
                    epoch = db.execute(
                        "UPDATE lease SET epoch = epoch + 1, holder = %s, backend_pid = pg_backend_pid(),"
                        " since = clock_timestamp(), renewed = clock_timestamp() WHERE id = 1 RETURNING epoch",
                        (self.node,)).fetchone()["epoch"]
        except (psycopg.Error, StoreUnavailable) as error:
            self._drop_connection()
            if _first_line(error) != self._unreachable:
                self._unreachable = _first_line(error)
                self.log.warning("lease.unreachable", node=self.node, error=self._unreachable)
            return False
        self.epoch, self._renewed, self._lost, self._unreachable = epoch, begun, None, None
        self.log.info("lease.taken", node=self.node, epoch=epoch, previous_holder=before["holder"],
                      previous_epoch=before["epoch"])
        self._stop.clear()
        self._thread = threading.Thread(target=self._renew_loop, name="lease-renewal", daemon=True)
        self._thread.start()
        return True

    def holder(self) -> dict | None:
        """The lease row as the database has it (for a standby's status), or None when unreachable."""
        try:
            with self._lock:
                row = self._connect().execute(
                    "SELECT epoch, holder, since, renewed,"
                    " extract(epoch FROM clock_timestamp() - renewed)::float AS silent_seconds"
                    " FROM lease WHERE id = 1").fetchone()
        except psycopg.Error:
            self._drop_connection()
            return None
        return dict(row) if row else None

    def release(self) -> None:
        """Give the lease up on a clean stop: a standby takes over at its next attempt, not after the
        failover time."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.failover)
        epoch, self.epoch = self.epoch, None
        with self._lock:
            if epoch is not None and self._lost is None and self._db is not None:
                with contextlib.suppress(psycopg.Error):
                    self._db.execute("UPDATE lease SET renewed = NULL WHERE id = 1 AND epoch = %s", (epoch,))
                    self._db.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))
                    self.log.info("lease.released", node=self.node, epoch=epoch)
        self._drop_connection()

    # the renewing thread

    def _renew_loop(self) -> None:
        interval = self.failover / 6
        while not self._stop.wait(interval):
            begun = time.monotonic()
            try:
                with self._lock:
                    renewed = self._connect().execute(
                        "UPDATE lease SET renewed = clock_timestamp() WHERE id = 1 AND epoch = %s"
                        " AND backend_pid = pg_backend_pid() RETURNING epoch", (self.epoch,)).fetchone()
            except psycopg.errors.QueryCanceled:  # the row was busy past the statement timeout: next beat
                continue
            except psycopg.Error as error:  # the session, and with it the advisory lock, is gone
                self._lose(f"the lease connection was lost: {_first_line(error)}")
                return
            if renewed is None:
                self._lose("another node took the lease over")
                return
            self._renewed = begun

    def _lose(self, why: str) -> None:
        self._lost = why
        self._drop_connection()
        self.log.error("lease.lost", node=self.node, epoch=self.epoch, reason=why)
        self.on_lost(why)

    # the connection

    def _connect(self) -> psycopg.Connection:
        if self._db is None or self._db.closed or self._db.broken:
            timeout_ms = max(1, int(self.failover * 1000 / 4))
            self._db = psycopg.connect(self.conninfo, autocommit=True, row_factory=dict_row,
                                       options=f"-c statement_timeout={timeout_ms}")
        return self._db

    def _drop_connection(self) -> None:
        if self._db is not None:
            with contextlib.suppress(Exception):
                self._db.close()
        self._db = None

    def _end_silent_holder(self, db: psycopg.Connection) -> None:
        """End the session of a holder that has not renewed for failover_seconds: frozen or cut off, it
        keeps the advisory lock while the server believes its connection alive."""
        row = db.execute(
            "SELECT lease.holder, lease.epoch, locks.pid,"
            " extract(epoch FROM clock_timestamp() - coalesce(lease.renewed, lease.since))::float AS silent"
            " FROM lease LEFT JOIN pg_locks AS locks ON locks.locktype = 'advisory' AND locks.granted"
            " AND locks.classid = 0 AND locks.objid = %s AND locks.objsubid = 1"
            " AND locks.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
            " WHERE lease.id = 1", (LOCK_KEY,)).fetchone()
        if row is None or row["pid"] is None:
            return
        silent = row["silent"]
        if silent is not None and silent <= self.failover:
            return  # alive, or not silent for long enough yet
        db.execute("SELECT pg_terminate_backend(%s)", (row["pid"],))
        self.log.warning("lease.holder_ended", node=self.node, holder=row["holder"], epoch=row["epoch"],
                         silent_seconds=None if silent is None else round(silent, 1))


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__

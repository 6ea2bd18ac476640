"""The lease on a real PostgreSQL: one holder at a time, a take-over raises the epoch, and a holder that
lost it can neither record nor pass the check before a send."""
from __future__ import annotations

import threading
import time

import psycopg
import pytest

from mailrelay.state import LeaseLost
from mailrelay.state.lease import Lease
from mailrelay.state.postgres import PostgresStore

FAILOVER = 2.0


@pytest.fixture
def database(postgres_url):
    store = PostgresStore(postgres_url)
    store.prepare()  # the tables
    store.close()
    return postgres_url


def _lease(url: str, node: str, lost: list | None = None) -> Lease:
    return Lease(url, node, FAILOVER, on_lost=(lost.append if lost is not None else lambda why: None))


def _row(url: str) -> tuple:
    with psycopg.connect(url) as db:
        return db.execute("SELECT epoch, holder FROM lease WHERE id = 1").fetchone()


def test_one_holder_at_a_time_and_a_clean_release_hands_over_at_once(database):
    first, second = _lease(database, "a"), _lease(database, "b")
    assert first.acquire_once() and first.epoch == 1
    first.check()
    assert not second.acquire_once()
    with pytest.raises(LeaseLost):
        second.check()
    first.release()
    assert second.acquire_once() and second.epoch == 2
    assert _row(database) == (2, "b")
    second.release()


def test_a_holder_whose_session_ends_loses_the_lease_and_says_so(database):
    lost: list[str] = []
    first, second = _lease(database, "a", lost), _lease(database, "b")
    assert first.acquire_once()
    with psycopg.connect(database) as db:  # as when the node's connection is cut
        db.execute("SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND granted")
    deadline = time.monotonic() + FAILOVER * 2
    while not lost and time.monotonic() < deadline:
        time.sleep(0.05)
    assert lost, "the renewing thread noticed"
    with pytest.raises(LeaseLost):
        first.check()
    assert second.acquire_once() and second.epoch == 2
    second.release()
    first.release()


def test_a_silent_holder_is_ended_after_the_failover_time_and_fenced(database):
    """A holder that stops renewing (frozen) keeps its session; a standby ends it after failover_seconds.
    The frozen holder's own check fails already after half that time, and its store refuses to record."""
    first, second = _lease(database, "a"), _lease(database, "b")
    assert first.acquire_once()
    store = PostgresStore(database)
    store.epoch, store.lease = first.epoch, first
    store.event(None, "test.before", {})
    first._stop.set()  # the renewals stop, as in a frozen process; its session stays open
    first._thread.join()
    time.sleep(FAILOVER / 2 + 0.2)
    with pytest.raises(LeaseLost):
        store.sync()  # before a send or a move
    assert not second.acquire_once(), "not before the failover time"
    time.sleep(FAILOVER / 2 + 0.2)
    assert not second.acquire_once()  # ends the silent holder's session
    deadline = time.monotonic() + 5
    while not second.acquire_once():
        assert time.monotonic() < deadline, "the standby took over"
        time.sleep(0.1)
    assert second.epoch == 2
    records = store.audit_head()[0]
    with pytest.raises(LeaseLost):
        store.event(None, "test.after", {})
    assert store.audit_head()[0] == records, "nothing recorded by the fenced node"
    store.close()
    second.release()
    first.release()


def test_a_take_over_waits_for_a_write_in_flight_and_fences_the_next(database):
    """A write of the old holder that began before the take-over commits before the epoch moves; the
    next one is refused."""
    first = _lease(database, "a")
    assert first.acquire_once()
    store = PostgresStore(database)
    store.epoch = first.epoch
    entered, finish = threading.Event(), threading.Event()

    def slow_write():
        with store._transaction() as db:
            entered.set()
            finish.wait(5)
            store._event(db, None, "test.slow", {})

    writer = threading.Thread(target=slow_write)
    writer.start()
    entered.wait(5)
    with psycopg.connect(database, autocommit=True) as db:
        bumped = threading.Thread(target=lambda: db.execute("UPDATE lease SET epoch = epoch + 1 WHERE id = 1"))
        bumped.start()
        time.sleep(0.3)
        assert bumped.is_alive(), "the take-over waits for the write in flight"
        finish.set()
        writer.join(5)
        bumped.join(5)
    assert store.audit_head()[0] == 1
    with pytest.raises(LeaseLost):
        store.event(None, "test.after", {})
    store.close()
    first.release()

"""Take-over time: two `mailrelay run` nodes on one mailbox and one PostgreSQL state; the active one is
killed (SIGKILL) at work again and again, restarted each time as the new standby, and every kill is timed
until the other node holds the lease and until it has forwarded its first mail."""
from __future__ import annotations

import itertools
import random
import statistics
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime

import psycopg

from bench import inbox
from bench.mails import backlog
from bench.phases import Bench, Row
from bench.relayrun import relay_config, share_state
from tests.nodes import Node, forward_message_ids, forwarded_ids, lease, wait_for
from tests.servers import SmtpSink

FAILOVER_SECONDS = 30  # the default; a kill ends the session, so the lock is free without waiting for it
POLL_SECONDS = 60  # with IDLE on, as in production: new mail is fetched when Dovecot announces it
BATCH = 60  # mails appended before each kill
AT_WORK = (1, 8)  # the active node has forwarded a random number in this range of them when it is killed,
SPREAD = 0.1  # and then up to this many seconds more pass, so that kills land anywhere in a mail's handling
# (a mail takes a few milliseconds; a longer spread would let the node finish the batch before the kill)
TIMEOUT = 120.0  # seconds any one wait may take before the measurement fails
FINAL_STATES = ("forwarded", "ignored", "quarantined")


@dataclass(frozen=True)
class Kill:
    """One kill: the seconds from the SIGKILL to the new holder's `lease.taken`, to the lease row's new
    epoch as the benchmark saw it, and to the new holder's first `mail.forwarded`."""

    taken: float
    row_seen: float
    first_forward: float | None  # None: the killed node had sent every mail, nothing was left to forward


def takeover(bench: Bench) -> list[Row]:
    """Kill the active node `kills` times with mail in hand; afterwards every mail handled, none lost."""
    if bench.postgres is None:
        raise RuntimeError("PostgreSQL is not installed (apt-get install postgresql)")
    database, user = bench.postgres.database(), inbox.fresh_user("takeover")
    choose, kills, appended = random.Random(7), [], []
    mails = backlog(bench.samples, bench.sizes.kills * BATCH, tag="k")  # the sample cycled through, not its start
    with SmtpSink() as sink:
        nodes = [_node(bench, sink, database, user, name) for name in ("node-a", "node-b")]
        try:
            _start_pair(nodes, database)
            for number in range(bench.sizes.kills):
                batch = list(itertools.islice(mails, BATCH))
                at_work = (choose.randint(*AT_WORK), choose.uniform(0, SPREAD))
                kills.append(_kill_at_work(bench, nodes, database, user, batch, *at_work))
                appended += batch
                first = kills[-1].first_forward
                bench.say(f"takeover: kill {number + 1}: lease.taken after {kills[-1].taken:.2f} s, "
                          + (f"first forward after {first:.2f} s" if first is not None else "nothing left to forward"))
            check = _whole(bench, nodes, database, user, sink, appended)
        finally:
            for node in nodes:
                _end(node)
    return _rows(kills, check)


def _node(bench: Bench, sink: SmtpSink, database: str, user: str, name: str) -> Node:
    config = relay_config(bench.directory(f"takeover-{name}"), bench.dovecot, user, sink, idle=True,
                          poll_seconds=POLL_SECONDS)
    return Node(share_state(config, database, name, FAILOVER_SECONDS), name)


def _start_pair(nodes: list[Node], database: str) -> None:
    """The first node becomes active (it makes the tables), then the second stands by."""
    first, second = nodes
    first.start()
    wait_for(lambda: lease(database)["holder"] == first.name and first.saw("daemon.started"), TIMEOUT, "node-a active")
    second.start()
    wait_for(lambda: second.saw("daemon.standby"), TIMEOUT, "node-b standing by")


def _kill_at_work(bench: Bench, nodes: list[Node], database: str, user: str, batch: list[bytes],
                  forwards: int, later: float) -> Kill:
    """Append the batch, kill the holder `later` seconds after it forwarded `forwards` more mails, time the
    take-over, and start the killed node again as the standby."""
    active, standby = _roles(nodes, lease(database)["holder"])
    done = len(active.saw("mail.forwarded"))
    inbox.fill(bench.dovecot, user, batch)
    wait_for(lambda: len(active.saw("mail.forwarded")) >= done + forwards, TIMEOUT, f"{active.name} at work")
    time.sleep(later)
    epoch = lease(database)["epoch"]
    killed = time.time()
    active.kill()
    wait_for(lambda: (lease(database)["epoch"] or 0) > epoch, TIMEOUT, "the lease taken over", step=0.01)
    row_seen = time.time() - killed
    taken = wait_for(lambda: _first_after(standby, "lease.taken", killed), TIMEOUT, f"{standby.name} took the lease")
    forwarded = wait_for(lambda: _first_forward_or_none_left(bench, standby, user, killed), TIMEOUT,
                         f"{standby.name} forwarded, or found nothing left to forward")
    standing_by = len(active.saw("daemon.standby"))
    active.start()
    wait_for(lambda: len(active.saw("daemon.standby")) > standing_by, TIMEOUT, f"{active.name} standing by again")
    return Kill(taken - killed, row_seen, forwarded[0] - killed if forwarded[0] else None)


def _first_forward_or_none_left(bench: Bench, node: Node, user: str, after: float) -> tuple[float | None] | None:
    """(time of `node`'s first forward after `after`,), or (None,) once a poll of its finished after
    `after` with the inbox empty: the killed node had sent the whole batch."""
    forwarded = _first_after(node, "mail.forwarded", after)
    if forwarded is not None:
        return (forwarded,)
    if _first_after(node, "poll.finished", after) and inbox.count(bench.dovecot, user, "INBOX") == 0:
        return (None,)
    return None


def _roles(nodes: list[Node], holder: str | None) -> tuple[Node, Node]:
    active = [node for node in nodes if node.name == holder]
    if not active or not active[0].alive:
        raise RuntimeError(f"the lease names {holder!r}, not a living node")
    return active[0], next(node for node in nodes if node is not active[0])


def _first_after(node: Node, event: str, after: float) -> float | None:
    """The time of `node`'s first `event` after `after` (Unix seconds), from its log."""
    times = [datetime.fromisoformat(line["timestamp"]).timestamp() for line in node.saw(event)]
    later = [value for value in times if value > after]
    return min(later) if later else None


def _end(node: Node) -> None:
    if node.alive:
        try:
            node.stop()
        except AssertionError:  # it did not stop in time and was killed; the figures are still good
            pass


# ----------------------------------------------------------------------------- the check after the run


def _whole(bench: Bench, nodes: list[Node], database: str, user: str, sink: SmtpSink,
           appended: list[bytes]) -> dict:
    """Once the inbox is empty and every mail decided (or TIMEOUT passed): what the state says of each
    appended mail against what reached the sink and what lies in the archive folders."""
    _settle(lambda: inbox.count(bench.dovecot, user, "INBOX") == 0 and not _undecided(database, len(appended)))
    time.sleep(2)  # the record of the last move
    undecided, open_records = _undecided(database, len(appended)), _open_records(database)
    for row in (undecided + open_records)[:10]:
        bench.say(f"takeover: left open in the state (id, Message-ID, state, archived_to): {row}")
    states = _states(database)
    forwards, sent = forwarded_ids(sink), forward_message_ids(sink)
    expected = {message_id for message_id, state in states.items() if state == "forwarded"}
    archived = sum(inbox.count(bench.dovecot, user, box) for box in ("Processed", "Ignored", "Quarantine"))
    holder = next(node for node in nodes if node.name == lease(database)["holder"])
    verified = subprocess.run([sys.executable, "-m", "mailrelay", "--config", str(holder.config), "audit", "verify"],
                              capture_output=True, cwd=holder.config.parent, check=False).returncode == 0
    return {"mails": len(appended), "counts": Counter(states.values()), "archived": archived, "verified": verified,
            "undecided": len(undecided), "open": len(open_records), "inbox": inbox.count(bench.dovecot, user, "INBOX"),
            "missing": len(expected - set(forwards)), "unrecorded": len(set(forwards) - expected),
            "extra": sum(forwards.values()) - len(forwards), "renders": len(sent) - len(forwards)}


def _settle(condition) -> None:
    """Wait until the condition holds, or TIMEOUT has passed (the check then reports what is left)."""
    deadline = time.monotonic() + TIMEOUT
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.5)


def _query(database: str, statement: str) -> list[tuple]:
    with psycopg.connect(database, connect_timeout=5) as db:
        return db.execute(statement).fetchall()


def _undecided(database: str, mails: int) -> list[tuple]:
    """The mails not in a final state; a placeholder for each appended mail the state does not know."""
    rows = _query(database, "SELECT id, message_id, state, archived_to FROM mails ORDER BY id")
    return [row for row in rows if row[2] not in FINAL_STATES] + [("unknown",)] * max(0, mails - len(rows))


def _open_records(database: str) -> list[tuple]:
    """Mails decided whose move to an archive folder is not recorded (with the inbox empty: moved, and the
    node killed before it wrote that down)."""
    return [row for row in _query(database, "SELECT id, message_id, state, archived_to FROM mails ORDER BY id")
            if row[2] in FINAL_STATES and row[3] is None]


def _states(database: str) -> dict[str, str]:
    """Each mail's state by its Message-ID."""
    return dict(_query(database, "SELECT message_id, state FROM mails"))


def _rows(kills: list[Kill], check: dict) -> list[Row]:
    taken = [kill.taken for kill in kills]
    first = [kill.first_forward for kill in kills if kill.first_forward is not None]
    rows_seen = [kill.row_seen for kill in kills]
    counts = ", ".join(f"{state} {value}" for state, value in sorted(check["counts"].items()))
    left = (f"; inbox left {check['inbox']}, undecided {check['undecided']}"
            if check["inbox"] or check["undecided"] else "")
    sound = (check["missing"] == check["unrecorded"] == check["renders"] == check["undecided"] == check["inbox"] == 0
             and check["extra"] <= len(kills) and check["archived"] == check["mails"] and check["verified"])
    return [
        Row(f"take-over: kill -> lease.taken ({len(kills)} kills)", _spread(taken),
            f"< failover_seconds {FAILOVER_SECONDS} (lease row seen: {_spread(rows_seen)})",
            max(taken) < FAILOVER_SECONDS),
        Row("take-over: kill -> first forward", f"{_spread(first)} ({len(first)} kills with mail left)",
            f"IDLE on, poll_seconds {POLL_SECONDS}"),
        Row(f"take-over: {check['mails']} mails after the kills",
            f"{counts}; archived {check['archived']}; extra forwards {check['extra']}{left}",
            f"none missing ({check['missing']}), extras <= {len(kills)}, audit verify "
            f"{'ok' if check['verified'] else 'FAILED'}", sound),
        Row("take-over: moves not recorded", f"{check['open']} mail(s) archived, the state says not",
            "0 (a kill between the MOVE and its record leaves one)", check["open"] == 0),
    ]


def _spread(values: list[float]) -> str:
    if not values:
        return "none"
    return f"median {statistics.median(values):.2f} s, max {max(values):.2f} s"

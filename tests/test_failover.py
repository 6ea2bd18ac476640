"""Two or three relays on one mailbox and one PostgreSQL state: exactly one acts, another takes over when
it dies, freezes, or loses the database, and nothing is lost or forwarded twice outside the SMTP window."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from mailrelay.cli import main
from tests.helpers import REPO
from tests.nodes import (Node, active_holder, forward_message_ids, forwarded_ids, lease, scrape, shared_config,
                         wait_for)
from tests.servers import CuttingProxy, free_ports

MAILS = REPO / "mailrelay" / "demo" / "mails"
FAILOVER = 3  # seconds: short, so the tests are; the default is 30


def _backlog(count: int, tag: str) -> list[bytes]:
    """Distinct mails (their own Message-IDs): applications, an inquiry and machine mail, in turn."""
    templates = [(MAILS / name).read_bytes() for name in sorted(os.listdir(MAILS))]
    return [templates[n % len(templates)].replace(b"Message-ID: <demo-", f"Message-ID: <{tag}{n}-demo-".encode())
            for n in range(count)]


def _expected(mails: list[bytes]) -> set[str]:
    import email
    import email.policy

    return {email.message_from_bytes(m, policy=email.policy.compat32)["Message-ID"] for m in mails
            if b"Auto-Submitted" not in m}


def _fill(dovecot, user: str, mails: list[bytes]) -> None:
    with dovecot.client(user) as client:
        for data in mails:
            client.append("INBOX", data)


@pytest.fixture
def cluster(tmp_path, dovecot, imap_user, smtp_sink, postgres_url):
    """Start nodes by name on one mailbox and one database; every node is stopped at the end."""
    started: list[Node] = []

    def start(name: str, database_url: str = postgres_url, **options) -> Node:
        config = shared_config(tmp_path / name, dovecot, imap_user, smtp_sink, database_url, name,
                               failover_seconds=FAILOVER, **options)
        node = Node(config, name).start()
        started.append(node)
        return node

    yield start
    problems = []
    for node in started:  # every node, whatever one of them does
        if node.alive:
            node.signal(signal.SIGCONT)
            try:
                node.stop()
            except AssertionError as error:
                problems.append(str(error))
    assert not problems, "\n".join(problems)


def _active(nodes: list[Node], database_url: str) -> Node:
    names = {node.name: node for node in nodes if node.alive}
    return names[wait_for(lambda: active_holder(database_url, set(names)), 20, "a node holds the lease")]


def _assert_whole(dovecot, user: str, sink, mails: list[bytes], disruptions: int, config) -> dict:
    """Every mail forwarded once (a repeat only of the same forward, at most one per disruption), every
    mail out of the inbox, and the audit chain intact."""
    expected = _expected(mails)
    wait_for(lambda: set(forwarded_ids(sink)) >= expected, 60, "every mail forwarded")
    wait_for(lambda: dovecot.messages(user, "INBOX") == [], 60, "the inbox emptied")
    forwards, sent = forwarded_ids(sink), forward_message_ids(sink)
    assert set(forwards) == expected
    extra = sum(forwards.values()) - len(forwards)
    assert extra <= disruptions, f"{extra} extra forwards for {disruptions} disruptions"
    assert len(sent) == len(forwards), "a repeated forward must be the same forward (same Message-ID)"
    archived = sum(len(dovecot.messages(user, box)) for box in ("Processed", "Ignored", "Quarantine"))
    assert archived == len(mails)
    assert main(["--config", str(config), "audit", "verify"]) == 0
    return {"extra": extra}


def _status(node: Node) -> tuple[str, str]:
    """What `mailrelay status --json` on that node says: its role and the lease's holder."""
    result = subprocess.run([sys.executable, "-m", "mailrelay", "--config", str(node.config), "status", "--json"],
                            capture_output=True, text=True, cwd=node.config.parent, timeout=60)
    report = json.loads(result.stdout)
    return report["role"], report["lease"]["holder"]


def _one_active_among(nodes: list[Node], database_url: str) -> None:
    """The lease names one living node, and it is the only one whose log says it works now."""
    holder = _active(nodes, database_url)
    working = []
    for node in nodes:
        if not node.alive:
            continue
        steps = [line["event"] for line in node.events()
                 if line.get("event") in ("lease.taken", "lease.lost", "daemon.standing_down", "poll.fenced")]
        if steps and steps[-1] == "lease.taken":
            working.append(node.name)
    assert working == [holder.name]


def test_one_node_of_two_acts_and_a_kill_mid_backlog_hands_over(cluster, dovecot, imap_user, smtp_sink,
                                                                 postgres_url):
    ports = free_ports(2)
    first = cluster("node-a", metrics_port=ports[0])
    _active([first], postgres_url)
    second = cluster("node-b", metrics_port=ports[1])
    wait_for(lambda: second.saw("daemon.standby"), 20, "the second node stands by")
    assert lease(postgres_url)["holder"] == "node-a"
    assert _status(first) == ("active", "node-a") and _status(second) == ("standby", "node-a")
    wait_for(lambda: second.saw("metrics.listening"), 20, "the standby serves its metrics")
    assert (scrape(ports[0], "mailrelay_lease_held"), scrape(ports[1], "mailrelay_lease_held")) == (1, 0)
    assert scrape(ports[0], "mailrelay_lease_epoch") == 1
    mails = _backlog(80, "k")
    _fill(dovecot, imap_user, mails)
    wait_for(lambda: len(smtp_sink.received) >= 10, 60, "the active node at work")
    first.kill()
    began = time.monotonic()
    assert _active([second], postgres_url) is second
    took = time.monotonic() - began
    _assert_whole(dovecot, imap_user, smtp_sink, mails, 1, second.config)
    assert lease(postgres_url)["epoch"] == 2
    assert took < FAILOVER + 2, f"take-over after {took:.1f} s"
    _one_active_among([second], postgres_url)
    assert not second.saw("poll.fenced")
    assert (scrape(ports[1], "mailrelay_lease_held"), scrape(ports[1], "mailrelay_lease_epoch")) == (1, 2)


def test_a_frozen_node_is_fenced_when_it_wakes(cluster, dovecot, imap_user, smtp_sink, postgres_url):
    """SIGSTOP the active node for longer than the failover time: the standby ends its session and takes
    over; woken, the old node neither records, sends nor moves anything, and stands by."""
    first = cluster("node-a")
    _active([first], postgres_url)
    second = cluster("node-b")
    wait_for(lambda: second.saw("daemon.standby"), 20, "the second node stands by")
    mails = _backlog(120, "f")
    _fill(dovecot, imap_user, mails)
    wait_for(lambda: len(smtp_sink.received) >= 10, 60, "the active node at work")
    first.signal(signal.SIGSTOP)
    sent_when_frozen = len(smtp_sink.received)
    assert _active([second], postgres_url) is second
    assert second.saw("lease.holder_ended"), "the standby ended the frozen holder's session"
    wait_for(lambda: len(smtp_sink.received) > sent_when_frozen + 5, 60, "the new node at work")
    first.signal(signal.SIGCONT)
    wait_for(lambda: first.saw("daemon.standing_down"), 30, "the woken node stands down")
    _assert_whole(dovecot, imap_user, smtp_sink, mails, 1, second.config)
    _one_active_among([first, second], postgres_url)
    assert lease(postgres_url)["holder"] == "node-b"


def test_a_restart_of_the_database_under_load_loses_nothing(cluster, dovecot, imap_user, smtp_sink, postgres,
                                                          postgres_url):
    nodes = [cluster("node-a"), cluster("node-b")]
    _active(nodes, postgres_url)
    mails = _backlog(100, "r")
    _fill(dovecot, imap_user, mails)
    wait_for(lambda: len(smtp_sink.received) >= 10, 60, "a node at work")
    postgres.restart(down_seconds=2)
    active = _active(nodes, postgres_url)
    _assert_whole(dovecot, imap_user, smtp_sink, mails, 2, active.config)
    _one_active_among(nodes, postgres_url)
    assert any(node.saw("lease.lost") or node.saw("poll.failed") for node in nodes)


def test_a_node_cut_off_from_the_database_stands_by_and_another_takes_over(cluster, dovecot, imap_user,
                                                                            smtp_sink, postgres, postgres_url):
    """Three nodes; the active one reaches the database through a proxy that then cuts it off."""
    with CuttingProxy(postgres.port) as proxy:
        via_proxy = postgres_url.replace(f":{postgres.port}/", f":{proxy.port}/")
        first = cluster("node-a", database_url=via_proxy)
        _active([first], postgres_url)
        others = [cluster("node-b"), cluster("node-c")]
        for node in others:
            wait_for(lambda: node.saw("daemon.standby"), 20, f"{node.name} stands by")
        mails = _backlog(100, "c")
        _fill(dovecot, imap_user, mails)
        wait_for(lambda: len(smtp_sink.received) >= 10, 60, "the active node at work")
        proxy.refuse()
        active = _active(others, postgres_url)
        wait_for(lambda: first.saw("lease.lost") or first.saw("poll.fenced"), 30, "the cut-off node notices")
        _assert_whole(dovecot, imap_user, smtp_sink, mails, 1, active.config)
        _one_active_among([first, *others], postgres_url)
        proxy.admit()
        wait_for(lambda: len(first.saw("daemon.standby")) >= 2, 30, "the node back on the network stands by")
        _one_active_among([first, *others], postgres_url)

"""kill -9 at random moments over a backlog: nothing lost, duplicates no more than the kills; with either
state store (state_kind)."""
from __future__ import annotations

import email
import email.policy
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter

from tests.helpers import REPO
from tests.relaytest import once, write_config

MAILS = REPO / "mailrelay" / "demo" / "mails"
BACKLOG = 150
KILLS = 8


def _backlog() -> list[bytes]:
    """Distinct mails (their own Message-IDs): applications, an inquiry and machine mail, in turn."""
    templates = [(MAILS / name).read_bytes() for name in sorted(os.listdir(MAILS))]
    return [templates[n % len(templates)].replace(b"Message-ID: <demo-", f"Message-ID: <n{n}-demo-".encode())
            for n in range(BACKLOG)]


def _await_forwards(sink, count: int, process: subprocess.Popen, timeout: float = 60) -> None:
    """Until the sink has `count` forwards or the run ends: a kill then lands while the run is at work,
    however fast or slow the machine is today."""
    deadline = time.monotonic() + timeout
    while len(sink.received) < count and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)


def test_kill_9_at_random_moments_loses_nothing(tmp_path, dovecot, imap_user, smtp_sink, state_url):
    """A backlog relayed by runs killed with SIGKILL at random moments, then run to the end: every
    mail that should be forwarded is, every mail is archived, and extra copies are at most one per kill."""
    mails = _backlog()
    with dovecot.client(imap_user) as client:
        for data in mails:
            client.append("INBOX", data)
    config = write_config(tmp_path, dovecot, imap_user, smtp_sink, state_url=state_url)
    # The backlog repeats a few senders; the per-sender breaker would (rightly) stop them.
    config.write_text(config.read_text().replace('id = "test-relay"',
                                                 'id = "test-relay"\nmax_forwards_per_sender_per_hour = 1000'))
    chance = random.Random(20261128)
    kills = 0
    for _ in range(KILLS):
        process = subprocess.Popen([sys.executable, "-m", "mailrelay", "--config", str(config), "once"],
                                   cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _await_forwards(smtp_sink, len(smtp_sink.received) + chance.randint(1, 8), process)
        time.sleep(chance.uniform(0, 0.05))  # anywhere in the handling of the next mail
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            kills += 1
        process.wait(timeout=60)
    assert once(config) == 0

    forwards = Counter(email.message_from_bytes(r.data, policy=email.policy.compat32)["In-Reply-To"]
                       for r in smtp_sink.received)
    expected = {email.message_from_bytes(m, policy=email.policy.compat32)["Message-ID"] for m in mails
                if b"Auto-Submitted" not in m}
    print(f"\nkill soak: {BACKLOG} mails, {kills} kills landed, {len(smtp_sink.received)} forwards "
          f"for {len(expected)} mails, {sum(forwards.values()) - len(forwards)} extra copies")
    assert kills == KILLS, "every kill should land while a run is at work"
    assert set(forwards) == expected
    assert sum(forwards.values()) - len(forwards) <= kills
    assert dovecot.messages(imap_user, "INBOX") == []
    archived = sum(len(dovecot.messages(imap_user, box)) for box in ("Processed", "Ignored", "Quarantine"))
    assert archived == BACKLOG

"""The decider process (mailrelay/decider.py): its decisions are the relay's own, and whatever goes wrong
with it, the relay decides the mail itself."""
from __future__ import annotations

import os

from mailrelay.config import load_settings
from mailrelay.decider import AHEAD_MAX_BYTES, Ahead
from mailrelay.model import RawMail
from mailrelay.parse import parse
from mailrelay.pipeline import Identity, decide
from mailrelay.policy import load_policy
from tests.helpers import REPO

MAILS = sorted((REPO / "mailrelay" / "demo" / "mails").glob("*.eml"))


class _Policy:
    def __init__(self):
        settings = load_settings(REPO / "config" / "mailrelay.toml")
        self.current = load_policy(settings)
        self.identity = Identity.of(settings)

    def __call__(self):
        return self.current


def _raws(count: int = 12) -> list[RawMail]:
    return [RawMail(f"test:{n}", MAILS[n % len(MAILS)].read_bytes() + f"\r\nX-N: {n}\r\n".encode())
            for n in range(count)]


def _walk(ahead: Ahead, before_take=lambda n: None) -> list:
    """What the runner does: take each mail's decision first thing."""
    taken = []
    try:
        for n, (raw, decided) in enumerate(ahead):
            before_take(n)
            taken.append((raw, decided()))
    finally:
        ahead.close()
    return taken


def test_decisions_made_ahead_are_the_relays_own_and_come_in_order():
    policy = _Policy()
    raws = _raws()
    child_pids = []

    def decide_there(raw):
        child_pids.append(os.getpid())  # in the child's memory; the parent's list stays empty
        return decide(parse(raw), policy(), policy.identity)

    taken = _walk(Ahead(iter(raws), decide_there, policy))
    assert [raw.key for raw, _ in taken] == [raw.key for raw in raws]
    assert taken[0][1] is None  # the first is decided by the relay itself, while the child starts
    assert child_pids == []  # so every decision below was made in another process
    for raw, decided in taken[1:]:
        assert decided is not None, raw.key
        mine = decide(parse(raw), policy(), policy.identity)
        assert decided.decision == mine.decision and decided.inbound.message_id == mine.inbound.message_id
        assert (decided.forward is None) == (mine.forward is None)


def test_a_decider_that_dies_leaves_the_rest_of_the_poll_to_the_relay():
    policy = _Policy()
    raws = _raws(8)

    def dies_on_the_fourth(raw):
        if raw.key == "test:3":
            os._exit(9)
        return decide(parse(raw), policy(), policy.identity)

    taken = _walk(Ahead(iter(raws), dies_on_the_fourth, policy))
    assert [raw.key for raw, _ in taken] == [raw.key for raw in raws]  # nothing lost or reordered
    assert [decided is not None for _, decided in taken] == [False, True, True] + [False] * 5


def test_a_decision_that_raises_is_made_again_by_the_relay():
    policy = _Policy()

    def raises(raw):
        raise RuntimeError("template broken")

    taken = _walk(Ahead(iter(_raws(5)), raises, policy))
    assert len(taken) == 5 and all(decided is None for _, decided in taken)


def test_a_reload_in_the_poll_stops_the_decisions_made_under_the_old_rules():
    policy = _Policy()
    old = policy.current

    def reload(n):
        if n == 2:
            policy.current = load_policy(load_settings(REPO / "config" / "mailrelay.toml"))

    taken = _walk(Ahead(iter(_raws(10)), lambda raw: decide(parse(raw), old, policy.identity), policy), reload)
    decided = [d is not None for _, d in taken]
    assert decided[1] and not any(decided[2:])  # decided ahead under the old rules: made again


def test_large_mails_are_decided_by_the_relay_and_held_one_at_a_time():
    policy = _Policy()
    big = RawMail("test:big", MAILS[0].read_bytes() + b"x" * (AHEAD_MAX_BYTES + 1))
    mails = [*_raws(3), big, *_raws(3)]
    pulled: list[str] = []

    def fetch():
        for raw in mails:
            pulled.append(raw.key)
            yield raw

    seen_when_big = []

    def note(n):
        if n == 3:
            seen_when_big.append(list(pulled))

    taken = _walk(Ahead(fetch(), lambda raw: decide(parse(raw), policy(), policy.identity), policy), note)
    assert [raw.key for raw, _ in taken] == [raw.key for raw in mails]
    assert taken[3][1] is None
    assert seen_when_big == [pulled[:4]]  # nothing past the large mail was fetched while it was in hand


_KILLED_DECIDING_THE_THIRD = """
import sys
from mailrelay import pipeline
from mailrelay.cli import main
from tests.crashrun import _crash
_crash(pipeline, "classify", False, lambda inbound, *args, **kwargs: "demo-02@" in inbound.message_id)
sys.exit(main(sys.argv[1:]))
"""


def test_a_mail_that_kills_its_decider_ends_the_relay_as_it_did_before(tmp_path, dovecot, imap_user, smtp_sink):
    """The third mail is decided in the child, which dies on it; the relay decides it again itself, dies
    there too (so its tries count as ever), and the next run forwards every mail once."""
    import email
    import subprocess
    import sys

    from tests.crashrun import CRASH_EXIT
    from tests.relaytest import forwards, once, write_config

    for name in ("01-application-state-ministry.eml", "04-auto-reply-out-of-office.eml",
                 "02-application-research-institute.eml"):
        dovecot.append(imap_user, "INBOX", (REPO / "mailrelay" / "demo" / "mails" / name).read_bytes())
    config = write_config(tmp_path, dovecot, imap_user, smtp_sink)
    crashed = subprocess.run([sys.executable, "-c", _KILLED_DECIDING_THE_THIRD, "--config", str(config), "once"],
                             cwd=REPO, capture_output=True, text=True, timeout=120)
    assert crashed.returncode == CRASH_EXIT, crashed.stderr
    assert once(config) == 0
    originals = sorted(email.message_from_bytes(r.data)["In-Reply-To"] for r in forwards(smtp_sink))
    assert originals == ["<demo-01@wirtschaft.niedersachsen.de>", "<demo-02@hs-example.de>"]
    assert dovecot.messages(imap_user, "INBOX") == []


def test_a_fetch_that_fails_ahead_fails_after_the_mails_fetched_before_it():
    policy = _Policy()
    raws = _raws(3)

    def fetch():
        yield from raws
        raise ConnectionError("cut")

    taken = []
    ahead = Ahead(fetch(), lambda raw: decide(parse(raw), policy(), policy.identity), policy)
    try:
        for raw, decided in ahead:
            taken.append((raw.key, decided()))
    except ConnectionError:
        pass
    else:
        raise AssertionError("the fetch's error was not raised")
    finally:
        ahead.close()
    assert [key for key, _ in taken] == [raw.key for raw in raws]


def test_a_decider_that_hangs_is_given_up_and_the_relay_decides_itself(monkeypatch):
    import time

    from mailrelay import decider

    monkeypatch.setattr(decider, "DECISION_SECONDS", 0.5)
    policy = _Policy()

    def hangs_on_the_second(raw):
        if raw.key == "test:1":
            time.sleep(60)
        return decide(parse(raw), policy(), policy.identity)

    began = time.monotonic()
    taken = _walk(Ahead(iter(_raws(5)), hangs_on_the_second, policy))
    assert time.monotonic() - began < 10  # the hung child was not waited for, and was ended
    assert [raw.key for raw, _ in taken] == [f"test:{n}" for n in range(5)]
    assert all(decided is None for _, decided in taken)

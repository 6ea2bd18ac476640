"""Hypothesis state machine: mail arrives, polls run, crash at any step, SMTP fails; nothing is lost or doubled,
with either state store (state_kind)."""
from __future__ import annotations

import email
import email.policy
import uuid
from collections import Counter

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from mailrelay.cli import main
from tests.crashrun import STEPS, crash_point
from tests.helpers import REPO
from tests.relaytest import forwards, write_config
from tests.servers import SmtpSink

MAILS = REPO / "mailrelay" / "demo" / "mails"
PERSON = [(MAILS / name).read_bytes() for name in ("01-application-state-ministry.eml",
                                                    "02-application-research-institute.eml",
                                                    "03-inquiry-how-to-apply.eml")]
MACHINE = [(MAILS / name).read_bytes() for name in ("04-auto-reply-out-of-office.eml", "05-bounce-dsn.eml")]
MAILBOXES = ("INBOX", "Processed", "Ignored", "Quarantine")


class Crash(BaseException):
    """Stands for the process dying: not an Exception, so no handler of the relay catches it."""


def crash_at(monkeypatch, point: str, config) -> list[str]:
    """Make the step at `point` die (a store's step on the class of the store `config` names); the list
    returned names each crash, whoever catches the Crash (the command line ends any exception in one line
    and an exit code)."""
    owner, name, after = crash_point(point, config)
    original = getattr(owner, name)
    crashed: list[str] = []

    def crashing(*args, **kwargs):
        if after:
            original(*args, **kwargs)
        crashed.append(point)
        raise Crash(point)

    monkeypatch.setattr(owner, name, crashing)
    return crashed


@pytest.fixture
def machine_environment(dovecot, tmp_path_factory, state_kind, request):
    """The servers, and a new empty state's URL for each example (None: the SQLite file in its folder)."""
    new_state = request.getfixturevalue("postgres").database if state_kind == "postgres" else lambda: None
    return dovecot, tmp_path_factory, new_state


def test_relay_state_machine(machine_environment):
    """Random sequences of arrivals, polls, crashes and SMTP failures keep every promise."""
    dovecot, tmp_path_factory, new_state = machine_environment

    class RelayMachine(RuleBasedStateMachine):
        def __init__(self):
            super().__init__()
            self.user = f"t-{uuid.uuid4().hex}"
            self.sink = SmtpSink()
            self.sink.start()
            self.config = write_config(tmp_path_factory.mktemp("machine"), dovecot, self.user, self.sink,
                                       state_url=new_state())
            self.person_ids: set[str] = set()
            self.machine_ids: set[str] = set()
            self.smtp_window_crashes = 0
            self.number = 0

        def teardown(self):
            try:
                if self.number:
                    self._drain()
            finally:
                self.sink.stop()

        def _once(self) -> None:
            assert main(["--config", str(self.config), "once"]) in (0, 1)

        @rule(person=st.booleans(), which=st.integers(0, 2))
        def mail_arrives(self, person, which):
            self._arrive(person, which)

        def _arrive(self, person: bool, which: int) -> None:
            template = PERSON[which] if person else MACHINE[which % 2]
            self.number += 1
            message_id = f"<m{self.number}-{uuid.uuid4().hex[:8]}@example.org>"
            data = template.replace(b"Message-ID: <demo-", "X-Old-Id: <demo-".encode(), 1)
            data = f"Message-ID: {message_id}\r\n".encode() + data
            dovecot.append(self.user, "INBOX", data)
            (self.person_ids if person else self.machine_ids).add(message_id)

        @rule()
        def poll(self):
            self._once()

        @rule(point=st.sampled_from(sorted(STEPS)), which=st.integers(0, 2))
        def crash_and_restart(self, point, which):
            """A person's mail arrives, a poll dies at `point`, and the restarted relay polls again."""
            self._arrive(True, which)
            with pytest.MonkeyPatch.context() as monkeypatch:
                crashed = crash_at(monkeypatch, point, self.config)
                try:
                    self._once()
                except Crash:
                    pass
                if crashed and point == "after-smtp-accepted":
                    self.smtp_window_crashes += 1
            self._once()

        @rule(code=st.sampled_from([421, 451, 554]))
        def smtp_refuses_next(self, code):
            self.sink.reject_next(1, code=code)

        @invariant()
        def nothing_lost_and_no_machine_mail_forwarded(self):
            total = sum(len(dovecot.messages(self.user, box)) for box in MAILBOXES)
            assert total == len(self.person_ids) + len(self.machine_ids)
            assert not set(self._forwarded()) & self.machine_ids

        @invariant()
        def doubles_only_from_the_smtp_window(self):
            copies = Counter(self._forwarded())
            assert sum(copies.values()) - len(copies) <= self.smtp_window_crashes

        def _drain(self) -> None:
            """Polls without faults until the inbox is empty; then every person's mail went out or to quarantine."""
            for _ in range(5):
                self._once()
                if not dovecot.messages(self.user, "INBOX"):
                    break
            assert dovecot.messages(self.user, "INBOX") == []
            quarantined = {_message_id(m) for m in dovecot.messages(self.user, "Quarantine")}
            assert self.person_ids <= set(self._forwarded()) | quarantined
            self.nothing_lost_and_no_machine_mail_forwarded()
            self.doubles_only_from_the_smtp_window()

        def _forwarded(self) -> list[str]:
            return [email.message_from_bytes(r.data, policy=email.policy.compat32)["In-Reply-To"]
                    for r in forwards(self.sink)]

    RelayMachine.TestCase.settings = settings(max_examples=15, stateful_step_count=12, deadline=None,
                                              suppress_health_check=list(HealthCheck))
    RelayMachine.TestCase().runTest()


def _message_id(data: bytes) -> str:
    return email.message_from_bytes(data, policy=email.policy.compat32)["Message-ID"]

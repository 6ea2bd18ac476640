"""Killed at any step of a mail's path, the relay loses nothing and forwards nothing twice after restart;
with either state store (state_kind: each test runs with the SQLite file and with PostgreSQL)."""
from __future__ import annotations

import email
import email.policy
import subprocess
import sys
from collections import Counter

import pytest

from tests.crashrun import CRASH_EXIT, STEPS
from tests.helpers import REPO
from tests.relaytest import mail_states, once, write_config

MAILS = REPO / "mailrelay" / "demo" / "mails"
INBOX = ["01-application-state-ministry.eml", "04-auto-reply-out-of-office.eml",
         "02-application-research-institute.eml"]


def _forwards_by_original(sink) -> Counter:
    return Counter(email.message_from_bytes(r.data, policy=email.policy.compat32)["In-Reply-To"]
                   for r in sink.received)


@pytest.mark.parametrize("step", list(STEPS))
def test_crash_at_each_step_loses_nothing_and_doubles_only_in_the_smtp_window(
        step, tmp_path, dovecot, imap_user, smtp_sink, state_url):
    """After a hard exit at `step` and a restart, every mail is handled once; only a crash between SMTP
    acceptance and the record may send one forward twice, and then with the same Message-ID."""
    for name in INBOX:
        dovecot.append(imap_user, "INBOX", (MAILS / name).read_bytes())
    config = write_config(tmp_path, dovecot, imap_user, smtp_sink, state_url=state_url)
    crashed = subprocess.run([sys.executable, "-m", "tests.crashrun", step, "--config", str(config), "once"],
                             cwd=REPO, capture_output=True, text=True, timeout=120)
    assert crashed.returncode == CRASH_EXIT, crashed.stderr
    assert once(config) == 0

    forwards = _forwards_by_original(smtp_sink)
    assert set(forwards) == {"<demo-01@wirtschaft.niedersachsen.de>", "<demo-02@hs-example.de>"}
    # The crash lands on the first mail; only in the SMTP window was its forward already out.
    expected = 2 if step == "after-smtp-accepted" else 1
    assert forwards["<demo-01@wirtschaft.niedersachsen.de>"] == expected
    assert forwards["<demo-02@hs-example.de>"] == 1
    ids = {email.message_from_bytes(r.data, policy=email.policy.compat32)["Message-ID"]
           for r in smtp_sink.received}
    assert len(ids) == 2  # a doubled forward carries the same Message-ID
    assert dovecot.messages(imap_user, "INBOX") == []
    assert len(dovecot.messages(imap_user, "Processed")) == 2
    assert len(dovecot.messages(imap_user, "Ignored")) == 1

    sent = len(smtp_sink.received)
    assert once(config) == 0
    assert len(smtp_sink.received) == sent
    # Every mail is finished in the state too: a move the crash left unrecorded is recorded.
    assert all(archived for _, _, archived in mail_states(tmp_path)), mail_states(tmp_path)


def test_poison_mail_that_kills_the_process_every_time_is_quarantined_after_three_tries(
        tmp_path, dovecot, imap_user, smtp_sink, state_url):
    """A mail whose classification ends the process on every try is quarantined after three; the rest flow."""
    for name in INBOX:
        dovecot.append(imap_user, "INBOX", (MAILS / name).read_bytes())
    config = write_config(tmp_path, dovecot, imap_user, smtp_sink, state_url=state_url)
    for _ in range(3):
        crashed = subprocess.run([sys.executable, "-m", "tests.crashrun", "classified", "--config", str(config),
                                  "once"], cwd=REPO, capture_output=True, text=True, timeout=120)
        assert crashed.returncode == CRASH_EXIT, crashed.stderr
    crashed = subprocess.run([sys.executable, "-m", "tests.crashrun", "classified", "--config", str(config),
                              "once"], cwd=REPO, capture_output=True, text=True, timeout=120)
    # The fourth run quarantines the poison mail without classifying it, then classifies the next: crash.
    assert crashed.returncode == CRASH_EXIT
    assert once(config) == 0
    [quarantined] = dovecot.messages(imap_user, "Quarantine")
    assert b"<demo-01@wirtschaft.niedersachsen.de>" in quarantined
    assert set(_forwards_by_original(smtp_sink)) == {"<demo-02@hs-example.de>"}
    assert dovecot.messages(imap_user, "INBOX") == []


# Steps of a release the next poll carries out (the copy's move is ImapInbox.move_copy).
_RELEASE_STEPS = {"release-before-smtp": ("SmtpSession", "send", False),
                  "release-after-smtp-accepted": ("SmtpSession", "send", True),
                  "release-before-move": ("ImapInbox", "move_copy", False),
                  "release-after-move": ("ImapInbox", "move_copy", True)}
_CRASHING_RUN = """
import sys
from mailrelay.cli import main
from mailrelay.sources.imap import ImapInbox
from mailrelay.transports.smtp import SmtpSession
from tests.crashrun import _crash
_crash({owner}, {name!r}, {after})
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize("step", list(_RELEASE_STEPS))
def test_a_release_killed_at_any_step_is_finished_once_by_the_next_poll(step, tmp_path, dovecot, imap_user,
                                                                        smtp_sink, state_url):
    """A hard exit while a release is carried out: the restarted poll forwards it once (twice only in the SMTP
    window, with the same Message-ID) and its copy ends in the processed mailbox, the quarantine empty."""
    from mailrelay.cli import main

    rules = tmp_path / "routing.toml"
    rules.write_text((REPO / "config" / "routing.toml").read_text(encoding="utf-8").replace(
        "[[rules]]", '[[rules]]\nname = "hold"\nwhen = { domain = "niedersachsen.de" }\ndesk = "quarantine"\n\n'
        "[[rules]]", 1), encoding="utf-8")
    config = write_config(tmp_path, dovecot, imap_user, smtp_sink, rules=rules, state_url=state_url)
    dovecot.append(imap_user, "INBOX", (MAILS / INBOX[0]).read_bytes())
    assert once(config) == 0 and len(dovecot.messages(imap_user, "Quarantine")) == 1
    assert main(["--config", str(config), "quarantine", "release", "1", "--to", "desk-public"]) == 0
    owner, name, after = _RELEASE_STEPS[step]
    crashed = subprocess.run([sys.executable, "-c", _CRASHING_RUN.format(owner=owner, name=name, after=after),
                              "--config", str(config), "once"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert crashed.returncode == CRASH_EXIT, crashed.stderr
    assert once(config) == 0 and once(config) == 0
    forwards = [r for r in smtp_sink.received if r.rcpt_tos == ("desk-public@bmwi.example",)]
    assert len(forwards) == (2 if step == "release-after-smtp-accepted" else 1)
    assert len({email.message_from_bytes(r.data, policy=email.policy.compat32)["Message-ID"] for r in forwards}) == 1
    assert dovecot.messages(imap_user, "Quarantine") == [] and len(dovecot.messages(imap_user, "Processed")) == 1

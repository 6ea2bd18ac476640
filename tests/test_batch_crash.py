"""Mails are archived by batch: killed after a batch's outcomes are committed and before its move, the
relay loses nothing, and the restarted one archives that batch without sending any of it again; with
either state store (state_kind)."""
from __future__ import annotations

import email
import email.policy
import subprocess
import sys
import uuid
from collections import Counter

from tests.crashrun import CRASH_EXIT
from tests.helpers import REPO
from tests.relaytest import forwards, mail_states, once, write_config

MAILS = REPO / "mailrelay" / "demo" / "mails"
# Forwarded and ignored mails in each batch of three, so a batch moves to two mailboxes.
ARRIVALS = ["01-application-state-ministry.eml", "04-auto-reply-out-of-office.eml",
            "02-application-research-institute.eml", "06-application-from-austria.eml",
            "05-bounce-dsn.eml", "03-inquiry-how-to-apply.eml", "01-application-state-ministry.eml"]
BATCH = 3
# Dies when the move of any mail of the second batch (UIDs 4 to 6) is asked for: its outcomes are
# committed and synced by then (the relay syncs right before it moves a batch).
_KILLED_BEFORE_SECOND_MOVE = """
import sys
from mailrelay.cli import main
from mailrelay.sources.imap import ImapInbox
from tests.crashrun import _crash
_crash(ImapInbox, "archive", False, lambda inbox, keys, target: any(int(key.rsplit(":", 1)[1]) > 3 for key in keys))
sys.exit(main(sys.argv[1:]))
"""


def _arrive(dovecot, user: str) -> list[str]:
    ids = []
    for name in ARRIVALS:
        message_id = f"<batch-{uuid.uuid4().hex[:12]}@example.org>"
        data = (MAILS / name).read_bytes().replace(b"Message-ID: <", b"X-Old-Id: <", 1)
        dovecot.append(user, "INBOX", f"Message-ID: {message_id}\r\n".encode() + data)
        ids.append(message_id)
    return ids


def _forwarded_originals(sink) -> Counter:
    return Counter(email.message_from_bytes(r.data, policy=email.policy.compat32)["In-Reply-To"]
                   for r in forwards(sink))


def test_killed_between_a_batchs_commit_and_its_move_the_batch_is_archived_without_sending_again(
        tmp_path, dovecot, imap_user, smtp_sink, state_url):
    from mailrelay.cli import main

    ids = _arrive(dovecot, imap_user)
    config = write_config(tmp_path, dovecot, imap_user, smtp_sink, state_url=state_url)
    config.write_text(config.read_text().replace("[imap]\n", f"[imap]\nbatch_size = {BATCH}\n", 1))
    crashed = subprocess.run([sys.executable, "-c", _KILLED_BEFORE_SECOND_MOVE, "--config", str(config), "once"],
                             cwd=REPO, capture_output=True, text=True, timeout=120)
    assert crashed.returncode == CRASH_EXIT, crashed.stderr

    # The first batch left the inbox; the second is decided, recorded and still there; the third unread.
    states = mail_states(tmp_path)
    assert len(states) == 2 * BATCH, states
    assert all(archived for _, _, archived in states[:BATCH]), states
    assert all(state in ("forwarded", "ignored", "quarantined") and archived is None
               for state, _, archived in states[BATCH:]), states
    assert len(dovecot.messages(imap_user, "INBOX")) == len(ARRIVALS) - BATCH
    sent_before = _forwarded_originals(smtp_sink)
    assert sent_before and max(sent_before.values()) == 1

    assert once(config) == 0
    sent = _forwarded_originals(smtp_sink)
    assert max(sent.values()) == 1, sent  # nothing of the second batch went out again
    assert set(sent) - set(sent_before) <= {ids[-1]}  # only the unread third batch was new
    assert dovecot.messages(imap_user, "INBOX") == []
    assert sum(len(dovecot.messages(imap_user, box)) for box in ("Processed", "Ignored", "Quarantine")) \
        == len(ARRIVALS)
    states = mail_states(tmp_path)
    assert len(states) == len(ARRIVALS) and all(archived for _, _, archived in states), states
    assert main(["--config", str(config), "audit", "verify"]) == 0

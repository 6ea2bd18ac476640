"""Archiving by batch on IMAP: one command per target mailbox, and each mail's new key from COPYUID."""
from __future__ import annotations

import hashlib
import uuid

from mailrelay.sources.imap import _copies, _uid_set
from tests.helpers import REPO
from tests.relaytest import once, query_state, write_config


def test_copyuid_sets_are_read_pairwise_in_order():
    assert _uid_set(b"304,319:320") == [304, 319, 320]
    assert _uid_set(b"7:5") == [5, 6, 7]
    assert _copies([b"38505 304,319:320 3956:3958", b"[COPYUID 38505 321 3959] Moved"]) == \
        (38505, {304: 3956, 319: 3957, 320: 3958, 321: 3959})
    assert _copies([b"Done"]) is None


def test_a_batch_sent_to_quarantine_keeps_each_mails_own_copy(tmp_path, dovecot, imap_user, smtp_sink):
    """Five mails held by a rule leave with one move; each record names its own copy in the quarantine
    (what a release later moves on), by the COPYUID of the batch's move."""
    rules = tmp_path / "routing.toml"
    rules.write_text((REPO / "config" / "routing.toml").read_text(encoding="utf-8").replace(
        "[[rules]]", '[[rules]]\nname = "hold"\nwhen = { domain = "niedersachsen.de" }\ndesk = "quarantine"\n\n'
        "[[rules]]", 1), encoding="utf-8")
    template = (REPO / "mailrelay" / "demo" / "mails" / "01-application-state-ministry.eml").read_bytes()
    for _ in range(5):
        data = template.replace(b"Message-ID: <", b"X-Old-Id: <", 1)
        dovecot.append(imap_user, "INBOX", f"Message-ID: <{uuid.uuid4().hex}@example.org>\r\n".encode() + data)
    config = write_config(tmp_path, dovecot, imap_user, smtp_sink, rules=rules)
    assert once(config) == 0
    copies = dovecot.messages(imap_user, "Quarantine")
    assert len(copies) == 5 and dovecot.messages(imap_user, "INBOX") == []
    rows = query_state(tmp_path, "SELECT sha256, queue_key FROM mails ORDER BY id")
    assert len(rows) == 5
    for sha256, queue_key in rows:
        uid = int(queue_key.rsplit(":", 1)[1])
        assert queue_key.startswith("imap:Quarantine:")
        assert hashlib.sha256(copies[uid - 1]).hexdigest() == sha256

"""The labelled sample relayed end to end through Dovecot and aiosmtpd with the shipped policy."""
from __future__ import annotations

import email
import email.policy
import json
import sqlite3

from mailrelay.rules import load_rules
from tests.helpers import REPO
from tests.relaytest import once, write_config

MACHINE_KINDS = {"auto_reply", "bounce", "bulk", "spam"}


def _accuracy(pairs: list[tuple[object, object]]) -> float:
    return sum(found == expected for found, expected in pairs) / len(pairs)


def test_corpus_is_relayed_with_the_shipped_policy(tmp_path, dovecot, imap_user, smtp_sink, corpus_dir, capsys):
    """Route accuracy >= 95%, no machine mail forwarded, inbox emptied, a second poll sends nothing."""
    labels = [json.loads(line) for line in (corpus_dir / "labels.jsonl").read_text().splitlines() if line]
    raw = {label["file"]: (corpus_dir / label["file"]).read_bytes() for label in labels}
    with dovecot.client(imap_user) as client:
        for label in labels:
            client.append("INBOX", raw[label["file"]])
    config = write_config(tmp_path, dovecot, imap_user, smtp_sink)
    assert once(config) == 0

    desk_of_address = {address: desk.name for desk in load_rules(REPO / "config" / "routing.toml").desks.values()
                       for address in desk.addresses}
    forwarded: dict[str, str] = {}
    for received in smtp_sink.received:
        original = email.message_from_bytes(received.data, policy=email.policy.compat32)["In-Reply-To"]
        forwarded[original] = desk_of_address[received.rcpt_tos[0]]
    with sqlite3.connect(tmp_path / "state.sqlite") as db:
        rows = {message_id: (kind, sender, level, country) for kind, sender, level, country, message_id
                in db.execute("SELECT kind, sender, level, country, message_id FROM mails")}

    fields = {"kind": [], "sender": [], "level": [], "country": [], "route": []}
    machine_forwarded = []
    for label in labels:
        message_id = "".join(email.message_from_bytes(raw[label["file"]], policy=email.policy.compat32)["Message-ID"].split())
        kind, sender, level, country = rows[message_id]
        route = forwarded.get(message_id, "none")
        fields["kind"].append((kind, label["kind"]))
        fields["route"].append((route, label["route"]))
        if label["kind"] in MACHINE_KINDS and route != "none":
            machine_forwarded.append(label["file"])
        if label["kind"] in ("application", "inquiry"):
            fields["sender"].append((sender, label["sender"]))
            if label["sender"] == "public_body":  # the level is judged for public bodies only
                fields["level"].append((level, label["level"]))
            fields["country"].append((country, label["country"]))
    with capsys.disabled():
        print("\ncorpus accuracy: " + ", ".join(f"{name} {_accuracy(pairs):.1%} (n={len(pairs)})"
                                               for name, pairs in fields.items()))

    assert machine_forwarded == []
    assert _accuracy(fields["route"]) >= 0.95
    assert len(forwarded) == len(smtp_sink.received)  # no mail forwarded twice
    assert dovecot.messages(imap_user, "INBOX") == []
    sent = len(smtp_sink.received)
    assert once(config) == 0
    assert len(smtp_sink.received) == sent

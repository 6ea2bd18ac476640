"""The loop guard: the relay's own mail, and answers to it, are never forwarded."""
from __future__ import annotations

import pytest

from mailrelay.model import Action, RawMail
from mailrelay.parse import parse
from mailrelay.pipeline import Identity, loop_guard

IDENTITY = Identity("relay@clusterplattform.example", "test-relay")
BODY = b"\r\nSehr geehrte Damen und Herren, ich habe mich beworben.\r\n"


@pytest.mark.parametrize(("headers", "reason"), [
    (b"From: a@example.org\r\nX-Mailrelay-Loop: other-relay\r\n", "carries our X-Mailrelay-Loop header"),
    (b"From: Relay <RELAY@clusterplattform.example>\r\n", "sent from the relay's own address"),
    (b"From: desk@bmwi.example\r\nIn-Reply-To: <0123456789abcdef0123456789abcdef.desk-public@clusterplattform.example>\r\n",
     "answers a summary or acknowledgement the relay sent"),
    (b"From: desk@bmwi.example\r\nReferences: <x@y> <0123456789abcdef0123456789abcdef.editors@clusterplattform.example>\r\n",
     "answers a summary or acknowledgement the relay sent"),
])
def test_own_mail_and_answers_to_it_are_ignored(headers, reason):
    """Our header, our address, or a reference to one of our summaries stops the mail before classification."""
    decision = loop_guard(parse(RawMail("k", headers + BODY)), IDENTITY)
    assert decision is not None and decision.action is Action.IGNORE and decision.reason == reason


def test_a_reply_to_someone_else_passes():
    """A reply referencing another domain's Message-ID is an ordinary mail."""
    raw = b"From: a@example.org\r\nIn-Reply-To: <0123456789abcdef0123456789abcdef.x@example.org>\r\n" + BODY
    assert loop_guard(parse(RawMail("k", raw)), IDENTITY) is None

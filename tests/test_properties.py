"""Generated hostile mails through parse, classify, route and render (Hypothesis)."""
from __future__ import annotations

import email
import email.policy
from functools import lru_cache

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from mailrelay.model import RawMail
from mailrelay.parse import parse
from mailrelay.pipeline import Identity, decide
from mailrelay.policy import Policy, load_policy_files
from tests.helpers import REPO

IDENTITY = Identity("relay@clusterplattform.example", "test-relay")
SUMMARY_HEADERS = {"from", "to", "reply-to", "subject", "date", "message-id", "in-reply-to", "references",
                   "auto-submitted", "x-mailrelay-loop", "mime-version", "content-type"}


@lru_cache(maxsize=1)
def policy() -> Policy:
    return load_policy_files(REPO / "config" / "routing.toml", REPO / "config" / "signals.toml", REPO / "templates")


# Header values an attacker controls: line breaks, encoded words (some decoding to CR/LF), non-ASCII, NUL.
nasty_text = st.lists(st.sampled_from(list("aZ <>@\"',;:=?\r\n\t\x00äü€") + [
    "=?utf-8?q?x=0D=0ABcc=3A_a=40evil.example?=", "=?utf-8?b?/////w==?=", "Bcc: a@evil.example",
    "\r\nTo: b@evil.example", "beworben", "Ministerium", "+49 30 1234", "{{ 7*7 }}"]), max_size=12).map("".join)
body_text = st.text(max_size=300)


def _mail(from_name: str, subject: str, reply_name: str, message_id: str, body: str, charset: str) -> bytes:
    lines = [f"From: {from_name} <a@example.de>", "To: info@clusterplattform.de", f"Subject: {subject}",
             f"Reply-To: {reply_name} <r@example.de>", f"Message-ID: {message_id}", "MIME-Version: 1.0",
             f"Content-Type: text/plain; charset={charset}", "",
             # A person's application, so that most examples are forwarded and their summary checked.
             "Sehr geehrte Damen und Herren, ich habe mich für die Cluster-Expertengruppe beworben.", body]
    return "\r\n".join(lines).encode("utf-8", "surrogateescape")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=3000))
def test_parse_never_raises_on_arbitrary_bytes(data):
    """Any bytes at all give a parsed value with their hash; nothing raises."""
    inbound = parse(RawMail("k", data))
    assert inbound.raw == data and len(inbound.sha256) == 64


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(nasty_text, nasty_text, nasty_text, nasty_text, body_text,
       st.sampled_from(["utf-8", "iso-8859-1", "x-unknown", "\"utf-8\r\nBcc: a@evil.example\""]))
# Found by this test: an encoded word in the address part of Reply-To was decoded again, to CR/LF.
@example("", "", "@=?utf-8?q?x=0D=0ABcc=3A_a=40evil.example?=", "", "", "utf-8")
def test_summary_headers_are_only_ours_and_recipients_only_the_desk(from_name, subject, reply_name,
                                                                  message_id, body, charset):
    """Whatever the mail's headers hold, a summary has only our header names, each once, and goes to the desk."""
    processed = decide(parse(RawMail("k", _mail(from_name, subject, reply_name, message_id, body, charset))),
                       policy(), IDENTITY)
    if processed.forward is None:
        assert processed.classification is None or processed.classification.kind.is_machine \
            or processed.decision.action != "forward"
        return
    desk = policy().rules.desks[processed.forward.desk]
    assert processed.forward.recipients == desk.addresses
    head = processed.forward.data.split(b"\r\n\r\n", 1)[0]
    message = email.message_from_bytes(head + b"\r\n\r\n", policy=email.policy.compat32)
    names = [name.lower() for name in message.keys()]
    assert set(names) <= SUMMARY_HEADERS and len(names) == len(set(names))
    assert [address for _, address in email.utils.getaddresses(message.get_all("To"))] == list(desk.addresses)
    assert all(b"\n" not in line and b"\r" not in line for line in head.split(b"\r\n"))

"""Rendering the desk summary: headers, parts, the untouched original, and mail content as data only."""
from __future__ import annotations

import email
import email.policy
import re

import pytest

from mailrelay.model import Action, Decision, Evidence, RawMail
from mailrelay.parse import parse
from mailrelay.render import LOOP_HEADER, load_templates, render
from mailrelay.rules import load_rules
from tests.helpers import DATA, REPO, classification, inbound

RELAY = "relay@clusterplattform.example"


@pytest.fixture(scope="module")
def templates():
    return load_templates(REPO / "templates")


@pytest.fixture(scope="module")
def desks():
    return load_rules(REPO / "config" / "routing.toml").desks


def _forward(mail, desks, templates, desk="desk-public", reason=""):
    decision = Decision(Action.FORWARD, "public-body-germany", desk, reason, "v1")
    found = classification()
    found = type(found)(found.kind, found.sender, found.level, found.country, 0.9,
                        (Evidence("sender", "public_body", "word 'Ministerium'", "signature line 2"),))
    return render(mail, found, decision, desks[desk], templates, RELAY, "test-relay")


def _message(data: bytes):
    return email.message_from_bytes(data, policy=email.policy.default)


def test_headers_address_the_desk_and_point_replies_to_the_applicant(desks, templates):
    """From is the relay, To the desk, Reply-To the applicant; the mail is marked auto-generated."""
    forward = _forward(inbound("parse-attachment-rfc2231-umlaut-name.eml"), desks, templates)
    message = _message(forward.data)
    assert message["From"] == RELAY
    assert message["To"] == "desk-public@bmwi.example" and forward.recipients == ("desk-public@bmwi.example",)
    assert message["Reply-To"] == "Anna Schmidt <anna.schmidt@example.de>"
    assert message["Auto-Submitted"] == "auto-generated"
    assert message[LOOP_HEADER] == "test-relay"
    assert message["In-Reply-To"] == message["References"] == "<attachment-2231@example.de>"


def test_message_id_is_stable_per_original_and_desk(desks, templates):
    """Rendering the same mail again gives the same Message-ID; another desk gives another."""
    mail = inbound("parse-attachment-rfc2231-umlaut-name.eml")
    first, again = (_forward(mail, desks, templates) for _ in range(2))
    other = _forward(mail, desks, templates, desk="editors")
    assert first.message_id == again.message_id != other.message_id
    assert _message(first.data)["Message-ID"] == first.message_id
    assert re.fullmatch(r"<[0-9a-f]{32}\.desk-public@clusterplattform\.example>", first.message_id)


def test_original_is_attached_byte_for_byte(desks, templates):
    """The last part is message/rfc822 holding the original bytes (line ends as SMTP carries them)."""
    raw = (DATA / "parse-attachment-rfc2231-umlaut-name.eml").read_bytes()
    forward = _forward(parse(RawMail("k", raw)), desks, templates)
    parts = list(_message(forward.data).walk())
    assert [p.get_content_type() for p in parts[:4]] == [
        "multipart/mixed", "multipart/alternative", "text/plain", "text/html"]
    assert parts[4].get_content_type() == "message/rfc822"
    start = forward.data.index(b"Content-Type: message/rfc822")
    body = forward.data[forward.data.index(b"\r\n\r\n", start) + 4:]
    assert body.startswith(raw.replace(b"\n", b"\r\n"))


def test_summary_is_german_and_names_the_evidence(desks, templates):
    """The text part tells the desk who wrote, what kind of sender, which country and why."""
    forward = _forward(inbound("parse-attachment-rfc2231-umlaut-name.eml"), desks, templates)
    text = _message(forward.data).get_body(("plain",)).get_content()
    assert "Absenderart:   Öffentliche Stelle (Landesebene)" in text
    assert "Land:          Deutschland" in text
    assert "Absenderart:  „Ministerium“ in der Signatur" in text
    assert "signature line" not in text and "word 'Ministerium'" not in text
    assert "Bewerbung Müller.pdf (application/pdf, 52 Bytes)" in text


def test_review_reason_opens_the_summary(desks, templates):
    """A mail routed to the editors for review says why in its first line and subject, the prefix once."""
    forward = _forward(inbound("parse-html-only-with-style.eml"), desks, templates, desk="editors",
                       reason="Zur Prüfung: Herkunftsland nicht erkennbar")
    message = _message(forward.data)
    assert message["Subject"].startswith("[Prüfen] ")
    assert message.get_body(("plain",)).get_content().splitlines()[0] == "ZUR PRÜFUNG: Herkunftsland nicht erkennbar"
    assert "<strong>Zur Prüfung:</strong> Herkunftsland nicht erkennbar</p>" in message.get_body(("html",)).get_content()


def test_mail_content_is_data_never_template_or_markup(desks, templates, tmp_path):
    """Template syntax in a mail stays literal, and HTML in it is escaped in the HTML part."""
    raw = (b"From: x@example.org\r\nSubject: {{ 7 * 7 }} <script>alert(1)</script>\r\n"
           b"Message-ID: <m@example.org>\r\n\r\n{% for x in range(3) %}boom{% endfor %}\r\n")
    forward = _forward(parse(RawMail("k", raw)), desks, templates)
    message = _message(forward.data)
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert "{{ 7 * 7 }}" in text and "49" not in text and "{% for x in range(3) %}boom" in text
    assert "<script>" not in html and "&lt;script&gt;" in html


def test_header_injection_in_subject_adds_no_header(desks, templates):
    """A subject that decodes to CR/LF + Bcc does not add a recipient or a header."""
    forward = _forward(inbound("parse-subject-encoded-crlf-header-injection.eml"), desks, templates)
    message = _message(forward.data)
    assert message["Bcc"] is None
    assert forward.recipients == ("desk-public@bmwi.example",)


def test_utf8_sender_address_renders_without_reply_to(desks, templates):
    """A raw UTF-8 sender address and Message-ID render; the address is in the text, not a broken header."""
    forward = _forward(inbound("parse-utf8-sender-address-and-8bit-message-id.eml"), desks, templates)
    message = _message(forward.data)
    assert message["Reply-To"] is None
    assert "Absender:" in message.get_body(("plain",)).get_content()


def test_original_with_overlong_lines_is_attached_as_an_eml_file(desks, templates):
    """Lines over 998 bytes cannot travel as message/rfc822; the same bytes go as a base64 .eml file."""
    raw = b"From: x@example.org\r\nSubject: long\r\nMessage-ID: <l@example.org>\r\n\r\n" + b"a" * 2000 + b"\r\n"
    forward = _forward(parse(RawMail("k", raw)), desks, templates)
    part = list(_message(forward.data).walk())[-1]
    assert part.get_content_type() == "application/octet-stream"
    assert part.get_filename() == "original.eml" and part.get_payload(decode=True) == raw
    assert all(len(line) <= 998 for line in forward.data.split(b"\r\n"))

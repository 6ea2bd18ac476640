"""Parsing raw bytes into the frozen Inbound value."""
from __future__ import annotations

import hashlib

import mailparser

from mailrelay.model import RawMail
from mailrelay.parse import parse
from tests.helpers import DATA, inbound, raw_mail


def test_encoded_crlf_in_subject_becomes_one_line():
    """An RFC 2047 word that decodes to CR/LF cannot start a new header line."""
    mail = inbound("parse-subject-encoded-crlf-header-injection.eml")
    assert "\r" not in mail.subject and "\n" not in mail.subject
    assert mail.subject.startswith("Bewerbung") and "Bcc" in mail.subject


def test_sender_name_is_decoded_and_address_lowercased():
    """The From name is decoded from RFC 2047 and the address compared case-insensitively."""
    mail = inbound("parse-subject-encoded-crlf-header-injection.eml")
    assert mail.from_.name == "Jürgen Müller"
    assert mail.from_.address == "j.mueller@example.de"


def test_html_only_mail_becomes_readable_text():
    """Without a plain part, the HTML is turned into text: no tags, no style or script content."""
    mail = inbound("parse-html-only-with-style.eml")
    assert "Sehr geehrte Damen und Herren," in mail.text
    assert "Grüße" in mail.text  # windows-1252 decoded
    assert "<" not in mail.text and "color" not in mail.text and "alert" not in mail.text


def test_attachment_name_with_umlaut_and_decoded_size():
    """RFC 2231 file names are decoded and the size counts decoded bytes, not base64."""
    mail = inbound("parse-attachment-rfc2231-umlaut-name.eml")
    assert [(a.filename, a.content_type) for a in mail.attachments] == [("Bewerbung Müller.pdf", "application/pdf")]
    assert mail.attachments[0].size == 52


def test_missing_headers_give_empty_values_not_errors():
    """A mail without From, Date and Message-ID still parses, with empty values."""
    mail = inbound("parse-no-from-no-date-no-message-id.eml")
    assert (mail.from_, mail.date, mail.message_id) == (None, None, "")
    assert mail.text == "Just a body."


def test_raw_bytes_and_their_hash_are_kept():
    """The original bytes travel unchanged with their SHA-256."""
    raw = raw_mail("parse-attachment-rfc2231-umlaut-name.eml")
    mail = parse(raw)
    assert mail.raw == raw.data
    assert mail.sha256 == hashlib.sha256(raw.data).hexdigest()


def test_mail_parser_failure_falls_back_and_keeps_the_mail(monkeypatch):
    """When mail-parser raises, the stdlib parser fills in and the failure is noted on the value."""
    def broken(self, message):
        raise ValueError("simulated mail-parser bug")

    monkeypatch.setattr(mailparser.MailParser, "__init__", broken)
    mail = parse(RawMail("k", (DATA / "parse-attachment-rfc2231-umlaut-name.eml").read_bytes()))
    assert "Siehe Anhang." in mail.text
    assert mail.attachments[0].filename == "Bewerbung Müller.pdf"
    assert any("simulated mail-parser bug" in problem for problem in mail.parse_problems)


def test_garbage_bytes_do_not_raise():
    """Bytes that are not a mail at all still give a value (to be quarantined or ignored later)."""
    mail = parse(RawMail("k", b"\x00\xff\xfe garbage \x00\r\n\r\n\x80"))
    assert mail.sha256 and mail.from_ is None


def test_attachment_size_is_the_decoded_size():
    """The size shown to the desks is that of the decoded file, however its base64 lines are cut."""
    import email

    data = (DATA / "parse-attachment-rfc2231-umlaut-name.eml").read_bytes()
    part = next(p for p in email.message_from_bytes(data).walk() if p.get_filename())
    assert parse(RawMail("k", data)).attachments[0].size == len(part.get_payload(decode=True))


def test_a_subject_in_raw_utf8_is_read_as_utf8():
    """A header written in raw UTF-8 (RFC 6532) keeps its letters instead of replacement characters."""
    data = "From: A <a@example.fr>\nSubject: Réponse automatique : absent\n\nJe suis absent.\n".encode()
    assert parse(RawMail("k", data)).subject == "Réponse automatique : absent"


def test_a_forwarded_bounce_inside_a_person_mail_is_not_its_parts():
    """The parts of a message attached inside are not the mail's own: a forwarded bounce stays attached."""
    inner = (b"From: MAILER-DAEMON@example.org\nContent-Type: multipart/report; report-type=delivery-status;"
             b" boundary=in\n\n--in\nContent-Type: message/delivery-status\n\nStatus: 5.1.1\n--in--\n")
    data = (b"From: A <a@example.de>\nContent-Type: multipart/mixed; boundary=out\n\n--out\nContent-Type: text/plain\n\n"
            b"Was bedeutet das?\n--out\nContent-Type: message/rfc822\n\n" + inner + b"--out--\n")
    assert parse(RawMail("k", data)).part_types == ("multipart/mixed", "text/plain", "message/rfc822")

"""Parsing raw bytes into the frozen Inbound value."""
from __future__ import annotations

import hashlib

import mailparser
import pytest

from mailrelay.i18n import set_language
from mailrelay.model import RawMail
from mailrelay.parse import not_a_mail, parse
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


@pytest.mark.parametrize(("data", "why"), [
    (b"", "die Datei ist leer"),
    (b" \r\n\t\n", "die Datei ist leer"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "die Datei ist binär, keine Textdatei"),
    (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", "keine Kopfzeilen gefunden"),
    (b"Sehr geehrte Damen und Herren: ich bewerbe mich.\n", "keine Kopfzeilen gefunden"),
    (b"Notiz:Bewerbung\nStand:Entwurf\n\nText", "keine der Kopfzeilen einer E-Mail gefunden"),
])
def test_not_a_mail_names_why_a_file_is_no_mail(data, why):
    """Empty, binary, headerless, and header-like text without any field a mail carries: each has its reason."""
    assert not_a_mail(data).startswith(why)


@pytest.mark.parametrize("data", [
    b"From: a@example.de\n\nHallo",
    b"From anna@example.de Mon Mar  2 09:12:00 2026\nSubject: Bewerbung\n\nText",  # an mbox export
    b"    \nMIME-Version: 1.0\nDate: Sun, 16 Mar 2014 07:11:45 -0700\n\nText",  # a line of spaces first
    b"X-Spam: yes\nReceived: from mx\nSubject: Bewerbung\x00 mit NUL\n\n",  # NUL bytes, but headers
])
def test_not_a_mail_lets_a_mail_with_odd_headers_pass(data):
    """An mbox line, a leading line of spaces, NUL bytes after the headers begin: still a mail."""
    assert not_a_mail(data) is None


def test_every_sample_mail_looks_like_a_mail():
    """No shipped or test mail is taken for no mail, except the two that are meant not to be one."""
    files = sorted(DATA.glob("*.eml")) + sorted((DATA.parent.parent / "mailrelay" / "demo" / "mails").glob("*.eml"))
    refused = {path.name for path in files if not_a_mail(path.read_bytes())}
    assert len(files) > 50 and refused == {"hostile-no-headers-at-all.eml", "hostile-binary-garbage.eml"}


def test_not_a_mail_speaks_english_when_asked():
    """The reason is made in the language in force."""
    set_language("en")
    assert not_a_mail(b"") == "the file is empty"

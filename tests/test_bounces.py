"""The gated bounce detectors (mailrelay/bounces.py) answer as flufl.bounce's own scan does."""
from __future__ import annotations

import base64
import email
from pathlib import Path

from flufl.bounce import all_failures

from mailrelay import bounces
from mailrelay.parse import _POLICY
from tests.helpers import REPO

SHARED = REPO.parent / "shared" / "corpus"
DEMO = REPO / "mailrelay" / "demo" / "mails"


def _mails() -> list[Path]:
    found = sorted(DEMO.glob("*.eml"))
    for folder in (SHARED / "pool-a", SHARED / "real"):
        found += sorted(folder.rglob("*.eml")) if folder.is_dir() else []
    return found


def test_the_gated_scan_finds_what_the_library_finds_on_every_sample_mail():
    mails = _mails()
    reported = 0
    for path in mails:
        message = email.message_from_bytes(path.read_bytes(), policy=_POLICY)
        try:
            expected = all_failures(message)
        except Exception:  # the library trips over this mail: the relay treats that as no evidence
            continue
        assert bounces.failures(message) == expected, path
        reported += bool(expected[0] or expected[1])
    # The demo's bounce at least; with ../shared, the corpus's many.
    assert reported >= (20 if (SHARED / "real").is_dir() else 1)


def test_a_pattern_set_is_left_out_only_where_its_start_occurs_nowhere():
    bounce = (b"From: MAILER-DAEMON@example.org\r\nTo: a@example.org\r\nSubject: failure notice\r\n"
              b"Content-Type: text/plain\r\n\r\n"
              b"This message was created automatically by mail delivery software.\r\n\r\n"
              b"A message that you sent could not be delivered to one or more of its recipients.\r\n"
              b"  gone@example.net\r\n")
    message = email.message_from_bytes(bounce, policy=_POLICY)
    assert bounces.failures(message) == all_failures(message)
    assert bounces.failures(message)[1]  # found by the heuristic detectors
    plain = email.message_from_bytes(b"From: a@example.org\r\nSubject: hi\r\n\r\nHello\r\n", policy=_POLICY)
    assert bounces._GatedMatch(bounces._readable(plain)).PATTERNS == []
    assert bounces._GatedMatch(bounces._readable(message)).PATTERNS


def test_the_scan_reads_every_part_but_base64_bodies():
    data = base64.encodebytes(b"x" * 300).decode()
    mail = ("From: a@example.org\r\nSubject: file\r\nMIME-Version: 1.0\r\n"
            'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n'
            "Delivery to the following recipients failed.\r\n--b\r\nContent-Type: application/pdf\r\n"
            f"Content-Transfer-Encoding: base64\r\n\r\n{data}--b--\r\n").encode()
    readable = bounces._readable(email.message_from_bytes(mail, policy=_POLICY))
    assert "Delivery to the following recipients failed." in readable
    assert data.splitlines()[0] not in readable


def test_the_detectors_see_attachments_without_their_bodies_and_the_mail_keeps_them():
    data = base64.encodebytes(b"%PDF-1.4 " * 100).decode()
    mail = ("From: a@example.org\r\nSubject: file\r\nMIME-Version: 1.0\r\n"
            'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\nContent-Type: text/plain\r\n'
            "Content-Transfer-Encoding: base64\r\n\r\n" + base64.encodebytes(b"Hallo\n").decode() +
            "--b\r\nContent-Type: application/pdf\r\n"
            f"Content-Transfer-Encoding: base64\r\n\r\n{data}--b--\r\n").encode()
    message = email.message_from_bytes(mail, policy=_POLICY)
    view = bounces._without_attachment_bodies(message)
    text, pdf = view.get_payload()
    assert text.get_payload(decode=True) == b"Hallo\n"  # a text part stays: detectors decode those
    assert pdf.get_payload() == "" and pdf.get_content_type() == "application/pdf"
    assert message.get_payload()[1].get_payload(decode=True) == b"%PDF-1.4 " * 100
    plain = email.message_from_bytes(b"From: a@example.org\r\n\r\nHello\r\n", policy=_POLICY)
    assert bounces._without_attachment_bodies(plain) is plain

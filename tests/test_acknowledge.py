"""Acknowledgements to applicants, against the real Dovecot and aiosmtpd: exactly one per application,
at the return path, RFC 3834 headers, never to machine mail, lists, spam, unauthenticated senders, our
own or a desk's addresses, nor twice within the window; an answer to one produces nothing."""
from __future__ import annotations

import email
import email.policy
import json
import shutil
import subprocess
import sys

import pytest

from mailrelay.cli import main
from tests.crashrun import ACK_STEPS, CRASH_EXIT
from tests.helpers import DATA, REPO
from tests.relaytest import RELAY_ADDRESS, audit_events, forwards, once, write_config

MAILS = REPO / "mailrelay" / "demo" / "mails"
APPLICANT = "sabine.albrecht@wirtschaft.niedersachsen.de"


def _with_return_path(data: bytes, address: str) -> bytes:
    return f"Return-Path: <{address}>\r\n".encode() + data


APPLICATION = _with_return_path((MAILS / "01-application-state-ministry.eml").read_bytes(), APPLICANT)
ABROAD = _with_return_path((MAILS / "06-application-from-austria.eml").read_bytes(), "k.berger@cluster-example.at")


@pytest.fixture
def config(tmp_path, dovecot, imap_user, smtp_sink):
    return _config(tmp_path, dovecot, imap_user, smtp_sink)


def _config(tmp_path, dovecot, imap_user, smtp_sink, abroad: bool = True):
    rules = tmp_path / "routing.toml"
    text = (REPO / "config" / "routing.toml").read_text(encoding="utf-8")
    rules.write_text(text.replace("enabled = false", "enabled = true")
                     .replace("abroad = true", f"abroad = {str(abroad).lower()}"), encoding="utf-8")
    config = write_config(tmp_path, dovecot, imap_user, smtp_sink, rules=rules)
    config.write_text(config.read_text().replace('id = "test-relay"',
                                                 'id = "test-relay"\nauthserv_id = "mx.clusterplattform.de"'))
    return config


def _answers(sink, address: str | None = None) -> list:
    """What the sink received for applicants (not desks, not notes): sent from the null sender."""
    return [r for r in sink.received if r.mail_from in ("", "<>") and (address is None or address in r.rcpt_tos)]


def test_an_application_gets_exactly_one_answer_that_follows_rfc_3834(config, dovecot, imap_user, smtp_sink,
                                                                      capsys):
    dovecot.append(imap_user, "INBOX", APPLICATION)
    assert once(config) == 0 and once(config) == 0
    [answer] = _answers(smtp_sink)
    assert answer.rcpt_tos == (APPLICANT,) and len(forwards(smtp_sink)) == 2  # the summary and the answer
    message = email.message_from_bytes(answer.data, policy=email.policy.default)
    assert message["Auto-Submitted"] == "auto-replied" and message["X-Mailrelay-Loop"] == "test-relay"
    assert message["In-Reply-To"] == "<demo-01@wirtschaft.niedersachsen.de>"
    assert "<demo-01@wirtschaft.niedersachsen.de>" in message["References"]
    assert message["Subject"] == "Re: Bewerbung Cluster-Expertengruppe"
    body = message.get_body(("plain",)).get_content()
    assert "Fachreferat Cluster- und Netzwerkpolitik" in body and "@bmwi" not in body
    assert "vom 02.03.2026" in body  # the date the mail says it was written
    events = [event for _, event, _ in audit_events(config.parent)]
    assert events.index("mail.forwarded") < events.index("ack.queued") < events.index("ack.sent")
    capsys.readouterr()
    assert main(["--config", str(config), "audit", "show", "<demo-01@wirtschaft.niedersachsen.de>"]) == 0
    story = capsys.readouterr().out
    assert "ack.sent" in story and APPLICANT in story


def test_a_second_mail_from_the_same_sender_within_the_window_gets_none(config, dovecot, imap_user, smtp_sink):
    dovecot.append(imap_user, "INBOX", APPLICATION)
    assert once(config) == 0
    dovecot.append(imap_user, "INBOX", APPLICATION.replace(b"<demo-01@", b"<demo-01-again@"))
    assert once(config) == 0
    assert len(_answers(smtp_sink)) == 1
    skipped = [detail["reason"] for _, event, detail in audit_events(config.parent) if event == "ack.skipped"]
    assert skipped == [f"{APPLICANT} was answered within the last 14 days"]


def test_an_out_of_office_answer_to_our_answer_produces_nothing(config, dovecot, imap_user, smtp_sink):
    dovecot.append(imap_user, "INBOX", APPLICATION)
    assert once(config) == 0
    [answer] = _answers(smtp_sink)
    ours = email.message_from_bytes(answer.data)["Message-ID"]
    reply = (f"Return-Path: <{APPLICANT}>\r\nFrom: Sabine Albrecht <{APPLICANT}>\r\nTo: {RELAY_ADDRESS}\r\n"
             f"Subject: Abwesenheitsnotiz: Re: Bewerbung\r\nMessage-ID: <ooo-1@niedersachsen.de>\r\n"
             f"In-Reply-To: {ours}\r\nReferences: {ours}\r\n\r\n"
             "Ich bin bis Montag nicht im Haus und habe Ihre Nachricht zur Bewerbung erhalten.\r\n").encode()
    received = len(smtp_sink.received)
    dovecot.append(imap_user, "INBOX", reply)
    assert once(config) == 0
    assert len(smtp_sink.received) == received  # no summary, no answer
    assert dovecot.messages(imap_user, "Ignored") != []


def test_an_applicant_abroad_gets_the_other_text(config, dovecot, imap_user, smtp_sink):
    dovecot.append(imap_user, "INBOX", ABROAD)
    assert once(config) == 0
    [answer] = _answers(smtp_sink, "k.berger@cluster-example.at")
    body = email.message_from_bytes(answer.data, policy=email.policy.default).get_body(("plain",)).get_content()
    assert "eigene nationale Behörde" in body and "Referat" not in body
    assert [r.rcpt_tos for r in forwards(smtp_sink) if r.mail_from not in ("", "<>")] == [("redaktion@clusterplattform.example",)]


def test_answers_abroad_can_be_switched_off_and_the_mail_still_goes_to_the_editors(tmp_path, dovecot, imap_user,
                                                                                   smtp_sink):
    config = _config(tmp_path, dovecot, imap_user, smtp_sink, abroad=False)
    dovecot.append(imap_user, "INBOX", ABROAD)
    assert once(config) == 0
    assert _answers(smtp_sink) == []
    assert [r.rcpt_tos for r in forwards(smtp_sink)] == [("redaktion@clusterplattform.example",)]
    skipped = [detail["reason"] for _, event, detail in audit_events(tmp_path) if event == "ack.skipped"]
    assert skipped and "abroad" in skipped[0]


def _header(name: str, value: str):
    return lambda data: f"{name}: {value}\r\n".encode() + data


NEVER = {
    "auto-reply": (_with_return_path((MAILS / "04-auto-reply-out-of-office.eml").read_bytes(),
                                     "j.hartmann@landkreis-example.de"), "j.hartmann@landkreis-example.de"),
    "bounce": (_with_return_path((DATA / "bounce-dsn-multipart-report.eml").read_bytes(), "mailer@example.org"),
               "mailer@example.org"),
    "list mail": (_header("List-Id", "<cluster.lists.example.org>")(APPLICATION), APPLICANT),
    "bulk newsletter": (_with_return_path((DATA / "bulk-newsletter-list-unsubscribe.eml").read_bytes(),
                                          "news@example.org"), "news@example.org"),
    "spam": (_with_return_path((DATA / "spam-seo-offer-with-greeting.eml").read_bytes(), "seo@example.org"),
             "seo@example.org"),
    "empty return path": (b"Return-Path: <>\r\n" + APPLICATION.split(b"\r\n", 1)[1], APPLICANT),
    "no return path": (APPLICATION.split(b"\r\n", 1)[1], APPLICANT),
    "no-reply address": (_with_return_path(APPLICATION.split(b"\r\n", 1)[1], "noreply@niedersachsen.de"),
                         "noreply@niedersachsen.de"),
    "a desk's address": (_with_return_path(APPLICATION.split(b"\r\n", 1)[1], "redaktion@clusterplattform.example"),
                         "redaktion@clusterplattform.example"),  # the editors' desk; the mail goes to another
    "our own address": (_with_return_path(APPLICATION.split(b"\r\n", 1)[1], RELAY_ADDRESS), RELAY_ADDRESS),
    "unauthenticated": (_header("Authentication-Results",
                                "mx.clusterplattform.de; spf=fail; dkim=none; dmarc=fail")(APPLICATION), APPLICANT),
}


@pytest.mark.parametrize("case", sorted(NEVER))
def test_never_answered(case, config, dovecot, imap_user, smtp_sink):
    """Each mail that must not be answered: no mail leaves for its address, and if it was forwarded the
    skip is recorded with its reason."""
    mail, address = NEVER[case]
    dovecot.append(imap_user, "INBOX", mail)
    assert once(config) == 0
    assert [r for r in smtp_sink.received if address in r.rcpt_tos] == []
    assert _answers(smtp_sink) == []
    events = audit_events(config.parent)
    if any(event == "mail.forwarded" for _, event, _ in events):
        assert [detail["reason"] for _, event, detail in events if event == "ack.skipped"]


@pytest.mark.parametrize("step", list(ACK_STEPS))
def test_a_crash_on_the_answers_path_neither_loses_nor_doubles_it_outside_the_smtp_window(step, config, dovecot,
                                                                                       imap_user, smtp_sink):
    """Killed while an answer is queued or being sent: after a restart it is sent once; only a crash between
    the SMTP server's acceptance and the record sends it twice, with the same Message-ID."""
    dovecot.append(imap_user, "INBOX", APPLICATION)
    crashed = subprocess.run([sys.executable, "-m", "tests.crashrun", step, "--config", str(config), "once"],
                             cwd=REPO, capture_output=True, text=True, timeout=120)
    assert crashed.returncode == CRASH_EXIT, crashed.stderr
    assert once(config) == 0 and once(config) == 0
    answers = _answers(smtp_sink, APPLICANT)
    doubled = step in ("ack-after-smtp-accepted", "ack-before-record")
    assert len(answers) == (2 if doubled else 1)
    assert len({email.message_from_bytes(r.data)["Message-ID"] for r in answers}) == 1
    assert len([r for r in smtp_sink.received if r.rcpt_tos == ("desk-public@bmwi.example",)]) == 1
    assert "ack.sent" in [event for _, event, _ in audit_events(config.parent)]


def test_explain_says_whether_an_answer_would_be_sent_and_why(tmp_path, capsys):
    """With answers on, `explain` names the address and shows the text; for a mail without a return path
    it says why none would go."""
    for name in ("mailrelay.toml", "signals.toml", "reference.toml"):
        shutil.copy(REPO / "config" / name, tmp_path / name)
    shutil.copytree(REPO / "templates", tmp_path / "templates")
    (tmp_path / "mailrelay.toml").write_text((tmp_path / "mailrelay.toml").read_text().replace(
        'templates = "../templates"', 'templates = "templates"'))
    (tmp_path / "routing.toml").write_text((REPO / "config" / "routing.toml").read_text().replace(
        "enabled = false", "enabled = true"))
    (tmp_path / "with.eml").write_bytes(APPLICATION)
    (tmp_path / "without.eml").write_bytes(APPLICATION.split(b"\r\n", 1)[1])
    assert main(["--config", str(tmp_path / "mailrelay.toml"), "explain", str(tmp_path / "with.eml")]) == 0
    text = capsys.readouterr().out
    assert f"Antwort:      an {APPLICANT}" in text and "vielen Dank für Ihre Nachricht" in text  # German by default
    assert main(["--config", str(tmp_path / "mailrelay.toml"), "explain", "--json", str(tmp_path / "without.eml")]) == 0
    facts = json.loads(capsys.readouterr().out)
    assert facts["acknowledgement"] == {"send": False, "why": "no valid return path to answer"}

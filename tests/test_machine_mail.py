"""Each dialect of machine mail is recognised by its own evidence; its look-alikes in a person's mail are not."""
from __future__ import annotations

import email
import email.policy
import json
from functools import lru_cache
from pathlib import Path

import pytest

from mailrelay.model import Evidence, RawMail
from mailrelay.parse import parse
from mailrelay.pipeline import Identity, decide, judge
from mailrelay.policy import Policy, load_policy_files
from tests.helpers import DATA, REPO

REAL = REPO.parent / "shared" / "corpus" / "real"
SISIMAI = REAL / "sisimai-set-of-emails" / "maildir" / "bsd"
DISPOSABLE = REPO / "mailrelay" / "classify" / "data" / "disposable.txt"
IDENTITY = Identity("mailrelay@clusterplattform.example", "test-relay", "mx.clusterplattform.de")


@lru_cache(maxsize=1)
def shipped_policy() -> Policy:
    return load_policy_files(REPO / "config" / "routing.toml", REPO / "config" / "signals.toml", REPO / "templates")


@lru_cache(maxsize=1)
def real_labels() -> dict[str, dict]:
    lines = (REAL / "labels.jsonl").read_text(encoding="utf-8").splitlines()
    return {label["file"]: label for label in map(json.loads, filter(None, lines))}


def judged(path: Path):
    if path.is_relative_to(REAL) and not REAL.is_dir():
        pytest.skip(f"the real-mail corpus is not here: {REAL}")
    return judge(parse(RawMail(path.name, path.read_bytes())), shipped_policy(), IDENTITY)


def kind_findings(evidence: tuple[Evidence, ...], value: str, group: str | None, where: str) -> list[Evidence]:
    """The kind evidence for one value from one signal group (any group when None), seen where it says."""
    return [item for item in evidence
            if item.field == "kind" and item.value == value
            and (group is None or item.signal.split(" ", 1)[0] == group)
            and item.where.lower().startswith(where.lower())]


def disposable_listed(domain: str) -> bool:
    return DISPOSABLE.is_file() and domain in DISPOSABLE.read_text(encoding="utf-8").split()


def machine(path: Path, kind: str, group: str, where: str, name: str, **options):
    return pytest.param(path, kind, group, where, id=name, **options)


MACHINE_MAIL = [
    # auto-replies
    machine(DATA / "auto-reply-rfc3834-plain-subject.eml", "auto_reply", "kind.auto_reply", "header Auto-Submitted",
            "rfc3834-auto-submitted"),
    machine(SISIMAI / "rfc3834-01.eml", "auto_reply", "kind.auto_reply", "header Auto-Submitted",
            "real-rfc3834-auto-submitted"),
    machine(DATA / "auto-reply-x-autoreply-yes.eml", "auto_reply", "kind.auto_reply", "header X-Autoreply",
            "x-autoreply"),
    machine(DATA / "auto-reply-x-autorespond-cpanel.eml", "auto_reply", "kind.auto_reply", "header X-Autorespond",
            "x-autorespond"),
    machine(DATA / "auto-reply-precedence-auto-reply.eml", "auto_reply", "kind.auto_reply", "header Precedence",
            "precedence-auto-reply"),
    machine(DATA / "auto-reply-exchange-x-auto-response-suppress.eml", "auto_reply", "kind.auto_reply",
            "header X-Auto-Response-Suppress", "exchange-x-auto-response-suppress"),
    machine(SISIMAI / "rfc3834-02.eml", "auto_reply", "kind.auto_reply", "header X-Auto-Response-Suppress",
            "real-exchange-x-auto-response-suppress"),
    machine(DATA / "auto-reply-exchange-inbox-rules-loop.eml", "auto_reply", "kind.auto_reply",
            "header X-MS-Exchange-Inbox-Rules-Loop", "exchange-inbox-rules-loop"),
    machine(DATA / "auto-reply-exchange-online-generated-message-source.eml", "auto_reply", "kind.auto_reply",
            "header X-MS-Exchange-Generated-Message-Source", "exchange-generated-message-source"),
    machine(DATA / "auto-reply-gmail-vacation-auto-submitted-precedence-bulk.eml", "auto_reply", "kind.auto_reply",
            "header Auto-Submitted", "gmail-vacation"),
    machine(DATA / "auto-reply-zimbra-vacation.eml", "auto_reply", "kind.auto_reply", "header Auto-Submitted",
            "zimbra-vacation"),
    machine(SISIMAI / "rfc3834-03.eml", "auto_reply", "kind.auto_reply", "header X-Apple-Action",
            "real-apple-x-apple-action-vacation"),
    machine(DATA / "auto-reply-ticket-system-otrs-acknowledgement.eml", "auto_reply",
            "kind.auto_reply.ticket_system", "header X-OTRS-Loop", "ticket-system-otrs"),
    machine(DATA / "auto-reply-read-receipt-rfc8098-disposition-notification.eml", "auto_reply",
            "kind.auto_reply.read_receipt", "MIME part message/disposition-notification", "read-receipt-rfc8098"),
    machine(DATA / "auto-reply-subject-prefix-automatische-antwort-de.eml", "auto_reply",
            "kind.auto_reply.subject_prefix", "subject", "subject-prefix-de"),
    machine(DATA / "auto-reply-subject-prefix-out-of-office-en.eml", "auto_reply",
            "kind.auto_reply.subject_prefix", "subject", "subject-prefix-en"),
    machine(DATA / "auto-reply-subject-prefix-reponse-automatique-fr.eml", "auto_reply",
            "kind.auto_reply.subject_prefix", "subject", "subject-prefix-fr"),
    # bounces
    machine(DATA / "bounce-dsn-multipart-report.eml", "bounce", "kind.bounce.report",
            "MIME part message/delivery-status", "rfc3464-delivery-status"),
    machine(SISIMAI / "rfc3464-01.eml", "bounce", "kind.bounce.report", "MIME part message/delivery-status",
            "real-rfc3464-delivery-status"),
    machine(DATA / "bounce-null-return-path-mailer-daemon.eml", "bounce", "kind.bounce.daemon", "header Return-Path",
            "null-return-path-mailer-daemon"),
    machine(SISIMAI / "lhost-exim-01.eml", "bounce", "kind.bounce.failed_recipients", "header X-Failed-Recipients",
            "real-exim-x-failed-recipients"),
    machine(SISIMAI / "lhost-qmail-01.eml", "bounce", "kind.bounce.vendor_formats", "bounce detectors",
            "real-vendor-qmail"),
    machine(SISIMAI / "lhost-yahoo-03.eml", "bounce", "kind.bounce.vendor_formats", "bounce detectors",
            "real-vendor-yahoo"),
    machine(SISIMAI / "lhost-sendmail-53.eml", "bounce", "kind.bounce.vendor_formats", "bounce detectors",
            "real-vendor-sendmail-without-content-type"),
    machine(SISIMAI / "lhost-exim-38.eml", "bounce", "kind.bounce.delay", "subject", "real-delay-warning"),
    machine(SISIMAI / "lhost-fml-02.eml", "bounce", "kind.bounce.list_server", "body", "real-list-not-a-member"),
    machine(SISIMAI / "arf-01.eml", "bounce", "kind.bounce.feedback_report", "MIME part message/feedback-report",
            "real-arf-feedback-report"),
    # bulk
    machine(DATA / "bulk-mailing-list-list-id.eml", "bulk", "kind.bulk", "header List-Id", "list-id"),
    machine(DATA / "bulk-newsletter-list-unsubscribe.eml", "bulk", "kind.bulk", "header List-Unsubscribe",
            "list-unsubscribe"),
    machine(DATA / "bulk-mailing-list-list-post.eml", "bulk", "kind.bulk", "header List-Post", "list-post"),
    machine(DATA / "bulk-ezmlm-mailing-list-header.eml", "bulk", "kind.bulk", "header Mailing-List", "mailing-list"),
    machine(DATA / "bulk-x-mailing-list.eml", "bulk", "kind.bulk", "header X-Mailing-List", "x-mailing-list"),
    machine(DATA / "bulk-precedence-bulk.eml", "bulk", "kind.bulk", "header Precedence", "precedence-bulk"),
    machine(DATA / "bulk-precedence-list.eml", "bulk", "kind.bulk", "header Precedence", "precedence-list"),
    machine(DATA / "bulk-precedence-junk.eml", "bulk", "kind.bulk", "header Precedence", "precedence-junk"),
    machine(DATA / "bulk-feedback-id.eml", "bulk", "kind.bulk", "header Feedback-ID", "feedback-id"),
    machine(DATA / "bulk-esp-mandrill-x-mc-user.eml", "bulk", "kind.bulk", "header X-MC-User", "esp-x-mc-user"),
    machine(DATA / "bulk-esp-sendgrid-x-sg-eid.eml", "bulk", "kind.bulk", "header X-SG-EID", "esp-x-sg-eid"),
    machine(DATA / "bulk-newsletter-x-mailer-cleverreach.eml", "bulk", "kind.bulk", "header X-Mailer",
            "newsletter-x-mailer"),
    machine(DATA / "bulk-dmarc-aggregate-report-subject.eml", "bulk", "kind.bulk.dmarc_report", "subject",
            "dmarc-aggregate-report"),
    machine(DATA / "bulk-cron-system-notification.eml", "bulk", "kind.bulk.system_notification", "header X-Cron-Env",
            "cron-notification"),
    # spam
    machine(DATA / "spam-server-verdict-spamassassin-above-our-received.eml", "spam", "kind.spam.server_verdict",
            "header X-Spam-Flag from our server", "spamassassin-verdict-above-our-received"),
    machine(DATA / "spam-server-verdict-rspamd-x-spamd-result.eml", "spam", "kind.spam.server_verdict",
            "header X-Spamd-Result from our server", "rspamd-x-spamd-result"),
    machine(DATA / "spam-server-verdict-rspamd-x-spam-yes.eml", "spam", "kind.spam.server_verdict",
            "header X-Spam from our server", "rspamd-x-spam-yes"),
    machine(DATA / "spam-dmarc-fail-with-sales-pitch.eml", "spam", "kind.spam.dmarc_failure",
            "our server's Authentication-Results", "dmarc-fail-with-another-sign"),
    machine(DATA / "spam-disposable-sender-mailinator.eml", "spam", "kind.spam.disposable_sender", "sender domain",
            "disposable-sender", marks=pytest.mark.skipif(
                not disposable_listed("mailinator.com"),
                reason=f"no disposable-domain list naming mailinator.com is shipped yet ({DISPOSABLE})")),
    machine(DATA / "spam-phishing-without-greeting.eml", "spam", "kind.spam.account_phishing", "subject",
            "quota-phishing"),
    machine(DATA / "spam-invoice-reminder-zip-attachment.eml", "spam", "kind.spam.invoice_malware", "subject",
            "invoice-malware-zip"),
    machine(DATA / "spam-cyrillic-text-with-link.eml", "spam", "kind.spam.foreign_script", "subject and text",
            "cyrillic-with-link"),
]


@pytest.mark.parametrize(("path", "kind", "group", "where"), MACHINE_MAIL)
def test_machine_mail_is_recognised_by_its_dialect(path: Path, kind: str, group: str, where: str):
    """A machine mail gets its kind, is not forwarded, and the evidence names the dialect that gave it away."""
    processed = judged(path)
    assert processed.classification is not None, processed.decision.reason
    assert processed.classification.kind.value == kind
    assert processed.decision.route == "none"
    assert kind_findings(processed.classification.evidence, kind, group, where), \
        [(item.signal, item.where) for item in processed.classification.evidence]
    if path.is_relative_to(REAL):
        label = real_labels()[str(path.relative_to(REAL))]
        assert label["route"] == "none" and label["kind"] in (None, kind)


def person(path: Path, kind: str, lookalike: str, group: str | None, where: str, weighed: bool, name: str):
    return pytest.param(path, kind, lookalike, group, where, weighed, id=name)


PERSON_MAIL = [
    person(DATA / "application-auto-submitted-no-from-a-person.eml", "application", "auto_reply", None,
           "header Auto-Submitted", False, "auto-submitted-no"),
    person(DATA / "application-subject-abwesenheit-from-a-person.eml", "application", "auto_reply",
           "kind.auto_reply.subject_prefix", "subject", True, "subject-abwesenheit-alone"),
    person(DATA / "application-spam-flag-forged-below-our-received.eml", "application", "spam",
           "kind.spam.server_verdict", "", False, "spam-flag-below-our-received"),
    person(DATA / "application-dmarc-fail-alone.eml", "application", "spam", "kind.spam.dmarc_failure",
           "our server's Authentication-Results", True, "dmarc-fail-alone"),
    person(DATA / "inquiry-short-question-without-greeting.eml", "inquiry", "spam", None, "", False,
           "no-greeting-no-sign-off"),
]


@pytest.mark.parametrize(("path", "kind", "lookalike", "group", "where", "weighed"), PERSON_MAIL)
def test_a_look_alike_sign_alone_leaves_a_persons_mail_to_the_desk(path: Path, kind: str, lookalike: str,
                                                                   group: str | None, where: str, weighed: bool):
    """A person's mail with one weak or untrusted sign of machine mail keeps its kind and is forwarded."""
    processed = judged(path)
    assert processed.classification is not None, processed.decision.reason
    assert processed.classification.kind.value == kind
    assert processed.decision.route != "none"
    assert bool(kind_findings(processed.classification.evidence, lookalike, group, where)) is weighed, \
        [(item.signal, item.where) for item in processed.classification.evidence]


def test_a_dmarc_failure_alone_is_forwarded_with_a_warning():
    """A person's application our server reported as failing DMARC reaches the desk marked as unconfirmed."""
    raw = (DATA / "application-dmarc-fail-alone.eml").read_bytes()
    processed = decide(parse(RawMail("application-dmarc-fail-alone.eml", raw)), shipped_policy(), IDENTITY)
    assert processed.classification.unauthenticated == ("dmarc=fail",)
    assert processed.forward is not None
    summary = email.message_from_bytes(processed.forward.data, policy=email.policy.default)
    assert summary["Subject"].startswith("[Absender nicht bestätigt]")

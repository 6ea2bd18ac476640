"""What the desks read: the review prefix once, and the reasons in plain German without identifiers."""
from __future__ import annotations

import dataclasses
import email
import email.policy
import re

import pytest
from markupsafe import escape

from mailrelay.classify.signals import load_signals
from mailrelay.model import Action, Classification, Decision, Evidence, Kind, Level, Sender
from mailrelay.pipeline import Identity, judge
from mailrelay.policy import load_policy_files
from mailrelay.reasons import country_name, desk_reasons, phrase, review_reason
from mailrelay.render import render
from mailrelay.route import route
from mailrelay.templatecheck import _DESK, _samples
from tests.helpers import DATA, REPO, classification, inbound

RELAY = "relay@clusterplattform.example"
SIGNALS = load_signals(REPO / "config" / "signals.toml")
# A signal group's dotted name, a decision note's words and scores: for explain and the audit trail only.
_IDENTIFIER = re.compile(r"\b(?:kind|sender|level|country|region)\.[A-Za-z_]+|\bdecided:|\bagainst\b|"
                         r"\(classifier\)|\breference data\b|\bsignature line\b|\bbody line\b")
# Mails of every kind, classified by the shipped signals; machine kinds are forwarded here by hand.
_CLASSIFIED_MAILS = ("parse-attachment-rfc2231-umlaut-name.eml", "application-research-institute-de.eml",
                     "application-public-body-county-de.eml", "application-public-body-austrian-federal-ministry.eml",
                     "application-cluster-network-english.eml", "auto-reply-exchange-x-auto-response-suppress.eml",
                     "bounce-dsn-multipart-report.eml", "bulk-mailing-list-list-id.eml",
                     "application-dmarc-fail-alone.eml")


@pytest.fixture(scope="module")
def policy():
    return load_policy_files(REPO / "config" / "routing.toml", REPO / "config" / "signals.toml", REPO / "templates")


def _low_confidence_reason(policy) -> str:
    """The reason route() itself gives a mail it sends for review, as the relay would write it."""
    unsure = classification(sender="research", level=None, confidence=policy.rules.review.below / 2)
    decision = route(inbound("parse-attachment-rfc2231-umlaut-name.eml"), unsure, policy.rules)
    assert decision.rule == "low-confidence-review"
    return decision.reason


def _reasons(policy) -> list[str]:
    """No reason, every reason the shipped rules give, route()'s own, and prefixes editors may write."""
    shipped = [rule.reason for rule in policy.rules.rules] + [policy.rules.default.reason]
    written = ["ZUR PRÜFUNG: Zur Prüfung: doppelt", "[Prüfen] Land unklar", "Bitte prüfen – Absender unklar",
               "zur Prüfung Herkunftsland fehlt", "Zur Prüfung"]
    return ["", _low_confidence_reason(policy)] + [reason for reason in shipped + written if reason]


def _parts(forward) -> tuple[str, str, str]:
    """Subject, the text summary above the quoted mail, and the HTML summary above it."""
    message = email.message_from_bytes(forward.data, policy=email.policy.default)
    text = message.get_body(("plain",)).get_content().split("---- Nachricht")[0]
    page = message.get_body(("html",)).get_content().split("<pre")[0]
    return str(message["Subject"]), text, page


def _cases(policy):
    """Every kind and sender from the trial-render samples, and real classified mails, with every reason."""
    cases = [(mail, found, decision) for mail, found, decision in _samples()]
    for name in _CLASSIFIED_MAILS:
        judged = judge(inbound(name), policy, Identity(RELAY, "test-relay"))
        cases.append((judged.inbound, judged.classification, Decision(Action.FORWARD, "check", "editors")))
    for mail, found, decision in cases:
        for reason in _reasons(policy):
            yield mail, found, dataclasses.replace(decision, reason=reason)


def test_every_shipped_template_says_review_once_and_reasons_plainly(policy):
    """For every kind, sender and reason: no doubled prefix, no identifier or score, the plain reasons shown."""
    kinds = set()
    for mail, found, decision in _cases(policy):
        kinds.add(found.kind)
        subject, text, page = _parts(render(mail, found, decision, _DESK, policy.templates, RELAY, "test-relay"))
        review_line = text.splitlines()[0] if decision.reason else ""
        review_paragraph = page.split("</p>")[0] if decision.reason else ""
        for shown in (subject, review_line, review_paragraph):
            assert shown.casefold().count("prüf") <= 1, shown
        assert ("[Prüfen]" in subject) == bool(decision.reason)
        assert review_reason(decision.reason) in review_line and str(escape(review_reason(decision.reason))) \
            in review_paragraph
        for summary in (text, page):
            assert not _IDENTIFIER.search(summary), summary
            assert not [group.name for group in SIGNALS.groups if group.name in summary]
        for reasons in desk_reasons(found):
            assert all(item in text and str(escape(item)) in page for item in reasons.phrases)
    assert kinds == set(Kind)


def test_a_classified_application_reads_as_the_desk_would_want(policy):
    """The state ministry's application names its reference entry, its signature and its country in words."""
    judged = judge(inbound("application-public-body-county-de.eml"), policy, Identity(RELAY, "test-relay"))
    decision = Decision(Action.FORWARD, "public-body-germany", "desk-public", "", "v1")
    _subject, text, _page = _parts(render(judged.inbound, judged.classification, decision, _DESK,
                                          policy.templates, RELAY, "test-relay"))
    assert "Woran das erkannt wurde:" in text and "Land:          Deutschland" in text
    assert re.search(r"^  Absenderart: +\S", text, re.MULTILINE)
    assert "in der Signatur" in text


def test_review_line_shows_the_relays_reason_without_its_prefix(policy):
    """A low-confidence review opens with one ZUR PRÜFUNG and the reason route() gave, without its own prefix."""
    reason = _low_confidence_reason(policy)
    decision = Decision(Action.FORWARD, "low-confidence-review", "editors", reason, "v1")
    subject, text, page = _parts(render(inbound("parse-attachment-rfc2231-umlaut-name.eml"), classification(),
                                        decision, _DESK, policy.templates, RELAY, "test-relay"))
    assert text.startswith("ZUR PRÜFUNG: Unsichere Erkennung (Sicherheit ")
    assert "<strong>Zur Prüfung:</strong> Unsichere Erkennung" in page
    assert subject.startswith("[Prüfen] ")


@pytest.mark.parametrize(("reason", "plain"), [
    ("Zur Prüfung: Herkunftsland nicht erkennbar", "Herkunftsland nicht erkennbar"),
    ("ZUR PRÜFUNG: Zur Prüfung: doppelt", "Doppelt"),
    ("[Prüfen] Land unklar", "Land unklar"),
    ("Bitte prüfen – Absender unklar", "Absender unklar"),
    ("zur Pruefung: Absender unklar", "Absender unklar"),
    ("Zur Prüfung", ""),
    ("Anfrage, keine Bewerbung", "Anfrage, keine Bewerbung"),
    ("Prüfung der Unterlagen steht aus", "Prüfung der Unterlagen steht aus"),
    ("Keine Regel traf zu; bitte prüfen.", "Keine Regel traf zu"),
    ("Absender unklar, zur Prüfung", "Absender unklar"),
    ("Absender bittet um Prüfung", "Absender bittet um Prüfung"),
])
def test_review_reason_drops_only_a_leading_review_prefix(reason, plain):
    """A leading "Zur Prüfung:" (in any of the editors' spellings) goes; a word inside the reason stays."""
    assert review_reason(reason) == plain


@pytest.mark.parametrize(("item", "said"), [
    (Evidence("sender", "research", "sender.research 'Hochschule'", "signature line 2"),
     "„Hochschule“ in der Signatur"),
    (Evidence("sender", "research", "sender.research 'Institut'", "body line 3"), "„Institut“ im Text"),
    (Evidence("kind", "application", "kind.application 'Bewerbung'", "subject"), "„Bewerbung“ im Betreff"),
    (Evidence("sender", "research", "sender.research.mail_domain 'hs-example.de'", "sender domain"),
     "Absenderdomain hs-example.de"),
    (Evidence("country", "DE", "country.DE.domain 'hs-example.de'", "sender domain"), "Absenderdomain endet auf .de"),
    (Evidence("country", "DE", "domain ending .de", "sender domain"), "Absenderdomain endet auf .de"),
    (Evidence("level", "regional", "Land Niedersachsen (curated)", "reference data", 2.0),
     "Verzeichniseintrag „Land Niedersachsen“"),
    (Evidence("country", "DE", "country.DE '+49 511 120-0000'", "signature line 6"),
     "Telefonnummer +49 511 120-0000 in der Signatur"),
    (Evidence("country", "DE", "country.DE.postcode '10115 Berlin'", "signature line 5"),
     "Postleitzahl 10115 Berlin in der Signatur"),
    (Evidence("country", "DE", "postcode 10115 Berlin", "signature line 5"),
     "Postleitzahl 10115 Berlin in der Signatur"),
    (Evidence("country", "AT", "VAT ID ATU12345678", "signature line 7", 2.0), "USt-IdNr. ATU12345678 in der Signatur"),
    (Evidence("country", "DE", "telephone 089 1234567 (national form, read as DE)", "signature line 4"),
     "Telefonnummer 089 1234567 in der Signatur"),
    (Evidence("country", "DE", "country.DE.written_in_german 'de'", "language of the text"), "Text auf Deutsch"),
    (Evidence("kind", "auto_reply", "kind.auto_reply 'auto-replied'", "header Auto-Submitted"),
     "Kopfzeile Auto-Submitted"),
    (Evidence("kind", "spam", "kind.spam.server_verdict 'Yes'", "header X-Spam-Flag from our server"),
     "Kopfzeile X-Spam-Flag von unserem Mailserver"),
    (Evidence("kind", "bounce", "kind.bounce.report 'message/delivery-status'", "MIME part message/delivery-status"),
     "Mailteil vom Typ message/delivery-status"),
    (Evidence("kind", "application", "kind.application.letter_attached 'Bewerbung.pdf'",
              "attachment 'Bewerbung.pdf'"), "Anhang „Bewerbung.pdf“"),
    (Evidence("kind", "bounce", "kind.bounce.vendor_formats 'failing recipient a@b.example'",
              "bounce detectors (flufl.bounce)"), "Zustellfehler im Bericht des Mailservers"),
    (Evidence("kind", "spam", "kind.spam.disposable_sender 'x.example is a disposable-mail domain'",
              "sender domain"), "Wegwerf-Adresse (x.example)"),
    (Evidence("kind", "bulk", "kind.bulk.automatic_sender 'noreply@x.example'", "sender address"),
     "Absenderadresse noreply@x.example"),
    (Evidence("sender", "research", "something.new entirely", "a place not yet known"), "weiteres Merkmal"),
])
def test_each_kind_of_finding_reads_as_a_short_german_phrase(item, said):
    """Every shape of evidence the classifier makes becomes words; an unknown shape shows no identifier."""
    assert phrase(item) == said


def test_decision_notes_are_not_reasons():
    """The classifier's own notes carry scores: they are left to explain and the audit trail."""
    note = Evidence("sender", "research", "decided: research 1.80 against 0.00", "classifier", 1.8)
    assert phrase(note) is None


def test_reasons_are_the_few_that_decided_strongest_first():
    """At most three per field, reference data first, only for the decided value, undecided fields left out."""
    found = Classification(Kind.APPLICATION, Sender.PUBLIC_BODY, Level.REGIONAL, "unknown", 0.9, (
        Evidence("sender", "public_body", "sender.public_body 'Ministerium'", "body line 3", 0.6),
        Evidence("sender", "public_body", "sender.public_body 'Ministerium'", "signature line 3"),
        Evidence("sender", "research", "sender.research 'Institut'", "signature line 4"),
        Evidence("sender", "public_body", "sender.public_body 'Behörde'", "body line 5", 0.6),
        Evidence("sender", "public_body", "sender.public_body 'Amt für'", "body line 6", 0.5),
        Evidence("sender", "public_body", "Land Niedersachsen (curated)", "reference data", 2.0),
        Evidence("sender", "public_body", "decided: public_body 2.00 against 0.00", "classifier", 2.0),
        Evidence("country", "DE", "country.DE 'Deutschland'", "signature line 6"),
    ))
    reasons = {item.field: item.phrases for item in desk_reasons(found)}
    assert reasons == {"sender": ("Verzeichniseintrag „Land Niedersachsen“", "„Ministerium“ in der Signatur",
                                  "„Behörde“ im Text")}


@pytest.mark.parametrize(("code", "name"), [("DE", "Deutschland"), ("AT", "Österreich"),
                                            ("unknown", "nicht erkennbar"), ("XK", "XK")])
def test_country_is_named_in_german(code, name):
    """The summary names the country; a code without a German name is shown as written."""
    assert country_name(code) == name


def test_every_shipped_signal_phrase_avoids_identifiers(policy):
    """Classified test mails of every kind give phrases without a group name, score or English place."""
    names = sorted(path.name for path in DATA.glob("*.eml"))
    for name in names:
        judged = judge(inbound(name), policy, Identity(RELAY, "test-relay"))
        if judged.classification is None:
            continue
        for reasons in desk_reasons(judged.classification):
            for said in reasons.phrases:
                assert not _IDENTIFIER.search(said) and "weiteres Merkmal" not in said, (name, said)

"""Who sent a mail and from where: reference data first, the signature next, the body last; the region."""
from __future__ import annotations

from mailrelay.classify import classify
from mailrelay.classify.signals import load_signals
from mailrelay.model import Kind, Level, RawMail, Sender
from mailrelay.parse import parse
from tests.helpers import REPO, inbound

SIGNALS = load_signals(REPO / "config" / "signals.toml")


def _mail(sender: str, body: str, subject: str = "Bewerbung Cluster-Expertengruppe") -> bytes:
    return (f"From: {sender}\nTo: info@clusterplattform.de\nSubject: {subject}\nMessage-ID: <t@example.org>\n"
            f"Content-Type: text/plain; charset=utf-8\n\n{body}").encode()


def _classified(sender: str, body: str):
    return classify(parse(RawMail("t", _mail(sender, body))), SIGNALS)


APPLICATION = ("Sehr geehrte Damen und Herren,\n\nhiermit teile ich Ihnen mit, dass ich mich für die "
               "Cluster-Expertengruppe beworben habe.\n\n")


def test_a_federal_agency_domain_decides_public_body_national():
    """An address at a federal agency's domain is a national public body by the reference data, with no
    organisation word in the text."""
    result = _classified("Anna Berg <anna.berg@bmwk.bund.de>", APPLICATION + "Mit freundlichen Grüßen\nAnna Berg\n")
    assert (result.sender, result.level) == (Sender.PUBLIC_BODY, Level.NATIONAL)
    assert any(e.where == "reference data" for e in result.evidence_for("sender"))
    assert (result.domain, result.host) == ("bund.de", "bmwk.bund.de")


def test_a_university_domain_decides_research_even_against_a_body_mention():
    """A university's domain is research, though the body names a city it works with."""
    body = APPLICATION.replace("beworben habe.", "beworben habe. Unser Projekt mit der Stadt Leipzig "
                               "und dem Landratsamt läuft seit 2019.") + "Viele Grüße\nJan Roth\n"
    result = _classified("Jan Roth <jan.roth@uni-leipzig.de>", body)
    assert result.kind is Kind.APPLICATION
    assert result.sender is Sender.RESEARCH


def test_free_mail_is_never_an_organisation_by_its_domain():
    """A gmx.de sender without a signature is of unknown kind, whatever the domain list says."""
    result = _classified("Eva Klein <eva.klein@gmx.de>", APPLICATION + "Eva Klein\n")
    assert result.sender is Sender.UNKNOWN
    assert not any(e.where == "reference data" for e in result.evidence)


def test_the_signature_outweighs_what_the_body_mentions():
    """A consultant's signature decides the sender although the body names a ministry and a city."""
    body = APPLICATION.replace("beworben habe.", "beworben habe. Wir haben zuvor für das Ministerium und "
                               "die Stadt Jena gearbeitet.") + \
        "Mit freundlichen Grüßen\nKarl Weber\nWeber Unternehmensberatung GmbH\n07743 Jena\n"
    result = _classified("Karl Weber <k.weber@weber-beratung.example>", body)
    assert result.sender is Sender.CONSULTANCY
    assert any("signature" in e.signal for e in result.evidence_for("sender") if e.where == "classifier")


def test_the_region_comes_from_the_postcode_and_place_in_the_signature():
    """A signature with "25813 Husum" puts a German county in Schleswig-Holstein (DE-SH)."""
    result = classify(inbound("application-public-body-county-de.eml"), SIGNALS)
    assert (result.country, result.region) == ("DE", "DE-SH")
    assert any(e.value == "DE-SH" and e.where.startswith("signature") for e in result.evidence_for("region"))


def test_the_region_of_a_land_ministry_comes_from_its_domain():
    """A Bavarian ministry's address gives DE-BY and the regional level."""
    result = _classified("Max Huber <max.huber@stmwi.bayern.de>", APPLICATION + "Mit freundlichen Grüßen\nMax Huber\n")
    assert (result.sender, result.level, result.country, result.region) == (
        Sender.PUBLIC_BODY, Level.REGIONAL, "DE", "DE-BY")


def test_a_telephone_area_code_gives_the_region():
    """A Munich number in international form in the signature gives DE-BY."""
    body = APPLICATION + "Mit freundlichen Grüßen\nLena Maier\nMaier Consulting GmbH\nTel. +49 89 1234567\n"
    result = _classified("Lena Maier <lm@maier-consulting.example>", body)
    assert result.region == "DE-BY"


def test_no_region_outside_germany_austria_and_switzerland():
    """A French sender has a country but no region."""
    body = ("Dear Sir or Madam,\n\nI have applied for the cluster expert group.\n\nBest regards\nMarie Durand\n"
            "Pôle de compétitivité Exemple\n69002 Lyon\nFrance\n")
    result = _classified("Marie Durand <m.durand@pole-exemple.fr>", body)
    assert result.country == "FR"
    assert result.region is None


def test_a_disposable_sender_is_spam():
    """An address at a throwaway domain is spam by that alone: nobody applies from one."""
    result = _classified("X <x123@mailinator.com>", APPLICATION)
    assert result.kind is Kind.SPAM
    assert any(e.signal.startswith("kind.spam.disposable_sender") for e in result.evidence_for("kind"))

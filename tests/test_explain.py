"""`explain`: the region, domain and host of a mail, and on what each rule matched or failed."""
from __future__ import annotations

import dataclasses
import json
import re

import pytest

from mailrelay import pipeline
from mailrelay.conditions import Condition
from mailrelay.explain import explain_file
from mailrelay.i18n import set_language
from mailrelay.model import Classification, Evidence, Kind, Sender
from mailrelay.route import Seen
from mailrelay.ruletext import condition_words
from tests.helpers import REPO

MAIL = REPO / "mailrelay" / "demo" / "mails" / "02-application-research-institute.eml"
ROUTING = """\
default = "editors"
review_below_confidence = 0.3
[desks.editors]
addresses = ["redaktion@clusterplattform.example"]
[desks.bavaria]
addresses = ["bayern@bmwi.example"]
[desks.federal]
addresses = ["bund@bmwi.example"]

[[rules]]
name = "bund"
when = { domain = ["bund.de", "*.bund.de"] }
desk = "federal"

[[rules]]
name = "bayern-forschung"
when = { kind = "application", sender = "research", region = "DE-BY", subject = ["application", "Bewerbung"] }
desk = "bavaria"
"""
BAVARIAN = Classification(
    Kind.APPLICATION, Sender.RESEARCH, None, "DE", 0.9, language="en", region="DE-BY",
    domain="uni-muenchen.de", host="lmu.uni-muenchen.de",
    evidence=(Evidence("region", "DE-BY", "region.DE-BY.places 'München'", "signature line 4", 0.5),))


@pytest.fixture
def config(tmp_path, monkeypatch):
    """A configuration with the rules above, and a classifier that finds a Bavarian research institute."""
    (tmp_path / "routing.toml").write_text(ROUTING, encoding="utf-8")
    settings = (REPO / "config" / "mailrelay.toml").read_text(encoding="utf-8")
    (tmp_path / "mailrelay.toml").write_text(
        settings.replace('signals = "signals.toml"', f'signals = "{REPO / "config" / "signals.toml"}"')
        .replace('templates = "../templates"', f'templates = "{REPO / "templates"}"')
        .replace('reference = "reference.toml"', f'reference = "{REPO / "config" / "reference.toml"}"'),
        encoding="utf-8")
    monkeypatch.setattr(pipeline, "classify", lambda inbound, signals, *server: BAVARIAN)
    return tmp_path / "mailrelay.toml"


def test_explain_json_has_region_domain_and_host(config):
    """`explain --json` gives the region as an ISO 3166-2 code, the sender's domain and host."""
    facts = json.loads(json.dumps(explain_file(config, MAIL, as_json=True)))
    assert (facts["region"], facts["domain"], facts["host"], facts["language"]) == (
        "DE-BY", "uni-muenchen.de", "lmu.uni-muenchen.de", "en")
    assert {"field": "region", "value": "DE-BY", "signal": "region.DE-BY.places 'München'",
            "where": "signature line 4", "weight": 0.5} in facts["evidence"]
    assert facts["route"] == "bavaria" and facts["rule"] == "bayern-forschung"


def test_explain_json_says_on_what_each_new_condition_matched_or_failed(config):
    """Each rule's `why` names the domain or words it matched or failed on."""
    rules = {item["rule"]: item for item in explain_file(config, MAIL, as_json=True)["rules"]}
    assert rules["bund"] == {"rule": "bund", "matched": False, "decides": False,
                             "why": "domain uni-muenchen.de / lmu.uni-muenchen.de matches none of *.bund.de, bund.de"}
    assert rules["bayern-forschung"]["why"] == ("kind application, sender research, region DE-BY, "
                                               "subject contains 'application'")


def test_explain_text_shows_region_domain_and_the_region_evidence(config):
    """The text form shows region, domain and host, and the region evidence like any other."""
    text = explain_file(config, MAIL)
    assert "Region:       DE-BY" in text
    assert "Domain:       uni-muenchen.de (Rechner lmu.uni-muenchen.de)" in text
    assert "region   DE-BY" in text and "region.DE-BY.places 'München'" in text
    assert ("  TRIFFT ZU — entscheidet: bayern-forschung -> bavaria\n"
            "      Art ist application; Absenderart ist research; Region ist DE-BY; Betreff enthält 'application'"
            ) in text


def test_explain_json_has_the_new_keys_for_a_real_classification():
    """With the shipped configuration, the new keys are there: region a code or null, domain and host texts."""
    facts = explain_file(REPO / "config" / "mailrelay.toml", MAIL, as_json=True)
    assert facts["region"] is None or facts["region"].startswith("DE-")
    assert isinstance(facts["domain"], str) and isinstance(facts["host"], str)


LATER_RULES = """
[[rules]]
name = "forschung"
when = { sender = "research" }
desk = "federal"

[[rules]]
name = "ausland"
when = { kind = "application" }
unless = { country = ["DE", "unknown"] }
desk = "editors"

[[rules]]
name = "nicht-bund"
when = { kind = "application" }
unless = { domain = "*.bund.de" }
desk = "federal"
"""


@pytest.fixture
def later_rules(config):
    """The configuration above with rules after the deciding one: one that also matches, two with `unless`."""
    routing = config.parent / "routing.toml"
    routing.write_text(routing.read_text(encoding="utf-8") + LATER_RULES, encoding="utf-8")
    return config


def _rule_block(text: str, name: str) -> str:
    """The verdict line of rule `name` and the line that says why."""
    lines = text.splitlines()
    index = next(n for n, line in enumerate(lines) if f": {name} -> " in line)
    return "\n".join(lines[index:index + 2])


def test_only_the_first_matching_rule_says_it_decides(later_rules):
    """Under first match wins the deciding rule alone says TRIFFT ZU; a later rule that matches says so in
    other words, and --json marks exactly one rule as deciding."""
    text = explain_file(later_rules, MAIL)
    assert text.count("TRIFFT ZU") == 1
    assert _rule_block(text, "forschung") == (
        "  würde auch zutreffen, kommt aber nach der entscheidenden Regel: forschung -> federal\n"
        "      Absenderart ist research")
    rules = explain_file(later_rules, MAIL, as_json=True)["rules"]
    assert [item["rule"] for item in rules if item["decides"]] == ["bayern-forschung"]
    assert {item["rule"] for item in rules if item["matched"]} == {"bayern-forschung", "forschung", "nicht-bund"}


def test_unless_reads_plainly_with_what_the_mail_shows(later_rules):
    """An `unless` condition says what it excepts, what the mail has, and whether the exception applies."""
    text = explain_file(later_rules, MAIL)
    assert _rule_block(text, "ausland") == (
        "  trifft nicht zu: ausland -> editors\n"
        "      außer wenn Land DE oder unknown ist (hier: DE) — Ausnahme greift")
    assert _rule_block(text, "nicht-bund").endswith(
        "außer wenn die Domain auf *.bund.de passt (hier: Domain uni-muenchen.de / lmu.uni-muenchen.de)"
        " — keine Ausnahme")
    assert "is DE/unknown" not in text
    why = {item["rule"]: item["why"] for item in explain_file(later_rules, MAIL, as_json=True)["rules"]}
    assert why["ausland"] == "unless country is DE or unknown (here: DE)"  # --json keeps its English `why`


def test_unless_reads_plainly_in_english_too(later_rules):
    """With English chosen, the same rules read in English, and the deciding rule says MATCHES — decides."""
    set_language("en")
    text = explain_file(later_rules, MAIL)
    assert "  MATCHES — decides: bayern-forschung -> bavaria" in text
    assert "would match too, but comes after the deciding rule: forschung -> federal" in text
    assert "unless country is DE or unknown (here: DE): the exception applies" in text
    assert "Confidence:   0.90 (review threshold 0.30: sure enough, no review)" in text
    assert "Rules (top to bottom; the first that matches decides):" in text


def test_confidence_is_shown_beside_the_review_threshold(config):
    """A sure classification says it is sure enough; the text names the threshold it was measured against."""
    assert "Sicherheit:   0.90 (Prüfschwelle 0.30: sicher genug, keine Prüfung)" in explain_file(config, MAIL)
    assert explain_file(config, MAIL, as_json=True)["review_below"] == 0.3


def test_confidence_under_the_threshold_says_the_mail_goes_to_review(config, monkeypatch):
    """Under the threshold the text says the mail goes for review, and to which desk, beside the deciding rule."""
    unsure = dataclasses.replace(BAVARIAN, confidence=0.2)
    monkeypatch.setattr(pipeline, "classify", lambda inbound, signals, *server: unsure)
    text = explain_file(config, MAIL)
    assert "Sicherheit:   0.20 (Prüfschwelle 0.30: geht zur Prüfung an editors)" in text
    assert "TRIFFT ZU — entscheidet: bayern-forschung -> bavaria" in text
    assert "Entscheidung: weiterleiten -> editors (Regel low-confidence-review)" in text


def test_no_matching_rule_says_the_default_applies(config, monkeypatch):
    """When no rule matches, no rule says TRIFFT ZU and the text names the default."""
    inquiry = dataclasses.replace(BAVARIAN, kind=Kind.INQUIRY, domain="example.org", host="example.org")
    monkeypatch.setattr(pipeline, "classify", lambda inbound, signals, *server: inquiry)
    text = explain_file(config, MAIL)
    assert "TRIFFT ZU" not in text
    assert "  keine Regel trifft zu: es gilt default -> editors" in text


@pytest.mark.parametrize(("field", "negated", "seen", "words"), [
    ("subject", True, Seen(True, "subject", "Bewerbung"),
     "außer wenn im Betreff 'Bewerbung' steht (hier: 'Bewerbung') — Ausnahme greift"),
    ("subject", True, Seen(False, "subject", ""),
     "außer wenn im Betreff 'Bewerbung' steht (hier: nicht gefunden) — keine Ausnahme"),
    ("subject_regex", False, Seen(True, "subject", "Bewerbung", "bewerb\\w+"),
     "Betreff passt auf /bewerb\\w+/ ('Bewerbung')"),
    ("subject_regex", False, Seen(False, "subject", ""), "Betreff passt auf keinen von /bewerb\\w+/"),
    ("subject", False, Seen(False, "subject", ""), "Betreff enthält keins davon: 'Bewerbung'"),
])
def test_open_conditions_read_plainly(field, negated, seen, words):
    """Words and regexes in `when` and `unless` say what was looked for and what the subject showed."""
    value = "bewerb\\w+" if field.endswith("_regex") else "Bewerbung"
    condition = Condition(field, frozenset({value}), negated, (re.compile(value, re.IGNORECASE),))
    assert condition_words(condition, seen) == words

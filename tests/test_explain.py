"""`explain`: the region, domain and host of a mail, and on what each rule matched or failed."""
from __future__ import annotations

import json

import pytest

from mailrelay import pipeline
from mailrelay.explain import explain_file
from mailrelay.model import Classification, Evidence, Kind, Sender
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
    assert rules["bund"] == {"rule": "bund", "matched": False,
                             "why": "domain uni-muenchen.de / lmu.uni-muenchen.de matches none of *.bund.de, bund.de"}
    assert rules["bayern-forschung"]["why"] == ("kind application, sender research, region DE-BY, "
                                               "subject contains 'application'")


def test_explain_text_shows_region_domain_and_the_region_evidence(config):
    """The text form shows region, domain and host, and the region evidence like any other."""
    text = explain_file(config, MAIL)
    assert "Region:      DE-BY" in text
    assert "Domain:      uni-muenchen.de (host lmu.uni-muenchen.de)" in text
    assert "region   DE-BY" in text and "region.DE-BY.places 'München'" in text
    assert "MATCH  bayern-forschung -> bavaria  (kind application, sender research, region DE-BY, " in text


def test_explain_json_has_the_new_keys_for_a_real_classification():
    """With the shipped configuration, the new keys are there: region a code or null, domain and host texts."""
    facts = explain_file(REPO / "config" / "mailrelay.toml", MAIL, as_json=True)
    assert facts["region"] is None or facts["region"].startswith("DE-")
    assert isinstance(facts["domain"], str) and isinstance(facts["host"], str)

"""Loading the editors' routing file and choosing a desk with it."""
from __future__ import annotations

import pytest

from mailrelay.model import Action
from mailrelay.route import route
from mailrelay.rules import load_rules
from mailrelay.tomlcheck import ConfigError
from tests.helpers import REPO, classification

SHIPPED = REPO / "config" / "routing.toml"

BROKEN = """\
default = "editors"

[desks.editors]
name = "Redaktion"
addresses = ["redaktion@clusterplattform.example"]

[desks.desk-public]
nmae = "Öffentliche Stellen"
addresses = ["not-an-address"]

[[rules]]
name = "a"
when = { kind = "aplication" }
desk = "editors"

[[rules]]
name = "a"
when = { country = "Germany" }
desk = "desk-nowhere"
"""


def test_shipped_rules_load():
    """The default routing file loads and declares the three desks of the policy."""
    rules = load_rules(SHIPPED)
    assert set(rules.desks) == {"desk-public", "desk-experts", "editors"}
    assert rules.version


def test_every_problem_is_reported_with_its_line(tmp_path):
    """A broken routing file is refused with each problem named by file and line, all at once."""
    path = tmp_path / "routing.toml"
    path.write_text(BROKEN, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_rules(path)
    found = {(p.line, p.message) for p in caught.value.problems}
    assert (8, "unknown key 'nmae'") in found
    assert (9, "'not-an-address' is not a mail address") in found
    assert (13, "kind 'aplication' is not one of application, auto_reply, bounce, bulk, inquiry, spam") in found
    assert (18, "country 'Germany' is not a two-letter ISO code (like DE) or 'unknown'") in found
    assert (19, "'desk-nowhere' is not a declared desk") in found
    assert (17, "rule name 'a' is used twice") in found
    assert all(p.file == str(path) for p in caught.value.problems)
    assert "did you mean 'name'" in str(caught.value)


def test_toml_syntax_error_names_the_line(tmp_path):
    """A TOML syntax error is reported with its line, not as a traceback."""
    path = tmp_path / "routing.toml"
    path.write_text('default = "editors"\n[[rules]\nname = "x"\n', encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_rules(path)
    assert caught.value.problems[0].line == 2
    assert "TOML syntax error" in caught.value.problems[0].message


@pytest.mark.parametrize(("values", "expected"), [
    (dict(kind="application", sender="public_body", level="local", country="DE"), "desk-public"),
    (dict(kind="application", sender="research", level=None, country="DE"), "desk-experts"),
    (dict(kind="application", sender="consultancy", level=None, country="AT"), "editors"),
    (dict(kind="application", sender="public_body", level="national", country="unknown"), "editors"),
    (dict(kind="application", sender="unknown", level=None, country="DE"), "editors"),
    (dict(kind="inquiry", sender="public_body", level="regional", country="DE"), "editors"),
    (dict(kind="bounce", sender="unknown", level=None, country="unknown"), "none"),
    (dict(kind="spam", sender="consultancy", level=None, country="DE"), "none"),
])
def test_shipped_policy_routes_as_the_corpus_readme_says(values, expected):
    """The default rules implement the routing table of the labelled corpus."""
    assert route(classification(**values), load_rules(SHIPPED)).route == expected


def test_reasons_mark_editor_routes_for_review():
    """An application the editors get because its country is unknown carries that reason."""
    decision = route(classification(country="unknown"), load_rules(SHIPPED))
    assert decision.desk == "editors" and "Herkunftsland" in decision.reason


def test_first_matching_rule_wins_and_unless_excludes(tmp_path):
    """Rules are tried in order; `unless` stops a rule from matching."""
    path = tmp_path / "routing.toml"
    path.write_text("""default = "a"
[desks.a]
addresses = ["a@example.org"]
[desks.b]
addresses = ["b@example.org"]
[[rules]]
name = "not-germany"
when = { kind = "application" }
unless = { country = "DE" }
desk = "a"
[[rules]]
name = "all-applications"
when = { kind = "application" }
desk = "b"
""", encoding="utf-8")
    rules = load_rules(path)
    assert route(classification(country="FR"), rules).rule == "not-germany"
    assert route(classification(country="DE"), rules).rule == "all-applications"
    assert route(classification(kind="inquiry"), rules).rule == "default"


def test_machine_mail_is_never_forwarded_even_if_a_rule_says_so(tmp_path):
    """A rule that would forward an auto-reply is overridden: the mail is ignored."""
    path = tmp_path / "routing.toml"
    path.write_text("""default = "a"
[desks.a]
addresses = ["a@example.org"]
[[rules]]
name = "everything"
desk = "a"
""", encoding="utf-8")
    decision = route(classification(kind="auto_reply"), load_rules(path))
    assert decision.action is Action.IGNORE and decision.rule == "machine-mail-guard"


def test_unsure_classification_goes_to_review_instead_of_a_desk():
    """Below the configured confidence, a mail a rule would send to a desk goes to the editors, saying why."""
    rules = load_rules(SHIPPED)
    sure = route(classification(confidence=0.9), rules)
    unsure = route(classification(confidence=rules.review.below - 0.01), rules)
    assert sure.desk == "desk-public"
    assert unsure.desk == "editors" and unsure.rule == "low-confidence-review"
    assert "public-body-germany" in unsure.reason and "desk-public" in unsure.reason


def _rules_file(tmp_path, text: str):
    path = tmp_path / "routing.toml"
    path.write_text('default = "a"\n[desks.a]\naddresses = ["a@example.org"]\n'
                    '[desks.b]\naddresses = ["b@example.org"]\n' + text, encoding="utf-8")
    return path


def _problems(path) -> set[tuple[int, str]]:
    with pytest.raises(ConfigError) as caught:
        load_rules(path)
    return {(p.line, p.message) for p in caught.value.problems}


def test_rule_hidden_behind_an_earlier_broader_rule_is_reported(tmp_path):
    """A rule that an earlier rule always pre-empts is named, with its line."""
    path = _rules_file(tmp_path, """[[rules]]
name = "all-applications"
when = { kind = "application" }
desk = "a"
[[rules]]
name = "german-applications"
when = { kind = "application", country = "DE" }
desk = "b"
""")
    assert (10, "rule 'german-applications' can never match: rule 'all-applications' before it matches "
                "every mail it would") in _problems(path)


def test_rule_with_contradicting_conditions_is_reported(tmp_path):
    """A rule whose when and unless exclude each other can never match, and says so."""
    path = _rules_file(tmp_path, """[[rules]]
name = "impossible"
when = { country = "DE" }
unless = { country = "DE" }
desk = "b"
""")
    assert (6, "rule 'impossible' can never match: its conditions exclude each other") in _problems(path)


def test_desk_that_no_rule_reaches_is_reported(tmp_path):
    """A declared desk that neither a rule, the default nor the review sends mail to is named."""
    path = _rules_file(tmp_path, "")
    assert (4, "no rule sends mail to desk 'b'") in _problems(path)


def test_narrower_rule_before_a_broader_one_is_fine(tmp_path):
    """Specific-then-general order is what rules are for, and raises nothing."""
    path = _rules_file(tmp_path, """[[rules]]
name = "german-applications"
when = { kind = "application", country = "DE" }
desk = "b"
[[rules]]
name = "all-applications"
when = { kind = "application" }
desk = "a"
""")
    assert [rule.name for rule in load_rules(path).rules] == ["german-applications", "all-applications"]


def test_desk_name_with_spaces_is_refused(tmp_path):
    """Desk names go into Message-IDs, so only a-z, 0-9 and '-' are allowed."""
    path = tmp_path / "routing.toml"
    path.write_text('default = "Referat IV"\n["desks"."Referat IV"]\naddresses = ["a@example.org"]\n')
    assert (2, "desk name 'Referat IV' may only use a-z, 0-9 and '-'") in _problems(path)

"""Loading the editors' routing file and choosing a desk with it."""
from __future__ import annotations

import dataclasses

import pytest

from mailrelay.i18n import set_language
from mailrelay.model import Action, Attachment, Inbound
from mailrelay.route import explain_rule, route
from mailrelay.rules import load_rules
from mailrelay.tomlcheck import ConfigError
from tests.helpers import REPO, classification

SHIPPED = REPO / "config" / "routing.toml"


def mail(subject: str = "Bewerbung", text: str = "Sehr geehrte Damen und Herren", attachments=()) -> Inbound:
    """An Inbound literal with just what rules may look at."""
    return Inbound(key="test", message_id="<test@example.org>", from_=None, reply_to=(), to=(), subject=subject,
                   date=None, text=text, attachments=tuple(attachments), headers=(), content_type="text/plain",
                   raw=b"", sha256="")


MAIL = mail()

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
    assert (8, "unbekannter Schlüssel 'nmae'") in found
    assert (9, "'not-an-address' ist keine Mailadresse") in found
    assert (13, "Regel 'a': kind 'aplication' ist keiner der Werte application, auto_reply, bounce, bulk, inquiry, "
                "spam") in found
    assert (18, "Regel 'a': country 'Germany' ist kein Ländercode") in found
    assert (19, "'desk-nowhere' ist kein deklariertes Referat") in found
    assert (17, "der Regelname 'a' kommt zweimal vor") in found
    assert all(p.file == str(path) for p in caught.value.problems)
    assert "(Tipp: gemeint ist wohl 'name')" in str(caught.value)


def test_problems_are_in_english_on_request(tmp_path):
    """With English chosen, the same broken file is described in English, hint word included."""
    set_language("en")
    path = tmp_path / "routing.toml"
    path.write_text(BROKEN, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_rules(path)
    found = {(p.line, p.message) for p in caught.value.problems}
    assert (8, "unknown key 'nmae'") in found
    assert (13, "rule 'a': kind 'aplication' is not one of application, auto_reply, bounce, bulk, inquiry, spam") in found
    assert (19, "'desk-nowhere' is not a declared desk") in found
    assert "(hint: did you mean 'name'?)" in str(caught.value)


def test_toml_syntax_error_names_the_line(tmp_path):
    """A TOML syntax error is reported with its line, not as a traceback."""
    path = tmp_path / "routing.toml"
    path.write_text('default = "editors"\n[[rules]\nname = "x"\n', encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_rules(path)
    [problem] = caught.value.problems
    assert problem.line == 2 and problem.message == "TOML-Syntaxfehler: die ]] am Ende der Überschrift fehlt"
    assert problem.hint == "z. B. [[rules]]"


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
    assert route(MAIL, classification(**values), load_rules(SHIPPED)).route == expected


def test_reasons_mark_editor_routes_for_review():
    """An application the editors get because its country is unknown carries that reason."""
    decision = route(MAIL, classification(country="unknown"), load_rules(SHIPPED))
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
    assert route(MAIL, classification(country="FR"), rules).rule == "not-germany"
    assert route(MAIL, classification(country="DE"), rules).rule == "all-applications"
    assert route(MAIL, classification(kind="inquiry"), rules).rule == "default"


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
    decision = route(MAIL, classification(kind="auto_reply"), load_rules(path))
    assert decision.action is Action.IGNORE and decision.rule == "machine-mail-guard"


def test_unsure_classification_goes_to_review_instead_of_a_desk():
    """Below the configured confidence, a mail a rule would send to a desk goes to the editors, saying why."""
    rules = load_rules(SHIPPED)
    sure = route(MAIL, classification(confidence=0.9), rules)
    unsure = route(MAIL, classification(confidence=rules.review.below - 0.01), rules)
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
    assert (10, "Regel 'german-applications' kann nie zutreffen: die Regel 'all-applications' davor trifft schon "
                "auf jede Mail zu, auf die sie zuträfe") in _problems(path)


def test_rule_with_contradicting_conditions_is_reported(tmp_path):
    """A rule whose when and unless exclude each other can never match, and says so."""
    path = _rules_file(tmp_path, """[[rules]]
name = "impossible"
when = { country = "DE" }
unless = { country = "DE" }
desk = "b"
""")
    assert (6, "Regel 'impossible' kann nie zutreffen: ihre Bedingungen für country schließen einander aus") \
        in _problems(path)


def test_desk_that_no_rule_reaches_is_reported(tmp_path):
    """A declared desk that neither a rule, the default nor the review sends mail to is named."""
    path = _rules_file(tmp_path, "")
    assert (4, "keine Regel leitet Mails an das Referat 'b'") in _problems(path)


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
    assert (2, "der Referatsname 'Referat IV' darf nur a-z, 0-9 und '-' enthalten") in _problems(path)


def _rules(tmp_path, text: str):
    return load_rules(_rules_file(tmp_path, text + '[[rules]]\nname = "rest"\ndesk = "a"\n'))


def _one_rule(tmp_path, conditions: str):
    """Rules with one rule to desk b under `conditions` (TOML lines), and the rest to desk a."""
    return _rules(tmp_path, f'[[rules]]\nname = "x"\n{conditions}\ndesk = "b"\n')


def _desk(rules, inbound: Inbound = MAIL, **values) -> str:
    extra = {name: values.pop(name) for name in ("region", "language", "domain", "host") if name in values}
    found = dataclasses.replace(classification(**values), **extra)
    return route(inbound, found, rules).route


def test_region_matches_the_listed_codes_and_unknown_when_none(tmp_path):
    """`region` matches a listed ISO 3166-2 code; an untold region is 'unknown'."""
    rules = _one_rule(tmp_path, 'when = { region = ["DE-BY", "DE-BW"] }')
    assert _desk(rules, region="DE-BY") == "b" and _desk(rules, region="DE-BW") == "b"
    assert _desk(rules, region="DE-NW") == "a" and _desk(rules, region=None) == "a"
    unknown = _one_rule(tmp_path, 'when = { region = "unknown" }')
    assert _desk(unknown, region=None) == "b" and _desk(unknown, region="AT-9") == "a"


def test_domain_pattern_matches_registrable_domain_or_host_ignoring_case(tmp_path):
    """A domain pattern matches the sender's registrable domain or its host, whatever the case."""
    rules = _one_rule(tmp_path, 'when = { domain = ["*.bund.de", "Bayern.de"] }')
    assert _desk(rules, domain="bund.de", host="zoll.bund.de") == "b"
    assert _desk(rules, domain="bund.de", host="bund.de") == "a"
    assert _desk(rules, domain="BAYERN.DE", host="stmwi.bayern.de") == "b"
    assert _desk(rules, domain="example.org", host="bund.de.example.org") == "a"


def test_domain_wildcard_does_not_match_mail_without_a_sender_domain(tmp_path):
    """Even '*' needs a domain: a mail whose sender has none matches no domain pattern."""
    rules = _one_rule(tmp_path, 'when = { domain = "*" }')
    assert _desk(rules, domain="", host="") == "a" and _desk(rules, domain="x.de", host="x.de") == "b"


def test_language_matches_and_untold_language_is_unknown(tmp_path):
    """`language` matches the text's language; one that cannot be told is 'unknown'."""
    rules = _one_rule(tmp_path, 'when = { language = ["en", "unknown"] }')
    assert _desk(rules, language="en") == "b" and _desk(rules, language=None) == "b"
    assert _desk(rules, language="de") == "a"


def test_subject_words_are_whole_words_ignoring_case_with_wildcards(tmp_path):
    """Subject words match whole words in any case; a '*' at a word's end allows any ending."""
    rules = _one_rule(tmp_path, 'when = { subject = ["Bewerbung", "Experten*"] }')
    assert _desk(rules, mail(subject="BEWERBUNG Cluster")) == "b"
    assert _desk(rules, mail(subject="Frage zu Expertengruppen")) == "b"
    assert _desk(rules, mail(subject="Bewerbungsfrist")) == "a"
    assert _desk(rules, mail(subject="Frage", text="Bewerbung")) == "a"


def test_text_words_and_regexes_look_at_the_mail_text(tmp_path):
    """`text` and `text_regex` look at the mail's text, `subject_regex` at the subject."""
    words = _one_rule(tmp_path, 'when = { text = "Expertengruppe" }')
    assert _desk(words, mail(subject="x", text="für die Expertengruppe")) == "b"
    assert _desk(words, mail(subject="Expertengruppe", text="nichts")) == "a"
    regex = _one_rule(tmp_path, "when = { text_regex = 'Az\\.? ?\\d{3}' }")
    assert _desk(regex, mail(text="Ihr az 123")) == "b" and _desk(regex, mail(text="Az. x")) == "a"
    subject = _one_rule(tmp_path, "when = { subject_regex = '^(Re|AW): ' }")
    assert _desk(subject, mail(subject="AW: Bewerbung")) == "b" and _desk(subject, mail(subject="Bewerbung")) == "a"


def test_has_attachment_tells_mails_with_and_without_attachments_apart(tmp_path):
    """`has_attachment = true` matches mails with an attachment, `false` those without."""
    with_one = mail(attachments=[Attachment("cv.pdf", "application/pdf", 100)])
    rules = _one_rule(tmp_path, "when = { has_attachment = true }")
    assert _desk(rules, with_one) == "b" and _desk(rules, MAIL) == "a"
    without = _one_rule(tmp_path, "when = { has_attachment = false }")
    assert _desk(without, with_one) == "a" and _desk(without, MAIL) == "b"


def test_new_conditions_work_in_unless(tmp_path):
    """In `unless`, any of the new conditions stops the rule."""
    rules = _one_rule(tmp_path, 'when = { kind = "application" }\n'
                                'unless = { subject = "Newsletter", domain = "*.example.org", region = "DE-BY" }')
    assert _desk(rules, mail(subject="Bewerbung"), region="DE-BW", domain="x.de", host="x.de") == "b"
    assert _desk(rules, mail(subject="Unser Newsletter"), region="DE-BW") == "a"
    assert _desk(rules, region="DE-BY") == "a"
    assert _desk(rules, domain="example.org", host="www.example.org") == "a"


def test_research_institutions_in_bavaria_go_to_their_desk(tmp_path):
    """The guide's example: applications from research institutions in Bavaria reach desk b."""
    rules = _one_rule(tmp_path, 'when = { kind = "application", sender = "research", region = "DE-BY" }')
    assert _desk(rules, sender="research", level=None, region="DE-BY") == "b"
    assert _desk(rules, sender="research", level=None, region="DE-BE") == "a"


def _one_problem(tmp_path, conditions: str) -> tuple[int, str, str]:
    path = _rules_file(tmp_path, f'[[rules]]\nname = "x"\n{conditions}\ndesk = "b"\n'
                                 '[[rules]]\nname = "rest"\ndesk = "b"\n')
    with pytest.raises(ConfigError) as caught:
        load_rules(path)
    assert len(caught.value.problems) == 1, caught.value
    problem = caught.value.problems[0]
    return problem.line, problem.message, problem.hint


def test_unknown_region_code_is_refused_in_german_with_an_example(tmp_path):
    """A region that is no Land, Bundesland or canton is refused once, at its line, with an example."""
    line, message, hint = _one_problem(tmp_path, 'when = { region = ["DE-BY", "DE-XX"] }')
    assert line == 8
    assert message == ("Regel 'x': region 'DE-XX' ist kein Bundesland-, Länder- oder Kantonscode "
                       "(ISO 3166-2, z. B. DE-BY)")
    assert _one_problem(tmp_path, 'when = { region = "de-by" }')[2] == "in Großbuchstaben: DE-BY"


def test_language_and_the_type_of_a_new_condition_are_checked(tmp_path):
    """A language that is no two-letter code, and a number where texts belong, are refused in German."""
    _, message, hint = _one_problem(tmp_path, 'when = { language = "Deutsch" }')
    assert message == "Regel 'x': language 'Deutsch' ist kein Sprachcode" and "de oder en" in hint
    _, message, _ = _one_problem(tmp_path, "when = { region = 9 }")
    assert message == "Regel 'x': region muss ein Text oder eine Liste von Texten sein"


def test_invalid_regex_is_refused(tmp_path):
    """A regular expression Python cannot read is refused at load, naming where it breaks."""
    line, message, _ = _one_problem(tmp_path, "when = { subject_regex = 'Bewerbung (' }")
    assert line == 8 and message.startswith("Regel 'x': subject_regex 'Bewerbung (' ist kein gültiger regulärer")


def test_catastrophic_regex_is_refused(tmp_path):
    """A regex that repeats a repeat, which can run for hours, is refused at load."""
    _, message, hint = _one_problem(tmp_path, "when = { text_regex = '(a+)+b' }")
    assert "wiederholt eine Wiederholung" in message and "weglassen" in hint


def test_has_attachment_must_be_true_or_false(tmp_path):
    """`has_attachment = "yes"` is refused with a hint to write true without quotes."""
    line, message, hint = _one_problem(tmp_path, 'when = { has_attachment = "yes" }')
    assert line == 8 and message == 'Regel \'x\': has_attachment muss true oder false sein, nicht "yes"'
    assert "ohne Anführungszeichen" in hint


def test_address_given_as_domain_is_refused_with_its_domain(tmp_path):
    """A domain condition holding a whole address is refused, suggesting the part after the @."""
    _, message, hint = _one_problem(tmp_path, 'when = { domain = "info@bund.de" }')
    assert "ist eine Adresse" in message and hint == 'nur der Teil nach dem @: "bund.de"'


def test_misspelt_key_inside_when_is_one_problem_at_its_line(tmp_path):
    """A misspelt condition inside `when = {...}` is reported once, at that line, not as line 1 nor as
    a rule that can never match or hides later ones."""
    path = _rules_file(tmp_path, '[[rules]]\nname = "x"\nwhen = { regoin = "DE-BY" }\ndesk = "b"\n'
                                 '[[rules]]\nname = "y"\nwhen = { kind = "application" }\ndesk = "a"\n')
    with pytest.raises(ConfigError) as caught:
        load_rules(path)
    assert [(p.line, p.message, p.hint) for p in caught.value.problems] == [
        (8, "unbekannter Schlüssel 'regoin'", "gemeint ist wohl 'region'")]


def test_misspelt_value_is_one_problem(tmp_path):
    """A misspelt value is named once, without a second 'conditions exclude each other'."""
    line, message, _ = _one_problem(tmp_path, 'when = { kind = "aplication" }\nunless = { kind = "inquiry" }')
    assert line == 8 and message.startswith("Regel 'x': kind 'aplication' ist keiner der Werte")


def test_level_with_a_sender_other_than_public_body_can_never_match(tmp_path):
    """Only public bodies have a level, so a rule asking for a level of research institutes says so."""
    line, message, hint = _one_problem(tmp_path, 'when = { sender = "research", level = "national" }')
    assert line == 6 and message == "Regel 'x' kann nie zutreffen: level gilt nur für sender = public_body"
    assert "public_body" in hint


def test_same_words_in_when_and_unless_can_never_match(tmp_path):
    """A subject word both required and excluded makes the rule impossible; other words do not."""
    _, message, _ = _one_problem(tmp_path, 'when = { subject = "Bewerbung" }\n'
                                           'unless = { subject = ["Bewerbung", "Newsletter"] }')
    assert message.startswith("Regel 'x' kann nie zutreffen: unless schließt mit subject alles aus")
    assert _one_rule(tmp_path, 'when = { subject = "Bewerbung" }\nunless = { subject = "Newsletter" }').rules


def test_earlier_region_rule_pre_empts_a_narrower_later_one(tmp_path):
    """An earlier `region = ["DE-BY"]` rule takes every mail a later Bavarian-applications rule would."""
    path = _rules_file(tmp_path, '[[rules]]\nname = "bavaria"\nwhen = { region = ["DE-BY"] }\ndesk = "a"\n'
                                 '[[rules]]\nname = "bavarian-applications"\n'
                                 'when = { region = "DE-BY", kind = "application" }\ndesk = "b"\n')
    assert (10, "Regel 'bavarian-applications' kann nie zutreffen: die Regel 'bavaria' davor trifft schon auf "
                "jede Mail zu, auf die sie zuträfe") in _problems(path)


def test_earlier_subject_rule_does_not_pre_empt_a_rule_without_that_subject(tmp_path):
    """A subject condition narrows a rule, so it hides no later rule that lacks it."""
    rules = _rules(tmp_path, '[[rules]]\nname = "x"\nwhen = { subject = ["x"] }\ndesk = "a"\n'
                             '[[rules]]\nname = "y"\nwhen = { kind = "application" }\ndesk = "b"\n')
    assert [rule.name for rule in rules.rules] == ["x", "y", "rest"]


def test_earlier_open_condition_pre_empts_a_later_rule_repeating_it(tmp_path):
    """The same subject words (or fewer of them) in a later, narrower rule are pre-empted."""
    path = _rules_file(tmp_path, '[[rules]]\nname = "x"\nwhen = { subject = ["Bewerbung", "Antrag"] }\ndesk = "a"\n'
                                 '[[rules]]\nname = "y"\nwhen = { subject = "Bewerbung", region = "DE-BY" }\n'
                                 'desk = "b"\n')
    assert any("Regel 'y' kann nie zutreffen: die Regel 'x'" in message for _, message in _problems(path))


def test_level_rule_is_pre_empted_by_an_earlier_public_body_rule(tmp_path):
    """Only public bodies have a level, so a level rule after one for all public bodies is hidden."""
    path = _rules_file(tmp_path, '[[rules]]\nname = "public"\nwhen = { sender = "public_body" }\ndesk = "a"\n'
                                 '[[rules]]\nname = "national"\nwhen = { level = "national" }\ndesk = "b"\n')
    assert any("Regel 'national' kann nie zutreffen: die Regel 'public'" in message for _, message in _problems(path))


def test_desk_reached_only_by_a_rule_that_can_never_match_is_unreached(tmp_path):
    """A desk whose only rule can never match counts as reached by no rule."""
    path = _rules_file(tmp_path, '[[rules]]\nname = "x"\nwhen = { region = "DE-BY" }\n'
                                 'unless = { region = "DE-BY" }\ndesk = "b"\n')
    with pytest.raises(ConfigError) as caught:
        load_rules(path)
    found = {(p.line, p.message, p.hint) for p in caught.value.problems}
    assert (4, "keine Regel leitet Mails an das Referat 'b'", "nur Regel 'x' leitet dorthin, und sie kann nie zutreffen") \
        in found


@pytest.mark.parametrize(("conditions", "values", "why"), [
    ('when = { region = "DE-BY" }', dict(region="DE-BY"), (True, "region DE-BY")),
    ('when = { region = "DE-BY" }', dict(region=None), (False, "region unknown is not DE-BY")),
    ('when = { subject = "Bewerbung" }', dict(), (True, "subject contains 'Bewerbung'")),
    ('when = { subject = "Antrag" }', dict(), (False, "subject contains none of 'Antrag'")),
    ('unless = { subject = "Bewerbung" }', dict(), (False, "unless subject contains 'Bewerbung'")),
    ('when = { domain = "*.de" }', dict(domain="uni-muenchen.de", host="uni-muenchen.de"),
     (True, "domain uni-muenchen.de matches *.de")),
    ('when = { domain = "*.at" }', dict(domain="uni-muenchen.de", host="lmu.uni-muenchen.de"),
     (False, "domain uni-muenchen.de / lmu.uni-muenchen.de matches none of *.at")),
    ("when = { subject_regex = 'bewerb\\w+' }", dict(), (True, "subject matches /bewerb\\w+/ ('Bewerbung')")),
    ("when = { has_attachment = true }", dict(), (False, "has_attachment false is not true")),
])
def test_explain_rule_says_on_what_a_new_condition_matched_or_failed(tmp_path, conditions, values, why):
    """Each rule's MATCH/no line names the value, word or pattern it matched or failed on."""
    rule = _one_rule(tmp_path, conditions).rules[0]
    assert explain_rule(rule, MAIL, dataclasses.replace(classification(), **values)) == why

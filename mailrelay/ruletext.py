"""The editors' rules in plain words for `explain`: which rule decides, why each one does or does not match."""
from __future__ import annotations

from mailrelay.conditions import Condition
from mailrelay.i18n import tr
from mailrelay.model import Classification, Decision, Inbound
from mailrelay.route import Seen, look, matching_rule, rule_matches
from mailrelay.rules import Rule, Rules

DECIDES, ALSO_MATCHES, NO_MATCH = "decides", "also_matches", "no_match"  # stable: `explain --json` uses them


def field_name(label: str) -> str:
    """A rule field (or what explain saw: domain, host, subject, text) as the editors' guide names it."""
    names = {"kind": ("Art", "kind"), "sender": ("Absenderart", "sender type"), "level": ("Ebene", "level"),
             "country": ("Land", "country"), "region": ("Region", "region"), "language": ("Sprache", "language"),
             "has_attachment": ("Anhang", "attachment"), "domain": ("Domain", "domain"),
             "host": ("Rechnername", "host"), "subject": ("Betreff", "subject"), "text": ("Text", "text")}
    de, en = names.get(label.removesuffix("_regex"), (label, label))
    return tr(de, en)


def verdicts(rules: Rules, inbound: Inbound, classification: Classification) -> list[tuple[Rule, str]]:
    """Each rule with DECIDES (the first that matches), ALSO_MATCHES (matches, but comes later) or NO_MATCH."""
    deciding = matching_rule(rules, inbound, classification)
    return [(rule, DECIDES if rule is deciding else
             ALSO_MATCHES if rule_matches(rule, inbound, classification) else NO_MATCH) for rule in rules.rules]


def verdict_words(verdict: str) -> str:
    return {DECIDES: tr("TRIFFT ZU — entscheidet", "MATCHES — decides"),
            ALSO_MATCHES: tr("würde auch zutreffen, kommt aber nach der entscheidenden Regel",
                             "would match too, but comes after the deciding rule"),
            NO_MATCH: tr("trifft nicht zu", "does not match")}[verdict]


def rule_reasons(rule: Rule, inbound: Inbound, classification: Classification) -> str:
    """On what the rule matched (every condition), or the first condition that stopped it."""
    said = []
    for condition in rule.conditions:
        seen = look(condition, inbound, classification)
        said.append(condition_words(condition, seen))
        if seen.found == condition.negated:
            return said[-1]
    return "; ".join(said) or tr("keine Bedingungen", "no conditions")


def condition_words(condition: Condition, seen: Seen) -> str:
    """One condition and what the mail showed, in the person's language."""
    if condition.negated:
        applies = tr("Ausnahme greift", "the exception applies") if seen.found else tr("keine Ausnahme",
                                                                                       "no exception")
        return tr(f"außer wenn {_wanted(condition)} (hier: {_here(condition, seen)}) — {applies}",
                  f"unless {_wanted(condition)} (here: {_here(condition, seen)}): {applies}")
    if condition.is_open or seen.found:
        return _finding(condition, seen)
    return tr(f"verlangt {_wanted(condition)}, hier: {seen.value}", f"needs {_wanted(condition)}, here: {seen.value}")


def _wanted(condition: Condition) -> str:
    """What the condition asks for: 'Land DE oder unknown ist' style, ready after 'außer wenn' or 'verlangt'."""
    name = field_name(condition.field)
    if condition.field == "domain":
        patterns = _either(sorted(condition.values))
        return tr(f"die Domain auf {patterns} passt", f"the domain matches {patterns}")
    if condition.field.endswith("_regex"):
        regexes = _either(f"/{pattern.pattern}/" for pattern in condition.patterns)
        return tr(f"der {name} auf {regexes} passt", f"the {name} matches {regexes}")
    if condition.is_open:
        words = _either(repr(word) for word in sorted(condition.values))
        return tr(f"im {name} {words} steht", f"the {name} contains {words}")
    values = _either(sorted(condition.values))
    return tr(f"{name} {values} ist", f"{name} is {values}") if condition.negated else f"{name} {values}"


def _here(condition: Condition, seen: Seen) -> str:
    """What the mail showed, said briefly after an `unless` condition."""
    if condition.field == "domain":
        return f"{field_name(seen.label)} {seen.value}" if seen.value else tr("keine Absenderadresse",
                                                                            "no sender address")
    if condition.is_open:
        return f"'{seen.value}'" if seen.found else tr("nicht gefunden", "not found")
    return seen.value


def _finding(condition: Condition, seen: Seen) -> str:
    """What the mail showed for a `when` condition's field."""
    name = field_name(seen.label)
    if not condition.is_open:
        return tr(f"{name} ist {seen.value}", f"{name} is {seen.value}")
    if condition.field == "domain":
        if seen.found:
            return tr(f"{name} {seen.value} passt auf {seen.pattern}", f"{name} {seen.value} matches {seen.pattern}")
        names, patterns = seen.value or tr("(keine Absenderadresse)", "(no sender address)"), _listed(condition)
        return tr(f"Domain {names} passt auf keins von {patterns}", f"domain {names} matches none of {patterns}")
    if seen.found and condition.field.endswith("_regex"):
        return tr(f"{name} passt auf /{seen.pattern}/ ('{seen.value}')",
                  f"{name} matches /{seen.pattern}/ ('{seen.value}')")
    if seen.found:
        return tr(f"{name} enthält '{seen.value}'", f"{name} contains '{seen.value}'")
    if condition.field.endswith("_regex"):
        return tr(f"{name} passt auf keinen von {_listed(condition)}", f"{name} matches none of {_listed(condition)}")
    return tr(f"{name} enthält keins davon: {_listed(condition)}", f"{name} contains none of {_listed(condition)}")


def _listed(condition: Condition) -> str:
    if condition.field.endswith("_regex"):
        return ", ".join(f"/{pattern.pattern}/" for pattern in condition.patterns)
    if condition.field == "domain":
        return ", ".join(sorted(condition.values))
    return ", ".join(repr(word) for word in sorted(condition.values))


def _either(items) -> str:
    """'a', 'a oder b', 'a, b oder c' (English: or)."""
    items = list(items)
    if len(items) < 2:
        return "".join(items)
    return f"{', '.join(items[:-1])} {tr('oder', 'or')} {items[-1]}"


def confidence_words(confidence: float, rules: Rules, decision: Decision) -> str:
    """The classifier's confidence beside the review threshold, and what the threshold does with it."""
    review = rules.review
    if review is None:
        return tr(f"{confidence:.2f} (keine Prüfschwelle eingestellt)", f"{confidence:.2f} (no review threshold set)")
    threshold = tr(f"Prüfschwelle {review.below:.2f}", f"review threshold {review.below:.2f}")
    if decision.rule == "low-confidence-review":
        outcome = tr(f"geht zur Prüfung an {review.desk}", f"goes to {review.desk} for review")
    elif confidence < review.below:
        outcome = tr("darunter, gilt hier aber nicht: die Regel leitet nicht an ein Fachreferat",
                     "below it, but it does not apply: the rule does not forward to a desk")
    else:
        outcome = tr("sicher genug, keine Prüfung", "sure enough, no review")
    return f"{confidence:.2f} ({threshold}: {outcome})"

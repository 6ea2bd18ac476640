"""Inbound mail + its classification + the editors' rules -> Decision (pure; first match wins)."""
from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase

from mailrelay.conditions import UNKNOWN, Condition
from mailrelay.model import Action, Classification, Decision, Inbound
from mailrelay.rules import Rule, Rules

_SHOWN = 60  # characters of a found text shown by explain


def field_value(inbound: Inbound, classification: Classification, field_name: str) -> str:
    """The mail's value for a finite rule field, as rules spell it."""
    if field_name == "has_attachment":
        return "true" if inbound.attachments else "false"
    value = getattr(classification, field_name)
    if value is None:
        return "none" if field_name == "level" else UNKNOWN
    return str(value)


@dataclass(frozen=True)
class Seen:
    """What a condition's test found in the mail, before `unless` negates it: the ground for both the
    English `why` of `explain --json` and the plain words of `explain`."""

    found: bool
    label: str  # the field as shown: kind, country..., domain or host, subject or text
    value: str  # a finite field's value; the names a domain pattern was tried on; the text found
    pattern: str = ""  # the domain pattern or regex that matched


def look(condition: Condition, inbound: Inbound, classification: Classification) -> Seen:
    """Whether the condition's test finds the mail's value among its own, and what it saw."""
    if condition.field == "domain":
        return _look_domain(condition, classification)
    if condition.is_open:
        return _look_text(condition, inbound)
    value = field_value(inbound, classification, condition.field)
    return Seen(value in condition.values, condition.field, value)


def _look_domain(condition: Condition, classification: Classification) -> Seen:
    """A pattern matches the sender's registrable domain or the whole host part of the address."""
    labelled = (("domain", classification.domain.lower()), ("host", classification.host.lower()))
    names = tuple((label, name) for label, name in labelled if name)  # no address: no domain matches
    for pattern in sorted(condition.values):
        for label, name in names:
            if fnmatchcase(name, pattern):
                return Seen(True, label, name, pattern)
    return Seen(False, "domain", " / ".join(dict.fromkeys(name for _, name in names)))


def _look_text(condition: Condition, inbound: Inbound) -> Seen:
    where = "subject" if condition.field.startswith("subject") else "text"
    text = inbound.subject if where == "subject" else inbound.text
    for pattern in condition.patterns:
        found = pattern.search(text)
        if found is not None:
            return Seen(True, where, " ".join(found.group().split())[:_SHOWN], pattern.pattern)
    return Seen(False, where, "")


def observe(condition: Condition, inbound: Inbound, classification: Classification) -> tuple[bool, str]:
    """Whether the condition's test finds the mail's value among its own (before `unless` negates it),
    and what was seen, in words (English: the stable `why` of `explain --json`)."""
    seen = look(condition, inbound, classification)
    return seen.found, _seen_words(condition, seen)


def _seen_words(condition: Condition, seen: Seen) -> str:
    if not condition.is_open:
        return f"{seen.label} {seen.value}"
    if condition.field == "domain":
        if seen.found:
            return f"{seen.label} {seen.value} matches {seen.pattern}"
        return f"domain {seen.value or '(none)'} matches none of {', '.join(sorted(condition.values))}"
    regex = condition.field.endswith("_regex")
    if seen.found and regex:
        return f"{seen.label} matches /{seen.pattern}/ ('{seen.value}')"
    if seen.found:
        return f"{seen.label} contains '{seen.value}'"
    if regex:
        return f"{seen.label} matches none of {', '.join(f'/{p.pattern}/' for p in condition.patterns)}"
    return f"{seen.label} contains none of {', '.join(repr(word) for word in sorted(condition.values))}"


def condition_holds(condition: Condition, inbound: Inbound, classification: Classification) -> bool:
    return observe(condition, inbound, classification)[0] != condition.negated


def explain_rule(rule: Rule, inbound: Inbound, classification: Classification) -> tuple[bool, str]:
    """Whether the rule matches, and on what: the conditions that held, or the first that did not."""
    held = []
    for condition in rule.conditions:
        seen = look(condition, inbound, classification)
        if seen.found == condition.negated:
            return False, _failed(condition, seen)
        held.append(_seen_words(condition, seen))
    return True, ", ".join(held) or "no conditions"


def _failed(condition: Condition, seen: Seen) -> str:
    """Why a condition stops the rule: a `when` value not found, or an `unless` exception that applies."""
    words = _seen_words(condition, seen)
    if condition.is_open:
        return f"unless {words}" if condition.negated else words
    if condition.negated:
        return f"unless {condition.field} is {' or '.join(sorted(condition.values))} (here: {seen.value})"
    return f"{words} is not {'/'.join(sorted(condition.values))}"


def rule_matches(rule: Rule, inbound: Inbound, classification: Classification) -> bool:
    return all(condition_holds(c, inbound, classification) for c in rule.conditions)


def matching_rule(rules: Rules, inbound: Inbound, classification: Classification) -> Rule:
    """The first rule whose conditions all hold, else the default."""
    return next((rule for rule in rules.rules if rule_matches(rule, inbound, classification)), rules.default)


def route(inbound: Inbound, classification: Classification, rules: Rules) -> Decision:
    """Pick the desk. Machine mail is never forwarded, whatever a rule says."""
    rule = matching_rule(rules, inbound, classification)
    if rule.action is Action.FORWARD and classification.kind.is_machine:
        return Decision(Action.IGNORE, rule="machine-mail-guard",
                        reason=f"{classification.kind} is never forwarded (rule '{rule.name}' would have)",
                        rules_version=rules.version)
    review = rules.review
    if (review and rule.action is Action.FORWARD and rule.desk != review.desk
            and classification.confidence < review.below):
        return Decision(Action.FORWARD, rule="low-confidence-review", desk=review.desk,
                        reason=f"Zur Prüfung: unsichere Erkennung (Sicherheit {classification.confidence:.2f} "
                               f"unter {review.below:.2f}); Regel '{rule.name}' hätte an {rule.desk} geleitet",
                        rules_version=rules.version)
    return Decision(rule.action, rule=rule.name, desk=rule.desk, reason=rule.reason, rules_version=rules.version)

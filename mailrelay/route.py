"""Inbound mail + its classification + the editors' rules -> Decision (pure; first match wins)."""
from __future__ import annotations

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


def observe(condition: Condition, inbound: Inbound, classification: Classification) -> tuple[bool, str]:
    """Whether the condition's test finds the mail's value among its own (before `unless` negates it),
    and what was seen, in words."""
    if condition.field == "domain":
        return _observe_domain(condition, classification)
    if condition.is_open:
        return _observe_text(condition, inbound)
    value = field_value(inbound, classification, condition.field)
    return value in condition.values, f"{condition.field} {value}"


def _observe_domain(condition: Condition, classification: Classification) -> tuple[bool, str]:
    """A pattern matches the sender's registrable domain or the whole host part of the address."""
    labelled = (("domain", classification.domain.lower()), ("host", classification.host.lower()))
    names = tuple((label, name) for label, name in labelled if name)  # no address: no domain matches
    for pattern in sorted(condition.values):
        for label, name in names:
            if fnmatchcase(name, pattern):
                return True, f"{label} {name} matches {pattern}"
    seen = " / ".join(dict.fromkeys(name for _, name in names)) or "(none)"
    return False, f"domain {seen} matches none of {', '.join(sorted(condition.values))}"


def _observe_text(condition: Condition, inbound: Inbound) -> tuple[bool, str]:
    where = "subject" if condition.field.startswith("subject") else "text"
    text = inbound.subject if where == "subject" else inbound.text
    for pattern in condition.patterns:
        found = pattern.search(text)
        if found is None:
            continue
        shown = " ".join(found.group().split())[:_SHOWN]
        if condition.field.endswith("_regex"):
            return True, f"{where} matches /{pattern.pattern}/ ('{shown}')"
        return True, f"{where} contains '{shown}'"
    if condition.field.endswith("_regex"):
        return False, f"{where} matches none of {', '.join(f'/{p.pattern}/' for p in condition.patterns)}"
    return False, f"{where} contains none of {', '.join(repr(word) for word in sorted(condition.values))}"


def condition_holds(condition: Condition, inbound: Inbound, classification: Classification) -> bool:
    return observe(condition, inbound, classification)[0] != condition.negated


def explain_rule(rule: Rule, inbound: Inbound, classification: Classification) -> tuple[bool, str]:
    """Whether the rule matches, and on what: the conditions that held, or the first that did not."""
    held = []
    for condition in rule.conditions:
        found, seen = observe(condition, inbound, classification)
        if found == condition.negated:
            return False, _failed(condition, seen)
        held.append(seen)
    return True, ", ".join(held) or "no conditions"


def _failed(condition: Condition, seen: str) -> str:
    if condition.is_open:
        return f"unless {seen}" if condition.negated else seen
    verb = "is" if condition.negated else "is not"
    return f"{seen} {verb} {'/'.join(sorted(condition.values))}"


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

"""Inbound classification + the editors' rules -> Decision (pure; first match wins)."""
from __future__ import annotations

from mailrelay.model import Action, Classification, Decision
from mailrelay.rules import Condition, Rule, Rules


def field_value(classification: Classification, field_name: str) -> str:
    """The classification's value for a rule field, as rules spell it."""
    value = getattr(classification, field_name)
    return "none" if value is None else str(value)


def condition_holds(condition: Condition, classification: Classification) -> bool:
    return (field_value(classification, condition.field) in condition.values) != condition.negated


def explain_rule(rule: Rule, classification: Classification) -> tuple[bool, str]:
    """Whether the rule matches, and on what: the conditions that held, or the first that did not."""
    for condition in rule.conditions:
        if not condition_holds(condition, classification):
            value = field_value(classification, condition.field)
            verb = "is" if condition.negated else "is not"
            return False, f"{condition.field} {value} {verb} {'/'.join(sorted(condition.values))}"
    held = [f"{c.field} {field_value(classification, c.field)}" for c in rule.conditions]
    return True, ", ".join(held) or "no conditions"


def rule_matches(rule: Rule, classification: Classification) -> bool:
    return all(condition_holds(c, classification) for c in rule.conditions)


def matching_rule(rules: Rules, classification: Classification) -> Rule:
    """The first rule whose conditions all hold, else the default."""
    return next((rule for rule in rules.rules if rule_matches(rule, classification)), rules.default)


def route(classification: Classification, rules: Rules) -> Decision:
    """Pick the desk. Machine mail is never forwarded, whatever a rule says."""
    rule = matching_rule(rules, classification)
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

"""Rules that can never fire and desks no rule reaches, found by reasoning over the finite values."""
from __future__ import annotations

from typing import TYPE_CHECKING, Mapping

from mailrelay.model import Kind, Level, Sender, UNKNOWN_COUNTRY
from mailrelay.tomlcheck import TomlFile

if TYPE_CHECKING:
    from mailrelay.rules import Desk, Rule

_OTHER_COUNTRY = "(any other country)"


def check_reachability(doc: TomlFile, rules: tuple["Rule", ...], default: "Rule",
                       desks: Mapping[str, "Desk"], reached_otherwise: set[str]) -> None:
    """Record a problem for each rule an earlier rule always pre-empts, and each desk nothing reaches
    (the review and alert desks are reached otherwise)."""
    universe = _universe(rules)
    allowed = [_allowed(rule, universe) for rule in rules]
    for index, rule in enumerate(rules):
        if any(not values for values in allowed[index].values()):
            doc.problem(("rules", index), f"rule '{rule.name}' can never match: its conditions exclude each other")
            continue
        earlier = next((rules[i] for i in range(index) if _covers(allowed[i], allowed[index])), None)
        if earlier is not None:
            doc.problem(("rules", index), f"rule '{rule.name}' can never match: rule '{earlier.name}' "
                        "before it matches every mail it would", "move it above, or narrow the earlier rule")
    reached = {rule.desk for rule in rules + (default,)} | reached_otherwise
    for name in desks:
        if name not in reached:
            doc.problem(("desks", name), f"no rule sends mail to desk '{name}'",
                        "add a rule for it, or remove the desk")


def _universe(rules: tuple["Rule", ...]) -> dict[str, frozenset[str]]:
    """Every value a field can take; countries not named in any rule stand together as one."""
    named = {value for rule in rules for c in rule.conditions if c.field == "country" for value in c.values}
    return {
        "kind": frozenset(Kind),
        "sender": frozenset(Sender),
        "level": frozenset(Level) | {"none"},
        "country": frozenset(named | {UNKNOWN_COUNTRY, _OTHER_COUNTRY}),
    }


def _allowed(rule: "Rule", universe: dict[str, frozenset[str]]) -> dict[str, frozenset[str]]:
    allowed = dict(universe)
    for condition in rule.conditions:
        values = frozenset(condition.values)
        allowed[condition.field] = allowed[condition.field] - values if condition.negated else (
            allowed[condition.field] & values)
    return allowed


def _covers(earlier: dict[str, frozenset[str]], later: dict[str, frozenset[str]]) -> bool:
    return all(later[field] <= earlier[field] for field in later)

"""Rules that can never fire and desks no rule reaches, found by reasoning over the rules' conditions.

Finite fields (kind, country, region, ...) are reasoned over exactly, as sets of values. Open ones
(domain, subject, text and the regexes) only by the entries a rule lists: nothing is claimed about
what a word or pattern might or might not find in a mail."""
from __future__ import annotations

import difflib
from typing import TYPE_CHECKING, AbstractSet, Mapping

from mailrelay.conditions import FIELD_VALUES, FINITE_FIELDS, UNKNOWN, Condition
from mailrelay.i18n import tr
from mailrelay.model import UNKNOWN_COUNTRY, Level, Sender
from mailrelay.tomlcheck import TomlFile

if TYPE_CHECKING:
    from mailrelay.rules import Desk, Rule

Box = Mapping[str, frozenset[str]]  # for each finite field, the values a mail may have to match
_OTHERS = {"country": "(any other country)", "region": "(any other region)", "language": "(any other language)"}
_LEVELS = frozenset(Level)


def check_reachability(doc: TomlFile, rules: tuple["Rule", ...], default: "Rule", desks: Mapping[str, "Desk"],
                       reached_otherwise: set[str], refused: AbstractSet[int] = frozenset()) -> None:
    """Record a problem for each rule that can never match, and each desk nothing reaches
    (the review and alert desks are reached otherwise). Rules in `refused` had problems already:
    they are left out, and count as reaching their desk."""
    universe = _universe(rules)
    boxes = [_box(rule, universe) for rule in rules]
    reached = {default.desk} | reached_otherwise
    possible: list[int] = []
    for index, rule in enumerate(rules):
        if index not in refused:
            earlier = [(rules[i], boxes[i]) for i in possible]
            problem = _never(rule, boxes[index]) or _preempted(rule, boxes[index], earlier)
            if problem:
                doc.problem(("rules", index), *problem)
                continue
            possible.append(index)
        reached.add(rule.desk)
    reached = {_declared(name, desks) for name in reached}
    for name in desks:
        if name not in reached:
            doc.problem(("desks", name), tr(f"keine Regel leitet Mails an das Referat '{name}'",
                                            f"no rule sends mail to desk '{name}'"),
                        _unreached_hint(name, rules, refused))


def _declared(desk: str | None, desks: Mapping[str, "Desk"]) -> str | None:
    """The declared desk a name means: itself, or the closest one if it is misspelt (already reported)."""
    if desk is None or desk in desks:
        return desk
    close = difflib.get_close_matches(desk, list(desks), n=1)
    return close[0] if close else desk


def _unreached_hint(desk: str, rules: tuple["Rule", ...], refused: AbstractSet[int]) -> str:
    hopeless = [rule.name for index, rule in enumerate(rules) if rule.desk == desk and index not in refused]
    if hopeless:
        return tr(f"nur Regel '{hopeless[0]}' leitet dorthin, und sie kann nie zutreffen",
                  f"only rule '{hopeless[0]}' sends mail there, and it can never match")
    return tr("eine Regel dafür anlegen oder das Referat entfernen", "add a rule for it, or remove the desk")


def _universe(rules: tuple["Rule", ...]) -> dict[str, frozenset[str]]:
    """Every value a finite field can take; values no rule names stand together as one."""
    def named(field: str) -> set[str]:
        return {value for rule in rules for c in rule.conditions if c.field == field for value in c.values}
    universe = dict(FIELD_VALUES)
    universe["country"] = frozenset(named("country") | {UNKNOWN_COUNTRY, _OTHERS["country"]})
    for field in ("region", "language"):
        universe[field] = frozenset(named(field) | {UNKNOWN, _OTHERS[field]})
    return universe


def _box(rule: "Rule", universe: Box) -> Box:
    box = dict(universe)
    for condition in rule.conditions:
        if condition.field in FINITE_FIELDS:
            box[condition.field] = (box[condition.field] - condition.values if condition.negated
                                    else box[condition.field] & condition.values)
    return box


def _never(rule: "Rule", box: Box) -> tuple[str, ...] | None:
    """Why no mail at all can match the rule, or None."""
    if any(not values for values in box.values()):
        field = next(field for field, values in box.items() if not values)
        return (tr(f"Regel '{rule.name}' kann nie zutreffen: ihre Bedingungen für {field} schließen einander aus",
                   f"rule '{rule.name}' can never match: its conditions on {field} exclude each other"),
                tr(f"{field} in when und unless vergleichen", f"compare {field} in when and unless"))
    if "none" not in box["level"] and Sender.PUBLIC_BODY not in box["sender"]:
        return (tr(f"Regel '{rule.name}' kann nie zutreffen: level gilt nur für sender = public_body",
                   f"rule '{rule.name}' can never match: only sender = public_body has a level"),
                tr('level weglassen, oder sender = "public_body" zulassen',
                   'leave out level, or allow sender = "public_body"'))
    for wanted in _open(rule, negated=False):
        excluded = next((c for c in _open(rule, negated=True) if c.field == wanted.field
                         and wanted.values <= c.values), None)
        if excluded is not None:
            return (tr(f"Regel '{rule.name}' kann nie zutreffen: unless schließt mit {wanted.field} alles aus, "
                       "was when verlangt",
                       f"rule '{rule.name}' can never match: unless excludes with {wanted.field} all that when asks"),
                    tr("den Eintrag aus when oder aus unless entfernen", "remove the entry from when or from unless"))
    return None


def _preempted(rule: "Rule", box: Box, earlier: list[tuple["Rule", Box]]) -> tuple[str, ...] | None:
    narrowed = _feasible(box)
    for other, other_box in earlier:
        if _covers(other, other_box, rule, narrowed):
            return (tr(f"Regel '{rule.name}' kann nie zutreffen: die Regel '{other.name}' davor trifft schon "
                       "auf jede Mail zu, auf die sie zuträfe",
                       f"rule '{rule.name}' can never match: rule '{other.name}' before it matches every mail it would"),
                    tr(f"sie über '{other.name}' setzen, oder '{other.name}' enger fassen",
                       f"move it above '{other.name}', or narrow '{other.name}'"))
    return None


def _feasible(box: Box) -> Box:
    """The box without the mails the classifier never makes: it gives a level only to public bodies."""
    narrowed = dict(box)
    if Sender.PUBLIC_BODY not in box["sender"]:
        narrowed["level"] = box["level"] & {"none"}
    if not box["level"] - _LEVELS:  # every allowed level is a real one, so only a public body fits
        narrowed["sender"] = box["sender"] & {Sender.PUBLIC_BODY}
    return narrowed


def _covers(earlier: "Rule", earlier_box: Box, later: "Rule", later_box: Box) -> bool:
    """Whether every mail `later` matches, `earlier` matches too: its finite values are wider, and each
    of its open conditions follows from one of `later`'s."""
    if not all(later_box[field] <= earlier_box[field] for field in later_box):
        return False
    later_open = _open(later, negated=False) + _open(later, negated=True)
    return all(any(_implies(mine, theirs) for mine in later_open)
               for theirs in _open(earlier, negated=False) + _open(earlier, negated=True))


def _implies(condition: Condition, other: Condition) -> bool:
    """Whether `other` holds for every mail `condition` holds for, judged by their entries alone
    (each entry is found or not: a list holds when any entry is found, its negation when none is)."""
    if condition.field != other.field or condition.negated != other.negated:
        return False
    return other.values <= condition.values if condition.negated else condition.values <= other.values


def _open(rule: "Rule", negated: bool) -> tuple[Condition, ...]:
    return tuple(c for c in rule.conditions if c.is_open and c.negated == negated)

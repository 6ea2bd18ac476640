"""The editors' routing file -> frozen desks and an ordered rule list, validated with file:line."""
from __future__ import annotations

import difflib
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Mapping

from mailrelay.conditions import Condition, read_conditions
from mailrelay.i18n import tr
from mailrelay.model import Action
from mailrelay.reach import check_reachability
from mailrelay.tomlcheck import Key, TomlFile

RESERVED_TARGETS = {"ignore": Action.IGNORE, "quarantine": Action.QUARANTINE}
# Desk names go into Message-IDs and file names.
_DESK_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")
# ASCII only: a desk address goes into SMTP's RCPT TO.
_ADDRESS = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")


@dataclass(frozen=True)
class Desk:
    name: str
    display_name: str
    addresses: tuple[str, ...]


@dataclass(frozen=True)
class Rule:
    name: str
    conditions: tuple[Condition, ...]
    action: Action
    desk: str | None
    reason: str
    line: int


@dataclass(frozen=True)
class Review:
    """Mail whose classification is less sure than `below` goes to `desk` instead of on a guess."""

    below: float
    desk: str


@dataclass(frozen=True)
class Acknowledgements:
    """Whether applicants get an answer (RFC 3834), also those from abroad, and at most once in `days`."""

    enabled: bool = False
    abroad: bool = True
    days: int = 14


@dataclass(frozen=True)
class Rules:
    desks: Mapping[str, Desk]
    rules: tuple[Rule, ...]
    default: Rule
    version: str
    review: Review | None = None
    alert_desk: str = ""  # who is told when mails go to quarantine
    acknowledgements: Acknowledgements = Acknowledgements()


def load_rules(path: Path) -> Rules:
    """Read and validate the routing file; raises ConfigError naming every problem."""
    doc = TomlFile.load(path)
    doc.check_keys(doc.data, ("desks", "rules", "default", "default_reason", "review_below_confidence",
                              "review_desk", "alert_desk", "acknowledgements"))
    desks = _desks(doc)
    read = [_rule(doc, item, index, desks) for index, item in enumerate(_rule_tables(doc))]
    rules = tuple(rule for rule, _ in read)
    # A rule with a problem is left out of the reasoning: its one message is enough.
    refused = {index for index, (_, written_well) in enumerate(read) if not written_well}
    default_target = doc.get(doc.data, "default", str, ())
    default_reason = doc.get(doc.data, "default_reason", str, (), "no rule matched")
    action, desk = _target(doc, default_target, ("default",), desks, _meant_desks(doc))
    default = Rule("default", (), action, desk, default_reason, doc.line_of(("default",)))
    review = _review(doc, desks)
    alert_desk = doc.get(doc.data, "alert_desk", str, (), review.desk if review else (default.desk or ""))
    if alert_desk and alert_desk not in desks and alert_desk not in _meant_desks(doc):
        doc.problem(("alert_desk",), _undeclared(alert_desk), _declared(alert_desk, sorted(desks)))
    _check_names_unique(doc, rules)
    acknowledgements = _acknowledgements(doc)
    reached_otherwise = {review.desk} if review else _meant_review_desk(doc)
    check_reachability(doc, rules, default, desks, reached_otherwise | {alert_desk}, refused)
    doc.raise_if_problems()
    version = hashlib.sha256(doc.text.encode("utf-8")).hexdigest()[:12]
    return Rules(MappingProxyType(desks), rules, default, version, review, alert_desk, acknowledgements)


def _acknowledgements(doc: TomlFile) -> Acknowledgements:
    table = doc.get(doc.data, "acknowledgements", dict, (), {})
    key: Key = ("acknowledgements",)
    doc.check_keys(table or {}, ("enabled", "abroad", "days"), key)
    days = doc.get(table or {}, "days", int, key, 14)
    if days is not None and days < 1:
        doc.problem(key + ("days",), tr("days muss mindestens 1 sein", "days must be at least 1"))
    return Acknowledgements(doc.get(table or {}, "enabled", bool, key, False) is True,
                            doc.get(table or {}, "abroad", bool, key, True) is not False, days or 14)


def _review(doc: TomlFile, desks: Mapping[str, Desk]) -> Review | None:
    below = doc.get(doc.data, "review_below_confidence", (int, float), (), None)
    if below is None:
        return None
    if not 0 <= below <= 1:
        doc.problem(("review_below_confidence",), tr("review_below_confidence muss zwischen 0 und 1 liegen",
                                                     "review_below_confidence must be between 0 and 1"),
                    tr("eine Zahl mit Punkt, z. B. 0.45", "a number with a point, like 0.45"))
    desk = doc.get(doc.data, "review_desk", str, (), "editors")
    if desk not in desks and desk not in _meant_desks(doc):
        doc.problem(("review_desk",), _undeclared(desk), _declared(desk, sorted(desks)))
    return Review(float(below), desk)


def _meant_review_desk(doc: TomlFile) -> set[str]:
    """The review desk of a review whose threshold has a problem of its own: it is meant to be reached."""
    if "review_below_confidence" in doc.data or doc.meant((), "review_below_confidence"):
        return {doc.data.get("review_desk", "editors")}
    return set()


def _desks(doc: TomlFile) -> dict[str, Desk]:
    table = doc.get(doc.data, "desks", dict, ())
    desks = {}
    for name, entry in (table or {}).items():
        key: Key = ("desks", name)
        if name in RESERVED_TARGETS:
            doc.problem(key, tr(f"'{name}' ist als Ziel reserviert und kann kein Referat heißen",
                                f"'{name}' is reserved and cannot be a desk name"),
                        tr("einen anderen Namen wählen, z. B. desk-archiv", "choose another name, like desk-archive"))
        elif not _DESK_NAME.match(name):
            doc.problem(key, tr(f"der Referatsname '{name}' darf nur a-z, 0-9 und '-' enthalten",
                                f"desk name '{name}' may only use a-z, 0-9 and '-'"),
                        tr('den ausgeschriebenen Namen in name = "…" schreiben', 'put the full name in name = "…"'))
        if not isinstance(entry, dict):
            doc.problem(key, tr(f"das Referat '{name}' muss eine Tabelle sein", f"desk '{name}' must be a table"),
                        tr(f"als Überschrift: [desks.{name}]", f"as a header: [desks.{name}]"))
            continue
        doc.check_keys(entry, ("name", "addresses"), key)
        addresses = doc.get(entry, "addresses", list, key) or []
        bad = [a for a in addresses if not isinstance(a, str) or not _ADDRESS.match(a)]
        for address in bad:
            doc.problem(key + ("addresses",), tr(f"'{address}' ist keine Mailadresse", f"'{address}' is not a mail address"),
                        tr('z. B. addresses = ["referat@example.org"]', 'like addresses = ["desk@example.org"]'))
        if not addresses and not bad and "addresses" in entry:
            doc.problem(key + ("addresses",), tr(f"das Referat '{name}' braucht mindestens eine Adresse",
                                                 f"desk '{name}' needs at least one address"),
                        tr('z. B. addresses = ["referat@example.org"]', 'like addresses = ["desk@example.org"]'))
        display = doc.get(entry, "name", str, key, name)
        desks[name] = Desk(name, display, tuple(a.lower() for a in addresses if a not in bad))
    return desks


def _rule_tables(doc: TomlFile) -> list[dict]:
    items = doc.get(doc.data, "rules", list, (), [])
    if any(not isinstance(item, dict) for item in items):
        doc.problem(("rules",), tr("jede Regel muss eine [[rules]]-Tabelle sein", "each rule must be a [[rules]] table"),
                    tr('z. B. [[rules]] mit name = "…" und desk = "…" darunter',
                       'like [[rules]] with name = "…" and desk = "…" below it'))
        return []
    return items


def _rule(doc: TomlFile, item: dict, index: int, desks: Mapping[str, Desk]) -> tuple[Rule, bool]:
    """The rule, and whether it was written without a problem (a rule with one is left out of the reasoning
    about which rules can match: its own message is the one to read)."""
    key: Key = ("rules", index)
    before = len(doc.problems)
    doc.check_keys(item, ("name", "when", "unless", "desk", "reason"), key)
    name = doc.get(item, "name", str, key) or f"rule {index + 1}"
    conditions = read_conditions(doc, item, "when", key, name) + read_conditions(doc, item, "unless", key, name)
    action, desk = _target(doc, doc.get(item, "desk", str, key), key + ("desk",), desks, _meant_desks(doc))
    rule = Rule(name, conditions, action, desk, doc.get(item, "reason", str, key, ""), doc.line_of(key))
    return rule, len(doc.problems) == before


def _target(doc: TomlFile, target: str | None, key: Key, desks: Mapping[str, Desk],
            meant: frozenset[str] = frozenset()) -> tuple[Action, str | None]:
    """What a rule's (or the default's) desk names. A desk under a misspelt [desks] header is not
    reported again: the header's own message says it."""
    if target is None:
        return Action.QUARANTINE, None
    if target in RESERVED_TARGETS:
        return RESERVED_TARGETS[target], None
    if target not in desks and target not in meant:
        doc.problem(key, _undeclared(target), _declared(target, sorted(desks) + sorted(RESERVED_TARGETS)))
    return Action.FORWARD, target


def _meant_desks(doc: TomlFile) -> frozenset[str]:
    """The desks written under a misspelling of [desks] ([desk.editors])."""
    return frozenset(name for table in doc.meant((), "desks") if isinstance(doc.data.get(table), dict)
                     for name in doc.data[table])


def _undeclared(desk: str) -> str:
    return tr(f"'{desk}' ist kein deklariertes Referat", f"'{desk}' is not a declared desk")


def _declared(desk: str, known: list[str]) -> str:
    close = difflib.get_close_matches(desk, known, n=1)
    if close:
        return tr(f"gemeint ist wohl '{close[0]}'", f"did you mean '{close[0]}'?")
    return tr(f"deklariert: {', '.join(known)}", f"declared: {', '.join(known)}")


def _check_names_unique(doc: TomlFile, rules: tuple[Rule, ...]) -> None:
    seen: set[str] = set()
    for index, rule in enumerate(rules):
        if rule.name in seen:
            doc.problem(("rules", index, "name"), tr(f"der Regelname '{rule.name}' kommt zweimal vor",
                                                     f"rule name '{rule.name}' is used twice"),
                        tr("jeder Regel einen eigenen Namen geben", "give each rule a name of its own"))
        seen.add(rule.name)

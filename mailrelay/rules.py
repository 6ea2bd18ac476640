"""The editors' routing file -> frozen desks and an ordered rule list, validated with file:line."""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Mapping

from mailrelay.conditions import Condition, read_conditions
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
    # A rule whose conditions were refused is left out of the reasoning: its one problem is enough.
    refused = {index for index, (_, conditions_valid) in enumerate(read) if not conditions_valid}
    default_target = doc.get(doc.data, "default", str, ())
    default_reason = doc.get(doc.data, "default_reason", str, (), "no rule matched")
    action, desk = _target(doc, default_target, ("default",), desks)
    default = Rule("default", (), action, desk, default_reason, doc.line_of(("default",)))
    review = _review(doc, desks)
    alert_desk = doc.get(doc.data, "alert_desk", str, (), review.desk if review else (default.desk or ""))
    if alert_desk and alert_desk not in desks:
        doc.problem(("alert_desk",), f"'{alert_desk}' is not a declared desk", f"declared: {', '.join(sorted(desks))}")
    _check_names_unique(doc, rules)
    acknowledgements = _acknowledgements(doc)
    reached_otherwise = {review.desk} if review else set()
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
        doc.problem(key + ("days",), "days must be at least 1")
    return Acknowledgements(doc.get(table or {}, "enabled", bool, key, False) is True,
                            doc.get(table or {}, "abroad", bool, key, True) is not False, days or 14)


def _review(doc: TomlFile, desks: Mapping[str, Desk]) -> Review | None:
    below = doc.get(doc.data, "review_below_confidence", (int, float), (), None)
    if below is None:
        return None
    if not 0 <= below <= 1:
        doc.problem(("review_below_confidence",), "review_below_confidence must be between 0 and 1")
    desk = doc.get(doc.data, "review_desk", str, (), "editors")
    if desk not in desks:
        doc.problem(("review_desk",), f"'{desk}' is not a declared desk", f"declared: {', '.join(sorted(desks))}")
    return Review(float(below), desk)


def _desks(doc: TomlFile) -> dict[str, Desk]:
    table = doc.get(doc.data, "desks", dict, ())
    desks = {}
    for name, entry in (table or {}).items():
        key: Key = ("desks", name)
        if name in RESERVED_TARGETS:
            doc.problem(key, f"'{name}' is reserved and cannot be a desk name")
        elif not _DESK_NAME.match(name):
            doc.problem(key, f"desk name '{name}' may only use a-z, 0-9 and '-'", "put the full name in name = \"...\"")
        if not isinstance(entry, dict):
            doc.problem(key, f"desk '{name}' must be a table [desks.{name}]")
            continue
        doc.check_keys(entry, ("name", "addresses"), key)
        addresses = doc.get(entry, "addresses", list, key) or []
        bad = [a for a in addresses if not isinstance(a, str) or not _ADDRESS.match(a)]
        for address in bad:
            doc.problem(key + ("addresses",), f"'{address}' is not a mail address")
        if not addresses:
            doc.problem(key + ("addresses",), f"desk '{name}' needs at least one address")
        display = doc.get(entry, "name", str, key, name)
        desks[name] = Desk(name, display, tuple(a.lower() for a in addresses if a not in bad))
    return desks


def _rule_tables(doc: TomlFile) -> list[dict]:
    items = doc.get(doc.data, "rules", list, (), [])
    if any(not isinstance(item, dict) for item in items):
        doc.problem(("rules",), "each rule must be a [[rules]] table")
        return []
    return items


def _rule(doc: TomlFile, item: dict, index: int, desks: Mapping[str, Desk]) -> tuple[Rule, bool]:
    """The rule, and whether its keys and conditions were all valid."""
    key: Key = ("rules", index)
    before = len(doc.problems)
    doc.check_keys(item, ("name", "when", "unless", "desk", "reason"), key)
    name = doc.get(item, "name", str, key) or f"rule {index + 1}"
    conditions = read_conditions(doc, item, "when", key, name) + read_conditions(doc, item, "unless", key, name)
    conditions_valid = len(doc.problems) == before
    action, desk = _target(doc, doc.get(item, "desk", str, key), key + ("desk",), desks)
    rule = Rule(name, conditions, action, desk, doc.get(item, "reason", str, key, ""), doc.line_of(key))
    return rule, conditions_valid


def _target(doc: TomlFile, target: str | None, key: Key, desks: Mapping[str, Desk]) -> tuple[Action, str | None]:
    if target is None:
        return Action.QUARANTINE, None
    if target in RESERVED_TARGETS:
        return RESERVED_TARGETS[target], None
    if target not in desks:
        known = ", ".join(sorted(desks) + sorted(RESERVED_TARGETS))
        doc.problem(key, f"'{target}' is not a declared desk", f"declared: {known}")
    return Action.FORWARD, target


def _check_names_unique(doc: TomlFile, rules: tuple[Rule, ...]) -> None:
    seen: set[str] = set()
    for index, rule in enumerate(rules):
        if rule.name in seen:
            doc.problem(("rules", index, "name"), f"rule name '{rule.name}' is used twice")
        seen.add(rule.name)

"""What a rule's `when` and `unless` can test: the fields, their values, and their validation."""
from __future__ import annotations

import re
from dataclasses import dataclass
from types import MappingProxyType
from typing import Callable, Mapping

from mailrelay.model import Kind, Level, Sender, UNKNOWN_COUNTRY
from mailrelay.tomlcheck import Key, TomlFile
from mailrelay.wildcards import nested_unbounded_repeat, words_regex

UNKNOWN = "unknown"
_LAENDER = "BW BY BE BB HB HH HE MV NI NW RP SL SN ST SH TH"
_KANTONE = "AG AI AR BE BL BS FR GE GL GR JU LU NE NW OW SG SH SO SZ TG TI UR VD VS ZG ZH"
# The classifier tells regions only for senders in Germany, Austria and Switzerland (ISO 3166-2).
REGIONS = frozenset([f"DE-{code}" for code in _LAENDER.split()] + [f"AT-{number}" for number in range(1, 10)]
                    + [f"CH-{code}" for code in _KANTONE.split()])
FIELD_VALUES: Mapping[str, frozenset[str]] = MappingProxyType({
    "kind": frozenset(Kind),
    "sender": frozenset(Sender),
    "level": frozenset(Level) | {"none"},
    "has_attachment": frozenset({"true", "false"}),
})
# Finite fields take one of a few values per mail; open ones are tested against text the sender wrote.
FINITE_FIELDS = ("kind", "sender", "level", "country", "region", "language", "has_attachment")
OPEN_FIELDS = ("domain", "subject", "text", "subject_regex", "text_regex")
CONDITION_FIELDS = FINITE_FIELDS + OPEN_FIELDS
# These fields' messages stay in English, word for word, until all of check's messages are translated.
_OLD_FIELDS = ("kind", "sender", "level", "country")
_COUNTRY = re.compile(r"^[A-Z]{2}$")
_LANGUAGE = re.compile(r"^[a-z]{2}$")
_DOMAIN_PATTERN = re.compile(r"^[a-z0-9*?.-]+$")


@dataclass(frozen=True)
class Condition:
    """`field` is (or, negated, is not) one of `values`; subject and text contain one of them."""

    field: str
    values: frozenset[str]
    negated: bool = False
    patterns: tuple[re.Pattern, ...] = ()  # for subject and text: the words as one regex, or the regexes

    @property
    def is_open(self) -> bool:
        return self.field in OPEN_FIELDS


@dataclass(frozen=True)
class _Spot:
    """Where a condition is written, to report its problems there in the editors' words."""

    doc: TomlFile
    key: Key
    rule: str

    def problem(self, message: str, hint: str = "") -> None:
        self.doc.problem(self.key, f"Regel '{self.rule}': {message}", hint)


def read_conditions(doc: TomlFile, item: dict, part: str, key: Key, rule: str) -> tuple[Condition, ...]:
    """The conditions of `when` or `unless` (negated); a condition with a problem is recorded and left out."""
    table = doc.get(item, part, dict, key, {}) or {}
    doc.check_keys(table, CONDITION_FIELDS, key + (part,))
    spot = _Spot(doc, key + (part,), rule)
    found = (_condition(spot, name, raw, part == "unless") for name, raw in table.items() if name in CONDITION_FIELDS)
    return tuple(condition for condition in found if condition is not None)


def _condition(spot: _Spot, name: str, raw: object, negated: bool) -> Condition | None:
    if name == "has_attachment":
        return _flag(spot, raw, negated)
    values = _texts(spot, name, raw)
    if values is None:
        return None
    before = len(spot.doc.problems)
    patterns = _READERS[name](spot, name, values)
    if len(spot.doc.problems) > before:
        return None
    if name == "domain":
        values = [value.lower() for value in values]
    return Condition(name, frozenset(values), negated, patterns)


def _texts(spot: _Spot, name: str, raw: object) -> list[str] | None:
    values = [raw] if isinstance(raw, str) else raw
    if isinstance(values, list) and values and all(isinstance(value, str) for value in values):
        return values
    if name in _OLD_FIELDS:
        spot.doc.problem(spot.key, f"'{name}' must be a text or a list of texts")
    else:
        spot.problem(f"{name} muss ein Text oder eine Liste von Texten sein", f'z. B. {name} = ["…", "…"]')
    return None


def _flag(spot: _Spot, raw: object, negated: bool) -> Condition | None:
    if not isinstance(raw, bool):
        spot.problem(f"has_attachment muss true oder false sein, nicht {raw!r}",
                     "ohne Anführungszeichen: has_attachment = true")
        return None
    return Condition("has_attachment", frozenset({"true" if raw else "false"}), negated)


def _named_values(spot: _Spot, name: str, values: list[str]) -> tuple[re.Pattern, ...]:
    """kind, sender and level: one of the values the classifier gives."""
    allowed = FIELD_VALUES[name]
    for value in values:
        if value not in allowed:
            spot.doc.problem(spot.key, f"{name} '{value}' is not one of {', '.join(sorted(allowed))}")
    return ()


def _countries(spot: _Spot, name: str, values: list[str]) -> tuple[re.Pattern, ...]:
    for value in values:
        if value != UNKNOWN_COUNTRY and not _COUNTRY.match(value):
            spot.doc.problem(spot.key, f"country '{value}' is not a two-letter ISO code (like DE) or 'unknown'")
    return ()


def _regions(spot: _Spot, name: str, values: list[str]) -> tuple[re.Pattern, ...]:
    for value in values:
        if value == UNKNOWN or value in REGIONS:
            continue
        hint = (f"in Großbuchstaben: {value.upper()}" if value.upper() in REGIONS
                else "DE-BW … DE-TH, AT-1 … AT-9, CH-AG … CH-ZH, oder unknown")
        spot.problem(f"region '{value}' ist kein Bundesland-, Länder- oder Kantonscode (ISO 3166-2, z. B. DE-BY)",
                     hint)
    return ()


def _languages(spot: _Spot, name: str, values: list[str]) -> tuple[re.Pattern, ...]:
    for value in values:
        if value != UNKNOWN and not _LANGUAGE.match(value):
            spot.problem(f"language '{value}' ist kein Sprachcode",
                         "zwei Kleinbuchstaben nach ISO 639-1, z. B. de oder en, oder unknown")
    return ()


def _domains(spot: _Spot, name: str, values: list[str]) -> tuple[re.Pattern, ...]:
    for value in values:
        if "@" in value:
            spot.problem(f"domain '{value}' ist eine Adresse, kein Domainmuster",
                         f"nur der Teil nach dem @: \"{value.rpartition('@')[2]}\"")
        elif not _DOMAIN_PATTERN.match(value.lower()):
            spot.problem(f"domain '{value}' ist kein Domainmuster",
                         "Buchstaben, Ziffern, '.', '-', dazu '*' für beliebig viele und '?' für ein Zeichen, "
                         "z. B. \"*.bund.de\"")
    return ()


def _words(spot: _Spot, name: str, values: list[str]) -> tuple[re.Pattern, ...]:
    # A word without a letter, digit or wildcard would be found in every mail.
    for value in values:
        if not any(character.isalnum() or character == "*" for character in value):
            spot.problem(f"{name} '{value}' enthält kein Wort", f'z. B. {name} = ["Bewerbung", "Expertengruppe"]')
    pattern = words_regex(values)
    return (pattern,) if pattern is not None else ()


def _regexes(spot: _Spot, name: str, values: list[str]) -> tuple[re.Pattern, ...]:
    patterns = tuple(_regex(spot, name, value) for value in values)
    return tuple(pattern for pattern in patterns if pattern is not None)


def _regex(spot: _Spot, name: str, text: str) -> re.Pattern | None:
    plain = name.removesuffix("_regex")
    if not text:
        spot.problem(f"{name} ist leer und träfe auf jede Mail zu", f"für Wörter: {plain} = [\"…\"]")
        return None
    try:
        pattern = re.compile(text, re.IGNORECASE)
    except re.error as error:
        spot.problem(f"{name} {text!r} ist kein gültiger regulärer Ausdruck: {error.msg} an Stelle {error.pos}",
                     f"Schreibweise von Pythons Modul re; für einfache Wörter {plain} = [\"…\"] verwenden")
        return None
    if nested_unbounded_repeat(text):
        spot.problem(f"{name} {text!r} wiederholt eine Wiederholung (wie '(a+)+') und kann bei manchen Mails "
                     "stundenlang rechnen", "die innere oder die äußere Wiederholung weglassen")
        return None
    return pattern


_READERS: Mapping[str, Callable[[_Spot, str, list[str]], tuple[re.Pattern, ...]]] = MappingProxyType({
    "kind": _named_values, "sender": _named_values, "level": _named_values, "country": _countries,
    "region": _regions, "language": _languages, "domain": _domains,
    "subject": _words, "text": _words, "subject_regex": _regexes, "text_regex": _regexes,
})

"""What a rule's `when` and `unless` can test: the fields, their values, and their validation."""
from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from types import MappingProxyType
from typing import Callable, Mapping

from mailrelay.i18n import tr
from mailrelay.model import UNKNOWN_COUNTRY, Kind, Level, Sender
from mailrelay.tomlcheck import Key, TomlFile
from mailrelay.wildcards import nested_unbounded_repeat, regex_error, words_regex

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

    def problem(self, message: str, hint: str = "", *at: str | int) -> None:
        """At the line of the condition, or of its entry `at` = (field, index), also inside `when = { ... }`."""
        self.doc.problem(self.key + at, f"{tr('Regel', 'rule')} '{self.rule}': {message}", hint)


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
    spot.problem(tr(f"{name} muss ein Text oder eine Liste von Texten sein", f"{name} must be a text or a list of texts"),
                 tr(f'z. B. {name} = ["…", "…"]', f'like {name} = ["…", "…"]'), name)
    return None


def _flag(spot: _Spot, raw: object, negated: bool) -> Condition | None:
    if not isinstance(raw, bool):
        spot.problem(tr(f"has_attachment muss true oder false sein, nicht {_written(raw)}",
                        f"has_attachment must be true or false, not {_written(raw)}"),
                     tr("ohne Anführungszeichen: has_attachment = true", "without quotes: has_attachment = true"),
                     "has_attachment")
        return None
    return Condition("has_attachment", frozenset({"true" if raw else "false"}), negated)


def _written(value: object) -> str:
    """A value as the editor wrote it in TOML: "yes" in quotes, 3 and 2.5 as they are."""
    return f'"{value}"' if isinstance(value, str) else str(value).lower() if isinstance(value, bool) else str(value)


def _named_values(spot: _Spot, name: str, values: list[str]) -> tuple[re.Pattern, ...]:
    """kind, sender and level: one of the values the classifier gives."""
    allowed = sorted(FIELD_VALUES[name])
    for index, value in enumerate(values):
        if value not in allowed:
            close = difflib.get_close_matches(value, allowed, n=1)
            hint = (tr(f"gemeint ist wohl '{close[0]}'", f"did you mean '{close[0]}'?") if close
                    else tr(f"möglich: {', '.join(allowed)}", f"possible: {', '.join(allowed)}"))
            spot.problem(tr(f"{name} '{value}' ist keiner der Werte {', '.join(allowed)}",
                            f"{name} '{value}' is not one of {', '.join(allowed)}"), hint, name, index)
    return ()


def _countries(spot: _Spot, name: str, values: list[str]) -> tuple[re.Pattern, ...]:
    for index, value in enumerate(values):
        if value != UNKNOWN_COUNTRY and not _COUNTRY.match(value):
            hint = (tr(f"in Großbuchstaben: {value.upper()}", f"in capitals: {value.upper()}") if _COUNTRY.match(value.upper())
                    else tr("zwei Großbuchstaben nach ISO 3166, z. B. DE, AT, CH, oder unknown",
                            "two capital letters (ISO 3166), like DE, AT, CH, or unknown"))
            spot.problem(tr(f"country '{value}' ist kein Ländercode", f"country '{value}' is not a country code"),
                         hint, name, index)
    return ()


def _regions(spot: _Spot, name: str, values: list[str]) -> tuple[re.Pattern, ...]:
    for index, value in enumerate(values):
        if value == UNKNOWN or value in REGIONS:
            continue
        hint = (tr(f"in Großbuchstaben: {value.upper()}", f"in capitals: {value.upper()}") if value.upper() in REGIONS
                else tr("DE-BW … DE-TH, AT-1 … AT-9, CH-AG … CH-ZH, oder unknown",
                        "DE-BW … DE-TH, AT-1 … AT-9, CH-AG … CH-ZH, or unknown"))
        spot.problem(tr(f"region '{value}' ist kein Bundesland-, Länder- oder Kantonscode (ISO 3166-2, z. B. DE-BY)",
                        f"region '{value}' is no code of a German or Austrian state or Swiss canton "
                        "(ISO 3166-2, like DE-BY)"), hint, name, index)
    return ()


def _languages(spot: _Spot, name: str, values: list[str]) -> tuple[re.Pattern, ...]:
    for index, value in enumerate(values):
        if value != UNKNOWN and not _LANGUAGE.match(value):
            spot.problem(tr(f"language '{value}' ist kein Sprachcode", f"language '{value}' is not a language code"),
                         tr("zwei Kleinbuchstaben nach ISO 639-1, z. B. de oder en, oder unknown",
                            "two lower-case letters (ISO 639-1), like de or en, or unknown"), name, index)
    return ()


def _domains(spot: _Spot, name: str, values: list[str]) -> tuple[re.Pattern, ...]:
    for index, value in enumerate(values):
        if "@" in value:
            domain = value.rpartition('@')[2]
            spot.problem(tr(f"domain '{value}' ist eine Adresse, kein Domainmuster",
                            f"domain '{value}' is an address, not a domain pattern"),
                         tr(f'nur der Teil nach dem @: "{domain}"', f'only the part after the @: "{domain}"'), name, index)
        elif not _DOMAIN_PATTERN.match(value.lower()):
            spot.problem(tr(f"domain '{value}' ist kein Domainmuster", f"domain '{value}' is not a domain pattern"),
                         tr("Buchstaben, Ziffern, '.', '-', dazu '*' für beliebig viele und '?' für ein Zeichen, "
                            "z. B. \"*.bund.de\"", "letters, digits, '.', '-', with '*' for any number of them and "
                            "'?' for one, like \"*.bund.de\""), name, index)
    return ()


def _words(spot: _Spot, name: str, values: list[str]) -> tuple[re.Pattern, ...]:
    # A word without a letter, digit or wildcard would be found in every mail.
    for index, value in enumerate(values):
        if not any(character.isalnum() or character == "*" for character in value):
            spot.problem(tr(f"{name} '{value}' enthält kein Wort und träfe auf jede Mail zu",
                            f"{name} '{value}' holds no word and would match every mail"),
                         tr(f'z. B. {name} = ["Bewerbung", "Expertengruppe"]', f'like {name} = ["Bewerbung", "Expertengruppe"]'),
                         name, index)
    pattern = words_regex(values)
    return (pattern,) if pattern is not None else ()


def _regexes(spot: _Spot, name: str, values: list[str]) -> tuple[re.Pattern, ...]:
    patterns = tuple(_regex(spot, name, value, index) for index, value in enumerate(values))
    return tuple(pattern for pattern in patterns if pattern is not None)


def _regex(spot: _Spot, name: str, text: str, index: int) -> re.Pattern | None:
    plain = name.removesuffix("_regex")
    if not text:
        spot.problem(tr(f"{name} ist leer und träfe auf jede Mail zu", f"{name} is empty and would match every mail"),
                     tr(f'für Wörter: {plain} = ["…"]', f'for words: {plain} = ["…"]'), name, index)
        return None
    try:
        pattern = re.compile(text, re.IGNORECASE)
    except re.error as error:
        spot.problem(tr(f"{name} '{text}' ist kein gültiger regulärer Ausdruck: {regex_error(error)}",
                        f"{name} '{text}' is not a valid regular expression: {error.msg} at position {error.pos}"),
                     tr(f'Schreibweise von Pythons Modul re; für einfache Wörter {plain} = ["…"] verwenden',
                        f'written as for Python\'s re module; for plain words use {plain} = ["…"]'), name, index)
        return None
    if nested_unbounded_repeat(text):
        spot.problem(tr(f"{name} '{text}' wiederholt eine Wiederholung (wie '(a+)+') und kann bei manchen Mails "
                        "stundenlang rechnen", f"{name} '{text}' repeats a repetition (like '(a+)+') and can take "
                        "hours on some mails"),
                     tr("die innere oder die äußere Wiederholung weglassen", "drop the inner or the outer repetition"),
                     name, index)
        return None
    return pattern


_READERS: Mapping[str, Callable[[_Spot, str, list[str]], tuple[re.Pattern, ...]]] = MappingProxyType({
    "kind": _named_values, "sender": _named_values, "level": _named_values, "country": _countries,
    "region": _regions, "language": _languages, "domain": _domains,
    "subject": _words, "text": _words, "subject_regex": _regexes, "text_regex": _regexes,
})

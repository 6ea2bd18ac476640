"""config/signals.toml -> a frozen, fully validated Signals value; every problem is reported at once, with file:line."""
from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass
from pathlib import Path

from mailrelay.classify.machine import DETECTORS
from mailrelay.i18n import tr
from mailrelay.model import Kind, Level, Sender
from mailrelay.tomlcheck import Key, Problem, TomlFile, wrong_type
from mailrelay.wildcards import (
    domains_regex,
    globs_regex,
    nested_unbounded_repeat,
    regex_error,
    words_regex,
)

_TOP_KEYS = ("thresholds", "where", "text", "free_mail", "language", "kind", "sender", "level", "country")
_THRESHOLDS = ("kind", "application", "sender", "level", "country", "margin")
_WHERE = ("signature", "body", "weaker", "question", "unit")
_TEXT_WORDS = ("closings", "footer", "weaker", "ignore", "units")
_VALUES = {
    "kind": tuple(str(kind) for kind in Kind) + ("person",),
    "sender": tuple(str(sender) for sender in Sender if sender is not Sender.UNKNOWN),
    "level": tuple(str(level) for level in Level),
}
# Which lists a group of each field may hold: a kind looks at headers, addresses and attachments,
# the others at the text and the sender's domain.
_LISTS = {
    "kind": ("words", "subject", "patterns", "senders", "attachments", "parts", "detectors"),
    "sender": ("words", "patterns", "domains"),
    "level": ("words", "patterns", "domains"),
    "country": ("words", "patterns", "domains", "free_mail_domains", "phone_codes"),
}
_SCALARS = {"kind": ("weight", "headers", "trusted_headers"), "country": ("weight", "language")}
_COUNTRY_CODE = re.compile(r"^[A-Z]{2}$")
_DOMAIN = re.compile(r"^\.?[a-z0-9*][a-z0-9.*-]*$").match
_WORD = re.compile(r"\w").search
# (test, message, hint), each in German and English, for the entries of lists whose entries have a form
# of their own
_ENTRY_FORMS = {
    "words": (_WORD, ("'{}' enthält keinen Buchstaben und träfe auf jede Mail zu",
                      "'{}' has no letters: it would match every mail"), ("ein Wort schreiben", "write a word")),
    "subject": (_WORD, ("'{}' enthält keinen Buchstaben und träfe auf jeden Betreff zu",
                        "'{}' has no letters: it would match every subject"), ("ein Wort schreiben", "write a word")),
    "domains": (_DOMAIN, ("'{}' ist keine Domain", "'{}' is not a domain"), ("z. B. 'bund.de'", "like 'bund.de'")),
    "free_mail_domains": (_DOMAIN, ("'{}' ist keine Domain", "'{}' is not a domain"), ("z. B. 'gmx.de'", "like 'gmx.de'")),
    "phone_codes": (re.compile(r"^[1-9]\d{0,2}$").match, ("'{}' ist keine Ländervorwahl", "'{}' is not a dialling code"),
                    ('z. B. "49", ohne +', 'like "49", without +')),
}


@dataclass(frozen=True)
class Group:
    """Signals pointing to one value of one field, counted together with one weight."""

    field: str
    value: str
    name: str
    weight: float
    words: re.Pattern | None = None
    subject: re.Pattern | None = None
    patterns: tuple[re.Pattern, ...] = ()
    domains: re.Pattern | None = None
    free_mail_domains: re.Pattern | None = None
    senders: re.Pattern | None = None
    attachments: re.Pattern | None = None
    headers: tuple[tuple[str, re.Pattern], ...] = ()
    trusted_headers: tuple[tuple[str, re.Pattern], ...] = ()  # only as our own server wrote them
    parts: re.Pattern | None = None  # content types of the mail's MIME parts
    detectors: tuple[str, ...] = ()  # built-in detectors (mailrelay/classify/machine.py) by name
    phone_codes: tuple[str, ...] = ()
    language: str | None = None


@dataclass(frozen=True)
class TextRules:
    """How a mail's text is cut into the sender's own words, signature, quotes and footer."""

    quote_starts: tuple[re.Pattern, ...]
    quoted_header_field: re.Pattern | None
    closings: re.Pattern | None
    footer: re.Pattern | None
    weaker: re.Pattern | None
    ignore: re.Pattern | None
    units: re.Pattern | None     # a signature line starting with one names a unit, not the organisation


@dataclass(frozen=True)
class Thresholds:
    kind: float
    application: float
    sender: float
    level: float
    country: float
    margin: float


@dataclass(frozen=True)
class Where:
    signature: float
    body: float
    weaker: float
    question: float
    unit: float


@dataclass(frozen=True)
class Signals:
    groups: tuple[Group, ...]
    text: TextRules
    thresholds: Thresholds
    where: Where
    free_mail: re.Pattern | None
    languages: tuple[tuple[str, frozenset[str]], ...]

    def groups_for(self, field_name: str) -> tuple[Group, ...]:
        return tuple(group for group in self.groups if group.field == field_name)


def load_signals(path: Path) -> Signals:
    """Read and check the signals file; raises ConfigError listing every problem found."""
    doc = TomlFile.load(path)
    _check_keys(doc, doc.data, _TOP_KEYS, ())
    languages = _languages(doc)
    groups = tuple(group for field in _LISTS for group in _field_groups(doc, field, {code for code, _ in languages}))
    signals = Signals(
        groups=groups,
        text=_text_rules(doc),
        thresholds=Thresholds(**_numbers(doc, "thresholds", _THRESHOLDS)),
        where=Where(**_numbers(doc, "where", _WHERE)),
        free_mail=domains_regex(_strings(doc, _table(doc, doc.data, "free_mail", ()), "domains", ("free_mail",))),
        languages=languages,
    )
    doc.raise_if_problems()
    return signals


def _table(doc: TomlFile, parent: dict, name: str, key: Key) -> dict:
    return doc.get(parent, name, dict, key, default={}) or {}


def _check_keys(doc: TomlFile, table: dict, allowed: tuple[str, ...], key: Key) -> int:
    """Every unknown key is a problem with the nearest valid one as hint; an unknown table on its [header] line.
    Returns how many there were."""
    unknown = [name for name in table if name not in allowed]
    for name in unknown:
        close = difflib.get_close_matches(name, allowed, n=1)
        if close:
            doc.misspelt.setdefault((key, close[0]), []).append(name)
        hint = (tr(f"gemeint ist wohl '{close[0]}'", f"did you mean '{close[0]}'?") if close
                else tr(f"erlaubt: {', '.join(sorted(allowed))}", f"valid keys: {', '.join(sorted(allowed))}"))
        if isinstance(table[name], dict):
            dotted = ".".join(key + (name,))
            _table_problem(doc, key + (name,), tr(f"unbekannte Tabelle [{dotted}]", f"unknown table [{dotted}]"), hint)
        else:
            doc.problem(key + (name,), tr(f"unbekannter Schlüssel '{name}'", f"unknown key '{name}'"), hint)
    return len(unknown)


def _table_problem(doc: TomlFile, key: Key, message: str, hint: str = "") -> None:
    doc.problem(key, message, hint)


def _numbers(doc: TomlFile, section: str, names: tuple[str, ...]) -> dict[str, float]:
    table = doc.get(doc.data, section, dict, (), default=None)
    if table is None:
        if not doc.meant((), section):  # a misspelt [section] is reported as that
            doc.problem((), tr(f"die Tabelle [{section}] fehlt", f"missing table [{section}]"),
                        tr(f"sie braucht {', '.join(names)}", f"it needs {', '.join(names)}"))
        return dict.fromkeys(names, 1.0)
    _check_keys(doc, table, names, (section,))
    return {name: _number(doc, table, name, (section,), default=...) for name in names}


def _number(doc: TomlFile, table: dict, name: str, key: Key, default: object = 1.0) -> float:
    value = doc.get(table, name, (int, float), key, default)
    if value is None:
        return 1.0
    if not 0 <= value <= 10:
        doc.problem(key + (name,), tr(f"'{name}' muss zwischen 0 und 10 liegen, nicht {value}",
                                      f"'{name}' must be between 0 and 10, not {value}"),
                    tr("eine Zahl mit Punkt, z. B. 0.5", "a number with a point, like 0.5"))
    return float(value)


def _strings(doc: TomlFile, table: dict, name: str, key: Key) -> list[str]:
    """table[name] as a list of strings; every entry that is not a string is a problem of its own."""
    values = doc.get(table, name, list, key, default=[]) or []
    strings = []
    for index, value in enumerate(values):
        if isinstance(value, str):
            strings.append(value)
        else:
            quoted = tr(f'in Anführungszeichen: "{value}"', f'in quotes: "{value}"') if isinstance(value, int) else ""
            doc.problem(key + (name, index), tr(f"'{name}': Eintrag {index + 1} muss ein Text sein",
                                                f"'{name}' entry {index + 1} must be a text"), quoted)
    return strings


def _problem_at(doc: TomlFile, key: Key, entry: str, message: str, hint: str = "") -> None:
    """A problem with one entry of a list, reported on the line where that entry is written."""
    start = doc.line_of(key)
    lines = doc.text.splitlines()
    forms = {entry, json.dumps(entry, ensure_ascii=False)[1:-1]}
    line = next((number for number in range(start, len(lines) + 1)
                 if any(form and form in lines[number - 1] for form in forms)), start)
    doc.problems.append(Problem(str(doc.path), line, message, hint))


def _regexes(doc: TomlFile, table: dict, name: str, key: Key, flags: int = 0) -> tuple[re.Pattern, ...]:
    compiled = (_regex(doc, text, key + (name,), flags) for text in _strings(doc, table, name, key))
    return tuple(pattern for pattern in compiled if pattern is not None)


def _regex(doc: TomlFile, text: str, key: Key, flags: int = 0) -> re.Pattern | None:
    try:
        pattern = re.compile(text, flags)
    except re.error as error:
        _problem_at(doc, key, text, tr(f"'{text}' ist kein gültiger regulärer Ausdruck: {regex_error(error)}",
                                       f"invalid regular expression '{text}': {error.msg} at position {error.pos}"),
                    tr("Schreibweise von Pythons Modul re; für einfache Wörter 'words' verwenden",
                       "regular expressions follow Python's re module; write a plain word in 'words' instead"))
        return None
    if nested_unbounded_repeat(text):
        _problem_at(doc, key, text, tr(f"der reguläre Ausdruck '{text}' wiederholt eine Wiederholung (wie '(a+)+') "
                                       "und kann bei manchen Mails stundenlang rechnen",
                                       f"regular expression '{text}' repeats a repeat (like '(a+)+'), "
                                       "which can take hours on some mails"),
                    tr("die innere oder die äußere Wiederholung weglassen", "drop the inner or the outer repetition"))
        return None
    return pattern


def _languages(doc: TomlFile) -> tuple[tuple[str, frozenset[str]], ...]:
    table = _table(doc, doc.data, "language", ())
    return tuple((code, frozenset(word.lower() for word in _strings(doc, table, code, ("language",))))
                 for code in table)


def _text_rules(doc: TomlFile) -> TextRules:
    table = _table(doc, doc.data, "text", ())
    _check_keys(doc, table, _TEXT_WORDS + ("quote_starts", "quoted_header_fields"), ("text",))
    fields = _strings(doc, table, "quoted_header_fields", ("text",))
    header_field = re.compile(rf"^\s*\*?(?:{'|'.join(map(re.escape, fields))})\*?\s*:", re.IGNORECASE)
    words = {name: words_regex(_entries(doc, table, name, ("text",), form="words")) for name in _TEXT_WORDS}
    return TextRules(quote_starts=_regexes(doc, table, "quote_starts", ("text",)),
                     quoted_header_field=header_field if fields else None, **words)


def _field_groups(doc: TomlFile, field: str, languages: set[str]) -> list[Group]:
    section = _table(doc, doc.data, field, ())
    if field == "country":
        for code in section:
            if not _COUNTRY_CODE.match(code):
                _table_problem(doc, (field, code), tr(f"'{code}' ist kein Ländercode", f"'{code}' is not a country code"),
                               tr("zwei Großbuchstaben, z. B. DE", "two capital letters, like DE"))
    else:
        _check_keys(doc, section, _VALUES[field], (field,))
    groups: list[Group] = []
    for value, table in section.items():
        if isinstance(table, dict):
            groups += _value_groups(doc, field, value, table, languages)
        else:
            doc.problem((field, value), tr(f"'{field}.{value}' muss eine Tabelle sein", f"'{field}.{value}' must be a table"),
                        tr(f"als Überschrift: [{field}.{value}]", f"write it as [{field}.{value}]"))
    return groups


def _value_groups(doc: TomlFile, field: str, value: str, table: dict, languages: set[str]) -> list[Group]:
    """The value's own table is one group; each table below it is another group for the same value."""
    allowed = _LISTS[field] + _SCALARS.get(field, ("weight",))
    own = {name: item for name, item in table.items() if name in allowed or not isinstance(item, dict)}
    groups = [_group(doc, field, value, own, (field, value), languages)] if own else []
    for name, item in table.items():
        if name not in own:
            groups.append(_group(doc, field, value, item, (field, value, name), languages))
    return [group for group in groups if group is not None]


def _group(doc: TomlFile, field: str, value: str, table: dict, key: Key, languages: set[str]) -> Group | None:
    allowed = _LISTS[field] + _SCALARS.get(field, ("weight",))
    unknown = _check_keys(doc, table, allowed, key)
    lists = [name for name in _LISTS[field] if name in table] + [
        n for n in ("headers", "trusted_headers", "language") if n in table]
    if not lists:
        if not unknown:  # a misspelt list is reported as that
            _table_problem(doc, key, tr(f"[{'.'.join(key)}] hat nichts, wonach gesucht wird",
                                        f"[{'.'.join(key)}] has nothing to look for"),
                           tr(f"eine dieser Listen angeben: {', '.join(_LISTS[field])}",
                              f"give it one of: {', '.join(_LISTS[field])}"))
        return None
    return Group(field=field, value=value, name=".".join(key), weight=_number(doc, table, "weight", key),
                 **_group_lists(doc, table, key), **_group_extras(doc, field, table, key, languages))


def _group_lists(doc: TomlFile, table: dict, key: Key) -> dict:
    return {
        "words": words_regex(_entries(doc, table, "words", key)),
        "subject": words_regex(_entries(doc, table, "subject", key)),
        "patterns": _regexes(doc, table, "patterns", key),
        "domains": domains_regex(_entries(doc, table, "domains", key)),
        "free_mail_domains": domains_regex(_entries(doc, table, "free_mail_domains", key)),
        "senders": globs_regex(_strings(doc, table, "senders", key)),
        "attachments": globs_regex(_strings(doc, table, "attachments", key)),
        "parts": globs_regex([entry.lower() for entry in _strings(doc, table, "parts", key)]),
        "detectors": _detectors(doc, table, key),
    }


def _detectors(doc: TomlFile, table: dict, key: Key) -> tuple[str, ...]:
    names = _strings(doc, table, "detectors", key)
    for name in names:
        if name not in DETECTORS:
            close = difflib.get_close_matches(name, DETECTORS, n=1)
            hint = (tr(f"gemeint ist wohl '{close[0]}'", f"did you mean '{close[0]}'?") if close
                    else tr(f"bekannt: {', '.join(sorted(DETECTORS))}", f"known: {', '.join(sorted(DETECTORS))}"))
            _problem_at(doc, key + ("detectors",), name, tr(f"unbekannter Detektor '{name}'", f"unknown detector '{name}'"),
                        hint)
    return tuple(name for name in names if name in DETECTORS)


def _entries(doc: TomlFile, table: dict, name: str, key: Key, form: str = "") -> list[str]:
    """The list's strings that have the form its entries need (see _ENTRY_FORMS); each other one is a problem."""
    valid, message, hint = _ENTRY_FORMS[form or name]
    good = []
    for entry in _strings(doc, table, name, key):
        if valid(entry.strip().lower()):
            good.append(entry)
        else:
            _problem_at(doc, key + (name,), entry, tr(*message).format(entry), tr(*hint))
    return good


def _group_extras(doc: TomlFile, field: str, table: dict, key: Key, languages: set[str]) -> dict:
    extras: dict = {"headers": _headers(doc, table, key, "headers"),
                    "trusted_headers": _headers(doc, table, key, "trusted_headers"),
                    "phone_codes": tuple(_entries(doc, table, "phone_codes", key))}
    language = doc.get(table, "language", str, key, default=None)
    if language is not None and language not in languages:
        known = ", ".join(sorted(languages))
        doc.problem(key + ("language",), tr(f"unbekannte Sprache '{language}'", f"unknown language '{language}'"),
                    tr(f"erst ihre Wörter unter [language] angeben; bekannt: {known}",
                       f"define its words under [language] first; known: {known}"))
    extras["language"] = language
    return extras


def _headers(doc: TomlFile, table: dict, key: Key, section: str) -> tuple[tuple[str, re.Pattern], ...]:
    """Header tests: header name = regex its value must match (case-insensitive); '' means present."""
    headers = _table(doc, table, section, key)
    tests = []
    for name, text in headers.items():
        if not isinstance(text, str):
            doc.problem(key + (section, name), wrong_type(name, text, str),
                        tr('ein regulärer Ausdruck in Anführungszeichen, oder "" für: die Kopfzeile ist vorhanden',
                           'a regular expression in quotes, or "" for: the header is present'))
            continue
        pattern = _regex(doc, text, key + (section, name), re.IGNORECASE)
        if pattern is not None:
            tests.append((name.lower(), pattern))
    return tuple(tests)

"""TOML files read with their line numbers, and problems collected as `file:line: what is wrong`."""
from __future__ import annotations

import difflib
import re
import tomllib
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Iterable

from mailrelay.i18n import tr
from mailrelay.tomllines import Key, key_lines
from mailrelay.tomlsyntax import syntax_problem

# A number written as text with a decimal comma ("0,45"), or as text at all ("0.45").
_COMMA_NUMBER = re.compile(r"^\s*(-?\d+),(\d+)\s*$")
_QUOTED_NUMBER = re.compile(r"^\s*-?\d+(\.\d+)?\s*$")


@dataclass(frozen=True)
class Problem:
    file: str
    line: int
    message: str
    hint: str = ""

    def __str__(self) -> str:
        hint = f" ({tr('Tipp', 'hint')}: {self.hint})" if self.hint else ""
        return f"{self.file}:{self.line}: {self.message}{hint}"


class ConfigError(Exception):
    """A configuration that must not be used; carries every problem found, not just the first."""

    def __init__(self, problems: Iterable[Problem]):
        self.problems = tuple(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


@dataclass
class TomlFile:
    """A parsed TOML document that can say on which line a key was written."""

    path: Path
    text: str
    data: dict[str, Any]
    problems: list[Problem] = field(default_factory=list)
    # (table, the valid key it is closest to) -> the unknown keys written there: a misspelt key is one
    # mistake, so the key it was meant to be is not reported as missing too.
    misspelt: dict[tuple[Key, str], list[str]] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> "TomlFile":
        """Read and parse `path`; a missing file or a syntax error raises ConfigError."""
        text = _read(path)
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as error:
            raise ConfigError([Problem(str(path), *syntax_problem(text, error))]) from None
        return cls(path, text, data)

    @cached_property
    def _lines(self) -> dict[Key, int]:
        return key_lines(self.text)

    def line_of(self, key: Key) -> int:
        """The line where `key` (a path of table names, array indexes and a key) is written, also inside
        an inline table (`when = { knd = ... }`); else the line of the nearest enclosing table; 1 if none."""
        for length in range(len(key), 0, -1):
            if key[:length] in self._lines:
                return self._lines[key[:length]]
        return 1

    def problem(self, key: Key, message: str, hint: str = "") -> None:
        """Record a problem found at `key`."""
        self.problems.append(Problem(str(self.path), self.line_of(key), message, hint))

    def check_keys(self, table: dict, allowed: Iterable[str], key: Key = ()) -> None:
        """Record every key of `table` that is not in `allowed`, with the nearest valid one as hint."""
        allowed = sorted(allowed)
        for name in table:
            if name not in allowed:
                close = difflib.get_close_matches(name, allowed, n=1)
                if close:
                    self.misspelt.setdefault((key, close[0]), []).append(name)
                hint = (tr(f"gemeint ist wohl '{close[0]}'", f"did you mean '{close[0]}'?") if close
                        else tr(f"erlaubt: {', '.join(allowed)}", f"valid keys: {', '.join(allowed)}"))
                self.problem(key + (name,), tr(f"unbekannter Schlüssel '{name}'", f"unknown key '{name}'"), hint)

    def meant(self, key: Key, name: str) -> list[str]:
        """The unknown keys of table `key` that are misspellings of `name`."""
        return self.misspelt.get((key, name), [])

    def get(self, table: dict, name: str, kind: type | tuple[type, ...], key: Key, default: Any = ..., ) -> Any:
        """table[name] if it has the right type; records a problem (and returns the default) if not.
        A missing key is not reported when a misspelling of it was (check_keys runs first)."""
        if name not in table:
            if default is not ...:
                return default
            if not self.meant(key, name):
                self.problem(key, tr(f"der Schlüssel '{name}' fehlt", f"missing required key '{name}'"),
                             tr(f"{name} = … ergänzen", f"add {name} = …"))
            return None
        value = table[name]
        if not isinstance(value, kind) or (isinstance(value, bool) and bool not in _as_tuple(kind)):
            self.problem(key + (name,), wrong_type(name, value, kind), type_hint(name, value, kind))
            return None if default is ... else default
        return value

    def raise_if_problems(self) -> None:
        if self.problems:
            raise ConfigError(self.problems)


def _as_tuple(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        problem = tr("die Datei gibt es nicht", "the file does not exist"), ""
    except IsADirectoryError:
        problem = tr("das ist ein Ordner, keine Datei", "this is a folder, not a file"), ""
    except UnicodeDecodeError:
        problem = (tr("die Datei ist nicht in UTF-8 gespeichert", "the file is not saved as UTF-8"),
                   tr("im Editor als UTF-8 speichern", "save it as UTF-8 in the editor"))
    except OSError as error:
        problem = tr(f"die Datei kann nicht gelesen werden: {error.strerror}",
                     f"cannot read the file: {error.strerror}"), ""
    raise ConfigError([Problem(str(path), 0, *problem)])


def wrong_type(name: str, value: object, kind: type | tuple[type, ...]) -> str:
    """`'name' muss eine Zahl sein, hier steht ein Text`: the types in words, not Python's names."""
    wanted = _type_words(_as_tuple(kind))
    found = _type_words((type(value),))
    return tr(f"'{name}' muss {wanted[0]} sein, hier steht {found[0]}", f"'{name}' must be {wanted[1]}, not {found[1]}")


def type_hint(name: str, value: object, kind: type | tuple[type, ...]) -> str:
    """What to write instead, for the mistakes that are easy to make: "0,45", "0.45", "true", 3 for a text."""
    kinds = _as_tuple(kind)
    if isinstance(value, str) and float in kinds and (comma := _COMMA_NUMBER.match(value)):
        number = f"{comma[1]}.{comma[2]}"
        return tr(f"eine Zahl, mit Punkt: {number}", f"a number, with a point: {number}")
    if isinstance(value, str) and (int in kinds or float in kinds) and _QUOTED_NUMBER.match(value):
        return tr(f"ohne Anführungszeichen: {name} = {value.strip()}", f"without quotes: {name} = {value.strip()}")
    if isinstance(value, str) and bool in kinds and value.strip().lower() in ("true", "false"):
        flag = value.strip().lower()
        return tr(f"ohne Anführungszeichen: {name} = {flag}", f"without quotes: {name} = {flag}")
    if str in kinds and isinstance(value, (int, float)) and not isinstance(value, bool):
        return tr(f'in Anführungszeichen: {name} = "{value}"', f'in quotes: {name} = "{value}"')
    return ""


_TYPE_WORDS = {
    str: ("ein Text", "a text"), bool: ("true oder false (ja/nein)", "true or false"),
    int: ("eine ganze Zahl", "a whole number"), float: ("eine Zahl", "a number"), list: ("eine Liste", "a list"),
    dict: ("eine Tabelle", "a table"),
}


def _type_words(kinds: tuple[type, ...]) -> tuple[str, str]:
    if int in kinds and float in kinds:
        kinds = tuple(kind for kind in kinds if kind is not int)  # "a number" says both
    words = [_TYPE_WORDS.get(kind, ("ein Datum", "a date")) for kind in kinds]
    return " oder ".join(de for de, _ in words), " or ".join(en for _, en in words)


def _as_tuple(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)

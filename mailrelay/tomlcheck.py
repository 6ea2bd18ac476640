"""TOML files read with their line numbers, and problems collected as `file:line: what is wrong`."""
from __future__ import annotations

import difflib
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

Key = tuple[str | int, ...]

_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_ASSIGNMENT = re.compile(r"^\s*([A-Za-z0-9_\-\"'. ]+?)\s*=")
_TOML_ERROR_LINE = re.compile(r"\(at line (\d+), column (\d+)\)")


@dataclass(frozen=True)
class Problem:
    file: str
    line: int
    message: str
    hint: str = ""

    def __str__(self) -> str:
        hint = f" (hint: {self.hint})" if self.hint else ""
        return f"{self.file}:{self.line}: {self.message}{hint}"


class ConfigError(Exception):
    """A configuration that must not be used; carries every problem found, not just the first."""

    def __init__(self, problems: Iterable[Problem]):
        self.problems = tuple(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


def _normalise_key(text: str) -> str:
    return ".".join(part.strip().strip("\"'") for part in text.split("."))


@dataclass
class TomlFile:
    """A parsed TOML document that can say on which line a key was written."""

    path: Path
    text: str
    data: dict[str, Any]
    problems: list[Problem] = field(default_factory=list)

    @classmethod
    def load(cls, path: Path) -> "TomlFile":
        """Read and parse `path`; a missing file or a syntax error raises ConfigError."""
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise ConfigError([Problem(str(path), 0, f"cannot read the file: {error}")]) from None
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as error:
            match = _TOML_ERROR_LINE.search(str(error))
            line = int(match.group(1)) if match else text.count("\n") + 1
            message = _TOML_ERROR_LINE.sub("", str(error)).strip()
            raise ConfigError([Problem(str(path), line, f"TOML syntax error: {message}")]) from None
        return cls(path, text, data)

    def line_of(self, key: Key) -> int:
        """The line where `key` (a path of table names, array indexes and a key) is written; 1 if unsure.

        A key inside an inline table (`when = { knd = ... }`) is found at the line of `when`."""
        tables, name = _split_key(key)
        start = self._table_start(tables)
        if name is not None and start is not None:
            for number, line in self._table_lines(start):
                match = _ASSIGNMENT.match(line)
                if match and _normalise_key(match.group(1)).split(".")[0] == name:
                    return number
        header = self._table_start(key) if name is not None else None  # `key` may itself be a [table]
        if header or start:
            return header or start
        if tables and not isinstance(tables[-1], int):
            return self.line_of(tables)  # no [header]: an inline table, written on the line of its key
        return 1

    def _table_start(self, tables: tuple[str | int, ...]) -> int | None:
        if not tables:
            return 0
        wanted, index = _header_name(tables)
        seen = -1
        for number, line in enumerate(self.text.splitlines(), start=1):
            match = _HEADER.match(line)
            if match and _normalise_key(match.group(2)) == wanted:
                seen += 1
                if seen == index:
                    return number
        return None

    def _table_lines(self, start: int) -> Iterable[tuple[int, str]]:
        lines = self.text.splitlines()
        for number in range(start + 1, len(lines) + 1):
            line = lines[number - 1]
            if _HEADER.match(line) and not line.lstrip().startswith(("[\"", "['")):
                return
            yield number, line

    def problem(self, key: Key, message: str, hint: str = "") -> None:
        """Record a problem found at `key`."""
        self.problems.append(Problem(str(self.path), self.line_of(key), message, hint))

    def check_keys(self, table: dict, allowed: Iterable[str], key: Key = ()) -> None:
        """Record every key of `table` that is not in `allowed`, with the nearest valid one as hint."""
        allowed = sorted(allowed)
        for name in table:
            if name not in allowed:
                close = difflib.get_close_matches(name, allowed, n=1)
                hint = f"did you mean '{close[0]}'?" if close else f"valid keys: {', '.join(allowed)}"
                self.problem(key + (name,), f"unknown key '{name}'", hint)

    def get(self, table: dict, name: str, kind: type | tuple[type, ...], key: Key, default: Any = ..., ) -> Any:
        """table[name] if it has the right type; records a problem (and returns the default) if not."""
        if name not in table:
            if default is ...:
                self.problem(key, f"missing required key '{name}'")
                return None
            return default
        value = table[name]
        if not isinstance(value, kind) or (isinstance(value, bool) and bool not in _as_tuple(kind)):
            expected = " or ".join(t.__name__ for t in _as_tuple(kind))
            self.problem(key + (name,), f"'{name}' must be a {expected}, not {type(value).__name__}")
            return None if default is ... else default
        return value

    def raise_if_problems(self) -> None:
        if self.problems:
            raise ConfigError(self.problems)


def _as_tuple(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def _split_key(key: Key) -> tuple[tuple[str | int, ...], str | None]:
    """Split a key path into the table part and the final plain key (None when it names a table)."""
    if not key:
        return (), None
    if isinstance(key[-1], int):
        return key, None
    return key[:-1], str(key[-1])


def _header_name(tables: tuple[str | int, ...]) -> tuple[str, int]:
    """The header text (`a.b`) and which occurrence of it is meant, for [[array]] tables."""
    names = [str(part) for part in tables if not isinstance(part, int)]
    indexes = [part for part in tables if isinstance(part, int)]
    return ".".join(names), (indexes[-1] if indexes else 0)

"""Where each key, table and array entry of a TOML text is written: its line, also inside inline tables."""
from __future__ import annotations

import bisect
import re
import tomllib

Key = tuple[str | int, ...]

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_SCALAR_END = re.compile(r"[,\]}\n#]|$")
_STRING = re.compile(r'"""(?:[^\\]|\\.)*?"""|\'\'\'.*?\'\'\'|"(?:[^"\\\n]|\\.)*"|\'[^\'\n]*\'', re.DOTALL)


def key_lines(text: str) -> dict[Key, int]:
    """The line of every key path the text defines. A table named only through a longer key
    (`[a.b]` names `a`) gets that key's line, unless it is written out itself."""
    scanner = _Scanner(text)
    scanner.document()
    return {**scanner.implied, **scanner.written}


class _Scanner:
    """Reads a text that tomllib has already accepted, so it can be lenient about what it skips."""

    def __init__(self, text: str):
        self.text = text
        self.newlines = [index for index, character in enumerate(text) if character == "\n"]
        self.written: dict[Key, int] = {}
        self.implied: dict[Key, int] = {}
        self.arrays: dict[Key, int] = {}  # [[array]] tables: how many entries so far

    def line(self, position: int) -> int:
        return bisect.bisect_left(self.newlines, position) + 1

    def record(self, path: Key, position: int) -> None:
        line = self.line(position)
        self.written.setdefault(path, line)
        for length in range(1, len(path)):
            self.implied.setdefault(path[:length], line)

    def document(self) -> None:
        table: Key = ()
        at = self.skip(0, newlines=True)
        while at < len(self.text):
            if self.text.startswith("[[", at):
                table, at = self.header(at, array=True)
            elif self.text[at] == "[":
                table, at = self.header(at, array=False)
            else:
                at = self.assignment(at, table)
            at = self.skip(at, newlines=True)

    def header(self, start: int, array: bool) -> tuple[Key, int]:
        parts, at = self.key(start + (2 if array else 1))
        path = self.resolve(parts[:-1]) + (parts[-1],)
        if array:
            index = self.arrays.get(path, 0)
            self.arrays[path] = index + 1
            self.record(path, start)
            path += (index,)
        self.record(path, start)
        return path, self.text.index("]", at) + (2 if array else 1)

    def resolve(self, parts: tuple[str, ...]) -> Key:
        """A header's parts with the entry meant of each [[array]] on the way: the last one so far."""
        path: Key = ()
        for part in parts:
            path += (part,)
            if path in self.arrays:
                path += (self.arrays[path] - 1,)
        return path

    def assignment(self, start: int, table: Key) -> int:
        parts, at = self.key(start)
        self.record(table + parts, start)
        return self.value(self.skip(at + 1), table + parts)  # after the '='

    def key(self, at: int) -> tuple[tuple[str, ...], int]:
        parts = []
        while True:
            at = self.skip(at)
            if self.text[at] in "\"'":
                match = _STRING.match(self.text, at)
                parts.append(tomllib.loads(f"k = {match.group()}")["k"])
            else:
                match = _BARE_KEY.match(self.text, at)
                parts.append(match.group())
            at = self.skip(match.end())
            if not self.text.startswith(".", at):
                return tuple(parts), at
            at += 1

    def value(self, at: int, path: Key) -> int:
        character = self.text[at]
        if character == "{":
            return self.inline_table(at + 1, path)
        if character == "[":
            return self.array(at + 1, path)
        if character in "\"'":
            return _STRING.match(self.text, at).end()
        return _SCALAR_END.search(self.text, at).start()

    def inline_table(self, at: int, path: Key) -> int:
        while True:
            at = self.skip(at, newlines=True)
            if self.text[at] == "}":
                return at + 1
            if self.text[at] == ",":
                at += 1
                continue
            at = self.assignment(at, path)

    def array(self, at: int, path: Key) -> int:
        index = 0
        while True:
            at = self.skip(at, newlines=True)
            if self.text[at] == "]":
                return at + 1
            if self.text[at] == ",":
                at += 1
                continue
            self.record(path + (index,), at)
            at = self.value(at, path + (index,))
            index += 1

    def skip(self, at: int, newlines: bool = False) -> int:
        """Past spaces and tabs; with `newlines`, past line ends and comments too."""
        while at < len(self.text):
            character = self.text[at]
            if character in " \t" or (newlines and character in "\r\n"):
                at += 1
            elif newlines and character == "#":
                end = self.text.find("\n", at)
                at = len(self.text) if end < 0 else end
            else:
                break
        return at

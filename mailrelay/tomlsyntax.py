"""A TOML syntax error said in the editors' words, at the line where the mistake starts, with what to write."""
from __future__ import annotations

import re
import tomllib

from mailrelay.i18n import tr

_WHERE = re.compile(r"\s*\((?:at line (\d+), column \d+|at end of document)\)\s*$")
_COMMA_NUMBER = re.compile(r"=\s*(-?\d+),(\d+)\s*(#.*)?$")
_BACKSLASH_STRING = re.compile(r'"((?:[^"\\\n]|\\.)*\\(?:[^"\\\n]|\\.)*)"')
_OPENERS = re.compile(r'"""[\s\S]*?"""|\'\'\'[\s\S]*?\'\'\'|"""|\'\'\'|"(?:[^"\\\n]|\\.)*"|\'[^\'\n]*\'|#[^\n]*|[\[{\]}]')
_UNCLOSED = ("Unterminated string", "Unclosed array", "Unclosed inline table", "Expected \"'\"")


def syntax_problem(text: str, error: tomllib.TOMLDecodeError) -> tuple[int, str, str]:
    """(line, message, hint) for a syntax error tomllib raised on `text`."""
    english = _WHERE.sub("", str(error))
    where = _WHERE.search(str(error))
    unclosed = None if where and where[1] else _unclosed(text)
    line = int(where[1]) if where and where[1] else (unclosed[0] if unclosed else text.count("\n") + 1)
    written = text.splitlines()[line - 1] if 0 < line <= len(text.splitlines()) else ""
    # At the end of the file tomllib names what it missed last; what is still open says more.
    german, hint = _words(_OPENED.get(unclosed[1], english) if unclosed else english, written)
    return line, tr(f"TOML-Syntaxfehler: {german}", f"TOML syntax error: {english}"), hint


def _words(english: str, written: str) -> tuple[str, str]:
    """The German message and the hint, from tomllib's message and the line it points at."""
    if comma := _COMMA_NUMBER.search(written):
        number = f"{comma[1]}.{comma[2]}"
        return (tr("eine Zahl mit Komma", "a number with a comma"),
                tr(f"eine Zahl, mit Punkt: {number}", f"a number, with a point: {number}"))
    if english.startswith("Unescaped '\\'"):
        found = _BACKSLASH_STRING.search(written)
        written_as = f"'{found[1]}'" if found else "'\\d+'"
        return (tr("ein \\ in einem Text in doppelten Anführungszeichen",
                   "a \\ in a text in double quotes"),
                tr(f"in einfache Anführungszeichen setzen, dort gilt \\ wörtlich: {written_as}",
                   f"use single quotes, where \\ is taken as written: {written_as}"))
    for start, german, hint in _MESSAGES:
        if english.startswith(start):
            return german(), hint()
    return english, ""


def _twice() -> str:
    return tr("ein Schlüssel oder eine Tabelle steht zweimal", "a key or a table is given twice")


def _twice_hint() -> str:
    return tr("jeden Schlüssel nur einmal; jede weitere Regel beginnt mit [[rules]]",
              "each key once; each further rule starts with [[rules]]")


_MESSAGES = (
    ("Expected newline or end of document", lambda: tr("nach dem Wert geht die Zeile weiter",
                                                       "the line goes on after the value"),
     lambda: tr('ein Wert je Schlüssel; mehrere Werte als Liste: ["a", "b"]',
                'one value per key; several values as a list: ["a", "b"]')),
    ("Unterminated string", lambda: tr("ein Text ist nicht geschlossen", "a text is not closed"),
     lambda: tr("das Anführungszeichen am Ende fehlt", "the closing quote is missing")),
    ('Expected "\'"', lambda: tr("ein Text ist nicht geschlossen", "a text is not closed"),
     lambda: tr("das ' am Ende fehlt", "the closing ' is missing")),
    ("Illegal character '\\n'", lambda: tr("ein Text endet nicht in seiner Zeile", "a text does not end on its line"),
     lambda: tr("das Anführungszeichen am Ende fehlt", "the closing quote is missing")),
    ("Unclosed array", lambda: tr("eine Liste ist nicht geschlossen", "a list is not closed"),
     lambda: tr("die ] am Ende der Liste fehlt, oder ein Komma zwischen zwei Einträgen",
                "the ] at the end of the list is missing, or a comma between two entries")),
    ("Unclosed inline table", lambda: tr("eine Tabelle in { } ist nicht geschlossen", "a table in { } is not closed"),
     lambda: tr("die } fehlt; { … } steht in einer Zeile", "the } is missing; { … } stays on one line")),
    ("Invalid initial character for a key part", lambda: tr("hier fehlt ein Schlüssel", "a key is missing here"),
     lambda: tr("in { … } kein Komma nach dem letzten Eintrag und kein Zeilenumbruch",
                "in { … } no comma after the last entry and no line break")),
    ("Expected ']' at the end", lambda: tr("die ] am Ende der Überschrift fehlt", "the ] ending the header is missing"),
     lambda: tr("z. B. [desks.editors]", "like [desks.editors]")),
    ("Expected ']]' at the end", lambda: tr("die ]] am Ende der Überschrift fehlt",
                                            "the ]] ending the header is missing"),
     lambda: tr("z. B. [[rules]]", "like [[rules]]")),
    ("Expected '=' after a key", lambda: tr("nach dem Schlüssel fehlt das =", "the = after the key is missing"),
     lambda: tr("Schlüssel ohne Leerzeichen, dann = und der Wert: batch_size = 50",
                "a key without spaces, then = and the value: batch_size = 50")),
    ("Invalid value", lambda: tr("kein gültiger Wert", "not a valid value"),
     lambda: tr('Texte in Anführungszeichen ("…"), Zahlen mit Punkt (0.45), true und false klein',
                'texts in quotes ("…"), numbers with a point (0.45), true and false in lower case')),
    ("Invalid statement", lambda: tr("die Zeile ist weder Schlüssel = Wert noch eine [Überschrift]",
                                     "the line is neither key = value nor a [header]"), lambda: ""),
    ("Cannot overwrite a value", _twice, _twice_hint),
    ("Cannot declare", _twice, _twice_hint),
    ("Duplicate inline table key", _twice, _twice_hint),
    ("Cannot redefine namespace", _twice, _twice_hint),
    ("Cannot mutate immutable namespace", _twice, _twice_hint),
)


_OPENED = {"[": "Unclosed array", "{": "Unclosed inline table", '"""': "Unterminated string",
           "'''": "Unterminated string"}


def _unclosed(text: str) -> tuple[int, str] | None:
    """The line where the list, table or multi-line text opens that is still open at the end, and its opener."""
    stack: list[tuple[int, str]] = []
    for match in _OPENERS.finditer(text):
        token = match.group()
        if token in ('"""', "'''"):  # a multi-line text that never ends
            return text.count("\n", 0, match.start()) + 1, token
        if token in ("[", "{"):
            stack.append((match.start(), token))
        elif token in ("]", "}") and stack:
            stack.pop()
    return (text.count("\n", 0, stack[0][0]) + 1, stack[0][1]) if stack else None

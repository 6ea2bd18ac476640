"""A Jinja syntax error said in the editors' words, at the line of the tag or brace that is open or wrong."""
from __future__ import annotations

import difflib
import re
from pathlib import Path

import jinja2

from mailrelay.i18n import tr

# Tags that stand for a block closed by end<tag>; `set` only without "=" ({% set x %}...{% endset %}).
_BLOCKS = ("if", "for", "macro", "call", "filter", "block", "with", "autoescape", "trans", "set")
_TAGS = _BLOCKS + ("elif", "else", "include", "import", "from", "extends", "break", "continue", "do")
_UNKNOWN_TAG = re.compile(r"Encountered unknown tag '(\w+)'")
_INNERMOST = re.compile(r"The innermost block that needs to be closed is '(\w+)'")
_NO_FILTER = re.compile(r"No filter named '(\w+)'")
_DELIMITERS = {"variable_begin": ("{{", "}}"), "block_begin": ("{%", "%}")}


def syntax_problem(error: jinja2.TemplateSyntaxError, filters: list[str]) -> tuple[int, str, str]:
    """(line, message, hint) for a template that does not compile; `filters` are the ones it may use."""
    environment = jinja2.Environment()  # the default delimiters, as the relay's templates use
    scan = _Scan(error.source or _source(error.filename), environment, stop_line=error.lineno or 0)
    message = error.message or ""
    if (tag := _UNKNOWN_TAG.search(message)) is not None:
        return _unknown_tag(error.lineno, tag[1], scan)
    if scan.open_delimiter:
        line, (opener, closer) = scan.open_delimiter
        return line, tr(f"{opener} wird nicht mit {closer} geschlossen", f"{opener} is not closed with {closer}"), \
            tr(f"{closer} am Ende ergänzen", f"add {closer} at its end")
    if (block := _INNERMOST.search(message)) is not None and scan.innermost(block[1]):
        line = scan.innermost(block[1])
        return line, tr(f"{{% {block[1]} %}} wird nicht geschlossen", f"{{% {block[1]} %}} is never closed"), \
            tr(f"{{% end{block[1]} %}} an seinem Ende ergänzen", f"add {{% end{block[1]} %}} where it ends")
    if (name := _NO_FILTER.search(message)) is not None:
        close = difflib.get_close_matches(name[1], filters, n=1)
        return error.lineno, tr(f"unbekannter Filter '{name[1]}'", f"unknown filter '{name[1]}'"), \
            tr(f"gemeint ist wohl '{close[0]}'", f"did you mean '{close[0]}'?") if close else ""
    if message.startswith("Missing end of comment tag"):
        return error.lineno, tr("{# wird nicht mit #} geschlossen", "{# is not closed with #}"), ""
    return error.lineno, tr(f"Vorlage nicht lesbar: {message}", f"template does not compile: {message}"), ""


def _unknown_tag(line: int, tag: str, scan: "_Scan") -> tuple[int, str, str]:
    if scan.blocks:
        block, opened = scan.blocks[-1]
        return line, tr(f"{{% {tag} %}} passt hier nicht: offen ist {{% {block} %}} aus Zeile {opened}",
                        f"{{% {tag} %}} does not fit here: {{% {block} %}} from line {opened} is open"), \
            tr(f"mit {{% end{block} %}} schließen", f"close it with {{% end{block} %}}")
    close = difflib.get_close_matches(tag, _TAGS + tuple(f"end{name}" for name in _BLOCKS), n=1)
    return line, tr(f"unbekannter Befehl {{% {tag} %}}", f"unknown tag {{% {tag} %}}"), \
        tr(f"gemeint ist wohl {{% {close[0]} %}}", f"did you mean {{% {close[0]} %}}?") if close else ""


class _Scan:
    """The blocks still open, and a {{ or {% not closed, up to `stop_line`, from Jinja's own lexer."""

    def __init__(self, source: str, environment: jinja2.Environment, stop_line: int):
        self.blocks: list[tuple[str, int]] = []
        self.open_delimiter: tuple[int, tuple[str, str]] | None = None
        tokens = []
        try:
            for token in environment.lex(source):
                tokens.append(token)
        except jinja2.TemplateSyntaxError:
            pass  # what was read up to the mistake is enough
        self._read(tokens, stop_line)

    def _read(self, tokens: list[tuple[int, str, str]], stop_line: int) -> None:
        significant = [token for token in tokens if token[1] != "whitespace"]
        for index, (line, kind, value) in enumerate(significant):
            if kind in _DELIMITERS:
                self.open_delimiter = (line, _DELIMITERS[kind])
            elif kind in ("variable_end", "block_end"):
                self.open_delimiter = None
            if kind != "block_begin" or index + 1 >= len(significant):
                continue
            name, rest = significant[index + 1][2], significant[index + 2:index + 4]
            if line >= stop_line and name.startswith("end") and not self._closes(name):
                return
            self._tag(name, line, rest)

    def _tag(self, name: str, line: int, rest: list[tuple[int, str, str]]) -> None:
        assigns = any(value == "=" for _, _, value in rest)
        if name in _BLOCKS and not (name == "set" and assigns):
            self.blocks.append((name, line))
        elif name.startswith("end") and self._closes(name):
            self.blocks.pop()

    def _closes(self, name: str) -> bool:
        return bool(self.blocks) and self.blocks[-1][0] == name[3:]

    def innermost(self, block: str) -> int | None:
        return next((line for name, line in reversed(self.blocks) if name == block), None)


def _source(filename: str | None) -> str:
    try:
        return Path(filename).read_text(encoding="utf-8") if filename else ""
    except (OSError, UnicodeDecodeError):
        return ""

"""The editors' word, domain and address lists turned into regular expressions, and a guard against slow ones."""
from __future__ import annotations

import re
import re._parser as sre_parse  # the stdlib's own regex parser: the only way to see a pattern's structure

_REPEATS = (sre_parse.MAX_REPEAT, sre_parse.MIN_REPEAT, sre_parse.POSSESSIVE_REPEAT)
_SEPARATORS = re.compile(r"[\s\-]+")


def words_regex(entries: list[str]) -> re.Pattern | None:
    """One case-insensitive regex finding any of the entries as whole words (see config/signals.toml)."""
    entries = [entry.strip() for entry in entries if entry.strip()]
    at_word_start = [_word_fragment(entry) for entry in entries if _in_word(entry[0])]
    elsewhere = [_word_fragment(entry) for entry in entries if not _in_word(entry[0])]
    # The shared word-start test stands once in front: the engine rejects a position inside a word
    # once, instead of once per entry, which makes these long lists several times faster.
    alternatives = ([rf"(?<!\w)(?:{'|'.join(at_word_start)})"] if at_word_start else []) + elsewhere
    return re.compile("|".join(alternatives), re.IGNORECASE) if alternatives else None


def _in_word(character: str) -> bool:
    return character.isalnum() or character in "*_"


def _word_fragment(entry: str) -> str:
    tokens = [_token(token) for token in _SEPARATORS.split(entry) if token]
    # A wildcard at the end already runs to the word's end; otherwise the end must be a word boundary.
    after = r"(?!\w)" if entry[-1].isalnum() else ""
    return r"[\s\-]+".join(tokens) + after


def _token(token: str) -> str:
    """A lone '*' is any one word; a '*' at a word's edge is any letters there."""
    if token == "*":
        return r"\S+"
    core = re.escape(token.strip("*"))
    lead = r"\w*" if token.startswith("*") else ""
    trail = r"\w*" if token.endswith("*") else ""
    return f"{lead}{core}{trail}"


def domains_regex(entries: list[str]) -> re.Pattern | None:
    """Domain suffixes: 'bund.de' matches bund.de and every subdomain; '*' is any letters within one part."""
    fragments = []
    for entry in entries:
        entry = entry.strip().lower().lstrip(".")
        if entry:
            fragments.append(re.escape(entry).replace(r"\*", "[a-z0-9-]*"))
    if not fragments:
        return None
    return re.compile(rf"^(?:.*\.)?(?:{'|'.join(fragments)})$")


def globs_regex(entries: list[str]) -> re.Pattern | None:
    """Whole strings (addresses, file names) where '*' is any characters; case-insensitive."""
    fragments = [re.escape(entry.strip()).replace(r"\*", ".*") for entry in entries if entry.strip()]
    if not fragments:
        return None
    return re.compile(rf"^(?:{'|'.join(fragments)})$", re.IGNORECASE | re.DOTALL)


def nested_unbounded_repeat(pattern: str) -> bool:
    """True if an unbounded repeat sits inside another one, like (a+)+: such patterns can take exponential time."""
    return _nested(sre_parse.parse(pattern), inside_unbounded=False)


def _nested(parsed: sre_parse.SubPattern, inside_unbounded: bool) -> bool:
    for op, argument in parsed:
        if op in _REPEATS:
            _, most, inner = argument
            unbounded = most == sre_parse.MAXREPEAT
            if unbounded and inside_unbounded:
                return True
            if _nested(inner, inside_unbounded or unbounded):
                return True
        elif any(_nested(inner, inside_unbounded) for inner in _subpatterns(argument)):
            return True
    return False


def _subpatterns(argument: object):
    """Every SubPattern inside a parsed item's argument (groups, branches, lookarounds, conditionals)."""
    if isinstance(argument, sre_parse.SubPattern):
        yield argument
    elif isinstance(argument, (tuple, list)):
        for item in argument:
            yield from _subpatterns(item)


_REGEX_ERRORS = (
    ("missing ), unterminated subpattern", "eine Klammer ( wird nicht geschlossen"),
    ("unbalanced parenthesis", "eine Klammer ) schließt nichts"),
    ("unterminated character set", "eine eckige Klammer [ wird nicht geschlossen"),
    ("nothing to repeat", "ein Wiederholungszeichen (*, +, ?, {…}) folgt auf nichts Wiederholbares"),
    ("multiple repeat", "zwei Wiederholungszeichen folgen aufeinander"),
    ("bad escape", "unbekanntes Zeichen nach \\"),
    ("bad character range", "ungültiger Bereich in [ ]"),
    ("look-behind requires fixed-width pattern", "ein Rückblick (?<=…) braucht eine feste Länge"),
    ("unknown extension", "unbekannte Erweiterung nach (?"),
    ("missing group name", "der Gruppenname fehlt"),
    ("unknown group name", "unbekannter Gruppenname"),
)


def regex_error(error: re.error) -> str:
    """Python's regex error in German, with where it is counted from 1 as people count characters."""
    words = next((german for english, german in _REGEX_ERRORS if error.msg.startswith(english)), error.msg)
    return f"{words}, beim {error.pos + 1}. Zeichen" if error.pos is not None else words

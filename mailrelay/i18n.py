"""The language the tools speak to people: German by default, English on request (`--lang en`, or a
LANG/LC_ALL/LC_MESSAGES naming English). Log events stay English: they are for machines and operators."""
from __future__ import annotations

import os
from collections.abc import Mapping

LANGUAGES = ("de", "en")
_language = "de"


def tr(de: str, en: str) -> str:
    """The text in the language in force; both versions are written where the message is made."""
    return en if _language == "en" else de


def language() -> str:
    return _language


def set_language(code: str) -> None:
    global _language
    if code not in LANGUAGES:
        raise ValueError(f"unknown language {code!r}; known: {', '.join(LANGUAGES)}")
    _language = code


def choose_language(requested: str | None, environ: Mapping[str, str] = os.environ) -> str:
    """`requested` if given, else English when the locale (in POSIX order of precedence) is English,
    else German: the editors' language."""
    if requested:
        return requested
    for name in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = environ.get(name, "")
        if value:
            return "en" if value.lower().startswith("en") else "de"
    return "de"

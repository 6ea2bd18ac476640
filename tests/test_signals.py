"""load_signals: the shipped file loads; a broken one is refused with every problem and its line."""
from __future__ import annotations

from pathlib import Path

import pytest

from mailrelay.classify.signals import load_signals
from mailrelay.tomlcheck import ConfigError
from mailrelay.wildcards import domains_regex, nested_unbounded_repeat, words_regex

REPO = Path(__file__).resolve().parent.parent
SHIPPED = REPO / "config" / "signals.toml"

# Appended to the shipped file: four different mistakes, each on its own line.
BROKEN_GROUP = """
[sender.research.broken]
weigth = 0.5
words = "Universität"
patterns = [
    'Hochschule (für',
    '(\\w+\\s?)+Institut',
]
"""


def line_of(text: str, fragment: str) -> int:
    return next(number for number, line in enumerate(text.splitlines(), start=1) if fragment in line)


def broken_file(tmp_path: Path, extra: str) -> tuple[Path, str]:
    text = SHIPPED.read_text(encoding="utf-8") + extra
    path = tmp_path / "signals.toml"
    path.write_text(text, encoding="utf-8")
    return path, text


def test_shipped_signals_load_with_groups_for_every_value():
    """The shipped file loads, with signals for every kind, sender type and level."""
    signals = load_signals(SHIPPED)
    values = {(group.field, group.value) for group in signals.groups}
    for field, names in {"kind": ("application", "inquiry", "auto_reply", "bounce", "bulk", "spam", "person"),
                         "sender": ("public_body", "cluster_organisation", "research", "consultancy"),
                         "level": ("national", "regional", "local")}.items():
        assert {(field, name) for name in names} <= values
    assert ("country", "DE") in values


def test_every_mistake_is_reported_at_once_with_its_line(tmp_path):
    """An unknown key, a wrong type, a bad regex and a catastrophic regex are all reported, each on its line."""
    path, text = broken_file(tmp_path, BROKEN_GROUP)
    with pytest.raises(ConfigError) as caught:
        load_signals(path)
    problems = [str(problem) for problem in caught.value.problems]
    expected = {
        "weigth = 0.5": "unbekannter Schlüssel 'weigth' (Tipp: gemeint ist wohl 'weight')",
        'words = "Universität"': "'words' muss eine Liste sein, hier steht ein Text",
        "'Hochschule (für'": "'Hochschule (für' ist kein gültiger regulärer Ausdruck",
        "(\\w+\\s?)+Institut": "'(\\w+\\s?)+Institut' wiederholt eine Wiederholung",
    }
    assert len(problems) == len(expected), problems
    for fragment, message in expected.items():
        prefix = f"{path}:{line_of(text, fragment)}: "
        assert any(p.startswith(prefix) and message in p for p in problems), (fragment, problems)


def test_header_tests_and_lists_are_checked_entry_by_entry(tmp_path):
    """A non-string header test or entry, a bad domain and a word of wildcards only are each reported on their line."""
    extra = """
[kind.bulk.extra]
attachments = ["*.ics", 42]
[kind.bulk.extra.headers]
"X-Mailer" = 7

[sender.research.extra_domains]
domains = ["uni-*.de", "not a domain"]
words = ["Hochschule", "*"]
"""
    path, text = broken_file(tmp_path, extra)
    with pytest.raises(ConfigError) as caught:
        load_signals(path)
    problems = [str(problem) for problem in caught.value.problems]
    assert len(problems) == 4, problems
    for fragment, message in {'"X-Mailer" = 7': "'X-Mailer' muss ein Text sein, hier steht eine ganze Zahl",
                              '"*.ics", 42': "'attachments': Eintrag 2 muss ein Text sein",
                              '"not a domain"': "'not a domain' ist keine Domain",
                              '"Hochschule", "*"': "'*' enthält keinen Buchstaben"}.items():
        assert any(p.startswith(f"{path}:{line_of(text, fragment)}: ") and message in p for p in problems)


def test_unknown_sections_and_values_get_a_nearest_key_hint(tmp_path):
    """A misspelt kind and an unknown top-level table are refused with the nearest valid name."""
    path, text = broken_file(tmp_path, "\n[kind.auto_replies]\nsubject = [\"Abwesend\"]\n\n[treshold]\nx = 1\n")
    with pytest.raises(ConfigError) as caught:
        load_signals(path)
    problems = [str(problem) for problem in caught.value.problems]
    assert len(problems) == 2, problems
    assert any(p.startswith(f"{path}:{line_of(text, '[kind.auto_replies]')}: ") and "gemeint ist wohl 'auto_reply'" in p
               for p in problems), problems
    assert any(p.startswith(f"{path}:{line_of(text, '[treshold]')}: ") and "gemeint ist wohl 'thresholds'" in p
               for p in problems), problems


def test_nested_unbounded_repeats_are_recognised():
    """(a+)+ and its relatives are refused; sequences and bounded repeats are not."""
    assert nested_unbounded_repeat("(a+)+")
    assert nested_unbounded_repeat("(?:x|(ab*)*)c")
    assert nested_unbounded_repeat("((\\d+\\.)*)$")
    assert not nested_unbounded_repeat("\\d{5}\\s+[A-Z]\\w+")
    assert not nested_unbounded_repeat("(ab){1,3}c+")


def test_words_match_whole_words_and_wildcards():
    """'Stadt' misses 'Speicherstadt', '*ministerium' finds compounds, a lone '*' is one word."""
    regex = words_regex(["Stadt", "*ministerium", "Sie haben * gewonnen", "Max-Planck*", "e.V."])
    assert regex.search("Speicherstadt 3") is None
    assert regex.search("Bayerisches Staatsministerium für").group(0) == "Staatsministerium"
    assert regex.search("Sie haben Geld gewonnen!")
    assert regex.search("Max Planck Institut").group(0) == "Max Planck"
    assert regex.search("OptecNet e.V.")


def test_domains_match_suffixes_by_whole_parts():
    """'bayern.de' matches stmwi.bayern.de but not nanoinitiative-bayern.de."""
    regex = domains_regex(["bayern.de", "uni-*.de"])
    assert regex.match("stmwi.bayern.de") and regex.match("bayern.de") and regex.match("ifi.uni-stuttgart.de")
    assert regex.match("nanoinitiative-bayern.de") is None

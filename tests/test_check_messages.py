"""What `check` says about the editors' and operators' files: one message per mistake, at its line, in German."""
from __future__ import annotations

import pytest

from mailrelay.classify.signals import load_signals
from mailrelay.config import check_secrets, load_settings
from mailrelay.i18n import set_language
from mailrelay.rules import load_rules
from mailrelay.tomlcheck import ConfigError, Problem
from tests.helpers import REPO

CONFIG = REPO / "config"
LOADERS = {"routing.toml": load_rules, "signals.toml": load_signals, "mailrelay.toml": load_settings}

# (file, what the shipped file says, the same with one mistake in it)
ONE_MISTAKE = [
    ("routing.toml", 'when = { kind = "inquiry" }', 'whne = { kind = "inquiry" }'),
    ("routing.toml", 'when = { kind = "inquiry" }', 'when = { knd = "inquiry" }'),
    ("routing.toml", 'when = { kind = "inquiry" }', 'when = { kind = "inqury" }'),
    ("routing.toml", 'country = "unknown" }', 'country = "unknwn" }'),
    ("routing.toml", 'unless = { country = ["DE", "unknown"] }', 'unles = { country = ["DE", "unknown"] }'),
    ("routing.toml", 'unless = { country = ["DE", "unknown"] }', 'unless = { contry = ["DE", "unknown"] }'),
    ("routing.toml", 'unless = { country = ["DE", "unknown"] }', 'unless = { country = ["DE", "unknwn"] }'),
    ("routing.toml", 'desk = "desk-public"', 'desk = "desk-publik"'),
    ("routing.toml", 'default = "editors"', 'default = "editrs"'),
    ("routing.toml", 'name = "inquiry"', 'nme = "inquiry"'),
    ("routing.toml", 'sender = "public_body" }', 'sender = "public_bdy" }'),
    ("routing.toml", "[desks.desk-experts]", "[desk.desk-experts]"),
    ("routing.toml", "review_below_confidence = 0.45", 'review_below_confidence = "0,45"'),
    ("routing.toml", "review_below_confidence = 0.45", "review_below_confidence = 0,45"),
    ("routing.toml", 'when = { kind = "inquiry" }', 'when = { kind = "inquiry", subject_regex = "\\d+" }'),
    ("routing.toml", 'when = { kind = "inquiry" }', "when = { kind = \"inquiry\", subject_regex = '(\\d+' }"),
    ("routing.toml", "days = 14 ", 'days = "14" '),
    ("signals.toml", "\n[where]\n", "\n[wher]\n"),
    ("signals.toml", "signature = 1.0 ", 'signature = "1,0" '),
    ("signals.toml", "margin = 1.5 ", "margin = 1,5 "),
    ("signals.toml", "\nweight = 0.6", "\nwieght = 0.6"),
    ("mailrelay.toml", "[imap]", "[imapp]"),
    ("mailrelay.toml", "port = 993", 'port = "993"'),
    ("mailrelay.toml", "batch_size = 50", "batchsize = 50"),
    ("mailrelay.toml", "from_address =", "from_adress ="),
]


def _load(tmp_path, name: str, text: str) -> list[Problem]:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        LOADERS[name](path)
    return list(caught.value.problems)


def _line(text: str, fragment: str) -> int:
    return text[:text.index(fragment)].count("\n") + 1 + fragment[:len(fragment) - len(fragment.lstrip("\n"))].count("\n")


@pytest.mark.parametrize(("name", "shipped", "mistaken"), ONE_MISTAKE)
def test_one_mistake_in_a_shipped_file_gives_one_message_at_its_line(tmp_path, name, shipped, mistaken):
    """A shipped file with exactly one mistake is refused with exactly one problem, at the mistake's line."""
    original = (CONFIG / name).read_text(encoding="utf-8")
    assert shipped in original
    text = original.replace(shipped, mistaken, 1)
    problems = _load(tmp_path, name, text)
    assert len(problems) == 1, "\n".join(map(str, problems))
    assert problems[0].line == _line(text, mistaken)


RULES_HEAD = 'default = "a"\n[desks.a]\naddresses = ["a@example.org"]\n[desks.b]\naddresses = ["b@example.org"]\n'


def test_misspelt_key_in_a_multi_line_inline_table_is_named_at_its_own_line(tmp_path):
    """`knd` written three lines below `when = {` is reported at its own line, once."""
    text = RULES_HEAD + ('[[rules]]\nname = "x"\nwhen = { sender = [\n    "research",\n    "consultancy",\n'
                         '], knd = "application" }\ndesk = "b"\n')
    [problem] = _load(tmp_path, "routing.toml", text)
    assert (problem.line, problem.message, problem.hint) == (
        _line(text, 'knd = "application"'), "unbekannter Schlüssel 'knd'", "gemeint ist wohl 'kind'")


def test_misspelt_key_in_an_array_of_inline_tables_is_named_at_its_own_line(tmp_path):
    """Rules written as an array of inline tables: the misspelt key of the second is found on its line."""
    text = ('rules = [\n    { name = "x", when = { kind = "inquiry" }, desk = "a" },\n'
            '    { name = "y", when = { knd = "application" }, desk = "b" },\n]\n') + RULES_HEAD
    [problem] = _load(tmp_path, "routing.toml", text)
    assert (problem.line, problem.message) == (_line(text, "knd"), "unbekannter Schlüssel 'knd'")


def test_wrong_value_in_a_multi_line_list_is_named_at_its_entry(tmp_path):
    """A misspelt kind in a list over several lines is reported at the line of that entry."""
    text = RULES_HEAD + '[[rules]]\nname = "x"\nwhen = { kind = [\n    "inquiry",\n    "aplication",\n] }\ndesk = "b"\n'
    [problem] = _load(tmp_path, "routing.toml", text)
    assert problem.line == _line(text, '"aplication"')
    assert problem.message == ("Regel 'x': kind 'aplication' ist keiner der Werte application, auto_reply, bounce, "
                               "bulk, inquiry, spam")
    assert problem.hint == "gemeint ist wohl 'application'"


def test_decimal_comma_gets_the_hint_to_write_a_point(tmp_path):
    """"0,45" as text and 0,45 as a syntax error both get: a number, with a point: 0.45."""
    quoted = RULES_HEAD.replace('default = "a"', 'default = "a"\nreview_below_confidence = "0,45"\nreview_desk = "b"')
    [problem] = _load(tmp_path, "routing.toml", quoted)
    assert problem.message == "'review_below_confidence' muss eine Zahl sein, hier steht ein Text"
    assert problem.hint == "eine Zahl, mit Punkt: 0.45"
    [problem] = _load(tmp_path, "routing.toml", quoted.replace('"0,45"', "0,45"))
    assert (problem.line, problem.hint) == (2, "eine Zahl, mit Punkt: 0.45")
    set_language("en")
    [problem] = _load(tmp_path, "routing.toml", quoted)
    assert str(problem).endswith("'review_below_confidence' must be a number, not a text (hint: a number, with a "
                                 "point: 0.45)")


def test_backslash_in_double_quotes_gets_the_hint_to_use_single_quotes(tmp_path):
    """A regex in double quotes with a backslash is a TOML error whose hint shows it in single quotes."""
    text = RULES_HEAD + '[[rules]]\nname = "x"\nwhen = { text_regex = "Az\\.? \\d+" }\ndesk = "b"\n'
    [problem] = _load(tmp_path, "routing.toml", text)
    assert problem.line == _line(text, "text_regex")
    assert problem.message == "TOML-Syntaxfehler: ein \\ in einem Text in doppelten Anführungszeichen"
    assert problem.hint == "in einfache Anführungszeichen setzen, dort gilt \\ wörtlich: 'Az\\.? \\d+'"


def test_regex_is_shown_as_written(tmp_path):
    """A broken regex appears in the message with single backslashes, as in the file, and the error in German."""
    text = RULES_HEAD + "[[rules]]\nname = \"x\"\nwhen = { subject_regex = '(\\d+ Bewerbung' }\ndesk = \"b\"\n"
    [problem] = _load(tmp_path, "routing.toml", text)
    assert problem.message == ("Regel 'x': subject_regex '(\\d+ Bewerbung' ist kein gültiger regulärer Ausdruck: "
                               "eine Klammer ( wird nicht geschlossen, beim 1. Zeichen")
    assert "\\\\" not in str(problem)


def test_list_left_open_at_the_end_is_named_where_it_opens(tmp_path):
    """A list whose ] is missing at the end of the file is reported at the line where it opens."""
    text = RULES_HEAD + '[[rules]]\nname = "x"\ndesk = "b"\nreason = "x"\n[desks.c]\naddresses = ["c@example.org",\n'
    [problem] = _load(tmp_path, "routing.toml", text)
    assert (problem.line, problem.message) == (_line(text, '["c@'), "TOML-Syntaxfehler: eine Liste ist nicht geschlossen")


@pytest.mark.parametrize(("written", "message", "hint"), [
    ('batch_size = 50\nidle = "true"', "'idle' muss true oder false (ja/nein) sein, hier steht ein Text",
     "ohne Anführungszeichen: idle = true"),
    ('batch_size = "50"', "'batch_size' muss eine ganze Zahl sein, hier steht ein Text",
     "ohne Anführungszeichen: batch_size = 50"),
    ("mailbox = 5", "'mailbox' muss ein Text sein, hier steht eine ganze Zahl", 'in Anführungszeichen: mailbox = "5"'),
    ("mailbox = [\"INBOX\"]", "'mailbox' muss ein Text sein, hier steht eine Liste", ""),
])
def test_types_are_named_in_words(tmp_path, written, message, hint):
    """A value of the wrong type is described as Text, Zahl, Liste or ja/nein, with what to write."""
    key = written.split(" =")[0]
    original = (CONFIG / "mailrelay.toml").read_text(encoding="utf-8")
    line = next(line for line in original.splitlines() if line.startswith(f"{key} ="))
    text = original.replace(line, written, 1)
    [problem] = _load(tmp_path, "mailrelay.toml", text)
    assert (problem.line, problem.message, problem.hint) == (_line(text, written.splitlines()[-1]), message, hint)
    assert "str" not in problem.message and "int" not in problem.message


SECRETS = """\
rules = "routing.toml"

[imap]
host = "127.0.0.1"
username = "info"
{imap}

[smtp]
host = "127.0.0.1"
{smtp}

[relay]
from_address = "relay@example.org"
"""


def _secret_problems(tmp_path, imap: str, smtp: str) -> list[Problem]:
    path = tmp_path / "mailrelay.toml"
    path.write_text(SECRETS.format(imap=imap, smtp=smtp), encoding="utf-8")
    return check_secrets(load_settings(path))


def test_check_secrets_names_each_password_that_cannot_be_read_at_its_line(tmp_path, monkeypatch):
    """A password file that is missing, a folder or empty, and an unset password_env, are each one problem at
    the line that names them; a readable one is none, and its value is shown nowhere."""
    monkeypatch.delenv("MAILRELAY_TEST_UNSET", raising=False)
    (tmp_path / "empty.secret").write_text("\n", encoding="utf-8")
    (tmp_path / "folder.secret").mkdir()
    missing = tmp_path / "missing.secret"
    problems = _secret_problems(tmp_path, f'password_file = "{missing}"', 'password_env = "MAILRELAY_TEST_UNSET"')
    assert [(p.line, p.message) for p in problems] == [
        (6, f"die Passwortdatei {missing} gibt es nicht"),
        (10, "die Umgebungsvariable MAILRELAY_TEST_UNSET (password_env) ist nicht gesetzt")]
    problems = _secret_problems(tmp_path, f'password_file = "{tmp_path / "folder.secret"}"',
                                f'password_file = "{tmp_path / "empty.secret"}"')
    assert [(p.line, p.message.split(":")[0]) for p in problems] == [
        (6, "die Passwortdatei kann nicht gelesen werden"), (10, f"die Passwortdatei {tmp_path / 'empty.secret'} ist leer")]
    (tmp_path / "good.secret").write_text("canary-s3cret\n", encoding="utf-8")
    monkeypatch.setenv("MAILRELAY_TEST_SET", "canary-env")
    assert _secret_problems(tmp_path, f'password_file = "{tmp_path / "good.secret"}"',
                            'password_env = "MAILRELAY_TEST_SET"') == []


def test_check_secrets_leaves_relative_files_to_the_service_outside_systemd(tmp_path, monkeypatch):
    """A relative password_file comes from $CREDENTIALS_DIRECTORY under systemd: outside it, one that is not
    beside the config is not judged; inside it, a missing one is named, in English when asked."""
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    assert _secret_problems(tmp_path, 'password_file = "imap-password"', "") == []
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(credentials))
    set_language("en")
    [problem] = _secret_problems(tmp_path, 'password_file = "imap-password"', "")
    assert problem.line == 6 and problem.message == f"the password file {tmp_path / 'imap-password'} does not exist"

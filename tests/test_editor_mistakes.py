"""explain, evaluate and replay given a wrong file, folder or time: one line on stderr, its exit code, no traceback."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from mailrelay.cli import main
from tests.helpers import DATA, REPO

CONFIG = REPO / "config" / "mailrelay.toml"
MAIL = REPO / "mailrelay" / "demo" / "mails" / "01-application-state-ministry.eml"
USAGE, NOT_A_MAIL = 2, 3


def _run(capsys, *arguments: str, config: Path = CONFIG) -> tuple[int, str, str]:
    code = main(["--config", str(config), *arguments])
    out, err = capsys.readouterr()
    return code, out, err


def _one_line(err: str) -> str:
    """The single line the command wrote to stderr."""
    assert err.count("\n") == 1 and err.startswith("mailrelay: "), err
    return err.strip()


@pytest.mark.parametrize(("name", "code", "words"), [
    ("fehlt.eml", USAGE, "fehlt.eml: keine solche Datei; bitte den Pfad zu einer .eml-Datei angeben"),
    (".", USAGE, "ist ein Ordner; bitte eine einzelne Datei darin angeben"),
    ("leer.eml", NOT_A_MAIL, "leer.eml: keine E-Mail: die Datei ist leer"),
    ("binaer.eml", NOT_A_MAIL, "binaer.eml: keine E-Mail: die Datei ist binär, keine Textdatei"),
    ("brief.txt", NOT_A_MAIL, "brief.txt: keine E-Mail: keine Kopfzeilen gefunden"),
])
def test_explain_on_what_is_no_mail_file_says_so_in_one_line(tmp_path, capsys, name, code, words):
    """A missing file or a folder is a usage mistake (2); an empty, binary or headerless file is no mail (3),
    and is not classified (as spam, say): nothing goes to stdout."""
    (tmp_path / "leer.eml").write_bytes(b"")
    shutil.copy(DATA / "hostile-binary-garbage.eml", tmp_path / "binaer.eml")
    shutil.copy(DATA / "hostile-no-headers-at-all.eml", tmp_path / "brief.txt")
    for as_json in ((), ("--json",)):
        result, out, err = _run(capsys, "explain", str(tmp_path / name), *as_json)
        assert (result, out) == (code, "")
        assert words in _one_line(err)


def test_explain_mistake_speaks_english_with_lang_en(tmp_path, capsys):
    """With --lang en the one line is English."""
    (tmp_path / "empty.eml").write_bytes(b"")
    assert _run(capsys, "--lang", "en", "explain", str(tmp_path / "empty.eml"))[0] == NOT_A_MAIL
    code, _, err = _run(capsys, "--lang", "en", "explain", str(tmp_path / "missing.eml"))
    assert code == USAGE and "missing.eml: no such file; give the path of an .eml file" in _one_line(err)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a file whatever its mode")
def test_explain_on_a_file_without_read_permission_says_so(tmp_path, capsys):
    """A file the person may not read gets the hint to check its permissions."""
    secret = tmp_path / "geheim.eml"
    shutil.copy(MAIL, secret)
    secret.chmod(0)
    code, _, err = _run(capsys, "explain", str(secret))
    assert code == USAGE and "keine Leseberechtigung" in _one_line(err)


def test_explain_on_a_file_the_system_cannot_read_says_so(capsys):
    """A read that fails in the system (here /proc/self/mem, an I/O error even for root) is one line too."""
    code, _, err = _run(capsys, "explain", "/proc/self/mem")
    assert code == USAGE and "/proc/self/mem lässt sich nicht lesen" in _one_line(err)


def test_explain_still_reads_a_mail_with_nul_bytes(capsys):
    """A hostile mail with NUL bytes in a header is still a mail: explain classifies it."""
    code, out, _ = _run(capsys, "explain", "--json", str(DATA / "hostile-nul-bytes-in-header-and-body.eml"))
    assert code == 0 and json.loads(out)["kind"] is not None


def _labelled(tmp_path: Path, labels: str) -> Path:
    folder = tmp_path / "sammlung"
    folder.mkdir()
    shutil.copy(DATA / "inquiry-how-to-apply-en.eml", folder / "anfrage.eml")
    (folder / "leer.eml").write_bytes(b"")
    (folder / "labels.jsonl").write_text(labels, encoding="utf-8")
    return folder


@pytest.mark.parametrize(("make", "words"), [
    (lambda tmp: tmp / "fehlt", "fehlt: kein solcher Ordner; bitte den Ordner mit labels.jsonl und den Mails angeben"),
    (lambda tmp: _labelled(tmp, "") / "anfrage.eml", "anfrage.eml ist kein Ordner"),
    (lambda tmp: tmp, "keine labels.jsonl darin; bitte anlegen, je Mail eine Zeile wie {\"file\": \"a.eml\""),
    (lambda tmp: _labelled(tmp, '{"file": "anfrage.eml"}\n{"file": "anfrage.eml",\n'),
     "labels.jsonl:2: kein gültiges JSON"),
    (lambda tmp: _labelled(tmp, '{"file": "anfrage.eml"}\n\n{"route": "editors"}\n'),
     "labels.jsonl:3: \"file\" fehlt"),
    (lambda tmp: _labelled(tmp, '{"file": "weg.eml", "route": "editors"}\n'),
     "labels.jsonl:1: die Mail weg.eml fehlt im Ordner"),
])
def test_evaluate_on_a_wrong_folder_says_what_to_do_in_one_line(tmp_path, capsys, make, words):
    """A folder that is not there, a file, no labels.jsonl, or a broken labels line (named by its number)
    each end in one line and exit 2."""
    code, out, err = _run(capsys, "evaluate", str(make(tmp_path)))
    assert (code, out) == (USAGE, "")
    assert words in _one_line(err)


def test_evaluate_sets_aside_a_file_that_is_no_mail(tmp_path, capsys):
    """An empty file in a labelled folder is reported as no mail and judged for nothing; the rest is judged."""
    folder = _labelled(tmp_path, '{"file": "anfrage.eml", "route": "editors"}\n{"file": "leer.eml", "route": "none"}\n')
    code, out, _ = _run(capsys, "evaluate", str(folder), "--json")
    summary = json.loads(out)
    assert code == 0 and summary["mails"] == 1 and summary["accuracy"]["route"]["judged"] == 1
    assert summary["not_a_mail"] == [{"file": "leer.eml", "why": "die Datei ist leer"}]
    code, out, _ = _run(capsys, "evaluate", str(folder))
    assert code == 0 and "keine E-Mail, nicht bewertet: 1\n  leer.eml: die Datei ist leer" in out


def test_replay_without_a_state_file_says_what_to_do(tmp_path, capsys):
    """Replay before the relay has handled anything (or with the wrong --config) is one line and exit 2."""
    config = tmp_path / "mailrelay.toml"
    config.write_text(CONFIG.read_text(encoding="utf-8")
                      .replace('"routing.toml"', f'"{REPO / "config" / "routing.toml"}"')
                      .replace('signals = "signals.toml"', f'signals = "{REPO / "config" / "signals.toml"}"')
                      .replace('templates = "../templates"', f'templates = "{REPO / "templates"}"')
                      .replace('reference = "reference.toml"', f'reference = "{REPO / "config" / "reference.toml"}"')
                      .replace("/var/lib/mailrelay/state.sqlite", str(tmp_path / "state.sqlite")), encoding="utf-8")
    code, out, err = _run(capsys, "replay", config=config)
    assert (code, out) == (USAGE, "")
    assert f"keine Zustandsdatei unter {tmp_path / 'state.sqlite'}" in _one_line(err)
    code, _, err = _run(capsys, "--lang", "en", "replay", "--since", "1w", config=config)
    assert code == USAGE and "no state file at" in _one_line(err)


def test_replay_refuses_a_since_it_does_not_understand(capsys):
    """A --since that is no time span or date is a usage mistake, named with the forms it takes."""
    with pytest.raises(SystemExit) as stopped:
        main(["--config", str(CONFIG), "replay", "--since", "letzte Woche"])
    assert stopped.value.code == USAGE
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.endswith("argument --since: nimmt 30d, 12h, 90m, 1w oder ein Datum wie 2026-11-11, "
                         "nicht 'letzte Woche'")

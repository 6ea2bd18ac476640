"""The command line: demo, explain and check, run as a user would run them."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.helpers import REPO

MAILS = REPO / "mailrelay" / "demo" / "mails"


def _mailrelay(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mailrelay", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=120)


def test_demo_relays_the_sample_inbox_without_servers(tmp_path):
    """`mailrelay demo` forwards the applications into the outbox and archives the machine mail."""
    result = _mailrelay("demo", "--workdir", str(tmp_path / "demo"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    outbox = sorted((tmp_path / "demo" / "outbox").glob("*.eml"))
    ignored = list((tmp_path / "demo" / "inbox" / ".Ignored" / "cur").iterdir())
    left = list((tmp_path / "demo" / "inbox" / "new").iterdir()) + list((tmp_path / "demo" / "inbox" / "cur").iterdir())
    assert len(outbox) == 4 and len(ignored) == 2 and left == []
    assert "desk-public" in result.stdout and "forwarded" in result.stdout and "ignored" in result.stdout


def test_demo_refuses_to_wipe_a_folder_it_did_not_make(tmp_path):
    """The demo never deletes a folder that is not its own."""
    (tmp_path / "precious").mkdir()
    (tmp_path / "precious" / "keep.txt").write_text("x")
    result = _mailrelay("demo", "--workdir", str(tmp_path / "precious"), cwd=tmp_path)
    assert result.returncode != 0 and (tmp_path / "precious" / "keep.txt").exists()


def test_explain_json_names_route_rule_and_evidence(tmp_path):
    """`explain --json` gives kind, sender, level, country, route, rule and evidence for a mail file."""
    result = _mailrelay("--config", str(REPO / "config" / "mailrelay.toml"), "explain", "--json",
                        str(MAILS / "01-application-state-ministry.eml"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    facts = json.loads(result.stdout)
    assert (facts["kind"], facts["sender"], facts["level"], facts["country"]) == (
        "application", "public_body", "regional", "DE")
    assert facts["route"] == "desk-public" and facts["rule"] == "public-body-germany"
    assert facts["evidence"] and all({"field", "signal", "where"} <= set(e) for e in facts["evidence"])
    rules = {item["rule"]: item for item in facts["rules"]}
    assert rules["public-body-germany"]["matched"] is True
    assert rules["inquiry"] == {"rule": "inquiry", "matched": False, "decides": False,
                                "why": "kind application is not inquiry"}
    assert rules["public-body-germany"]["decides"] is True
    assert rules["application-sender-unknown"] == {"rule": "application-sender-unknown", "matched": True,
                                                   "decides": False, "why": "kind application"}


def test_explain_text_shows_each_rule_and_the_decision_in_german(tmp_path):
    """The text form (German by default) lists every rule with its verdict, and the decision."""
    result = _mailrelay("--config", str(REPO / "config" / "mailrelay.toml"), "explain",
                        str(MAILS / "05-bounce-dsn.eml"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "  TRIFFT ZU — entscheidet: machine-mail -> ignore\n      Art ist bounce\n" in result.stdout
    assert "  trifft nicht zu: inquiry -> editors\n      verlangt Art inquiry, hier: bounce\n" in result.stdout
    assert "Entscheidung: nur archivieren -> none (Regel machine-mail)" in result.stdout


def test_explain_text_is_english_with_lang_en(tmp_path):
    """With --lang en the same text reads in English; the rule names and values stay as written."""
    result = _mailrelay("--config", str(REPO / "config" / "mailrelay.toml"), "--lang", "en", "explain",
                        str(MAILS / "05-bounce-dsn.eml"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "  MATCHES — decides: machine-mail -> ignore\n      kind is bounce\n" in result.stdout
    assert "Decision:     ignore -> none (rule machine-mail)" in result.stdout
    assert "Entscheidung" not in result.stdout


def test_explain_mistakes_end_in_one_line_without_a_traceback(tmp_path):
    """Run as a person would: a missing file, a folder and an empty file each give one line and their code."""
    (tmp_path / "leer.eml").write_bytes(b"")
    config = str(REPO / "config" / "mailrelay.toml")
    for target, code, words in [(tmp_path / "fehlt.eml", 2, "keine solche Datei"),
                                (tmp_path, 2, "ist ein Ordner"),
                                (tmp_path / "leer.eml", 3, "keine E-Mail: die Datei ist leer")]:
        result = _mailrelay("--config", config, "explain", str(target), cwd=tmp_path)
        assert (result.returncode, result.stdout) == (code, "")
        assert result.stderr.count("\n") == 1 and words in result.stderr and "Traceback" not in result.stderr


def test_check_accepts_the_shipped_config_and_names_problems(tmp_path):
    """`check` exits 0 on the shipped config and 2 with file:line on a broken rules file."""
    good = _mailrelay("--config", str(REPO / "config" / "mailrelay.toml"), "check", cwd=tmp_path)
    assert good.returncode == 0, good.stderr
    broken = tmp_path / "routing.toml"
    broken.write_text((REPO / "config" / "routing.toml").read_text().replace('desk = "desk-public"',
                                                                            'desk = "desk-publik"'))
    config = tmp_path / "mailrelay.toml"
    config.write_text((REPO / "config" / "mailrelay.toml").read_text()
                      .replace('signals = "signals.toml"', f'signals = "{REPO / "config" / "signals.toml"}"')
                      .replace('templates = "../templates"', f'templates = "{REPO / "templates"}"'))
    result = _mailrelay("--config", str(config), "check", cwd=tmp_path)
    assert result.returncode == 2
    line = next(n for n, text in enumerate(broken.read_text().splitlines(), 1) if "desk-publik" in text)
    assert f"{broken}:{line}: 'desk-publik' ist kein deklariertes Referat" in result.stderr


def test_help_lists_the_commands(tmp_path):
    """`mailrelay --help` names every subcommand."""
    result = _mailrelay("--help", cwd=tmp_path)
    assert result.returncode == 0
    assert all(word in result.stdout for word in ("once", "run", "check", "explain", "demo"))


def test_check_reports_problems_of_every_file_in_one_run(tmp_path):
    """A bad key in the main file, a bad desk in the rules and a bad template variable: all three at once."""
    import shutil

    shutil.copytree(REPO / "templates", tmp_path / "templates")
    template = tmp_path / "templates" / "subject.txt.j2"
    template.write_text(template.read_text().rstrip("\n") + " {{ applicant }}\n")
    rules = tmp_path / "routing.toml"
    rules.write_text((REPO / "config" / "routing.toml").read_text().replace('desk = "desk-experts"',
                                                                           'desk = "desk-expert"'))
    config = tmp_path / "mailrelay.toml"
    config.write_text((REPO / "config" / "mailrelay.toml").read_text()
                      .replace('signals = "signals.toml"', f'signals = "{REPO / "config" / "signals.toml"}"')
                      .replace('templates = "../templates"', 'templates = "templates"')
                      .replace("batch_size = 50", "batchsize = 50"))
    result = _mailrelay("--config", str(config), "check", cwd=tmp_path)
    assert result.returncode == 2
    assert f"{config}:" in result.stderr
    assert "unbekannter Schlüssel 'batchsize' (Tipp: gemeint ist wohl 'batch_size')" in result.stderr
    assert f"{rules}:" in result.stderr and "'desk-expert' ist kein deklariertes Referat" in result.stderr
    assert f"{template}:" in result.stderr and "'applicant' gibt es im Betreff nicht" in result.stderr

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
    assert rules["inquiry"] == {"rule": "inquiry", "matched": False, "why": "kind application is not inquiry"}


def test_explain_text_shows_each_rule_and_the_summary(tmp_path):
    """The text form lists every rule with whether it matched, and the summary the desk would get."""
    result = _mailrelay("--config", str(REPO / "config" / "mailrelay.toml"), "explain",
                        str(MAILS / "05-bounce-dsn.eml"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "MATCH  machine-mail" in result.stdout
    assert "Decision:    ignore -> none" in result.stdout


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
    assert f"{broken}:{line}: 'desk-publik' is not a declared desk" in result.stderr


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
    assert f"{config}:" in result.stderr and "unknown key 'batchsize' (hint: did you mean 'batch_size'?)" in result.stderr
    assert f"{rules}:" in result.stderr and "'desk-expert' is not a declared desk" in result.stderr
    assert f"{template}:" in result.stderr and "'applicant' is undefined" in result.stderr

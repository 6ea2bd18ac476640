"""No tracebacks for people: each expected mistake is one line that says what to do, with its exit code;
an unexpected error is one line too, and its traceback is in the log at debug level."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from mailrelay.cli import main
from tests.helpers import REPO
from tests.relaytest import closed_port, write_config

APPLICATION = (REPO / "mailrelay" / "demo" / "mails" / "01-application-state-ministry.eml").read_bytes()


def _mailrelay(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mailrelay", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120)


def _one_line(result: subprocess.CompletedProcess) -> str:
    """The command's stderr, which must be one line and no traceback."""
    assert "Traceback" not in result.stdout + result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    return result.stderr


@pytest.mark.parametrize("command", [["status"], ["once"], ["resume"], ["audit", "verify"]])
def test_a_missing_config_says_how_to_name_one(tmp_path, command):
    """No config file: one line naming it and --config / MAILRELAY_CONFIG, exit 2."""
    result = _mailrelay("--config", str(tmp_path / "nowhere.toml"), *command, cwd=tmp_path)
    assert result.returncode == 2
    line = _one_line(result)
    assert line.startswith(f"mailrelay: keine Konfigurationsdatei {tmp_path / 'nowhere.toml'}")
    assert "--config" in line and "MAILRELAY_CONFIG" in line


def test_a_state_file_that_cannot_be_opened_is_one_line(tmp_path, dovecot, imap_user, smtp_sink):
    """`[state] path` naming a folder: once and resume say the state file is not usable, exit 1."""
    config = write_config(tmp_path, dovecot, imap_user, smtp_sink)
    config.write_text(config.read_text().replace('path = "state.sqlite"', 'path = "folder"'))
    (tmp_path / "folder").mkdir()
    for command in ("once", "resume"):
        result = _mailrelay("--config", str(config), command, cwd=tmp_path)
        assert result.returncode == 1
        assert "Zustandsdatei ist nicht verwendbar" in _one_line(result) and "[state] path" in result.stderr


def test_a_bad_since_is_one_line(tmp_path, dovecot, imap_user, smtp_sink):
    """`--since yesterday` names the forms it takes, exit 2 (argparse's usage line aside)."""
    config = write_config(tmp_path, dovecot, imap_user, smtp_sink)
    result = _mailrelay("--config", str(config), "audit", "list", "--since", "yesterday", cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "--since" in result.stderr.splitlines()[-1] and "30d" in result.stderr.splitlines()[-1]


def test_once_with_the_imap_server_unreachable_is_one_line(tmp_path, dovecot, imap_user, smtp_sink):
    """IMAP refused: exit 1 and one line on stderr saying what to check; the log (stdout) has the details."""
    config = write_config(tmp_path, dovecot, imap_user, smtp_sink, imap_port=closed_port())
    result = _mailrelay("--config", str(config), "once", cwd=tmp_path)
    assert result.returncode == 1
    line = _one_line(result)
    assert "die Abfrage konnte nicht laufen" in line and "[imap]" in line and "Connection refused" in line


def test_once_with_the_smtp_server_unreachable_says_the_mail_waits(tmp_path, dovecot, imap_user):
    """SMTP refused: the poll ran (exit 0) and one line says the mail waits for the next try."""
    smtp = f'[smtp]\nhost = "127.0.0.1"\nport = {closed_port()}\nsecurity = "plain"\ntimeout = 5\n'
    config = write_config(tmp_path, dovecot, imap_user, smtp=smtp)
    dovecot.append(imap_user, "INBOX", APPLICATION)
    result = _mailrelay("--config", str(config), "once", cwd=tmp_path)
    assert result.returncode == 0
    line = _one_line(result)
    assert line.startswith("mailrelay: 1 Mail(s) nicht gesendet") and "[smtp]" in line


def test_an_unexpected_error_is_one_line_and_the_traceback_is_in_the_debug_log(tmp_path, dovecot, imap_user,
                                                                             smtp_sink, capsys, monkeypatch):
    """A bug in a command: exit 1, one line naming the error and --log-level debug; with debug the log
    line carries the traceback."""
    import mailrelay.statuscli

    def broken(config, as_json):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(mailrelay.statuscli, "status", broken)
    config = write_config(tmp_path, dovecot, imap_user, smtp_sink)
    assert main(["--config", str(config), "status"]) == 1
    captured = capsys.readouterr()
    assert captured.err == "mailrelay: unerwarteter Fehler: ZeroDivisionError: a bug (Einzelheiten mit --log-level debug)\n"
    assert main(["--log-level", "debug", "--config", str(config), "status"]) == 1
    log = capsys.readouterr().err
    assert '"event": "command.crashed"' in log and "Traceback" in log and "ZeroDivisionError" in log

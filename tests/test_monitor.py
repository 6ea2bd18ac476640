"""Status for monitors: under the unit's DynamicUser and UMask=0077 only the service reads the state, so it
writes a status file into its RuntimeDirectory that anyone may read, and `status` falls back to it."""
from __future__ import annotations

import json
import shutil
import signal
import stat
import tempfile
import time
from pathlib import Path

import pytest

from tests.daemontest import running, wait_for_event
from tests.helpers import REPO
from tests.relaytest import write_config
from tests.unprivileged import run_as_nobody

APPLICATION = (REPO / "mailrelay" / "demo" / "mails" / "01-application-state-ministry.eml").read_bytes()


@pytest.fixture
def open_dir():
    """A folder nobody can enter (pytest's tmp_path is root's alone), as /etc/mailrelay and /run are."""
    path = Path(tempfile.mkdtemp(prefix="mailrelay-monitor-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path)


def _setup(directory: Path, dovecot, imap_user, smtp_sink) -> tuple[Path, Path]:
    """A config anyone can read with its state where only root can look, and a RuntimeDirectory."""
    (directory / "state").mkdir(mode=0o700)
    (directory / "run").mkdir(mode=0o755)
    rules = directory / "routing.toml"
    rules.write_text((REPO / "config" / "routing.toml").read_text(encoding="utf-8"), encoding="utf-8")
    config = write_config(directory, dovecot, imap_user, smtp_sink, rules=rules, schedule="poll_seconds = 1")
    config.write_text(config.read_text().replace('path = "state.sqlite"', 'path = "state/state.sqlite"')
                      + "\n[health]\noutage_minutes = 0.1\n")
    config.chmod(0o644)
    return config, directory / "run"


def _status(config: Path, run: Path, *options: str):
    result = run_as_nobody("--config", str(config), "status", *options, cwd=config.parent,
                           RUNTIME_DIRECTORY=str(run))
    assert "Traceback" not in result.stderr, result.stderr
    return result.returncode, json.loads(result.stdout) if "--json" in options else result.stdout


def test_a_monitor_that_cannot_read_the_state_reads_the_status_file(open_dir, dovecot, imap_user, smtp_sink):
    """The service (umask 0077) writes status.json with mode 0644; nobody, who cannot read the state, gets
    the same verdict and facts from it and is told so; a refused change shows there too; and once the
    service is gone the facts age, so the same call says failing."""
    config, run = _setup(open_dir, dovecot, imap_user, smtp_sink)
    dovecot.append(imap_user, "INBOX", APPLICATION)
    lines: list[dict] = []
    with running(config, umask=0o077, RUNTIME_DIRECTORY=str(run)) as process:
        wait_for_event(process, lines, "mail.forwarded")
        wait_for_event(process, lines, "poll.started")  # the next poll: the first one's status is written
        status_file = run / "status.json"
        assert stat.S_IMODE(status_file.stat().st_mode) == 0o644
        assert stat.S_IMODE((open_dir / "state" / "state.sqlite").stat().st_mode) == 0o600
        code, report = _status(config, run, "--json")
        assert (code, report["status"], report["source"]) == (0, "healthy", "status_file")
        assert "nicht lesbar" in report["state_error"] and report["last_forward"] and report["rules_version"]
        code, text = _status(config, run)
        assert code == 0 and text.startswith("mailrelay: gesund\n")
        assert f"aus der Statusdatei {status_file}" in text
        rules = open_dir / "routing.toml"
        rules.write_text(rules.read_text().replace("[desks.editors]", "[desks.editors"))
        process.send_signal(signal.SIGHUP)
        wait_for_event(process, lines, "config.reload_refused")
        wait_for_event(process, lines, "poll.finished")
        wait_for_event(process, lines, "poll.started")
        code, report = _status(config, run, "--json")
        assert (code, report["status"]) == (1, "degraded")
        assert report["reload_refused"]["files"] == [str(rules)]
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    time.sleep(6.5)  # longer than outage_minutes: a service that stopped writing is failing
    code, report = _status(config, run, "--json")
    assert (code, report["status"]) == (2, "failing")
    assert any(problem.startswith("keine Abfrage seit") for problem in report["problems"])


def test_without_state_or_status_file_a_monitor_is_told_what_to_look_at(open_dir, dovecot, imap_user, smtp_sink):
    """No status file (the service never ran, or systemd removed its RuntimeDirectory): failing, naming
    the state file it could not read and the status file it looked for."""
    config, run = _setup(open_dir, dovecot, imap_user, smtp_sink)
    (open_dir / "state" / "state.sqlite").write_bytes(b"")
    code, report = _status(config, run, "--json")
    assert (code, report["status"], report["source"]) == (2, "failing", "none")
    assert str(run / "status.json") in report["problems"][0] and "nicht lesbar" in report["problems"][0]
    result = run_as_nobody("--lang", "en", "--config", str(config), "status", cwd=open_dir,
                           RUNTIME_DIRECTORY=str(run))
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.startswith("mailrelay: failing: the state file") and result.stderr.count("\n") == 1

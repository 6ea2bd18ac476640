"""Health against the real servers: `status` and its exit codes, the operators' outage and recovery notes,
`purge`, and the promise that no password ever reaches an output."""
from __future__ import annotations

import json
import sqlite3

from mailrelay.cli import main
from tests.helpers import REPO
from tests.relaytest import audit_events, closed_port, forwards, once, write_config

APPLICATION = (REPO / "mailrelay" / "demo" / "mails" / "01-application-state-ministry.eml").read_bytes()
OPERATORS = "it-betrieb@clusterplattform.example"


def _status(config, capsys, *options: str) -> tuple[int, dict]:
    capsys.readouterr()
    code = main([*options, "--config", str(config), "status", "--json"])
    return code, json.loads(capsys.readouterr().out)


def _with_health(config, outage_minutes: float = 30) -> None:
    config.write_text(config.read_text() + f'\n[health]\noutage_minutes = {outage_minutes}\n'
                                           f'operators = ["{OPERATORS}"]\n')


def _notes(sink) -> list[str]:
    """Subjects of what reached the operators."""
    import email
    from email.header import decode_header, make_header

    return [str(make_header(decode_header(email.message_from_bytes(r.data)["Subject"])))
            for r in sink.received if OPERATORS in r.rcpt_tos]


def test_status_says_healthy_degraded_or_failing_with_its_exit_code(tmp_path, dovecot, imap_user, smtp_sink,
                                                                      capsys):
    """No state is failing (2), a healthy poll 0, a mail waiting for a retry degraded (1), and waiting longer
    than the outage time failing; the problems in German, in English with --lang en, the JSON keys the same."""
    config = write_config(tmp_path, dovecot, imap_user, smtp_sink)
    assert main(["--config", str(config), "status"]) == 2  # never ran: no state at all
    dovecot.append(imap_user, "INBOX", APPLICATION)
    assert once(config) == 0
    code, report = _status(config, capsys)
    assert (code, report["status"], report["waiting"]) == (0, "healthy", 0)
    assert report["last_poll_ok"] and report["last_forward"]
    dovecot.append(imap_user, "INBOX", APPLICATION.replace(b"<demo-01@", b"<status-2@"))
    smtp_sink.reject_next(1, code=451)
    assert once(config) == 0
    code, report = _status(config, capsys)
    assert (code, report["status"], report["waiting"]) == (1, "degraded", 1)
    with sqlite3.connect(tmp_path / "state.sqlite") as db:  # the mail has been waiting for two hours
        db.execute("UPDATE mails SET first_seen = '2000-01-01T00:00:00.000+00:00' WHERE state = 'retry'")
    code, report = _status(config, capsys)
    assert (code, report["status"]) == (2, "failing")
    assert any("warten auf den SMTP-Server" in problem for problem in report["problems"])
    code, english = _status(config, capsys, "--lang", "en")
    assert (code, english["status"]) == (2, "failing") and english.keys() == report.keys()
    assert any("waiting for the SMTP server" in problem for problem in english["problems"])


def test_status_text_is_german_by_default_and_english_on_request(tmp_path, dovecot, imap_user, smtp_sink, capsys):
    """The text form names the verdict, the retry queue, the editors' two queues and the rules in force in
    German; --lang en says the same in English."""
    config = write_config(tmp_path, dovecot, imap_user, smtp_sink)
    dovecot.append(imap_user, "INBOX", APPLICATION)
    assert once(config) == 0
    capsys.readouterr()
    assert main(["--config", str(config), "status"]) == 0
    german = capsys.readouterr().out
    assert german.startswith("mailrelay: gesund\n")
    for label in ("letzte erfolgreiche Abfrage:", "in Quarantäne:", "zur Prüfung:", "Regeln in Kraft:",
                  "letzter Fehler:"):
        assert label in german
    assert "keiner" in german and "healthy" not in german
    assert main(["--lang", "en", "--config", str(config), "status"]) == 0
    english = capsys.readouterr().out
    assert english.startswith("mailrelay: healthy\n") and "in quarantine:" in english
    assert "waiting for review:" in english and "rules in force:    " in english


def test_operators_hear_of_an_outage_once_and_of_its_end_once(tmp_path, dovecot, imap_user, smtp_sink, capsys):
    """IMAP unreachable for longer than the outage time: one note (SMTP still works), none on the polls
    after, one when a poll succeeds again; the same in the log and the audit trail."""
    import time

    broken = write_config(tmp_path, dovecot, imap_user, smtp_sink, imap_port=closed_port())
    _with_health(broken, outage_minutes=0.005)  # 0.3 s
    assert once(broken) == 1
    assert _notes(smtp_sink) == []  # failing, but not yet for long
    code, report = _status(broken, capsys)
    assert (code, report["status"]) == (1, "degraded") and "Connection refused" in report["last_error"]
    assert any(problem.startswith("Abfragen scheitern seit") for problem in report["problems"])
    time.sleep(0.4)
    assert once(broken) == 1 and once(broken) == 1
    assert len(_notes(smtp_sink)) == 1 and "Störung" in _notes(smtp_sink)[0]
    assert _status(broken, capsys)[0] == 2
    working = write_config(tmp_path, dovecot, imap_user, smtp_sink)
    _with_health(working, outage_minutes=0.005)
    assert once(working) == 0 and once(working) == 0
    assert len(_notes(smtp_sink)) == 2 and "behoben" in _notes(smtp_sink)[1]
    assert _status(working, capsys)[0] == 0
    events = [event for _, event, _ in audit_events(tmp_path)]
    assert events.count("health.outage") == 1 and events.count("health.recovered") == 1


def test_purge_drops_old_raw_mails_and_records_it(tmp_path, dovecot, imap_user, smtp_sink, capsys):
    config = write_config(tmp_path, dovecot, imap_user, smtp_sink)
    dovecot.append(imap_user, "INBOX", APPLICATION)
    assert once(config) == 0
    with sqlite3.connect(tmp_path / "state.sqlite") as db:
        assert db.execute("SELECT count(*) FROM raw_mails").fetchone()[0] == 1
        db.execute("UPDATE mails SET first_seen = '2000-01-01T00:00:00.000+00:00'")
    assert main(["--config", str(config), "purge"]) == 0
    assert "1 Mail(s)" in capsys.readouterr().out
    with sqlite3.connect(tmp_path / "state.sqlite") as db:
        assert db.execute("SELECT count(*) FROM raw_mails").fetchone()[0] == 0
        assert db.execute("SELECT count(*) FROM mails").fetchone()[0] == 1  # the metadata stays
    assert "raw.purged" in [event for _, event, _ in audit_events(tmp_path)]


def test_no_password_in_any_output_after_an_auth_failure_and_an_exception(tmp_path, dovecot, imap_user, smtp_sink,
                                                                          make_smtp_sink, capsys, monkeypatch):
    """A canary password for IMAP (refused) and for SMTP (its login raises): it is in no log line, no
    traceback, no audit record, no byte of the state file and no status output."""
    import smtplib

    canary = "canary-9fQ2-never-print-me"
    config = write_config(tmp_path, dovecot, imap_user, smtp_sink)
    (tmp_path / "imap.secret").write_text(canary + "\n", encoding="utf-8")
    assert once(config) == 1  # Dovecot refuses the login
    write_config(tmp_path, dovecot, imap_user, smtp=f'[smtp]\nhost = "127.0.0.1"\nport = {smtp_sink.port}\n'
                 'security = "plain"\nusername = "relay"\npassword_file = "smtp.secret"\ntimeout = 10\n')
    (tmp_path / "smtp.secret").write_text(canary + "\n", encoding="utf-8")

    def exploding_login(self, user, password, **keywords):
        raise RuntimeError("the login blew up")

    monkeypatch.setattr(smtplib.SMTP, "login", exploding_login)
    dovecot.append(imap_user, "INBOX", APPLICATION)
    assert once(config) == 0
    assert forwards(smtp_sink) == []
    main(["--config", str(config), "status", "--json"])
    main(["--config", str(config), "check"])
    captured = capsys.readouterr()
    state = b"".join(path.read_bytes() for path in tmp_path.glob("state.sqlite*"))
    assert b"blew up" in state or "blew up" in captured.out  # the exception did happen and was recorded
    assert canary not in captured.out + captured.err
    assert canary.encode() not in state


def test_a_password_file_others_can_read_is_warned_about(tmp_path, dovecot, imap_user, smtp_sink, capsys):
    """`check` warns of a password file its group or anyone can read (in German; English with --lang en)."""
    config = write_config(tmp_path, dovecot, imap_user, smtp_sink)
    secret = tmp_path / "imap.secret"
    secret.chmod(0o600)
    assert main(["--config", str(config), "check"]) == 0
    assert "imap.secret" not in capsys.readouterr().err
    secret.chmod(0o644)
    assert main(["--config", str(config), "check"]) == 0
    assert "imap.secret können auch andere lesen (Modus 644)" in capsys.readouterr().err
    assert main(["--lang", "en", "--config", str(config), "check"]) == 0
    assert "imap.secret can be read by others (mode 644)" in capsys.readouterr().err

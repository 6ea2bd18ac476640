"""The service: scheduled polls, reload on SIGHUP, clean stop on SIGTERM."""
from __future__ import annotations

import email
import email.policy
import json
import signal
import subprocess
import time

from mailrelay.cli import main
from tests.daemontest import notify_socket, running, wait_for_event, wait_for_message
from tests.helpers import REPO
from tests.relaytest import alerts, audit_events, closed_port, forwards, write_config

APPLICATION = (REPO / "mailrelay" / "demo" / "mails" / "01-application-state-ministry.eml").read_bytes()
SECOND_APPLICATION = (REPO / "mailrelay" / "demo" / "mails" / "02-application-research-institute.eml").read_bytes()


def _exit_code(process, timeout: float = 60) -> int:
    """The exit code after a stop; a stop that hangs fails with the stacks the service dumped."""
    try:
        return process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        raise AssertionError(f"no exit {timeout} s after SIGTERM; stderr:\n{process.stderr.read()[-20000:]}") from None


def test_daemon_polls_reloads_and_stops(tmp_path, dovecot, imap_user, smtp_sink):
    """`run` forwards new mail on its schedule, keeps the old rules on a broken reload, takes a good one,
    and exits on SIGTERM; each reload is recorded in the audit trail."""
    rules = tmp_path / "routing.toml"
    rules.write_text((REPO / "config" / "routing.toml").read_text(encoding="utf-8"), encoding="utf-8")
    config = write_config(tmp_path, dovecot, imap_user, smtp_sink, rules=rules, schedule="poll_seconds = 1")
    lines: list[dict] = []
    with running(config) as process:
        started = wait_for_event(process, lines, "daemon.started")
        wait_for_event(process, lines, "poll.finished")  # the mailbox exists; new mail comes with a later poll
        dovecot.append(imap_user, "INBOX", APPLICATION)
        smtp_sink.wait_for(1, timeout=30)
        rules.write_text("this is = not [valid toml\n", encoding="utf-8")
        process.send_signal(signal.SIGHUP)
        refused = wait_for_event(process, lines, "config.reload_refused")
        assert refused["rules_version"] == started["rules_version"]
        assert any(str(rules) in problem for problem in refused["problems"])
        wait_for_event(process, lines, "reload.note_sent")  # to the alert desk, beside the forwards
        dovecot.append(imap_user, "INBOX", SECOND_APPLICATION)  # the old rules still route it
        smtp_sink.wait_for(3, timeout=30)
        assert forwards(smtp_sink)[1].rcpt_tos == ("desk-experts@bmwi.example",)
        rules.write_text((REPO / "config" / "routing.toml").read_text(encoding="utf-8") + "\n# changed\n")
        process.send_signal(signal.SIGHUP)
        reloaded = wait_for_event(process, lines, "config.reloaded")
        assert reloaded["rules_version"] != started["rules_version"]
        process.send_signal(signal.SIGTERM)
        assert _exit_code(process) == 0
    assert len(forwards(smtp_sink)) == 2
    recorded = [event for _, event, _ in audit_events(tmp_path)]
    assert "config.reload_refused" in recorded and "config.reloaded" in recorded
    assert "daemon.stopped" in [e["event"] for e in lines] or "daemon.stopped" in process.stdout.read()


def test_daemon_backs_off_while_the_imap_server_is_unreachable(tmp_path, dovecot, imap_user, smtp_sink):
    """Failed polls come further and further apart (1 s, 2 s, 4 s ...) instead of once a poll interval."""
    from datetime import datetime

    config = write_config(tmp_path, dovecot, imap_user, smtp_sink, imap_port=closed_port(),
                          schedule="poll_seconds = 1")
    lines: list[dict] = []
    with running(config) as process:
        failures = [wait_for_event(process, lines, "poll.failed") for _ in range(3)]
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    assert [f["next_poll_in"] for f in failures] == [1.0, 2.0, 4.0]
    times = [datetime.fromisoformat(f["timestamp"].replace("Z", "+00:00")) for f in failures]
    assert (times[2] - times[1]).total_seconds() > 1.5


def test_daemon_speaks_the_systemd_notify_protocol(tmp_path, dovecot, imap_user, smtp_sink):
    """READY once started, STATUS a person can read after each poll, WATCHDOG while all is well,
    RELOADING then READY around a reload, STOPPING on SIGTERM."""
    config = write_config(tmp_path, dovecot, imap_user, smtp_sink, schedule="poll_seconds = 1")
    dovecot.append(imap_user, "INBOX", APPLICATION)
    with notify_socket() as (path, messages), running(config, NOTIFY_SOCKET=path, WATCHDOG_USEC="2000000") as process:
        assert "READY=1" in wait_for_message(messages, "READY=1")
        status = wait_for_message(messages, "1 forwarded")
        assert "STATUS=last poll" in status and "0 queued" in status
        time.sleep(2.5)  # the heartbeat keeps the watchdog fed between polls
        assert len([m for _, m in messages if "WATCHDOG=1" in m]) >= 3
        process.send_signal(signal.SIGHUP)
        wait_for_message(messages, "RELOADING=1")
        assert "READY=1" in wait_for_message(messages, "STATUS=rules version")
        reloading_at = next(at for at, m in messages if "RELOADING=1" in m)
        assert next(at for at, m in messages if "STATUS=rules version" in m) >= reloading_at
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
        assert "STOPPING=1" in wait_for_message(messages, "STOPPING=1", timeout=5)
    assert smtp_sink.wait_for(1)


def test_watchdog_goes_quiet_while_a_poll_hangs(tmp_path, dovecot, imap_user):
    """An SMTP server that accepts the connection and never says a word: the poll makes no progress,
    so the relay stops feeding the watchdog (systemd would restart it) and logs that it stalled."""
    import socket

    with socket.create_server(("127.0.0.1", 0)) as silent:  # the kernel accepts; nobody ever answers
        smtp = f'[smtp]\nhost = "127.0.0.1"\nport = {silent.getsockname()[1]}\nsecurity = "plain"\ntimeout = 8\n'
        config = write_config(tmp_path, dovecot, imap_user, smtp=smtp, schedule="poll_seconds = 60")
        config.write_text(config.read_text().replace('password_file = "imap.secret"',
                                                     'password_file = "imap.secret"\nidle = false'))
        dovecot.append(imap_user, "INBOX", APPLICATION)
        lines: list[dict] = []
        with notify_socket() as (path, messages), \
                running(config, NOTIFY_SOCKET=path, WATCHDOG_USEC="2000000") as process:
            wait_for_event(process, lines, "mail.sending")
            sending_at = time.monotonic()
            wait_for_event(process, lines, "daemon.stalled", timeout=10)
            time.sleep(1)
            quiet = [at for at, m in messages if "WATCHDOG=1" in m and sending_at + 2.1 < at < time.monotonic()]
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)
    assert quiet == []


def _status(config, capsys, *options: str):
    capsys.readouterr()
    code = main(["--config", str(config), "status", *options])
    out = capsys.readouterr().out
    return code, (json.loads(out) if "--json" in options else out)


def _note_text(received) -> str:
    message = email.message_from_bytes(received.data, policy=email.policy.default)
    return f"{message['Subject']}\n{message.get_content()}"


def test_a_refused_reload_shows_in_status_and_tells_the_alert_desk_once(tmp_path, dovecot, imap_user, smtp_sink,
                                                                        capsys):
    """A broken rules change reloaded twice: `status` (text and --json) names when, which file, each problem
    as file:line and the version still in force, and the alert desk gets one German note; a good reload
    clears it, and another broken change is told again."""
    rules = tmp_path / "routing.toml"
    good = (REPO / "config" / "routing.toml").read_text(encoding="utf-8")
    rules.write_text(good, encoding="utf-8")
    config = write_config(tmp_path, dovecot, imap_user, smtp_sink, rules=rules, schedule="poll_seconds = 1")
    broken = good.replace('desk = "desk-public"', 'desk = "desk-publik"')
    wrong = [n for n, text in enumerate(broken.splitlines(), 1) if "desk-publik" in text]
    lines: list[dict] = []
    with running(config) as process:
        version = wait_for_event(process, lines, "daemon.started")["rules_version"]
        wait_for_event(process, lines, "poll.finished")
        rules.write_text(broken, encoding="utf-8")
        process.send_signal(signal.SIGHUP)
        assert wait_for_event(process, lines, "config.reload_refused")["new_change"] is True
        wait_for_event(process, lines, "reload.note_sent")
        process.send_signal(signal.SIGHUP)  # the same broken file again: the same change, no second note
        assert wait_for_event(process, lines, "config.reload_refused")["new_change"] is False
        wait_for_event(process, lines, "poll.finished")
        wait_for_event(process, lines, "poll.finished")
        code, report = _status(config, capsys, "--json")
        assert (code, report["status"], report["rules_version"]) == (1, "degraded", version)
        refused = report["reload_refused"]
        assert refused["files"] == [str(rules)] and refused["version_in_force"] == version and refused["at"]
        places = [problem.split(": ")[0] for problem in refused["problems"]]
        assert all(place.startswith(f"{rules}:") for place in places)
        assert {f"{rules}:{n}" for n in wrong} <= set(places)
        code, text = _status(config, capsys)
        assert code == 1 and f"Regeländerung abgelehnt am {refused['at']}, in Kraft bleibt Version {version}" in text
        assert all(f"    {problem}" in text for problem in refused["problems"])
        assert len(alerts(smtp_sink)) == 1
        note = _note_text(alerts(smtp_sink)[0])
        assert alerts(smtp_sink)[0].rcpt_tos == ("redaktion@clusterplattform.example",)
        assert "Regeländerung nicht übernommen" in note and f"(Version {version})" in note
        assert all(f"- {problem}" in note for problem in refused["problems"])
        rules.write_text(good + "\n# fixed\n", encoding="utf-8")
        process.send_signal(signal.SIGHUP)
        fixed = wait_for_event(process, lines, "config.reloaded")["rules_version"]
        code, report = _status(config, capsys, "--json")
        assert (code, report["reload_refused"], report["rules_version"]) == (0, None, fixed)
        rules.write_text(broken, encoding="utf-8")  # broken again after a good reload: a new change
        process.send_signal(signal.SIGHUP)
        assert wait_for_event(process, lines, "config.reload_refused")["new_change"] is True
        wait_for_event(process, lines, "reload.note_sent")
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    assert len(alerts(smtp_sink)) == 2 and forwards(smtp_sink) == []

"""The service: scheduled polls, reload on SIGHUP, clean stop on SIGTERM."""
from __future__ import annotations

import signal
import time

from tests.daemontest import notify_socket, running, wait_for_event, wait_for_message
from tests.helpers import REPO
from tests.relaytest import audit_events, closed_port, write_config

APPLICATION = (REPO / "mailrelay" / "demo" / "mails" / "01-application-state-ministry.eml").read_bytes()
SECOND_APPLICATION = (REPO / "mailrelay" / "demo" / "mails" / "02-application-research-institute.eml").read_bytes()


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
        dovecot.append(imap_user, "INBOX", SECOND_APPLICATION)  # the old rules still route it
        smtp_sink.wait_for(2, timeout=30)
        assert smtp_sink.received[1].rcpt_tos == ("desk-experts@bmwi.example",)
        rules.write_text((REPO / "config" / "routing.toml").read_text(encoding="utf-8") + "\n# changed\n")
        process.send_signal(signal.SIGHUP)
        reloaded = wait_for_event(process, lines, "config.reloaded")
        assert reloaded["rules_version"] != started["rules_version"]
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    assert len(smtp_sink.received) == 2
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

"""The service: scheduled polls, reload on SIGHUP, clean stop on SIGTERM."""
from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time

from tests.helpers import REPO
from tests.relaytest import audit_events, closed_port, write_config

APPLICATION = (REPO / "mailrelay" / "demo" / "mails" / "01-application-state-ministry.eml").read_bytes()
SECOND_APPLICATION = (REPO / "mailrelay" / "demo" / "mails" / "02-application-research-institute.eml").read_bytes()


@contextlib.contextmanager
def _running(config, **environment: str):
    """`mailrelay run` as systemd would start it, its JSON log on a pipe; killed if a test leaves it running."""
    process = subprocess.Popen([sys.executable, "-m", "mailrelay", "--config", str(config), "run"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=config.parent,
                               env=dict(os.environ, PYTHONUNBUFFERED="1", **environment))
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def _wait_for_event(process, lines: list[dict], name: str, timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            time.sleep(0.05)
            continue
        if line.startswith("{"):
            lines.append(json.loads(line))
            if lines[-1]["event"] == name:
                return lines[-1]
    raise AssertionError(f"no {name} event; saw {[e['event'] for e in lines]}")


def test_daemon_polls_reloads_and_stops(tmp_path, dovecot, imap_user, smtp_sink):
    """`run` forwards new mail on its schedule, keeps the old rules on a broken reload, takes a good one,
    and exits on SIGTERM; each reload is recorded in the audit trail."""
    rules = tmp_path / "routing.toml"
    rules.write_text((REPO / "config" / "routing.toml").read_text(encoding="utf-8"), encoding="utf-8")
    config = write_config(tmp_path, dovecot, imap_user, smtp_sink, rules=rules, schedule="poll_seconds = 1")
    lines: list[dict] = []
    with _running(config) as process:
        started = _wait_for_event(process, lines, "daemon.started")
        _wait_for_event(process, lines, "poll.finished")  # the mailbox exists; new mail comes with a later poll
        dovecot.append(imap_user, "INBOX", APPLICATION)
        smtp_sink.wait_for(1, timeout=30)
        rules.write_text("this is = not [valid toml\n", encoding="utf-8")
        process.send_signal(signal.SIGHUP)
        refused = _wait_for_event(process, lines, "config.reload_refused")
        assert refused["rules_version"] == started["rules_version"]
        assert any(str(rules) in problem for problem in refused["problems"])
        dovecot.append(imap_user, "INBOX", SECOND_APPLICATION)  # the old rules still route it
        smtp_sink.wait_for(2, timeout=30)
        assert smtp_sink.received[1].rcpt_tos == ("desk-experts@bmwi.example",)
        rules.write_text((REPO / "config" / "routing.toml").read_text(encoding="utf-8") + "\n# changed\n")
        process.send_signal(signal.SIGHUP)
        reloaded = _wait_for_event(process, lines, "config.reloaded")
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
    with _running(config) as process:
        failures = [_wait_for_event(process, lines, "poll.failed") for _ in range(3)]
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    assert [f["next_poll_in"] for f in failures] == [1.0, 2.0, 4.0]
    times = [datetime.fromisoformat(f["timestamp"].replace("Z", "+00:00")) for f in failures]
    assert (times[2] - times[1]).total_seconds() > 1.5


@contextlib.contextmanager
def _notify_socket():
    """A datagram socket where systemd would listen, and the messages that arrive on it."""
    import socket
    import tempfile
    import threading

    directory = tempfile.mkdtemp(prefix="notify-")  # short: a socket path is at most 107 bytes
    path = os.path.join(directory, "notify")
    messages: list[tuple[float, str]] = []
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(path)
        sock.settimeout(0.2)
        done = threading.Event()

        def receive() -> None:
            while not done.is_set():
                try:
                    messages.append((time.monotonic(), sock.recv(4096).decode()))
                except TimeoutError:
                    continue

        thread = threading.Thread(target=receive, daemon=True)
        thread.start()
        try:
            yield path, messages
        finally:
            done.set()
            thread.join(timeout=5)
            os.unlink(path)
            os.rmdir(directory)


def _wait_for_message(messages: list[tuple[float, str]], text: str, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [message for _, message in messages if text in message]
        if found:
            return found[-1]
        time.sleep(0.05)
    raise AssertionError(f"no notify message with {text!r}; got {[m for _, m in messages]}")


def test_daemon_speaks_the_systemd_notify_protocol(tmp_path, dovecot, imap_user, smtp_sink):
    """READY once started, STATUS a person can read after each poll, WATCHDOG while all is well,
    RELOADING then READY around a reload, STOPPING on SIGTERM."""
    config = write_config(tmp_path, dovecot, imap_user, smtp_sink, schedule="poll_seconds = 1")
    dovecot.append(imap_user, "INBOX", APPLICATION)
    with _notify_socket() as (path, messages), _running(config, NOTIFY_SOCKET=path, WATCHDOG_USEC="2000000") as process:
        assert "READY=1" in _wait_for_message(messages, "READY=1")
        status = _wait_for_message(messages, "1 forwarded")
        assert "STATUS=last poll" in status and "0 queued" in status
        time.sleep(2.5)  # the heartbeat keeps the watchdog fed between polls
        assert len([m for _, m in messages if "WATCHDOG=1" in m]) >= 3
        process.send_signal(signal.SIGHUP)
        _wait_for_message(messages, "RELOADING=1")
        assert "READY=1" in _wait_for_message(messages, "STATUS=rules version")
        reloading_at = next(at for at, m in messages if "RELOADING=1" in m)
        assert next(at for at, m in messages if "STATUS=rules version" in m) >= reloading_at
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
        assert "STOPPING=1" in _wait_for_message(messages, "STOPPING=1", timeout=5)
    assert smtp_sink.wait_for(1)


def test_watchdog_goes_quiet_while_a_poll_hangs(tmp_path, dovecot, imap_user):
    """An SMTP server that accepts the connection and never says a word: the poll makes no progress,
    so the relay stops feeding the watchdog (systemd would restart it) and logs that it stalled."""
    import socket

    with socket.create_server(("127.0.0.1", 0)) as silent:  # the kernel accepts; nobody ever answers
        smtp = f'[smtp]\nhost = "127.0.0.1"\nport = {silent.getsockname()[1]}\nsecurity = "plain"\ntimeout = 8\n'
        config = write_config(tmp_path, dovecot, imap_user, smtp=smtp, schedule="poll_seconds = 60")
        dovecot.append(imap_user, "INBOX", APPLICATION)
        lines: list[dict] = []
        with _notify_socket() as (path, messages), \
                _running(config, NOTIFY_SOCKET=path, WATCHDOG_USEC="2000000") as process:
            _wait_for_event(process, lines, "mail.sending")
            sending_at = time.monotonic()
            _wait_for_event(process, lines, "daemon.stalled", timeout=10)
            time.sleep(1)
            quiet = [at for at, m in messages if "WATCHDOG=1" in m and sending_at + 2.1 < at < time.monotonic()]
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)
    assert quiet == []

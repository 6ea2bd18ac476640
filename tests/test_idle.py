"""Push delivery with IMAP IDLE against the real Dovecot: new mail is polled at once, and a dropped or
silent IDLE connection is replaced (through a proxy that injects the faults)."""
from __future__ import annotations

import signal
import time

from tests.daemontest import running, wait_for_event
from tests.helpers import REPO
from tests.relaytest import write_config
from tests.servers import CuttingProxy

APPLICATION = (REPO / "mailrelay" / "demo" / "mails" / "01-application-state-ministry.eml").read_bytes()
SECOND_APPLICATION = (REPO / "mailrelay" / "demo" / "mails" / "02-application-research-institute.eml").read_bytes()


def _idle_config(tmp_path, dovecot, imap_user, smtp_sink, port=None, imap_extra: str = ""):
    """Polls only every 10 minutes: a forward within seconds can only come from IDLE."""
    config = write_config(tmp_path, dovecot, imap_user, smtp_sink, imap_port=port, schedule="poll_seconds = 600")
    if imap_extra:
        config.write_text(config.read_text().replace('password_file = "imap.secret"',
                                                     f'password_file = "imap.secret"\n{imap_extra}'))
    return config


def _stop(process) -> None:
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0


def test_new_mail_is_forwarded_as_soon_as_it_arrives(tmp_path, dovecot, imap_user, smtp_sink):
    config = _idle_config(tmp_path, dovecot, imap_user, smtp_sink)
    lines: list[dict] = []
    with running(config) as process:
        wait_for_event(process, lines, "idle.started")
        wait_for_event(process, lines, "poll.finished")
        for number, mail in enumerate((APPLICATION, SECOND_APPLICATION), start=1):
            appended = time.monotonic()
            dovecot.append(imap_user, "INBOX", mail)
            smtp_sink.wait_for(number, timeout=20)
            assert time.monotonic() - appended < 20  # the next scheduled poll is ten minutes away
        _stop(process)
    assert len(smtp_sink.received) == 2


def _fault_while_idling(tmp_path, dovecot, imap_user, smtp_sink, fault: str, imap_extra: str = "") -> dict:
    """Run the service through a proxy, inject `fault` (a CuttingProxy method) into the IDLE connection,
    append a mail; returns the watcher's idle.lost event once the mail has been forwarded."""
    with CuttingProxy(dovecot.tls_port) as proxy:
        config = _idle_config(tmp_path, dovecot, imap_user, smtp_sink, port=proxy.port, imap_extra=imap_extra)
        config.write_text(config.read_text().replace("timeout = 10", "timeout = 3", 1))
        lines: list[dict] = []
        with running(config) as process:
            wait_for_event(process, lines, "idle.started")
            wait_for_event(process, lines, "poll.finished")
            getattr(proxy, fault)()
            dovecot.append(imap_user, "INBOX", APPLICATION)
            lost = wait_for_event(process, lines, "idle.lost", timeout=20)
            smtp_sink.wait_for(1, timeout=30)
            _stop(process)
    return lost


def test_a_dropped_idle_connection_is_replaced_and_catches_up(tmp_path, dovecot, imap_user, smtp_sink):
    """The connection is closed under the watcher (a server restart, a proxy timeout); mail that arrives
    meanwhile is forwarded once the watcher has reconnected."""
    lost = _fault_while_idling(tmp_path, dovecot, imap_user, smtp_sink, "drop_all")
    assert "closed" in lost["error"] or "Error" in lost["error"]


def test_a_silent_idle_connection_is_noticed_by_the_probe_and_replaced(tmp_path, dovecot, imap_user, smtp_sink):
    """The connection stays open but nothing comes through any more (a dead NAT entry): the NOOP probe at
    the next renewal times out, the watcher reconnects and the waiting mail is forwarded."""
    lost = _fault_while_idling(tmp_path, dovecot, imap_user, smtp_sink, "freeze", imap_extra="idle_renew_seconds = 2")
    assert "timed out" in lost["error"] or "timeout" in lost["error"].lower()

"""Prometheus metrics: scraped over HTTP after polls against the test Dovecot and SMTP sink."""
from __future__ import annotations

import signal
import sys
import time
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from mailrelay.cli import _open
from mailrelay.daemon import Daemon
from mailrelay.logs import configure_logging
from mailrelay.metrics import Listen, Metrics, listen_address
from mailrelay.tomlcheck import ConfigError
from tests.daemontest import running, wait_for_event
from tests.helpers import REPO
from tests.relaytest import closed_port, write_config

MAILS = REPO / "mailrelay" / "demo" / "mails"
APPLICATION = (MAILS / "01-application-state-ministry.eml").read_bytes()
SECOND_APPLICATION = (MAILS / "02-application-research-institute.eml").read_bytes()
THIRD_APPLICATION = APPLICATION.replace(b"<demo-01@", b"<metrics-3@")


def _scrape(port: int) -> dict[tuple[str, tuple], float]:
    """Every sample on the endpoint, keyed by name and sorted labels."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        assert response.status == 200
        text = response.read().decode("utf-8")
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def _total(samples: dict, name: str, **labels: str) -> float:
    wanted = set(labels.items())
    return sum(value for (sample, found), value in samples.items() if sample == name and wanted <= set(found))


def test_a_poll_is_counted_and_the_gauges_follow_the_store(tmp_path, dovecot, imap_user, smtp_sink):
    """Two applications forwarded and one refused by the SMTP server (so quarantined): the endpoint counts
    them by outcome, kind and desk, times the poll, and gives quarantine size, retry queue, review queue,
    audit records and a last successful poll within the last minute."""
    config = write_config(tmp_path, dovecot, imap_user, smtp_sink)
    for mail in (THIRD_APPLICATION, APPLICATION, SECOND_APPLICATION):
        dovecot.append(imap_user, "INBOX", mail)
    smtp_sink.reject_next(1, code=550)  # the first forward is refused for good: the mail goes to quarantine
    configure_logging("info", stream=sys.stdout)  # not the stream an earlier test's main() set up and closed
    settings, store, relay = _open(config)
    metrics = Metrics()
    port = metrics.serve(Listen("127.0.0.1", 0))
    try:
        before = _scrape(port)
        assert _total(before, "mailrelay_mails_total") == 0 and _total(before, "mailrelay_audit_records") == 0
        Daemon(relay, relay.policy, 60, metrics=metrics).poll()
        samples = _scrape(port)
        records = store.audit_head()[0]
    finally:
        metrics.stop()
        store.close()
    assert _total(samples, "mailrelay_mails_total", outcome="forwarded") == 2
    assert _total(samples, "mailrelay_mails_total", outcome="forwarded", kind="application", desk="desk-public") == 1
    assert _total(samples, "mailrelay_mails_total", outcome="quarantined") == 1
    assert _total(samples, "mailrelay_quarantine_mails") == 1
    assert _total(samples, "mailrelay_retry_queue_mails") == 0 and _total(samples, "mailrelay_review_mails") == 0
    assert _total(samples, "mailrelay_polls_total", result="ok") == 1
    assert _total(samples, "mailrelay_poll_duration_seconds_count") == 1
    assert 0 < _total(samples, "mailrelay_poll_duration_seconds_sum") < 60
    assert time.time() - 60 < _total(samples, "mailrelay_last_successful_poll_timestamp_seconds") <= time.time()
    assert _total(samples, "mailrelay_audit_records") == records > 10
    assert _total(samples, "mailrelay_idle_connected") == 0 and _total(samples, "mailrelay_reload_refused") == 0


def test_the_service_serves_metrics_where_the_config_says(tmp_path, dovecot, imap_user, smtp_sink):
    """`run` with `[metrics] listen` answers on that loopback port: IDLE connected, the forward counted,
    a retry queue of one after the SMTP server deferred a mail."""
    port = closed_port()
    config = write_config(tmp_path, dovecot, imap_user, smtp_sink, schedule="poll_seconds = 60")
    config.write_text(config.read_text() + f'\n[metrics]\nlisten = "127.0.0.1:{port}"\n')
    dovecot.append(imap_user, "INBOX", APPLICATION)
    lines: list[dict] = []
    with running(config) as process:
        assert wait_for_event(process, lines, "metrics.listening")["address"] == f"127.0.0.1:{port}"
        wait_for_event(process, lines, "idle.started")
        wait_for_event(process, lines, "poll.finished")
        smtp_sink.reject_next(1, code=451)
        dovecot.append(imap_user, "INBOX", SECOND_APPLICATION)  # IDLE wakes a poll; the forward is deferred
        wait_for_event(process, lines, "mail.deferred")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and _total(_scrape(port), "mailrelay_retry_queue_mails") != 1:
            time.sleep(0.1)
        samples = _scrape(port)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    assert _total(samples, "mailrelay_mails_total", outcome="forwarded") == 1
    assert _total(samples, "mailrelay_mails_total", outcome="deferred") == 1
    assert _total(samples, "mailrelay_retry_queue_mails") == 1
    assert _total(samples, "mailrelay_idle_connected") == 1
    assert _total(samples, "mailrelay_polls_total", result="ok") >= 2


def test_metrics_are_off_unless_configured_and_only_on_loopback(tmp_path):
    """No [metrics] table: no endpoint; a non-loopback address or a port-less value is refused at its line."""
    config = tmp_path / "mailrelay.toml"
    config.write_text('rules = "routing.toml"\n', encoding="utf-8")
    assert listen_address(config) is None
    config.write_text('rules = "routing.toml"\n\n[metrics]\nlisten = "[::1]:9464"\n', encoding="utf-8")
    assert listen_address(config) == Listen("::1", 9464)
    for wrong in ("0.0.0.0:9464", "127.0.0.1", "localhost:99999"):
        config.write_text(f'rules = "routing.toml"\n\n[metrics]\nlisten = "{wrong}"\n', encoding="utf-8")
        with pytest.raises(ConfigError) as refused:
            listen_address(config)
        assert [str(problem).split(": ")[0] for problem in refused.value.problems] == [f"{config}:4"]

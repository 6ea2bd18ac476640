"""Prometheus metrics on a loopback port, off unless `[metrics] listen` is set: the only module that imports
prometheus_client. One registry per service, no global state; the gauges are set from the store's facts
after each poll, in the poll's thread, so a scrape never touches the state file."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import start_http_server

from mailrelay.config import is_loopback
from mailrelay.health import Facts
from mailrelay.i18n import tr
from mailrelay.errors import CommandError
from mailrelay.tomlcheck import TomlFile

# Polls handle a few mails in well under a second; a backlog or a slow SMTP server takes minutes.
_POLL_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)


@dataclass(frozen=True)
class Listen:
    host: str
    port: int


def listen_address(config: Path) -> Listen | None:
    """`[metrics] listen = "127.0.0.1:9464"` of the main file; None when the table or the key is absent.
    Only a loopback address: the unit lets nothing else in, and the figures are not for the Internet."""
    doc = TomlFile.load(config)
    table = doc.data.get("metrics")
    if table is None:
        return None
    if not isinstance(table, dict):
        doc.problem(("metrics",), tr("'metrics' muss eine Tabelle sein ([metrics])", "'metrics' must be a table ([metrics])"))
        doc.raise_if_problems()
    doc.check_keys(table, ("listen",), ("metrics",))
    text = doc.get(table, "listen", str, ("metrics",), None)
    listen = _parse_listen(doc, text) if text is not None else None
    doc.raise_if_problems()
    return listen


def _parse_listen(doc: TomlFile, text: str) -> Listen | None:
    host, _, port = text.rpartition(":")
    host = host.strip("[]")
    hint = tr('Adresse und Port: listen = "127.0.0.1:9464"', 'address and port: listen = "127.0.0.1:9464"')
    if not port.isdigit() or not 0 < int(port) < 65536 or not host:
        doc.problem(("metrics", "listen"), tr(f"'{text}' ist keine Adresse mit Port", f"'{text}' is not an address with a port"), hint)
        return None
    if not is_loopback(host):
        doc.problem(("metrics", "listen"), tr(f"die Metriken nur auf einer Loopback-Adresse anbieten, nicht auf {host}",
                                              f"metrics are served on a loopback address only, not on {host}"), hint)
        return None
    return Listen(host, int(port))


class Metrics:
    """The relay's figures in their own registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.server = None
        registry = self.registry
        self.mails = Counter("mailrelay_mails", "Mails handled by this process, by outcome, kind and desk",
                             ("outcome", "kind", "desk"), registry=registry)
        self.polls = Counter("mailrelay_polls", "Polls by result (ok, failed, crashed)", ("result",), registry=registry)
        self.poll_duration = Histogram("mailrelay_poll_duration_seconds", "How long one poll took",
                                       buckets=_POLL_BUCKETS, registry=registry)
        self.retry_queue = Gauge("mailrelay_retry_queue_mails", "Forwards waiting for another SMTP try",
                                 registry=registry)
        self.quarantine = Gauge("mailrelay_quarantine_mails", "Mails waiting in the editors' quarantine",
                                registry=registry)
        self.review = Gauge("mailrelay_review_mails", "Mails sent to the editors for review, not yet worked",
                            registry=registry)
        self.last_poll = Gauge("mailrelay_last_successful_poll_timestamp_seconds",
                               "When the last poll that ran succeeded (Unix time; 0: never)", registry=registry)
        self.idle = Gauge("mailrelay_idle_connected", "1 while an IMAP IDLE connection waits for new mail",
                          registry=registry)
        self.audit_records = Gauge("mailrelay_audit_records", "Records in the audit trail", registry=registry)
        self.reload_refused = Gauge("mailrelay_reload_refused", "1 while the editors' latest change is refused",
                                    registry=registry)

    def watch_idle(self, connected: Callable[[], bool]) -> None:
        """Read whether IDLE is connected at each scrape (the watcher's thread owns that state)."""
        self.idle.set_function(lambda: 1.0 if connected() else 0.0)

    def watch_lease(self, held: Callable[[], bool], epoch: Callable[[], int]) -> None:
        """For a node of a shared state: whether it is the active one, and the epoch of its lease."""
        Gauge("mailrelay_lease_held", "1 while this node holds the lease of the shared state and works",
              registry=self.registry).set_function(lambda: 1.0 if held() else 0.0)
        Gauge("mailrelay_lease_epoch", "The epoch of the lease this node holds or last held",
              registry=self.registry).set_function(lambda: float(epoch()))

    def observe_poll(self, result: str, seconds: float, mails: list[dict]) -> None:
        self.polls.labels(result).inc()
        self.poll_duration.observe(seconds)
        for mail in mails:
            self.mails.labels(mail["outcome"], mail.get("kind") or "none", mail.get("route") or "none").inc()

    def refresh(self, state: Facts, audit_records: int) -> None:
        """Set the gauges from the store's facts; called in the poll's thread after each poll and reload."""
        self.retry_queue.set(state.waiting)
        self.quarantine.set(state.in_quarantine)
        self.review.set(state.in_review)
        self.last_poll.set(datetime.fromisoformat(state.last_poll_ok).timestamp() if state.last_poll_ok else 0)
        self.audit_records.set(audit_records)
        self.reload_refused.set(1 if state.reload_refused else 0)

    def serve(self, listen: Listen) -> int:
        """Answer scrapes on `listen` from a daemon thread; the port it listens on (for port 0: the one chosen)."""
        try:
            self.server, _ = start_http_server(listen.port, listen.host, registry=self.registry)
        except OSError as error:
            raise CommandError(tr(
                f"die Metriken können nicht auf {listen.host}:{listen.port} angeboten werden: {error.strerror}; "
                "einen freien Port in [metrics] listen eintragen",
                f"cannot serve the metrics on {listen.host}:{listen.port}: {error.strerror}; "
                "name a free port in [metrics] listen"), exit_code=2) from None
        return self.server.server_port

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

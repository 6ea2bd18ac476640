"""Wiring: settings -> the store, the source, the transport and the relay that uses them."""
from __future__ import annotations

from mailrelay.config import Settings
from mailrelay.health import Thresholds
from mailrelay.pipeline import Identity
from mailrelay.policy import Policy, load_policy
from mailrelay.runner import Limits, Relay
from mailrelay.sources.imap import ImapSource
from mailrelay.sources.maildir import MaildirSource
from mailrelay.state import Store
from mailrelay.transports.outbox import OutboxTransport
from mailrelay.transports.smtp import SmtpTransport


class PolicyHolder:
    """The policy in force; replaced whole by a reload, so a mail never sees half of one."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.current: Policy = load_policy(settings)

    def __call__(self) -> Policy:
        return self.current

    def reload(self) -> Policy:
        """Load anew; on a ConfigError the old policy stays in force and the error propagates."""
        self.current = load_policy(self.settings)
        return self.current


def build_relay(settings: Settings, store: Store, policy: PolicyHolder) -> Relay:
    source = ImapSource(settings.imap) if settings.imap else MaildirSource(settings.maildir)
    transport = SmtpTransport(settings.smtp) if settings.smtp else OutboxTransport(settings.outbox)
    limits = Limits(settings.keep_raw_days, settings.retry_seconds, settings.max_forwards_per_sender_per_hour,
                    settings.max_forwards_per_thread_per_hour, max_forwards_per_poll=settings.max_forwards_per_poll)
    thresholds = Thresholds(settings.outage_seconds, settings.quarantined_per_day, settings.failover_seconds)
    return Relay(store, source, transport, policy, Identity.of(settings), limits, thresholds, settings.operators)

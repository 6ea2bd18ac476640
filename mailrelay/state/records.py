"""What every state store keeps and returns: the records, the audit chain's hash, the states."""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timezone

GENESIS = "0" * 64  # the "previous hash" of the first audit record

FINAL_STATES = frozenset({"forwarded", "ignored", "quarantined"})
QUEUES = ("quarantine", "review")


@dataclass(frozen=True)
class PendingAck:
    """An acknowledgement to send: recorded with the forward it follows, sent after it."""

    mail_id: int
    address: str
    message_id: str
    data: bytes
    attempts: int = 0


class AlreadyRunning(RuntimeError):
    """Another mailrelay holds the state store."""


class StoreUnavailable(RuntimeError):
    """The state store cannot be reached (the database is down or the connection was cut): nothing was
    recorded by the call that raised it, or its outcome is unknown; the caller records nothing further."""


class LeaseLost(RuntimeError):
    """This node no longer holds the lease: another node may be active, so it must not send or archive."""


@dataclass(frozen=True)
class MailRecord:
    """One row of `mails`: what the relay knows and did about one mail."""

    id: int
    sha256: str
    message_id: str
    source_key: str
    from_address: str
    subject: str
    state: str
    route: str | None
    rule: str | None
    forward_message_id: str | None
    archived_to: str | None
    attempts: int
    next_attempt: str | None
    tries: int
    forwarded_at: str | None
    first_seen: str
    reason: str | None = None
    kind: str | None = None
    confidence: float | None = None
    queue: str | None = None
    queued_at: str | None = None
    queue_left: str | None = None
    queue_key: str | None = None
    request: str | None = None
    arrived: str | None = None

    @property
    def waiting(self) -> bool:
        """A deferred forward whose next attempt is not due yet."""
        return self.state == "retry" and bool(self.next_attempt) and self.next_attempt > now_iso()


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def event_hash(previous: str, at: str, mail_id: int | None, event: str, detail: str) -> str:
    """The hash of one audit record: its fields as stored and the hash of the record before it."""
    fields = json.dumps([previous, at, mail_id, event, detail], ensure_ascii=False)
    return hashlib.sha256(fields.encode("utf-8")).hexdigest()

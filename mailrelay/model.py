"""Frozen values that travel between the stages; no behaviour beyond lookups."""
from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime


class Kind(enum.StrEnum):
    APPLICATION = "application"
    INQUIRY = "inquiry"
    AUTO_REPLY = "auto_reply"
    BOUNCE = "bounce"
    BULK = "bulk"
    SPAM = "spam"

    @property
    def is_machine(self) -> bool:
        """True for mail no person wrote to us: it is never forwarded or answered."""
        return self in MACHINE_KINDS


MACHINE_KINDS = frozenset({Kind.AUTO_REPLY, Kind.BOUNCE, Kind.BULK, Kind.SPAM})


class Sender(enum.StrEnum):
    PUBLIC_BODY = "public_body"
    CLUSTER_ORGANISATION = "cluster_organisation"
    RESEARCH = "research"
    CONSULTANCY = "consultancy"
    UNKNOWN = "unknown"


class Level(enum.StrEnum):
    NATIONAL = "national"
    REGIONAL = "regional"
    LOCAL = "local"


UNKNOWN_COUNTRY = "unknown"


@dataclass(frozen=True)
class RawMail:
    """The bytes of one mail as a source handed them over, and where they came from."""

    key: str
    data: bytes
    oversize: int = 0  # the full size, when the mail was over the limit and only its header was fetched
    arrived: datetime | None = None  # when it reached the mailbox (IMAP INTERNALDATE, a Maildir file's mtime)


@dataclass(frozen=True)
class Address:
    name: str
    address: str

    def __str__(self) -> str:
        return f"{self.name} <{self.address}>" if self.name else self.address


@dataclass(frozen=True)
class Attachment:
    filename: str
    content_type: str
    size: int


@dataclass(frozen=True)
class Inbound:
    """One parsed mail: everything later stages may look at, and the original bytes."""

    key: str
    message_id: str
    from_: Address | None
    reply_to: tuple[Address, ...]
    to: tuple[Address, ...]
    subject: str
    date: datetime | None
    text: str
    attachments: tuple[Attachment, ...]
    headers: tuple[tuple[str, str], ...]
    content_type: str
    raw: bytes = field(repr=False)
    sha256: str
    parse_problems: tuple[str, ...] = ()
    part_types: tuple[str, ...] = ()  # every MIME part's content type, the whole mail's first
    delivery_failures: tuple[str, ...] = ()  # recipients a bounce detector (flufl.bounce) found failing

    def header(self, name: str) -> str | None:
        """The first value of header `name` (case-insensitive), or None."""
        wanted = name.lower()
        return next((value for key, value in self.headers if key == wanted), None)

    def header_values(self, name: str) -> tuple[str, ...]:
        return header_values(self.headers, name)


def header_values(headers: tuple[tuple[str, str], ...], name: str) -> tuple[str, ...]:
    """Every value of header `name` (case-insensitive) among (lower-case name, value) pairs."""
    wanted = name.lower()
    return tuple(value for key, value in headers if key == wanted)


@dataclass(frozen=True)
class Evidence:
    """One observation behind a conclusion: which field it supports, and where it was seen."""

    field: str
    value: str
    signal: str
    where: str
    weight: float = 1.0


@dataclass(frozen=True)
class Classification:
    kind: Kind
    sender: Sender
    level: Level | None
    country: str
    confidence: float
    evidence: tuple[Evidence, ...] = ()
    unauthenticated: tuple[str, ...] = ()  # checks our receiving server reported as failed
    language: str | None = None  # of the sender's own text: "de", "en", or None when it cannot be told
    region: str | None = None  # ISO 3166-2 ("DE-BY") for senders in DE, AT and CH, when it can be told
    domain: str = ""  # the sender address's registrable domain (Public Suffix List): "bund.de"
    host: str = ""  # the sender address's whole domain: "zoll.bund.de"

    def evidence_for(self, field_name: str) -> tuple[Evidence, ...]:
        return tuple(item for item in self.evidence if item.field == field_name)


class Action(enum.StrEnum):
    FORWARD = "forward"
    IGNORE = "ignore"
    QUARANTINE = "quarantine"


@dataclass(frozen=True)
class Decision:
    action: Action
    rule: str
    desk: str | None = None
    reason: str = ""
    rules_version: str = ""

    @property
    def route(self) -> str:
        """The desk name, or 'none' when nothing is forwarded."""
        return self.desk if self.action is Action.FORWARD and self.desk else "none"


@dataclass(frozen=True)
class Forward:
    """A rendered summary, ready for a transport."""

    desk: str
    recipients: tuple[str, ...]
    sender: str
    message_id: str
    data: bytes = field(repr=False)


@dataclass(frozen=True)
class Processed:
    """What the pure pipeline concluded for one mail."""

    inbound: Inbound
    classification: Classification | None
    decision: Decision
    forward: Forward | None = None
    acknowledgement: Forward | None = None  # the answer to the applicant, sent once the forward is accepted
    ack_note: str = ""  # why it is (not) sent; "" when acknowledgements are off

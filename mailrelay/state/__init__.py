"""The state store: one seam, the `Store` protocol, with the SQLite file as the embedded default.

The runner, the commands and the health report know only this protocol; which store they have is the
config's choice, made once in `open_store`."""
from __future__ import annotations

from pathlib import Path
from typing import ContextManager, Protocol

from typing import TYPE_CHECKING

from mailrelay.state.records import (FINAL_STATES, GENESIS, QUEUES, AlreadyRunning, LeaseLost, MailRecord,
                                     PendingAck, StoreUnavailable, event_hash, now_iso)

if TYPE_CHECKING:
    from mailrelay.config import Settings

__all__ = ["FINAL_STATES", "GENESIS", "QUEUES", "AlreadyRunning", "LeaseLost", "MailRecord", "PendingAck", "Store",
           "StoreUnavailable", "event_hash", "now_iso", "open_state", "open_store"]


class Store(Protocol):
    """Every method commits before it returns, so a crash loses nothing recorded; inside a group(), the
    group commits them together when it ends."""

    def group(self, durable: bool = False) -> ContextManager[None]:
        """The records written inside share one transaction, committed when the group ends, or none of
        them if it raises. A commit survives the relay's death; what must also survive a power loss
        waits for sync(), or is made so when the group ends with `durable`."""
        ...

    def sync(self) -> None:
        """Called before every step that leaves the machine (a send, an archive move): what is recorded
        so far is made durable, and a shared store raises LeaseLost when this node may no longer act."""
        ...

    def close(self) -> None:
        ...

    def lock(self) -> None:
        """Take the instance lock: one relay per state store (and so per mailbox)."""
        ...

    def find(self, sha256: str) -> MailRecord | None:
        ...

    def find_copy(self, message_id: str, from_address: str, subject: str) -> MailRecord | None:
        ...

    def get(self, mail_id: int) -> MailRecord:
        ...

    def find_id(self, mail_id: int) -> MailRecord | None:
        ...

    def add_mail(self, sha256: str, message_id: str, source_key: str, from_address: str, subject: str,
                 raw: bytes, thread: str | None = None, arrived: str | None = None) -> int:
        ...

    def update(self, mail_id: int, event: str, detail: dict, ack: PendingAck | None = None,
               **columns: object) -> None:
        ...

    def answered_since(self, address: str, since: str) -> bool:
        """Whether this address was answered (or has an answer queued) since `since`."""
        ...

    def due_acks(self) -> list[PendingAck]:
        ...

    def ack_result(self, mail_id: int, event: str, detail: dict, state: str, next_attempt: str | None = None) -> None:
        """Record what became of an acknowledgement; once it is final its text is not kept."""
        ...

    def event(self, mail_id: int | None, event: str, detail: dict) -> None:
        ...

    def unfinished_keys(self, prefix: str) -> list[str]:
        """Source keys under `prefix` of mails not yet final and archived, and due: they are fetched again."""
        ...

    def left_in(self, prefix: str) -> list[MailRecord]:
        """Mails under the source key `prefix` that were never archived: the store expects them there."""
        ...

    def raw(self, sha256: str) -> bytes | None:
        """A mail's kept bytes, or None once they were purged."""
        ...

    def requested(self) -> list[MailRecord]:
        """Mails with an editor's release or drop not yet carried out, in the order asked for."""
        ...

    def handled_since(self, since: str) -> list[tuple[MailRecord, bytes]]:
        """Mails first seen at or after `since` (ISO 8601, UTC) whose raw bytes are still kept."""
        ...

    def forwards_in_thread(self, thread: str, since: str) -> int:
        ...

    def forwards_from(self, from_address: str, since: str) -> int:
        """How many mails from this sender were forwarded since `since`."""
        ...

    def purge_raw(self, before: str) -> int:
        """Drop the raw bytes of finished mails first seen before `before`; the metadata stays."""
        ...

    def paused(self) -> str | None:
        """Why forwarding is paused, or None when it is not."""
        ...

    def pause(self, reason: str) -> None:
        ...

    def resume(self) -> bool:
        """Lift a pause; False when there was none."""
        ...

    def flag(self, name: str) -> str | None:
        ...

    def set_flags(self, **values: str | None) -> None:
        """Set (or, for None, clear) named values of the relay's health: not audit records."""
        ...

    def mail_counts(self, since: str) -> dict:
        ...

    def queue(self, name: str) -> list[MailRecord]:
        ...

    def mailbox_position(self, name: str) -> tuple[int, int] | None:
        """(UIDVALIDITY, highest UID durably recorded) for a mailbox, or None if never seen."""
        ...

    def set_mailbox_position(self, name: str, uidvalidity: int, last_uid: int) -> None:
        ...

    def audit_head(self) -> tuple[int, str]:
        ...


def open_state(settings: "Settings", read_only: bool = False) -> Store:
    """The store the config names ([state] url, else [state] path); read_only for the commands that run
    beside the service."""
    if settings.state_url:
        from mailrelay.state.postgres import PostgresStore

        return PostgresStore(state_conninfo(settings), read_only=read_only,
                             stuck_seconds=min(10.0, settings.failover_seconds / 2))
    return open_store(settings.state_path, read_only=read_only)


def open_store(where: Path | str, read_only: bool = False) -> Store:
    """A SQLite file at a path, or a PostgreSQL database by its libpq connection string or URL."""
    if isinstance(where, str):
        from mailrelay.state.postgres import PostgresStore

        return PostgresStore(where, read_only=read_only)
    from mailrelay.state.sqlite import SqliteStore

    return SqliteStore(where, read_only=read_only)


def state_conninfo(settings: "Settings") -> str:
    """The libpq connection string for [state] url: the password from its file, credential or variable;
    TLS verified against the CA (sslmode=verify-full) unless the database is on this machine."""
    return conninfo_for(settings.state_url, settings.state_password.read(), settings.state_ca_file)


def conninfo_for(url: str, password: str = "", ca_file: Path | None = None) -> str:
    """A URL as the relay connects with it: the password given apart, TLS verified off loopback, TCP
    keepalives, a connect timeout."""
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    from mailrelay.config import is_loopback

    given = conninfo_to_dict(url)
    # A database that goes silent (a pulled cable, a dead NAT) is noticed by TCP keepalives and by the
    # limit on unacknowledged data, not after the kernel's default of many minutes.
    extra: dict[str, object] = {"application_name": "mailrelay", "connect_timeout": 10, "keepalives": 1,
                                "keepalives_idle": 10, "keepalives_interval": 5, "keepalives_count": 3,
                                "tcp_user_timeout": 30000}
    extra = {key: value for key, value in extra.items() if key not in given}
    if password:
        extra["password"] = password
    host = str(given.get("host") or "localhost")
    if not (host.startswith("/") or all(is_loopback(part) for part in host.split(","))):
        extra["sslmode"] = "verify-full"
        if ca_file:
            extra["sslrootcert"] = str(ca_file)
    return make_conninfo(url, **extra)

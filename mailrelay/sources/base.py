"""What the runner needs of a mail source, whatever the protocol behind it."""
from __future__ import annotations

from dataclasses import dataclass
from typing import ContextManager, Iterator, Protocol

from mailrelay.model import RawMail

ARCHIVE_TARGETS = ("processed", "ignored", "quarantine")


@dataclass(frozen=True)
class Archived:
    """Where an archived mail went: the mailbox's name, and the mail's key there when the source can tell
    (IMAP: from the server's COPYUID), so a later release finds that very copy."""

    mailbox: str
    key: str | None = None


class Cursor(Protocol):
    """Durable memory of how far a mailbox has been read (the store provides it)."""

    def mailbox_position(self, name: str) -> tuple[int, int] | None: ...

    def set_mailbox_position(self, name: str, uidvalidity: int, last_uid: int) -> None: ...

    def unfinished_keys(self, prefix: str) -> list[str]: ...


class Inbox(Protocol):
    batch_size: int
    """How many mails are fetched together, and archived together once their outcomes are recorded."""

    recreated_from: str | None
    """The key prefix of the mailbox's previous incarnation when it was deleted and created again since
    the last poll (IMAP: UIDVALIDITY changed), else None."""

    def accept_recreated(self) -> None:
        """Go on with the recreated mailbox, reading it from its start."""

    def message_ids(self) -> set[str]:
        """The Message-IDs of every mail in the mailbox."""

    def holds(self, key: str) -> bool:
        """Whether the mail under `key` is still in the mailbox."""

    def fetch_new(self) -> Iterator[RawMail]:
        """Mails not yet durably recorded, plus recorded ones not yet finished, oldest first."""

    def recorded(self, key: str) -> None:
        """The mail under `key` is durably recorded; it need not be offered as new again."""

    def vanished(self) -> list[str]:
        """After fetch_new: the keys of mails the store holds as unfinished here that are no longer in the
        mailbox (moved away, by a crash between the move and its record, or by a person)."""

    def archive(self, keys: list[str], target: str) -> dict[str, "Archived | MailError"]:
        """Move the mails out of the inbox to the mailbox for `target`, together where the protocol
        allows: for each key, where it went, or why it was not moved (the others are moved all the
        same). SourceError when the server cannot be reached."""

    def find_copy(self, target: str, hint: str | None, message_id: str, sha256: str) -> str | None:
        """The key of the mail with these bytes in the mailbox for `target`: `hint` if it is still that mail,
        else found by its Message-ID and checked by its bytes; None when it is not there."""

    def move_copy(self, key: str, target: str) -> Archived:
        """Move a mail found by `find_copy` on to the mailbox for `target`."""


class MailSource(Protocol):
    def open(self, cursor: Cursor) -> ContextManager[Inbox]: ...


class SourceError(Exception):
    """The source cannot be reached or used for this poll; nothing was changed."""


class MailError(Exception):
    """The server refused an operation on one mail; the others can go on."""


def mailbox_of(key: str) -> str:
    """The mailbox a key names: "imap:Processed:7:45" and "maildir:Processed/KEY" are in "Processed"."""
    if key.startswith("imap:"):
        return key.removeprefix("imap:").rsplit(":", 2)[0]
    return key.removeprefix("maildir:").split("/", 1)[0]

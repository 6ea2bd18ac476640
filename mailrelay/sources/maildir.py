"""A local Maildir as the inbox (the embedded demo, and sites that deliver to disk)."""
from __future__ import annotations

import contextlib
import mailbox
from pathlib import Path
from typing import Iterator

from mailrelay.model import RawMail
from mailrelay.sources.base import Cursor

_FOLDERS = {"processed": "Processed", "ignored": "Ignored", "quarantine": "Quarantine"}


class MaildirSource:
    def __init__(self, path: Path):
        self.path = path

    @contextlib.contextmanager
    def open(self, cursor: Cursor) -> Iterator["MaildirInbox"]:
        yield MaildirInbox(self.path, mailbox.Maildir(self.path, create=True))


class MaildirInbox:
    """Every mail still in the Maildir is unfinished: handled mail is moved to a subfolder."""

    recreated_from = None  # a Maildir's file names stay valid however it is copied

    def __init__(self, path: Path, box: mailbox.Maildir):
        self.path = path
        self.box = box

    def accept_recreated(self) -> None:
        """Nothing to do: see `recreated_from`."""

    def message_ids(self) -> set[str]:
        return {str(self.box.get_message(key).get("Message-ID", "")).strip() for key in self.box.keys()}

    def holds(self, key: str) -> bool:
        try:
            self._file_of(key.removeprefix("maildir:"))
        except (KeyError, FileNotFoundError):
            return False
        return True

    def fetch_new(self) -> Iterator[RawMail]:
        for key in sorted(self.box.keys()):
            with contextlib.suppress(KeyError):  # removed by someone else meanwhile
                yield RawMail(f"maildir:{key}", self.box.get_bytes(key))

    def recorded(self, key: str) -> None:
        """Nothing to remember: the Maildir itself says what is left."""

    def archive(self, key: str, target: str) -> str:
        name = _FOLDERS[target]
        if name not in self.box.list_folders():
            self.box.add_folder(name)
        source = self._file_of(key.removeprefix("maildir:"))
        source.rename(self.path / f".{name}" / "cur" / source.name)  # rename: atomic, never two copies
        return name

    def _file_of(self, maildir_key: str) -> Path:
        for subdirectory in ("new", "cur"):
            for candidate in (self.path / subdirectory).iterdir():
                if candidate.name.split(":", 1)[0] == maildir_key:
                    return candidate
        raise KeyError(maildir_key)

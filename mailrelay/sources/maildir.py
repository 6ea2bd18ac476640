"""A local Maildir as the inbox (the embedded demo, and sites that deliver to disk)."""
from __future__ import annotations

import contextlib
import hashlib
import mailbox
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

from mailrelay.model import RawMail
from mailrelay.sources.base import Archived, Cursor, MailError

_FOLDERS = {"processed": "Processed", "ignored": "Ignored", "quarantine": "Quarantine"}


class MaildirSource:
    def __init__(self, path: Path):
        self.path = path

    @contextlib.contextmanager
    def open(self, cursor: Cursor) -> Iterator["MaildirInbox"]:
        yield MaildirInbox(self.path, mailbox.Maildir(self.path, create=True), cursor)


class MaildirInbox:
    """Every mail still in the Maildir is unfinished: handled mail is moved to a subfolder."""

    recreated_from = None  # a Maildir's file names stay valid however it is copied
    batch_size = 50  # mails archived together

    def __init__(self, path: Path, box: mailbox.Maildir, cursor: Cursor | None = None):
        self.path = path
        self.box = box
        self.cursor = cursor
        self._vanished: list[str] = []

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
        files = _files(self.path)
        unfinished = self.cursor.unfinished_keys("maildir:") if self.cursor else []
        self._vanished = [key for key in unfinished if key.removeprefix("maildir:") not in files]
        for key in sorted(self.box.keys()):
            with contextlib.suppress(KeyError):  # removed by someone else meanwhile
                yield RawMail(f"maildir:{key}", self.box.get_bytes(key), arrived=_delivered(files.get(key)))

    def recorded(self, key: str) -> None:
        """Nothing to remember: the Maildir itself says what is left."""

    def vanished(self) -> list[str]:
        return list(self._vanished)

    def archive(self, keys: list[str], target: str) -> dict[str, Archived | MailError]:
        """Rename each file into the folder for `target`; a file gone or not renamed is its MailError."""
        files = _files(self.path)
        done: dict[str, Archived | MailError] = {}
        for key in keys:
            source = files.get(key.removeprefix("maildir:"))
            try:
                if source is None:
                    raise FileNotFoundError(f"{key} is no longer in the Maildir")
                done[key] = self._rename(source, target)
            except OSError as error:
                done[key] = MailError(f"{key} not moved to {_FOLDERS[target]}: {error}")
        return done

    def find_copy(self, target: str, hint: str | None, message_id: str, sha256: str) -> str | None:
        """By the hint, else by the bytes of every mail in the folder: a queue's folder holds few."""
        name = _FOLDERS[target]
        files = _files(self.path / f".{name}")
        hinted = files.get(hint.removeprefix(f"maildir:{name}/")) if hint and hint.startswith(f"maildir:{name}/") else None
        for candidate in ([hinted] if hinted else []) + sorted(files.values()):
            with contextlib.suppress(FileNotFoundError):
                if hashlib.sha256(candidate.read_bytes()).hexdigest() == sha256:
                    return f"maildir:{name}/{candidate.name.split(':', 1)[0]}"
        return None

    def move_copy(self, key: str, target: str) -> Archived:
        name, _, maildir_key = key.removeprefix("maildir:").partition("/")
        source = _files(self.path / f".{name}").get(maildir_key)
        if source is None:
            raise MailError(f"{key} is no longer in the folder {name}")
        return self._rename(source, target)

    def _rename(self, source: Path, target: str) -> Archived:
        name = _FOLDERS[target]
        if name not in self.box.list_folders():
            self.box.add_folder(name)
        source.rename(self.path / f".{name}" / "cur" / source.name)  # rename: atomic, never two copies
        return Archived(name, f"maildir:{name}/{source.name.split(':', 1)[0]}")

    def _file_of(self, maildir_key: str) -> Path:
        for subdirectory in ("new", "cur"):
            for candidate in (self.path / subdirectory).iterdir():
                if candidate.name.split(":", 1)[0] == maildir_key:
                    return candidate
        raise KeyError(maildir_key)


def _files(folder: Path) -> dict[str, Path]:
    """A Maildir folder's mails by key (the file name before its ':2,' flags)."""
    return {path.name.split(":", 1)[0]: path for subdirectory in ("new", "cur") if (folder / subdirectory).is_dir()
            for path in (folder / subdirectory).iterdir() if not path.name.startswith(".")}


def _delivered(path: Path | None) -> datetime | None:
    """When the mail was delivered: its file's mtime, which the move from new/ to cur/ keeps."""
    try:
        return datetime.fromtimestamp(path.stat().st_mtime, timezone.utc) if path else None
    except FileNotFoundError:
        return None

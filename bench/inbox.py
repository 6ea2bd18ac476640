"""Filling and counting a benchmark user's mailboxes on the private Dovecot."""
from __future__ import annotations

import time
import uuid
from typing import Iterable

from tests.servers import Dovecot

CHUNK_MAILS = 100
CHUNK_BYTES = 8_000_000  # one MULTIAPPEND carries at most about this much (a 20 MB mail goes alone)


def fresh_user(purpose: str) -> str:
    """A username never used before, so its mailboxes start empty."""
    return f"bench-{purpose}-{uuid.uuid4().hex[:10]}"


def fill(dovecot: Dovecot, user: str, mails: Iterable[bytes], mailbox: str = "INBOX") -> tuple[int, int]:
    """APPEND every mail over one connection, several per MULTIAPPEND; (mails, bytes) appended."""
    count = size = 0
    chunk: list[bytes] = []
    with dovecot.client(user) as client:
        for mail in mails:
            chunk.append(mail)
            count, size = count + 1, size + len(mail)
            if len(chunk) >= CHUNK_MAILS or sum(map(len, chunk)) >= CHUNK_BYTES:
                client.multiappend(mailbox, chunk)
                chunk = []
        if chunk:
            client.multiappend(mailbox, chunk)
    return count, size


def count(dovecot: Dovecot, user: str, mailbox: str) -> int:
    """How many mails `mailbox` holds (0 if it does not exist)."""
    with dovecot.client(user) as client:
        if not client.folder_exists(mailbox):
            return 0
        return int(client.select_folder(mailbox, readonly=True)[b"EXISTS"])


def bare_poll_seconds(dovecot: Dovecot, user: str, mailbox: str = "INBOX") -> float:
    """The protocol floor of a poll that finds nothing: a fresh TLS connection, LOGIN, a read-write SELECT,
    SEARCH for UIDs from UIDNEXT on, LOGOUT. (On a large Maildir the SELECT's cost varies with what
    Dovecot has to sync.)"""
    began = time.perf_counter()
    with dovecot.client(user) as client:
        status = client.select_folder(mailbox)
        client.search(["UID", f"{int(status[b'UIDNEXT'])}:*"])
    return time.perf_counter() - began

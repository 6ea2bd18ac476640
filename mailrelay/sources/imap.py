"""The IMAP inbox: the only module that imports imapclient."""
from __future__ import annotations

import contextlib
import hashlib
import re
import socket
import ssl
from datetime import datetime, timezone
from typing import Iterator

import imapclient
from imapclient.exceptions import IMAPClientAbortError, IMAPClientError

from mailrelay.config import ImapSettings
from mailrelay.model import RawMail
from mailrelay.logs import get_logger
from mailrelay.sources.base import Archived, Cursor, MailError, SourceError
from mailrelay.tls import tls_context

# Errors that mean "this poll cannot talk to the server", as opposed to a bug of ours.
CONNECTION_ERRORS = (IMAPClientError, OSError, ssl.SSLError, socket.timeout)
# The connection itself is gone; a plain IMAPClientError is a NO or BAD for one command.
_LOST = (IMAPClientAbortError, OSError, ssl.SSLError, socket.timeout)
# Bodies fetched in one FETCH at most: a batch of large mails comes in several, one at a time in memory.
_GROUP_BYTES = 8 * 1024 * 1024
# With archive = "flag": the keyword a handled mail gets instead of a move ($Forwarded is RFC 5788's).
KEYWORDS = {"processed": "$Forwarded", "ignored": "$MailrelayIgnored"}
_MESSAGE_ID = re.compile(rb"^message-id:\s*(<[^>\r\n]*>)", re.IGNORECASE | re.MULTILINE)
_COPYUID = re.compile(rb"COPYUID (\d+) ([\d:,]+) ([\d:,]+)")


class ImapSource:
    def __init__(self, settings: ImapSettings):
        self.settings = settings

    @contextlib.contextmanager
    def open(self, cursor: Cursor) -> Iterator["ImapInbox"]:
        client = self.connect()
        try:
            yield ImapInbox(client, self.settings, cursor)
        finally:
            with contextlib.suppress(*CONNECTION_ERRORS):
                client.logout()

    def connect(self) -> imapclient.IMAPClient:
        """A logged-in client; SourceError when the server cannot be reached or refuses us."""
        server = self.settings.server
        try:
            context = tls_context(server.ca_file)
            client = imapclient.IMAPClient(server.host, port=server.port, ssl=server.security == "tls",
                                           ssl_context=context, timeout=server.timeout)
            # IMAPClient sets imaplib's debug level to 5 to route its trace to logging; imaplib then formats
            # a repr of every response, a 20 MB mail included, whether or not anything is logged: about
            # twice the mail's size in memory and a good share of the CPU time of a fetch.
            client._imap.debug = 0
        except CONNECTION_ERRORS as error:
            raise SourceError(f"IMAP {server.host}:{server.port}: {error}") from error
        try:
            if server.security == "starttls":
                client.starttls(context)
            client.login(server.username or "", server.password.read())
            return client
        except BaseException as error:  # a session refused half-way is closed at once
            with contextlib.suppress(*CONNECTION_ERRORS):
                client.shutdown()
            if not isinstance(error, CONNECTION_ERRORS):
                raise
            raise SourceError(f"IMAP {server.host}:{server.port}: {error}") from error


class ImapInbox:
    """One selected mailbox for the length of a poll."""

    def __init__(self, client: imapclient.IMAPClient, settings: ImapSettings, cursor: Cursor):
        self.client = client
        self.settings = settings
        self.cursor = cursor
        self.targets = {
            "processed": settings.processed_mailbox,
            "ignored": settings.ignored_mailbox,
            "quarantine": settings.quarantine_mailbox,
        }
        self._select()

    def _select(self) -> None:
        try:
            for mailbox in self.targets.values():
                if not self.client.folder_exists(mailbox):
                    self.client.create_folder(mailbox)
            status = self.client.select_folder(self.settings.mailbox)
        except CONNECTION_ERRORS as error:
            raise SourceError(f"IMAP mailbox {self.settings.mailbox}: {error}") from error
        self.uidvalidity = int(status[b"UIDVALIDITY"])
        self.uidnext = int(status.get(b"UIDNEXT", 0))
        self.can_move = self.client.has_capability("MOVE")
        self.batch_size = self.settings.batch_size
        self.prefix = f"imap:{self.settings.mailbox}:{self.uidvalidity}:"
        position = self.cursor.mailbox_position(self.settings.mailbox)
        self.last_uid = position[1] if position and position[0] == self.uidvalidity else 0
        # The mailbox was deleted and created again (or restored): every UID the store knows is void.
        self.recreated_from = (f"imap:{self.settings.mailbox}:{position[0]}:"
                               if position and position[0] != self.uidvalidity else None)

    def accept_recreated(self) -> None:
        """Read the recreated mailbox from its start from now on (mails are matched by bytes and Message-ID)."""
        self.cursor.set_mailbox_position(self.settings.mailbox, self.uidvalidity, 0)
        self.recreated_from = None

    def message_ids(self) -> set[str]:
        """The Message-IDs of every mail in the mailbox, from their headers alone."""
        try:  # once per recreated mailbox, so a full listing is affordable here
            uids = self.client.search("ALL")
            response = self.client.fetch(uids, ["BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]"]) if uids else {}
        except _LOST as error:
            raise SourceError(f"IMAP fetch: {error}") from error
        ids = set()
        for item in response.values():
            header = next((bytes(value) for key, value in item.items() if key.startswith(b"BODY[HEADER")), b"")
            found = _MESSAGE_ID.search(header)
            if found:
                ids.add(found.group(1).decode("ascii", "replace").strip())
        return ids

    def holds(self, key: str) -> bool:
        """Whether the mail under `key` is still in this mailbox."""
        if not key.startswith(self.prefix):
            return False
        try:
            return bool(self.client.search(["UID", str(_uid(key, self.prefix)), "NOT", "DELETED"]))
        except _LOST as error:
            raise SourceError(f"IMAP search: {error}") from error

    def fetch_new(self) -> Iterator[RawMail]:
        try:
            unfinished = set(self._unfinished_uids())
            uids = sorted(unfinished | set(self._new_uids()))
        except _LOST as error:
            raise SourceError(f"IMAP search: {error}") from error
        self._unfinished, self._vanished = unfinished, []
        size = self.settings.batch_size
        for start in range(0, len(uids), size):
            yield from self._fetch(uids[start:start + size])

    def _fetch(self, batch: list[int]) -> Iterator[RawMail]:
        """The batch's mails in UID order, fetched in groups of at most _GROUP_BYTES so that a backlog of
        large mails is never all in memory at once; over the size limit only the header, decided on
        RFC822.SIZE."""
        sizes = {uid: int(item.get(b"RFC822.SIZE", 0)) for uid, item in self._command(batch, ["RFC822.SIZE"]).items()}
        self._vanished += [f"{self.prefix}{uid}" for uid in batch if uid not in sizes and uid in self._unfinished]
        limit = self.settings.max_message_bytes
        for group in _groups([uid for uid in batch if uid in sizes], sizes, limit):
            whole = [uid for uid in group if sizes[uid] <= limit]
            mails = {uid: RawMail(f"{self.prefix}{uid}", data, arrived=arrived)
                     for uid, data, arrived in self._parts(whole, "BODY.PEEK[]", b"BODY[]")}
            too_large = [uid for uid in group if sizes[uid] > limit]
            mails.update((uid, RawMail(f"{self.prefix}{uid}", data, oversize=sizes[uid], arrived=arrived))
                         for uid, data, arrived in self._parts(too_large, "BODY.PEEK[HEADER]", b"BODY[HEADER]"))
            for uid in group:
                if uid in mails:
                    yield mails.pop(uid)

    def _parts(self, uids: list[int], item: str, key: bytes) -> list[tuple[int, bytes, datetime | None]]:
        """The bodies, with the INTERNALDATE in the same FETCH: when each mail reached the mailbox."""
        response = self._command(uids, [item, "INTERNALDATE"]) if uids else {}
        return [(uid, bytes(response[uid][key]), _utc(response[uid].get(b"INTERNALDATE")))
                for uid in uids if key in response.get(uid, {})]

    def _command(self, uids: list[int], items: list[str]) -> dict:
        """FETCH `items`; if the server refuses the batch, each mail alone, skipping (and logging) refused ones."""
        try:
            return self.client.fetch(uids, items)
        except _LOST as error:
            raise SourceError(f"IMAP fetch: {error}") from error
        except IMAPClientError as error:
            if len(uids) == 1:
                get_logger().warning("imap.fetch_refused", uid=uids[0], item=" ".join(items), error=str(error))
                return {}
            return {uid: data for one in uids for uid, data in self._command([one], items).items()}

    def _new_uids(self) -> list[int]:
        if self.uidnext and self.uidnext <= self.last_uid + 1:
            return []
        found = self.client.search(["UID", f"{self.last_uid + 1}:*"])
        # "n:*" always names the highest UID, even one below n.
        return [uid for uid in found if uid > self.last_uid]

    def _unfinished_uids(self) -> list[int]:
        return [int(key.rsplit(":", 1)[1]) for key in self.cursor.unfinished_keys(self.prefix)]

    def vanished(self) -> list[str]:
        return list(getattr(self, "_vanished", []))

    def recorded(self, key: str) -> None:
        uid = _uid(key, self.prefix)
        if uid > self.last_uid:
            self.last_uid = uid
            self.cursor.set_mailbox_position(self.settings.mailbox, self.uidvalidity, uid)

    def archive(self, keys: list[str], target: str) -> dict[str, Archived | MailError]:
        """Move the mails to the mailbox for `target` with one command (UID MOVE, or COPY, STORE and UID
        EXPUNGE); where the server refuses that, each mail alone, so one mail it will not move does not
        hold back the others. A mail the server says it did not move is a MailError."""
        uids = {_uid(key, self.prefix): key for key in keys}
        if self.settings.archive == "flag" and target in KEYWORDS:
            done = self._batch(sorted(uids), lambda batch: self._flag(batch, KEYWORDS[target]), "flag")
            return {key: done.get(uid) or Archived(f"{self.settings.mailbox} ({KEYWORDS[target]})", key)
                    for uid, key in uids.items()}
        mailbox = self.targets[target]
        moved = self._batch(sorted(uids), lambda batch: self._move(batch, mailbox), f"move to {mailbox}")
        return {key: moved[uid] for uid, key in uids.items()}

    def _batch(self, uids: list[int], command, what: str) -> dict[int, Archived | MailError]:
        """`command` on all of `uids`, else on each alone; a refusal of one mail is its MailError."""
        try:
            return command(uids)
        except _LOST as error:
            raise SourceError(f"IMAP {what}: {error}") from error
        except IMAPClientError as error:
            if len(uids) == 1:
                return {uids[0]: MailError(f"IMAP refused to {what} UID {uids[0]}: {error}")}
        return {uid: result for one in uids for uid, result in self._batch([one], command, what).items()}

    def _flag(self, uids: list[int], keyword: str) -> dict[int, Archived]:
        """Handled mail stays where it is, marked; the UID position keeps it out of later polls."""
        self.client.add_flags(uids, [keyword], silent=True)
        return {}

    def find_copy(self, target: str, hint: str | None, message_id: str, sha256: str) -> str | None:
        """The hinted UID if its bytes are still these, else a search by Message-ID (every mail when it has
        none: a queue's mailbox holds few), each candidate checked by its bytes."""
        mailbox = self.targets[target]
        with self._selected(mailbox) as prefix:
            hinted = [_uid(hint, prefix)] if hint and hint.startswith(prefix) else []
            found = self._with_bytes(hinted, sha256)
            if found is None:
                bare = message_id.strip().removeprefix("<").removesuffix(">").strip()
                found = self._with_bytes(self._search(["HEADER", "Message-ID", bare] if bare else ["ALL"]), sha256)
        return None if found is None else f"{prefix}{found}"

    def move_copy(self, key: str, target: str) -> Archived:
        mailbox = key.removeprefix("imap:").rsplit(":", 2)[0]
        with self._selected(mailbox) as prefix:
            uid = _uid(key, prefix)
            result = self._batch([uid], lambda batch: self._move(batch, self.targets[target]), "move")[uid]
        if isinstance(result, MailError):
            raise result
        return result

    @contextlib.contextmanager
    def _selected(self, mailbox: str) -> Iterator[str]:
        """Work in another mailbox (its key prefix is yielded), then select the inbox again."""
        try:
            status = self.client.select_folder(mailbox)
            yield f"imap:{mailbox}:{int(status[b'UIDVALIDITY'])}:"
        except _LOST as error:
            raise SourceError(f"IMAP mailbox {mailbox}: {error}") from error
        except IMAPClientError as error:
            raise MailError(f"IMAP mailbox {mailbox}: {error}") from error
        finally:  # never go on with UID commands meant for the inbox in another mailbox
            try:
                self.client.select_folder(self.settings.mailbox)
            except CONNECTION_ERRORS as error:
                raise SourceError(f"IMAP mailbox {self.settings.mailbox}: {error}") from error

    def _search(self, criteria: list[str]) -> list[int]:
        try:
            return self.client.search(criteria)
        except _LOST as error:
            raise SourceError(f"IMAP search: {error}") from error

    def _with_bytes(self, uids: list[int], sha256: str) -> int | None:
        """The first of `uids` whose bytes (as a poll fetches them: only the header when over the size
        limit) have this sha256."""
        for raw in self._fetch(sorted(uids)):
            if hashlib.sha256(raw.data).hexdigest() == sha256:
                return int(raw.key.rsplit(":", 1)[1])
        return None

    def _move(self, uids: list[int], mailbox: str) -> dict[int, Archived | MailError]:
        """Move the mails with one command. Where the server reports where each went (COPYUID, RFC 4315),
        the Archived of each with its key there, and a MailError for a UID it did not move (no longer in
        the mailbox); without that report, the Archived of each, its key unknown."""
        untagged = self.client._imap.untagged_responses  # MOVE reports COPYUID untagged (RFC 6851)
        untagged.pop("COPYUID", None)
        if self.can_move:
            response = self.client.move(uids, mailbox)
            reported = [*untagged.pop("COPYUID", []), response]
        else:
            response = self.client.copy(uids, mailbox)
            self.client.add_flags(uids, [imapclient.DELETED], silent=True)
            if self.client.has_capability("UIDPLUS"):
                self.client.uid_expunge(uids)
            # Without UIDPLUS a plain EXPUNGE could remove mail someone else marked deleted: the
            # mail stays flagged and the server removes it when the mailbox is next expunged.
            reported = [response]
        copies = _copies(reported)
        if copies is None:
            return {uid: Archived(mailbox) for uid in uids}
        validity, new_uids = copies
        return {uid: Archived(mailbox, f"imap:{mailbox}:{validity}:{new_uids[uid]}") if uid in new_uids
                else MailError(f"UID {uid} was not moved to {mailbox}: no longer in the mailbox") for uid in uids}


def _groups(uids: list[int], sizes: dict[int, int], limit: int) -> Iterator[list[int]]:
    """Consecutive runs of UIDs whose bodies add up to at most _GROUP_BYTES (a larger mail alone); a mail
    over `limit` counts only its header."""
    group: list[int] = []
    total = 0
    for uid in uids:
        size = sizes[uid] if sizes[uid] <= limit else 0
        if group and total + size > _GROUP_BYTES:
            yield group
            group, total = [], 0
        group.append(uid)
        total += size
    if group:
        yield group


def _copies(reported: list[object]) -> tuple[int, dict[int, int]] | None:
    """From COPYUID response codes ("COPYUID 38505 304,319:320 3956:3958", or "[COPYUID ...] Done"): the
    target's UIDVALIDITY and each source UID's new UID; None when the server reported none."""
    validity, new_uids = None, {}
    for response in reported:
        text = b"COPYUID " + response if isinstance(response, bytes) and response[:1].isdigit() else response
        for found in _COPYUID.finditer(text) if isinstance(text, bytes) else ():
            validity = int(found[1])
            new_uids.update(zip(_uid_set(found[2]), _uid_set(found[3])))
    return None if validity is None else (validity, new_uids)


def _uid_set(text: bytes) -> list[int]:
    """The UIDs of a sequence set ("304,319:320"), in its order (a range in either direction ascending)."""
    uids: list[int] = []
    for part in text.split(b","):
        first, _, last = part.partition(b":")
        low, high = sorted((int(first), int(last or first)))
        uids.extend(range(low, high + 1))
    return uids


def _utc(moment: object) -> datetime | None:
    """imapclient gives INTERNALDATE as a naive local time (its normalise_times): made aware, in UTC."""
    if not isinstance(moment, datetime):
        return None
    return (moment if moment.tzinfo else moment.astimezone()).astimezone(timezone.utc)


def _uid(key: str, prefix: str) -> int:
    if not key.startswith(prefix):
        raise ValueError(f"{key} is not a mail of this mailbox session ({prefix})")
    return int(key[len(prefix):])

"""The protocol floor of a relay: fetch, wrap by bytes, send, move; nothing parsed, classified or recorded.

What the protocols require and nothing more: `BODY.PEEK[]` in batches, each original wrapped by bytes as
`message/rfc822` below a one-line summary, every forward over one SMTP connection, and one `UID MOVE` per
batch (COPY, STORE \\Deleted and UID EXPUNGE where the server has no MOVE). `--move-each` moves every mail
with its own command instead, the round trip per mail a relay pays when it archives mail by mail.

Run as its own process, like the relay, so both pay for an interpreter start:
`python3 bench/floor.py --port P --ca-file CA --user U --password-file F --smtp-port S [--move-each]`.
It prints one JSON object: the mails it moved, the forwards the SMTP server accepted and the seconds taken.
"""
from __future__ import annotations

import argparse
import json
import smtplib
import ssl
import sys
import time
import uuid

import imapclient

FROM, TO = "floor@bench.invalid", "desk@bench.invalid"


def main(argv: list[str] | None = None) -> int:
    arguments = _parser().parse_args(argv)
    began = time.perf_counter()
    moved, accepted = relay_floor(arguments)
    print(json.dumps({"mails": moved, "accepted": accepted, "seconds": time.perf_counter() - began}))
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True, help="IMAP over implicit TLS")
    parser.add_argument("--ca-file", required=True)
    parser.add_argument("--user", required=True)
    parser.add_argument("--password-file", required=True)
    parser.add_argument("--smtp-port", type=int, required=True, help="plain SMTP")
    parser.add_argument("--batch-size", type=int, default=50)
    parser.add_argument("--target", default="Done", help="the mailbox handled mail is moved to")
    parser.add_argument("--move-each", action="store_true", help="one move command per mail, not per batch")
    return parser


def relay_floor(arguments: argparse.Namespace) -> tuple[int, int]:
    """Every mail of the INBOX over one IMAP and one SMTP connection; (mails moved, forwards accepted)."""
    imap = _imap(arguments)
    smtp = smtplib.SMTP(arguments.host, arguments.smtp_port, timeout=60)
    moved = accepted = 0
    try:
        if not imap.folder_exists(arguments.target):
            imap.create_folder(arguments.target)
        imap.select_folder("INBOX")
        uids = sorted(imap.search("ALL"))
        for start in range(0, len(uids), arguments.batch_size):
            batch = uids[start:start + arguments.batch_size]
            for uid, data in sorted(imap.fetch(batch, ["BODY.PEEK[]"]).items()):
                accepted += _send(smtp, wrap(bytes(data[b"BODY[]"])))
                if arguments.move_each:
                    _move(imap, [uid], arguments.target)
            if not arguments.move_each:
                _move(imap, batch, arguments.target)
            moved += len(batch)
    finally:
        smtp.quit()
        imap.logout()
    return moved, accepted


def wrap(raw: bytes) -> bytes:
    """A short summary with the original attached as message/rfc822, the original's bytes untouched."""
    boundary = uuid.uuid4().hex
    head = (f"From: {FROM}\r\nTo: {TO}\r\nSubject: Weitergeleitet\r\n"
            f"Message-ID: <{boundary}@bench.invalid>\r\nMIME-Version: 1.0\r\n"
            f'Content-Type: multipart/mixed; boundary="{boundary}"\r\n\r\n'
            f"--{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
            f"Eine Nachricht von {len(raw)} Bytes, unverändert angehängt.\r\n"
            f"--{boundary}\r\nContent-Type: message/rfc822\r\n"
            f'Content-Disposition: attachment; filename="original.eml"\r\n\r\n')
    return b"".join((head.encode(), raw, f"\r\n--{boundary}--\r\n".encode()))


def _move(imap: imapclient.IMAPClient, uids: list[int], target: str) -> None:
    """One command for all of `uids`: MOVE (RFC 6851), else COPY, STORE \\Deleted and UID EXPUNGE."""
    if imap.has_capability("MOVE"):
        imap.move(uids, target)
        return
    imap.copy(uids, target)
    imap.add_flags(uids, [imapclient.DELETED], silent=True)
    imap.uid_expunge(uids)


def _send(smtp: smtplib.SMTP, data: bytes) -> int:
    """1 when the server accepted the forward, else 0."""
    options = ["BODY=8BITMIME"] if not data.isascii() else []
    refused = smtp.sendmail(FROM, [TO], data, mail_options=options)
    return 0 if refused else 1


def _imap(arguments: argparse.Namespace) -> imapclient.IMAPClient:
    context = ssl.create_default_context(cafile=arguments.ca_file)
    client = imapclient.IMAPClient(arguments.host, port=arguments.port, ssl=True, ssl_context=context, timeout=60)
    with open(arguments.password_file, encoding="utf-8") as secret:
        client.login(arguments.user, secret.read().strip())
    return client


if __name__ == "__main__":
    sys.exit(main())

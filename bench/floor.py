"""The protocol floor of a relay: fetch, wrap by bytes, send, move; nothing parsed, classified or recorded.

Run as its own process, like the relay, so both pay for an interpreter start:
`python3 bench/floor.py --port P --ca-file CA --user U --password-file F --smtp-port S`.
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
from email.message import EmailMessage
from email import policy

import imapclient

FROM, TO = "floor@bench.invalid", "desk@bench.invalid"
# The email package cannot write an 8-bit message/rfc822 part from bytes (BytesGenerator encodes a
# message payload as strict ASCII), so the part is written with this marker and the bytes put in its place.
_ORIGINAL = b"bench-floor-original-" + uuid.uuid4().hex.encode()


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
                imap.move([uid], arguments.target)
                moved += 1
    finally:
        smtp.quit()
        imap.logout()
    return moved, accepted


def wrap(raw: bytes) -> bytes:
    """A short summary with the original attached as message/rfc822, the original's bytes untouched."""
    message = EmailMessage()
    message["From"], message["To"] = FROM, TO
    message["Subject"] = "Weitergeleitet"
    message["Message-ID"] = f"<{uuid.uuid4().hex}@bench.invalid>"
    message.set_content(f"Eine Nachricht von {len(raw)} Bytes, unverändert angehängt.\n")
    message.add_attachment(_ORIGINAL, maintype="message", subtype="rfc822", cte="8bit", filename="original.eml")
    return message.as_bytes(policy=policy.SMTP).replace(_ORIGINAL, raw, 1)


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

"""RawMail -> Inbound: the only module that imports mail-parser."""
from __future__ import annotations

import email
import email.header
import email.policy
import email.utils
import hashlib
import logging
import re
from datetime import datetime
from email.message import Message

import mailparser

from mailrelay import bounces
from mailrelay.htmltext import html_to_text
from mailrelay.i18n import tr
from mailrelay.model import Address, Attachment, Inbound, RawMail
from mailrelay.skeleton import OMITTED_HEADER, SKELETON_FROM, skeleton

_LINE_BREAKS = re.compile(r"[\r\n\t\x00]+")
# A plain addr-spec. "=?" is refused too: an encoded word inside an address would be decoded again
# (to CR/LF, say) when the address is written into a header of the summary.
ADDR_SPEC = re.compile(r"^[\w.!#$%&'*+/=?^`{|}~-]+@[\w-]+(\.[\w-]+)+$")

# mail-parser logs a warning for every part type it does not render (DSN parts, for one);
# those are normal here, and its own log lines would bypass our structured log.
logging.getLogger("mailparser").setLevel(logging.ERROR)
# flufl.bounce logs a traceback for each of its detectors that trips over a malformed mail; the
# other detectors still run, and a mail it cannot read simply yields no failures.
logging.getLogger("flufl.bounce").setLevel(logging.CRITICAL)
_MAX_PARTS = 200
_MAIL_SYSTEM = re.compile(r"mailer|daemon|postmaster|post_master|bounce|delivery|mail.?system|notif|admin|exchange")
_RETURNED_PARTS = frozenset({"multipart/report", "message/rfc822", "text/rfc822-headers", "message/delivery-status"})


class _EightBitHeaders(email.policy.Compat32):
    """compat32, but a header written in raw UTF-8 (RFC 6532) is read as UTF-8 (else Latin-1), not as
    replacement characters: "Réponse automatique" must stay readable to be recognised."""

    def header_fetch_parse(self, name, value):
        if not any("\udc80" <= char <= "\udcff" for char in value):
            return super().header_fetch_parse(name, value)
        raw = value.encode("ascii", "surrogateescape")
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return raw.decode("latin-1")


_POLICY = _EightBitHeaders()


# RFC 5322 field-name: printable ASCII but the colon, then the colon.
_HEADER_FIELD = re.compile(rb"^[!-9;-~]+:")
# Fields some mail system writes into every mail: at least one of them is in a mail's header.
_MAIL_FIELDS = frozenset({b"from", b"sender", b"to", b"cc", b"subject", b"date", b"message-id", b"received",
                          b"return-path", b"delivered-to", b"mime-version", b"content-type", b"reply-to"})
_HEADER_LINES = 200  # a header block longer than this is read no further for the test


def not_a_mail(data: bytes) -> str | None:
    """Why `data` is no mail, in the person's language, or None when it may be one.

    The rule: the file is not empty; its first line that is not blank (after an mbox "From " line) is an
    RFC 5322 header field (if not, NUL bytes in its head say it is binary); and the header block, up to the
    first blank line, names at least one field every mail carries (From, Date, Subject, Received, ...).
    A mail with damaged headers still passes; a PDF, a picture or a letter saved as text does not."""
    if not data.strip():
        return tr("die Datei ist leer", "the file is empty")
    lines = data.lstrip(b" \t\r\n").splitlines()[:_HEADER_LINES]  # some exports start with a line of spaces
    if lines[0].startswith(b"From "):
        lines = lines[1:]
    if not lines or not _HEADER_FIELD.match(lines[0]):
        if b"\x00" in data[:8192]:  # NUL bytes in a mail's text are hostile, but they do not make it no mail
            return tr("die Datei ist binär, keine Textdatei", "the file is binary, not text")
        return tr("keine Kopfzeilen gefunden (eine E-Mail beginnt mit Zeilen wie From:, Date:, Subject:)",
                  "no header lines found (a mail starts with lines like From:, Date:, Subject:)")
    block = lines[:next((n for n, line in enumerate(lines) if not line.strip()), len(lines))]
    names = {line.split(b":", 1)[0].strip().lower() for line in block if _HEADER_FIELD.match(line)}
    if not names & _MAIL_FIELDS:
        return tr("keine der Kopfzeilen einer E-Mail gefunden (From:, Date:, Subject:, Received: ...)",
                  "none of a mail's header lines found (From:, Date:, Subject:, Received: ...)")
    return None


def parse(raw: RawMail) -> Inbound:
    """Parse one mail; a parser failure becomes a note on the value, never a lost mail."""
    large = len(raw.data) >= SKELETON_FROM
    message = email.message_from_bytes(skeleton(raw.data) if large else raw.data, policy=_POLICY)
    problems: list[str] = [f"defect: {type(d).__name__}" for d in message.defects]
    if large:  # the stdlib reads the skeleton's size headers; mail-parser would see empty attachments
        problems.append(f"large mail ({len(raw.data)} bytes): read without the bodies of its attachments")
        text, attachments = _body_with_stdlib(message)
    else:
        try:
            text, attachments = _body_with_mailparser(message)
        except Exception as error:  # mail-parser raises many types on real mail
            problems.append(f"mail-parser failed ({type(error).__name__}: {error}); used the fallback parser")
            text, attachments = _body_with_stdlib(message)
    headers = tuple((name.lower(), _single_line(decode_header(value))) for name, value in message.items())
    part_types = _part_types(message)
    return Inbound(
        key=raw.key,
        message_id=_single_line(decode_header(message.get("Message-ID", ""))),
        from_=next(iter(_addresses(message.get_all("From", []))), None),
        reply_to=_addresses(message.get_all("Reply-To", [])),
        to=_addresses(message.get_all("To", []) + message.get_all("Cc", [])),
        subject=_single_line(decode_header(message.get("Subject", ""))),
        date=_date(message.get("Date")),
        text=text,
        attachments=attachments,
        headers=headers,
        content_type=message.get_content_type(),
        raw=raw.data,
        sha256=hashlib.sha256(raw.data).hexdigest(),
        parse_problems=tuple(problems),
        part_types=part_types,
        delivery_failures=_delivery_failures(message, part_types),
    )



def _part_types(message: Message) -> tuple[str, ...]:
    """The content types of the mail's own parts; a message attached inside counts as message/rfc822 only,
    so that a person forwarding a bounce is not taken for the bounce."""
    types: list[str] = []
    pending = [message]
    while pending and len(types) < _MAX_PARTS:
        part = pending.pop(0)
        types.append(part.get_content_type())
        if part.is_multipart() and part.get_content_type() != "message/rfc822":
            pending.extend(part.get_payload())
    return tuple(types)


def _delivery_failures(message: Message, part_types: tuple[str, ...]) -> tuple[str, ...]:
    """The addresses flufl.bounce's detectors (DSN and some thirty vendor formats) report as failing.

    They run only where a bounce may be: a null or missing Return-Path (RFC 5321 sends notifications
    so), a sender named like a mail system, a report, or a returned message or header inside; the costly
    heuristic ones only where they can start (bounces.py)."""
    if not _may_be_bounce(message, part_types):
        return ()
    try:
        temporary, permanent = bounces.failures(message)
    except Exception:  # a detector that fails on hostile input is no evidence either way
        return ()
    found = {_address_text(address) for address in temporary | permanent}
    return tuple(sorted(address for address in found if address))


def _may_be_bounce(message: Message, part_types: tuple[str, ...]) -> bool:
    return_path = str(message.get("Return-Path", "")).strip()
    sender = str(message.get("From", "")).lower()
    return (return_path in ("", "<>") or bool(_MAIL_SYSTEM.search(sender))
            or bool(_RETURNED_PARTS.intersection(part_types)))


def _address_text(address: bytes | str) -> str:
    text = address.decode("utf-8", "replace") if isinstance(address, bytes) else str(address)
    return _single_line(text).lower()[:200]


def decode_header(value: object) -> str:
    """RFC 2047 words decoded; bytes that do not fit their charset are replaced, never raised."""
    text = str(value)
    try:
        chunks = email.header.decode_header(text)
    except (email.errors.HeaderParseError, ValueError):
        return text
    return "".join(_decode_chunk(chunk, charset) for chunk, charset in chunks)


def _decode_chunk(chunk: bytes | str, charset: str | None) -> str:
    if isinstance(chunk, str):
        return chunk
    try:
        return chunk.decode(charset or "ascii", "replace")
    except LookupError:  # a charset Python does not know
        return chunk.decode("utf-8", "replace")


def _single_line(text: str) -> str:
    """Collapse CR, LF, TAB and NUL so a decoded value can never start a new header."""
    return _LINE_BREAKS.sub(" ", text).strip()


def _addresses(values: list[str]) -> tuple[Address, ...]:
    found = email.utils.getaddresses([str(v) for v in values])
    return tuple(
        Address(_single_line(decode_header(name)), addr.lower())
        for name, addr in found
        if ADDR_SPEC.match(addr) and "=?" not in addr
    )


def _date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return email.utils.parsedate_to_datetime(str(value))
    except (TypeError, ValueError, IndexError):
        return None


def _body_with_mailparser(message: Message) -> tuple[str, tuple[Attachment, ...]]:
    """mail-parser over the message parsed once already (it would otherwise parse the bytes again)."""
    parsed = mailparser.MailParser(message)
    text = "\n".join(parsed.text_plain).strip()
    if not text and parsed.text_html:
        text = html_to_text("\n".join(parsed.text_html))
    attachments = tuple(
        Attachment(
            filename=_single_line(item.get("filename") or ""),
            content_type=item.get("mail_content_type") or "application/octet-stream",
            size=_payload_size(item),
        )
        for item in parsed.attachments
    )
    return text, attachments


def _payload_size(item: dict) -> int:
    """The decoded size, worked out from the base64 text's length rather than by decoding a copy."""
    payload = item.get("payload") or ""
    if item.get("binary"):
        digits = len(payload) - sum(payload.count(space) for space in ("\n", "\r", " ", "\t"))
        return max(0, digits * 3 // 4 - payload[-2:].count("="))
    return len(payload.encode("utf-8", "replace"))


def _body_with_stdlib(message: Message) -> tuple[str, tuple[Attachment, ...]]:
    plain: list[str] = []
    html: list[str] = []
    attachments: list[Attachment] = []
    for part in message.walk():
        if part.is_multipart():
            continue
        payload = part.get_payload(decode=True) or b""
        filename = part.get_filename()
        if filename or part.get_content_disposition() == "attachment":
            name = _single_line(decode_header(filename or ""))
            omitted = part.get(OMITTED_HEADER, "")
            size = int(omitted) if omitted.isdigit() else len(payload)
            attachments.append(Attachment(name, part.get_content_type(), size))
        elif part.get_content_type() == "text/plain":
            plain.append(_decode_payload(payload, part.get_content_charset()))
        elif part.get_content_type() == "text/html":
            html.append(_decode_payload(payload, part.get_content_charset()))
    text = "\n".join(plain).strip() or html_to_text("\n".join(html))
    return text, tuple(attachments)


def _decode_payload(payload: bytes, charset: str | None) -> str:
    try:
        return payload.decode(charset or "utf-8", "replace")
    except LookupError:
        return payload.decode("utf-8", "replace")

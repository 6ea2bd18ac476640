"""Inbound + Classification + Decision -> Forward: the only module that builds outgoing mail."""
from __future__ import annotations

import base64
import email.policy
import email.utils
import hashlib
import quopri
import re
import dataclasses
from dataclasses import dataclass
from datetime import datetime, timezone
from email.message import EmailMessage
from pathlib import Path

import jinja2
from jinja2.sandbox import SandboxedEnvironment

from mailrelay.model import Classification, Decision, Forward, Inbound
from mailrelay.reasons import country_name, desk_reasons, review_reason
from mailrelay.rules import Desk

LOOP_HEADER = "X-Mailrelay-Loop"
TEMPLATE_NAMES = ("subject.txt.j2", "summary.txt.j2", "summary.html.j2")
# The answers to applicants, by language; "abroad." for applicants from outside Germany.
ACK_TEMPLATES = {f"{variant}{language}": f"acknowledgement{suffix}.{language}.txt.j2"
                 for variant, suffix in (("", ""), ("abroad.", "-abroad")) for language in ("de", "en")}
_MESSAGE_ID = re.compile(r"^<[\w.!#$%&'*+/=^`{|}~-]+@[\w.!#$%&'*+/=^`{|}~\[\]:-]+>$")  # no "?": no encoded word
_SMTP_POLICY = email.policy.SMTP
# A line after the first of more than 998 bytes (SMTP's limit); the search starts at each newline only.
_LONG_LINE = re.compile(rb"\n[^\r\n]{999}")
# Outer headers are not folded at 78 columns: some clients keep the fold's space in a Message-ID.
_HEADER_POLICY = email.policy.SMTP.clone(max_line_length=998)


@dataclass(frozen=True)
class Templates:
    """The compiled summary templates; built once per (re)load, never from mail content."""

    subject: jinja2.Template
    text: jinja2.Template
    html: jinja2.Template
    acknowledgements: dict[str, jinja2.Template] = dataclasses.field(default_factory=dict)


def load_templates(directory: Path) -> Templates:
    """Compile the summary templates; jinja2 raises TemplateError for a broken one."""
    environment = SandboxedEnvironment(
        loader=jinja2.FileSystemLoader(str(directory)),
        undefined=jinja2.StrictUndefined,
        autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2",), default_for_string=False),
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        # Templates change only with a (re)load, which checks them first; never half-saved from disk.
        auto_reload=False,
        cache_size=-1,
    )
    environment.filters["filesize"] = _filesize
    subject, text, html = (environment.get_template(name) for name in TEMPLATE_NAMES)
    acknowledgements = {key: environment.get_template(name) for key, name in ACK_TEMPLATES.items()}
    return Templates(subject, text, html, acknowledgements)


def render(inbound: Inbound, classification: Classification, decision: Decision, desk: Desk,
           templates: Templates, from_address: str, relay_id: str) -> Forward:
    """Build the summary mail for `desk` with the original attached unmodified."""
    context = summary_context(inbound, classification, decision, desk)
    summary = _alternative(templates.text.render(context), templates.html.render(context))
    message_id = forward_message_id(inbound, desk.name, from_address)
    headers = _headers(inbound, desk, templates.subject.render(context), from_address, relay_id, message_id)
    data = _assemble(headers, summary, inbound.raw)
    return Forward(desk.name, desk.addresses, from_address, message_id, data)


def render_alert(lines: list[str], desk: Desk, from_address: str, relay_id: str) -> Forward:
    """A plain note to `desk` that mails went to quarantine; fixed German text, no mail content as markup."""
    body = ("mailrelay hat diese Mails in die Quarantäne verschoben. Sie wurden nicht weitergeleitet;\n"
            "bitte im Postfach-Ordner für die Quarantäne prüfen.\n\n" + "\n".join(lines) + "\n")
    return render_notice(f"[mailrelay] {len(lines)} Mail(s) in Quarantäne", body, desk, from_address, relay_id)


def render_notice(subject: str, body: str, desk: Desk, from_address: str, relay_id: str) -> Forward:
    """A plain-text note from the relay itself (quarantine, outage), marked so it is never relayed again."""
    message = EmailMessage(policy=_HEADER_POLICY)
    message["From"] = from_address
    message["To"] = ", ".join(desk.addresses)
    message["Subject"] = subject
    message["Date"] = email.utils.formatdate(localtime=True)
    digest = hashlib.sha256(f"{subject}\x00{body}".encode("utf-8")).hexdigest()[:32]
    message_id = f"<{digest}.alert@{from_address.rpartition('@')[2] or 'mailrelay.invalid'}>"
    message["Message-ID"] = message_id
    message["Auto-Submitted"] = "auto-generated"
    message[LOOP_HEADER] = relay_id
    message.set_content(body, charset="utf-8")
    return Forward(desk.name, desk.addresses, from_address, message_id, message.as_bytes(policy=_SMTP_POLICY))


def render_acknowledgement(inbound: Inbound, to: str, template: str, desk: Desk | None, templates: Templates,
                            from_address: str, relay_id: str) -> Forward:
    """The answer to an applicant (RFC 3834): Auto-Submitted: auto-replied, in reply to their mail, from
    the null sender so that a bounce of it can never come back as mail to answer."""
    context = ack_context(inbound, desk)
    body = templates.acknowledgements[template].render(context)
    message = EmailMessage(policy=_HEADER_POLICY)
    message["From"] = from_address
    message["To"] = to
    subject = inbound.subject or ""
    message["Subject"] = subject if subject[:3].lower() == "re:" else f"Re: {subject}".rstrip()
    message["Date"] = email.utils.formatdate(localtime=True)
    digest = hashlib.sha256(f"{inbound.sha256}\x00ack".encode("utf-8")).hexdigest()[:32]
    message_id = f"<{digest}.ack@{from_address.rpartition('@')[2] or 'mailrelay.invalid'}>"
    message["Message-ID"] = message_id
    if _MESSAGE_ID.match(inbound.message_id):
        message["In-Reply-To"] = inbound.message_id
        message["References"] = " ".join(_references(inbound) + [inbound.message_id])
    message["Auto-Submitted"] = "auto-replied"
    message[LOOP_HEADER] = relay_id
    message.set_content(body, charset="utf-8")
    return Forward("applicant", (to,), "", message_id, message.as_bytes(policy=_SMTP_POLICY))


def ack_context(inbound: Inbound, desk: Desk | None) -> dict:
    """The variables every acknowledgement template gets."""
    received = inbound.date or datetime.now(timezone.utc)
    return {
        "name": inbound.from_.name if inbound.from_ else "",
        "subject": inbound.subject,
        "received": received.strftime("%d.%m.%Y"),
        "received_en": received.strftime("%-d %B %Y"),
        "desk": desk.display_name if desk else "",
    }


def _references(inbound: Inbound) -> list[str]:
    """The Message-IDs the applicant's mail already refers to (kept short: the last ten)."""
    found = re.findall(r"<[^<>\s]+@[^<>\s]+>", " ".join(inbound.header_values("references")))
    return [item for item in found if _MESSAGE_ID.match(item)][-10:]


def forward_message_id(inbound: Inbound, desk_name: str, from_address: str) -> str:
    """Derived from the original's bytes and the desk, so a resend carries the same Message-ID, while two
    different mails that claim one Message-ID (a broken client, a forgery) never share a forward's."""
    digest = hashlib.sha256(f"{inbound.sha256}\x00{desk_name}".encode("utf-8")).hexdigest()[:32]
    domain = from_address.rpartition("@")[2] or "mailrelay.invalid"
    return f"<{digest}.{desk_name}@{domain}>"


def summary_context(inbound: Inbound, classification: Classification, decision: Decision, desk: Desk) -> dict:
    """The variables every summary template gets. `reasons` and `review_reason` are what the desks read;
    `evidence` (identifiers and scores) stays for editors' own templates, as explain shows it."""
    evidence: dict[str, list] = {}
    for item in classification.evidence:
        evidence.setdefault(item.field, []).append(item)
    return {
        "mail": inbound,
        "sender_address": inbound.from_,
        "reply_address": (inbound.reply_to or (inbound.from_,))[0],
        "classification": classification,
        "evidence": evidence,
        "decision": decision,
        "desk": desk,
        "review": bool(decision.reason),
        "review_reason": review_reason(decision.reason),
        "reasons": desk_reasons(classification),
        "country_name": country_name(classification.country),
    }


def _headers(inbound: Inbound, desk: Desk, subject: str, from_address: str, relay_id: str,
             message_id: str) -> EmailMessage:
    headers = EmailMessage(policy=_HEADER_POLICY)
    headers["From"] = from_address
    headers["To"] = ", ".join(desk.addresses)
    reply = (inbound.reply_to or ((inbound.from_,) if inbound.from_ else ()))
    if reply and reply[0].address.isascii():  # a non-ASCII address is shown in the summary text instead
        # A decoded name may hold another encoded word; the header parser would decode it again.
        headers["Reply-To"] = email.utils.formataddr((reply[0].name.replace("=?", "= ?"), reply[0].address))
    # A literal "=?" left in the text (a word that would not decode) confuses the header encoder.
    headers["Subject"] = " ".join(subject.split()).replace("=?", "= ?")
    headers["Date"] = email.utils.formatdate(localtime=True)
    headers["Message-ID"] = message_id
    if _MESSAGE_ID.match(inbound.message_id):
        headers["In-Reply-To"] = inbound.message_id
        headers["References"] = inbound.message_id
    headers["Auto-Submitted"] = "auto-generated"
    headers[LOOP_HEADER] = relay_id
    headers["MIME-Version"] = "1.0"
    return headers


def _alternative(text: str, html: str) -> bytes:
    """The summary as multipart/alternative: its text, then its HTML, each UTF-8, written by bytes (the
    email package's content manager and generator took most of a summary's time)."""
    parts = [_text_part("plain", text), _text_part("html", html)]
    boundary = _boundary(b"".join(parts))
    return b"".join([f'Content-Type: multipart/alternative; boundary="{boundary}"\r\n\r\n'.encode(),
                     *(f"--{boundary}\r\n".encode() + part + b"\r\n" for part in parts),
                     f"--{boundary}--\r\n".encode()])


def _text_part(subtype: str, text: str) -> bytes:
    """A text part: 7bit or 8bit where SMTP carries its lines as they are, else quoted-printable."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    body = "\r\n".join(lines).encode("utf-8")
    if not _fits_smtp(body):
        body, encoding = quopri.encodestring(body.replace(b"\r\n", b"\n")).replace(b"\n", b"\r\n"), "quoted-printable"
    else:
        encoding = "7bit" if body.isascii() else "8bit"
    head = f'Content-Type: text/{subtype}; charset="utf-8"\r\nContent-Transfer-Encoding: {encoding}\r\n\r\n'
    return head.encode() + body


def _assemble(headers: EmailMessage, summary: bytes, original: bytes) -> bytes:
    """multipart/mixed: the summary, then the original bytes, unmodified."""
    boundary = _boundary(original)
    part_headers, body = _original_part(original)
    outer = headers.as_bytes(policy=_HEADER_POLICY).rstrip(b"\r\n")
    parts = [
        outer + b"\r\n" + f'Content-Type: multipart/mixed; boundary="{boundary}"'.encode() + b"\r\n\r\n",
        f"--{boundary}\r\n".encode(),
        summary,
        f"\r\n--{boundary}\r\n".encode(),
        part_headers,
        body,
        f"\r\n--{boundary}--\r\n".encode(),
    ]
    return b"".join(parts)


def _boundary(original: bytes) -> str:
    digest = hashlib.sha256(original).hexdigest()
    for length in range(24, 65, 8):
        boundary = f"mailrelay-{digest[:length]}"
        if boundary.encode() not in original:
            return boundary
    return f"mailrelay-{digest}-{len(original)}"


def _original_part(original: bytes) -> tuple[bytes, bytes]:
    """message/rfc822 in 7bit or 8bit where SMTP carries the bytes as they are (RFC 2046 allows
    no other encoding for it); otherwise the same bytes as a base64 .eml file. Checked by counting and
    searching, not by splitting into lines: a 20 MB original is not copied more than it must be."""
    crlf = original.count(b"\r\n")
    normalised = re.sub(rb"\r?\n", b"\r\n", original) if original.count(b"\n") != crlf else original
    if _fits_smtp(normalised):
        encoding = "7bit" if normalised.isascii() else "8bit"
        return (b'Content-Type: message/rfc822\r\nContent-Disposition: attachment; filename="original.eml"\r\n'
                + f"Content-Transfer-Encoding: {encoding}\r\n\r\n".encode(), normalised)
    return (b'Content-Type: application/octet-stream; name="original.eml"\r\n'
            b'Content-Disposition: attachment; filename="original.eml"\r\n'
            b"Content-Transfer-Encoding: base64\r\n\r\n", base64.encodebytes(original).replace(b"\n", b"\r\n"))


def _fits_smtp(data: bytes) -> bool:
    """CRLF lines of at most 998 bytes, no bare CR, no NUL."""
    first = data.find(b"\r\n")
    return ((first if first >= 0 else len(data)) <= 998 and not _LONG_LINE.search(data)
            and data.count(b"\r") == data.count(b"\r\n") and b"\x00" not in data)


def _filesize(size: int) -> str:
    if size < 1024:
        return f"{size} Bytes"
    if size < 1024 * 1024:
        return f"{size / 1024:.1f} KB".replace(".", ",")
    return f"{size / (1024 * 1024):.1f} MB".replace(".", ",")

"""Benchmark mail: the labelled sample cycled with unique Message-IDs, some with a PDF or a large attachment."""
from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Iterator

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CORPUS = REPO.parent / "shared" / "corpus" / "pool-a"
# A Message-ID header with any folded continuation lines.
_MESSAGE_ID = re.compile(rb"^message-id:[^\r\n]*(?:\r\n[ \t][^\r\n]*)*", re.IGNORECASE | re.MULTILINE)
_ID_VALUE = re.compile(rb"<([^<>@]*)@([^<>]*)>")
_BASE64_GROWTH = 4 / 3 * 78 / 76  # base64 with 76-character lines and CRLF


@dataclass(frozen=True)
class Sample:
    """One labelled mail of the sample, its lines ending in CRLF as IMAP serves them."""

    name: str
    data: bytes
    kind: str
    route: str

    @property
    def forwarded(self) -> bool:
        return self.route != "none"


def load_corpus(folder: Path = DEFAULT_CORPUS) -> list[Sample]:
    """Every labelled mail of `folder`, in file order."""
    labels = [json.loads(line) for line in (folder / "labels.jsonl").read_text().splitlines() if line.strip()]
    return [Sample(label["file"], _crlf((folder / label["file"]).read_bytes()), label["kind"], label["route"])
            for label in sorted(labels, key=lambda label: label["file"])]


def unique(data: bytes, tag: str) -> bytes:
    """The mail with its Message-ID made unique by `tag` (the domain kept), so it is no duplicate."""
    head, separator, body = data.partition(b"\r\n\r\n")
    found = _MESSAGE_ID.search(head)
    if found is None:
        return f"Message-ID: <{tag}@bench.invalid>\r\n".encode() + data
    value = _ID_VALUE.search(found.group(0))
    local, domain = (value.group(1), value.group(2)) if value else (b"bench", b"bench.invalid")
    header = b"Message-ID: <" + local + b"." + tag.encode() + b"@" + domain + b">"
    return head[:found.start()] + header + head[found.end():] + separator + body


def message_id(data: bytes) -> bytes:
    """The <id> of the mail's Message-ID header (b"" if it has none)."""
    head = data.partition(b"\r\n\r\n")[0]
    found = _MESSAGE_ID.search(head)
    value = _ID_VALUE.search(found.group(0)) if found else None
    return value.group(0) if value else b""


def pdf_payload(size: int, seed: int) -> bytes:
    """`size` bytes that look like a PDF to a sniffer: header, one binary stream object, trailer."""
    head = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Length " + str(size).encode() + b" >>\nstream\n"
    tail = b"\nendstream\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n"
    return head + random.Random(seed).randbytes(max(0, size - len(head) - len(tail))) + tail


def with_attachment(data: bytes, payload: bytes, filename: str) -> bytes:
    """The mail made multipart/mixed (if it is not) with `payload` attached as a base64 PDF."""
    message = message_from_bytes(data, policy=policy.SMTP)
    assert isinstance(message, EmailMessage)
    message.add_attachment(payload, maintype="application", subtype="pdf", filename=filename)
    return message.as_bytes(policy=policy.SMTP)


def backlog(samples: list[Sample], count: int, tag: str, pdf_every: int = 10, seed: int = 1) -> Iterator[bytes]:
    """`count` mails cycling through the sample; every `pdf_every`th is an application with a 100-500 kB PDF."""
    applications = [sample for sample in samples if sample.kind == "application"]
    sizes = random.Random(seed)
    for index in range(count):
        if pdf_every and index % pdf_every == pdf_every - 1:
            sample = applications[(index // pdf_every) % len(applications)]
            pdf = pdf_payload(sizes.randint(100_000, 500_000), seed=index)
            yield with_attachment(unique(sample.data, f"{tag}{index}"), pdf, f"Lebenslauf-{index}.pdf")
        else:
            yield unique(samples[index % len(samples)].data, f"{tag}{index}")


def large_mail(sample: Sample, total_bytes: int, tag: str, seed: int) -> bytes:
    """An application of about `total_bytes` in all: the sample mail with one big PDF attached."""
    payload = pdf_payload(int(total_bytes / _BASE64_GROWTH) - len(sample.data), seed)
    return with_attachment(unique(sample.data, tag), payload, f"Unterlagen-{tag}.pdf")


def forwardable(samples: list[Sample]) -> list[Sample]:
    """The sample mails the default rules forward to a desk (the ones a latency probe can wait for)."""
    return [sample for sample in samples if sample.forwarded]


def _crlf(data: bytes) -> bytes:
    return re.sub(rb"\r?\n", b"\r\n", data)

"""Small shared helpers for tests: reading test mails and building literal values."""
from __future__ import annotations

from pathlib import Path

from mailrelay.model import Classification, Kind, Level, RawMail, Sender
from mailrelay.parse import parse

DATA = Path(__file__).parent / "data"
REPO = Path(__file__).resolve().parents[1]


def raw_mail(name: str) -> RawMail:
    return RawMail(f"file:{name}", (DATA / name).read_bytes())


def inbound(name: str):
    return parse(raw_mail(name))


def classification(kind: str = "application", sender: str = "public_body", level: str | None = "regional",
                   country: str = "DE", confidence: float = 0.9) -> Classification:
    return Classification(Kind(kind), Sender(sender), Level(level) if level else None, country, confidence)

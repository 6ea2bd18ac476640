"""Forwards written as .eml files into a folder (the embedded demo, and a dry run)."""
from __future__ import annotations

import contextlib
import hashlib
import os
from pathlib import Path
from typing import Iterator

from mailrelay.model import Forward
from mailrelay.transports.base import Delivery, Status


class OutboxTransport:
    def __init__(self, path: Path):
        self.path = path

    @contextlib.contextmanager
    def open(self) -> Iterator["OutboxTransport"]:
        self.path.mkdir(parents=True, exist_ok=True)
        yield self

    def send(self, forward: Forward) -> Delivery:
        """Write atomically; the file name comes from the Message-ID, so a resend replaces, never doubles."""
        name = hashlib.sha256(forward.message_id.encode()).hexdigest()[:24] + f".{forward.desk}.eml"
        target = self.path / name
        temporary = target.with_suffix(".tmp")
        with open(temporary, "wb") as handle:
            handle.write(forward.data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)
        return Delivery(Status.ACCEPTED, f"written to {target}")

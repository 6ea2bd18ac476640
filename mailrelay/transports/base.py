"""What a transport reports for one forward."""
from __future__ import annotations

import enum
from dataclasses import dataclass


class Status(enum.StrEnum):
    ACCEPTED = "accepted"
    TEMPORARY = "temporary"  # try again later: 4xx, dropped connection, timeout
    PERMANENT = "permanent"  # will never be accepted as it is: 5xx


@dataclass(frozen=True)
class Delivery:
    status: Status
    reply: str
    refused: tuple[str, ...] = ()  # recipients refused while others accepted, with the server's reply

"""Positive evidence of machine mail that word lists cannot express: named detectors the signals file switches on."""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Callable

from mailrelay.model import Inbound, header_values


@dataclass(frozen=True)
class ServerReport:
    """What our own receiving server said of a mail: the headers it added above its Received line, and
    the checks it reported failed. Only these are trusted; anything below was written by the sender."""

    headers: tuple[tuple[str, str], ...] = ()
    failed_checks: tuple[str, ...] = ()

    def header_values(self, name: str) -> tuple[str, ...]:
        return header_values(self.headers, name)


@dataclass(frozen=True)
class Facts:
    """Everything a detector may look at: the mail, our server's report, and the reference data."""

    inbound: Inbound
    server: ServerReport
    is_disposable: Callable[[str], bool]


def _delivery_failures(facts: Facts) -> str | None:
    failures = facts.inbound.delivery_failures
    return f"failing recipient {failures[0]}" + (f" and {len(failures) - 1} more" if len(failures) > 1 else "") \
        if failures else None


def _dmarc_failure(facts: Facts) -> str | None:
    return "dmarc=fail" if "dmarc=fail" in facts.server.failed_checks else None


def _disposable_sender(facts: Facts) -> str | None:
    sender = facts.inbound.from_
    host = sender.address.rpartition("@")[2] if sender else ""
    return f"{host} is a disposable-mail domain" if host and facts.is_disposable(host) else None


_LATIN = re.compile(r"[A-Za-z\u00c0-\u024f\u1e00-\u1eff]")
_SAMPLE = 4000  # characters of subject and text looked at: enough to tell the script
_MIN_LETTERS = 20


def _foreign_script(facts: Facts) -> str | None:
    """Most letters outside the Latin script (Cyrillic, Chinese, ...): the call's applicants write German,
    English or another language in Latin letters."""
    sample = f"{facts.inbound.subject}\n{facts.inbound.text}"[:_SAMPLE]
    letters = [char for char in sample if char.isalpha()]
    if len(letters) < _MIN_LETTERS:
        return None
    foreign = [char for char in letters if not _LATIN.match(char)]
    if 2 * len(foreign) < len(letters):
        return None
    script = unicodedata.name(foreign[0], "UNKNOWN").split()[0].capitalize()
    return f"{100 * len(foreign) // len(letters)}% of the letters are not Latin ({script})"


# name in the signals file -> (what it finds, where it looks)
DETECTORS: dict[str, tuple[Callable[[Facts], str | None], str]] = {
    "delivery_failures": (_delivery_failures, "bounce detectors (flufl.bounce)"),
    "dmarc_failure": (_dmarc_failure, "our server's Authentication-Results"),
    "disposable_sender": (_disposable_sender, "sender domain"),
    "foreign_script": (_foreign_script, "subject and text"),
}

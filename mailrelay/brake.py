"""The flood brake: pause forwarding when one poll forwards more handled mail than mail ever comes in.

After a lost or emptied state store, mail already handled (left in the inbox with archive = "flag", or
moved back) would be forwarded again in a flood. A backlog is not that: mail that arrived while the relay
was away arrived after the last full poll began, and only mail the state did not know that arrived
before that moment counts. With no full poll on record (a new or emptied state) every forward counts."""
from __future__ import annotations

from datetime import datetime, timedelta

from mailrelay.model import RawMail
from mailrelay.state import Store

LAST_FULL_POLL = "last_full_poll_started"  # the flag: when the last poll that read every new mail began


class FloodBrake:
    """One poll's count of the forwards that look like handled mail coming back."""

    def __init__(self, store: Store, limit: int, margin_seconds: float):
        self.store = store
        self.limit = limit
        started = store.flag(LAST_FULL_POLL)
        # The margin covers the IMAP server's clock against ours and INTERNALDATE's whole seconds.
        self.line = datetime.fromisoformat(started) - timedelta(seconds=margin_seconds) if started else None
        self.counted = 0

    def count(self, raw: RawMail, outcome: dict) -> None:
        """Count a mail's outcome: a forward of mail the state did not know that arrived before the line
        (or any forward, with no line); a mail the source gives no arrival for counts too."""
        if outcome["outcome"] != "forwarded":
            return
        if self.line is None or (outcome.get("new") and (raw.arrived is None or raw.arrived < self.line)):
            self.counted += 1

    def tripped(self) -> str | None:
        """Pause forwarding when the count reached the limit; the reason, or None when it did not."""
        if self.counted < self.limit:
            return None
        reason = f"{self.limit} forwards in one poll; forwarding paused until `mailrelay resume`"
        self.store.pause(reason)
        return reason

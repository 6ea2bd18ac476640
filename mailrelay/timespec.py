"""`--since` for every command: 30d, 12h, 90m, 1w before now, or an ISO date or time (UTC unless it names a zone)."""
from __future__ import annotations

import argparse
import re
from datetime import datetime, timedelta, timezone

from mailrelay.i18n import tr

_UNITS = {"w": "weeks", "d": "days", "h": "hours", "m": "minutes"}
_RELATIVE = re.compile(r"(\d+)\s*([wdhm])")


def since_moment(text: str, now: datetime | None = None) -> datetime:
    """The moment `text` names, as an aware UTC datetime; ValueError (in the person's language) if it names none."""
    cleaned = text.strip()
    relative = _RELATIVE.fullmatch(cleaned.lower())
    if relative:
        return (now or datetime.now(timezone.utc)) - timedelta(**{_UNITS[relative[2]]: int(relative[1])})
    try:
        moment = datetime.fromisoformat(cleaned)
    except ValueError:
        raise ValueError(tr(f"nimmt 30d, 12h, 90m, 1w oder ein Datum wie 2026-11-11, nicht {text!r}",
                            f"takes 30d, 12h, 90m, 1w or a date like 2026-11-11, not {text!r}")) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def parse_since(text: str, now: datetime | None = None) -> str:
    """The moment `text` names as the store writes its timestamps (UTC, milliseconds), so they compare as strings."""
    return since_moment(text, now).isoformat(timespec="milliseconds")


def since_argument(text: str) -> str:
    """argparse `type=` for --since: argparse shows this message, not a generic "invalid value"."""
    try:
        return parse_since(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def age_in_days(timestamp: str, now: datetime | None = None) -> float:
    """How many days before now a store timestamp lies (for "older than we keep raw mails" notes)."""
    moment = datetime.fromisoformat(timestamp)
    return ((now or datetime.now(timezone.utc)) - moment).total_seconds() / 86400

"""The audit trail read back, read-only beside the service: verify the hash chain, list, show, export."""
from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Callable, ContextManager, Iterator

from mailrelay.i18n import tr
from mailrelay.state import GENESIS, event_hash, state_conninfo
from mailrelay.state.trails import (EXPORT_COLUMNS, LIST_COLUMNS, MailFilter, Trail, TrailError, open_postgres_trail,
                                    open_sqlite_trail)

if TYPE_CHECKING:
    from mailrelay.config import Settings

__all__ = ["EXPORT_COLUMNS", "LIST_COLUMNS", "Break", "MailFilter", "Trail", "TrailError", "Verdict", "export_rows",
           "find_mails", "format_list", "format_story", "list_mails", "open_trail", "open_trail_for", "story",
           "verify", "write_export"]

_PROBLEMS = {  # (German, English): said in the language in force when a break is described
    "altered": ("sein Inhalt wurde verändert, oder der Eintrag davor wurde verändert und sein Prüfwert neu berechnet",
                "its contents were altered, or the record before it was altered and its hash recomputed"),
    "unhashed": ("er hat keinen Prüfwert: er wurde außerhalb des Relays geschrieben",
                 "it has no hash: it was written outside the relay"),
}
_SPREADSHEET_FORMULA = ("=", "+", "-", "@", "\t", "\r")

open_trail = open_sqlite_trail  # the SQLite file by its path, as callers from before the PostgreSQL store ask


def open_trail_for(settings: Settings) -> ContextManager[Trail]:
    """The trail of the store the config names: [state] url, else the SQLite file at [state] path."""
    if settings.state_url:
        return open_postgres_trail(state_conninfo(settings))
    return open_sqlite_trail(settings.state_path)


# verify


@dataclass(frozen=True)
class Break:
    """One place where the chain does not hold: an altered record, or a run of missing ones."""

    first: int
    last: int
    problem: str  # altered | unhashed | missing | truncated
    at: str = ""
    event: str = ""

    def describe(self) -> str:
        if self.problem in _PROBLEMS:
            what = tr(*_PROBLEMS[self.problem])
            return tr(f"Prüfkette unterbrochen bei Eintrag {self.first} ({self.at}, {self.event}): {what}",
                      f"audit trail broken at record {self.first} ({self.at}, {self.event}): {what}")
        one = self.first == self.last
        newest = tr(" (der neueste)", " (the newest)") if self.problem == "truncated" else ""
        if one:
            return tr(f"Prüfkette unterbrochen: Eintrag {self.first}{newest} fehlt",
                      f"audit trail broken: record {self.first}{newest} is missing")
        return tr(f"Prüfkette unterbrochen: Einträge {self.first}-{self.last}{newest} fehlen",
                  f"audit trail broken: records {self.first}-{self.last}{newest} are missing")


@dataclass(frozen=True)
class Verdict:
    """What walking the chain found: the number of records, the newest hash, and every break."""

    records: int
    head: str
    breaks: tuple[Break, ...]

    @property
    def intact(self) -> bool:
        return not self.breaks

    def describe(self) -> str:
        if self.intact:
            return tr(f"Prüfkette unversehrt: {self.records} Einträge, zuletzt {self.head[:16]}",
                      f"audit trail intact: {self.records} records, head {self.head[:16]}")
        further = [f"  {tr('außerdem', 'also')}: {item.describe()}" for item in self.breaks[1:]]
        checked = tr(f"({self.records} Einträge geprüft)", f"({self.records} records checked)")
        return "\n".join([self.breaks[0].describe(), *further, checked])

    def as_dict(self) -> dict:
        return {"intact": self.intact, "records": self.records, "head": self.head,
                "breaks": [dict(vars(item), message=item.describe()) for item in self.breaks]}


def verify(trail: Trail) -> Verdict:
    """Walk the events in id order: each record's hash must follow from its stored fields and the stored
    hash of the record before it; a gap in the ids (the stores never reuse or skip one) is a removal.

    The chain alone cannot show that the newest records were cut off: the rest still chains. The store's
    own count of the numbers it gave out (SQLite's AUTOINCREMENT counter, PostgreSQL's `audit_head`)
    catches a plain DELETE of them, but someone with write access can reset that too; the head hash the
    relay logs with each `poll.finished` is what anchors the end. The chain covers the events only: the
    `mails` table is the relay's working copy and can be changed unnoticed."""
    breaks: list[Break] = []
    previous: str | None = GENESIS  # None: the record before has no hash, so this one cannot be checked
    expected, count = 1, 0
    for row in trail.events():
        count += 1
        if row["id"] > expected:
            breaks.append(Break(expected, row["id"] - 1, "missing"))
        elif previous is not None and (problem := _problem(row, previous)):
            breaks.append(Break(row["id"], row["id"], problem, str(row["at"]), str(row["event"])))
        previous, expected = row["hash"], row["id"] + 1
    issued = trail.last_issued()
    if issued >= expected:
        breaks.append(Break(expected, issued, "truncated"))
    return Verdict(count, previous or GENESIS, tuple(breaks))


def _problem(row: dict, previous: str) -> str | None:
    if row["hash"] is None:
        return "unhashed"
    try:
        digest = event_hash(previous, row["at"], row["mail_id"], row["event"], row["detail"])
    except TypeError:  # a field rewritten as a blob (SQLite keeps whatever type is written)
        return "altered"
    return None if digest == row["hash"] else "altered"


# list


def list_mails(trail: Trail, where: MailFilter) -> list[dict]:
    """The mails the filters select, oldest first."""
    return trail.mails(where)


def format_list(mails: list[dict]) -> str:
    if not mails:
        return "no mails match"
    rows = [("first seen (UTC)", "state", "kind", "desk", "from", "subject", "message-id")]
    rows += [(_time(mail["first_seen"]), mail["state"], mail["kind"] or "-", mail["route"] or "-",
              mail["from_address"] or "-", _shorten(mail["subject"], 50), mail["message_id"] or "-")
             for mail in mails]
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]) - 1)]
    lines = ["  ".join([*(cell.ljust(width) for cell, width in zip(row, widths)), row[-1]]) for row in rows]
    return "\n".join([*lines, f"{len(mails)} mail{'s' if len(mails) != 1 else ''}"])


# show


def find_mails(trail: Trail, identifier: str) -> list[dict]:
    """Mails by Message-ID (with or without its angle brackets), else by mail number, else by a prefix of
    at least 8 hex digits of the sha256. Several mails may share a Message-ID: all are returned."""
    return trail.find_mails(identifier)


def story(trail: Trail, mail: dict) -> dict:
    """One mail's metadata and every audit record about it, in order."""
    events = trail.events_of(mail["id"])
    return {"mail": dict(mail), "events": [dict(row, detail=_parsed(row["detail"])) for row in events]}


def format_story(told: dict) -> str:
    mail = told["mail"]
    lines = [f"mail {mail['id']}: {mail['message_id'] or '(no Message-ID)'}"]
    lines += [f"  {label:<11} {value}" for label, value in _facts(mail) if value]
    lines.append("events:")
    for event in told["events"]:
        first, *more = _event_lines(event["event"], event["detail"]) or [""]
        lines.append(f"  {_time(event['at'])}  {event['event']:<16} {first}".rstrip())
        lines += [f"  {'':<19}  {'':<16} {line}" for line in more]
    return "\n".join(lines)


def _facts(mail: dict) -> list[tuple[str, str]]:
    classification = ", ".join(f"{name} {mail[name]}" for name in ("kind", "sender", "level", "country") if mail[name])
    state = mail["state"] + (f", archived to {mail['archived_to']}" if mail["archived_to"] else ", not archived")
    forward = mail["forward_message_id"] and f"{mail['forward_message_id']} at {mail['forwarded_at'] or '?'}"
    return [("from", mail["from_address"]), ("subject", mail["subject"]), ("first seen", mail["first_seen"]),
            ("state", state), ("classified", classification), ("decided", _decision(mail)), ("reason", mail["reason"]),
            ("forward", forward), ("sha256", mail["sha256"]), ("source", mail["source_key"])]


def _decision(mail: dict) -> str:
    if not mail["rule"]:
        return ""
    route = f"to desk {mail['route']}" if mail["route"] and mail["route"] != "none" else "not forwarded"
    return f"{route}, by rule {mail['rule']}" + (f" (rules {mail['rules_version']})" if mail["rules_version"] else "")


def _event_lines(event: str, detail: object) -> list[str]:
    if not isinstance(detail, dict):
        return [f"unreadable detail: {detail!r}"]
    return _DETAIL_FORMATS.get(event, _generic)(detail)


def _decided(detail: dict) -> list[str]:
    lines = [f"{detail.get('action')} -> {detail.get('route')} by rule {detail.get('rule')}"
             + (f": {detail['reason']}" if detail.get("reason") else "")]
    classification = detail.get("classification")
    if isinstance(classification, dict):
        lines.append(_classification(classification))
    lines += [_evidence(item) for item in detail.get("evidence") or []]
    return lines


def _classification(found: dict) -> str:
    level = f" ({found['level']})" if found.get("level") else ""
    failed = f", unauthenticated: {', '.join(found['unauthenticated'])}" if found.get("unauthenticated") else ""
    return (f"{found.get('kind')}, sender {found.get('sender')}{level}, country {found.get('country')},"
            f" confidence {found.get('confidence')}{failed}")


def _evidence(item: object) -> str:
    if not isinstance(item, dict):
        return f"evidence {item}"
    return (f"evidence {item.get('field')} = {item.get('value')}: {item.get('signal')}"
            f" [{item.get('where')}, weight {item.get('weight')}]")


def _delivery(detail: dict) -> list[str]:
    recipients = ", ".join(detail.get("recipients") or [])
    lines = [f"to {detail.get('desk')} ({recipients}): {detail.get('reply')}"]
    if detail.get("refused"):
        lines.append(f"refused by the server: {', '.join(detail['refused'])}")
    if detail.get("next_attempt"):
        lines.append(f"next attempt {detail['next_attempt']}")
    return lines


def _generic(detail: dict) -> list[str]:
    return [", ".join(f"{key} {_plain(value)}" for key, value in detail.items())]


_DETAIL_FORMATS: dict[str, Callable[[dict], list[str]]] = {
    "mail.decided": _decided,
    "mail.forwarded": _delivery,
    "mail.deferred": _delivery,
    "mail.refused": _delivery,
    "mail.archived": lambda detail: [f"to {detail.get('mailbox')}"],
    "mail.failed": lambda detail: [f"{detail.get('error')} (at {detail.get('at')})"],
}


# export


def export_rows(trail: Trail, since: str | None) -> Iterator[dict]:
    """Every audit record, oldest first, with its mail's Message-ID, sender and subject."""
    return trail.export(since)


def write_export(rows: Iterator[dict], form: str, out: IO[str]) -> int:
    """CSV keeps each detail as the JSON text the hash covers; JSON lines give it as an object.
    In CSV a sender's text that a spreadsheet would run as a formula is prefixed with a quote."""
    count = 0
    writer = csv.DictWriter(out, EXPORT_COLUMNS) if form == "csv" else None
    if writer:
        writer.writeheader()
    for count, row in enumerate(rows, 1):
        if writer:
            writer.writerow({key: _inert(value) for key, value in row.items()})
        else:
            out.write(json.dumps(dict(row, detail=_parsed(row["detail"])), ensure_ascii=False) + "\n")
    return count


def _inert(value: object) -> object:
    return f"'{value}" if isinstance(value, str) and value.startswith(_SPREADSHEET_FORMULA) else value


def _parsed(text: object) -> object:
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        return text  # shown as it is: verify says whether it was altered


def _plain(value: object) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _time(stamp: str | None) -> str:
    """'2026-11-28T05:35:26.123+00:00' as '2026-11-28 05:35:26' (the store writes UTC)."""
    return (stamp or "")[:19].replace("T", " ")


def _shorten(text: str | None, width: int) -> str:
    text = " ".join((text or "").split()) or "(no subject)"
    return text if len(text) <= width else text[:width - 1] + "…"

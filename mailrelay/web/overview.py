"""Page: the overview: the health verdict as `status` gives it, what the state knows of the polls, the
queues, and the mails of the last 30 days by outcome and by desk."""
from __future__ import annotations

import collections
import dataclasses
import json
from datetime import date, datetime, timedelta, timezone

from flask import Blueprint, render_template

from mailrelay import health
from mailrelay.audit import MailFilter, open_trail_for
from mailrelay.web import chart
from mailrelay.web.app import console, reader
from mailrelay.web.history import UNREADABLE, desk_names, shown_time, unreadable_words

bp = Blueprint("overview", __name__)

RELAY_EVENTS_DAYS, RELAY_EVENTS_SHOWN = 7, 10
RELAY_EVENT_WORDS = {
    "alert.sent": "Hinweis auf Quarantäne-Mails an die Redaktion gesandt",
    "alert.failed": "Hinweis auf Quarantäne-Mails nicht zustellbar",
    "config.reloaded": "Regeln neu geladen", "config.reload_refused": "Regeländerung abgelehnt",
    "reload.note_sent": "Hinweis auf abgelehnte Regeländerung gesandt",
    "reload.note_failed": "Hinweis auf abgelehnte Regeländerung nicht zustellbar",
    "health.outage": "Störung an den Betrieb gemeldet", "health.recovered": "Störung behoben",
    "health.note_failed": "Störungsmeldung nicht zustellbar",
    "relay.paused": "Weiterleitung angehalten", "relay.resumed": "Weiterleitung wieder aufgenommen",
    "mailbox.recreated": "Posteingang wurde neu angelegt", "mailbox.replaced": "Posteingang wurde ersetzt",
}

_DETAIL_WORDS = {"desk": "Referat", "mails": "Mails", "reply": "Antwort des Servers", "rules_version": "Regelstand",
                 "problems": "Probleme", "reason": "Grund", "outage_since": "Störung seit", "status": "Zustand",
                 "new_change": "neue Änderung", "subjects": "Betreffs", "error": "Fehler"}


@bp.get("/")
def index():
    settings = console().settings
    try:
        state = _facts()
        with open_trail_for(settings) as trail:
            mails = trail.mails(MailFilter(since=_since(chart.DAYS)))
            relay_events = _relay_events(trail)
    except UNREADABLE as error:
        return render_template("overview.html", unreadable=unreadable_words(error)), 503
    verdict = health.assess(state, health.Thresholds(settings.outage_seconds, settings.quarantined_per_day,
                                                     settings.failover_seconds))
    days = chart.last_days(date.today())
    return render_template(
        "overview.html", verdict=verdict, state=state, when=shown_time, relay_events=relay_events,
        node=health._node_line(state) if state.lease is not None else None,  # status's own words
        last_received=mails[-1]["first_seen"] if mails else None,
        charts=(chart.by_outcome(mails, days), chart.by_desk(mails, days, desk_names())))


def _facts() -> health.Facts:
    """What `status` judges, read from the state as it is now; on a shared state with this node's name."""
    settings = console().settings
    state = health.facts(reader())
    return dataclasses.replace(state, node=settings.node) if settings.state_url else state


def _since(days: int) -> str:
    """The first moment of the earliest day shown, in the server's time zone, as the store writes times."""
    first = datetime.combine(date.today() - timedelta(days=days - 1), datetime.min.time()).astimezone()
    return first.astimezone(timezone.utc).isoformat(timespec="milliseconds")


def _relay_events(trail) -> list[dict]:
    """The relay's own records of the last days (no mail's): outages, reloads, alerts, pauses. A poll
    itself leaves no record in the state, only `poll.finished` in the service's log."""
    newest = collections.deque(maxlen=RELAY_EVENTS_SHOWN)
    for row in trail.export(_since(RELAY_EVENTS_DAYS)):
        if row["mail_id"] is None and not row["event"].startswith("web."):  # the console's own: not the relay's
            newest.append(row)
    return [{"at": row["at"], "words": RELAY_EVENT_WORDS.get(row["event"], row["event"]),
             "detail": _detail(row["detail"])} for row in reversed(newest)]


def _detail(text: str) -> str:
    """A relay record's detail as short text: its values, not its JSON."""
    try:
        detail = json.loads(text)
    except (TypeError, ValueError):
        return str(text)
    if not isinstance(detail, dict):
        return str(detail)
    parts = []
    for key, value in detail.items():
        if isinstance(value, list):
            value = "; ".join(str(item) for item in value)
        if value not in (None, "", {}):
            parts.append(f"{_DETAIL_WORDS.get(key, key)}: {value}")
    return " · ".join(parts)

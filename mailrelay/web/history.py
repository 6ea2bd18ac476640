"""Pages: the history (every mail the relay handled, searchable) and one mail's whole story."""
from __future__ import annotations

import dataclasses
import sqlite3
from dataclasses import dataclass
from datetime import date, datetime, time, timezone

from flask import Blueprint, render_template, request

from mailrelay.audit import MailFilter, TrailError, open_trail_for, story
from mailrelay.model import Classification, Evidence
from mailrelay.reasons import country_name, desk_reasons, phrase
from mailrelay.state import StoreUnavailable
from mailrelay.web.app import console, reader
from mailrelay.web.chart import local_day

bp = Blueprint("history", __name__)

PAGE_SIZE = 100
FILTERS = ("sender", "subject", "desk", "kind", "outcome", "since", "until")  # only these go into the page links
# What a page says when the state cannot be read (no file yet, the database down): no traceback.
UNREADABLE = (TrailError, StoreUnavailable, sqlite3.Error, OSError)
STATE_WORDS = {"received": "eingegangen", "decided": "entschieden", "sending": "wird gesendet",
               "retry": "wartet auf neuen Versuch", "forwarded": "weitergeleitet", "ignored": "nur archiviert",
               "quarantined": "in Quarantäne"}
KIND_WORDS = {"application": "Bewerbungsmitteilung", "inquiry": "Anfrage", "auto_reply": "Automatische Antwort",
              "bounce": "Unzustellbarkeitsnachricht", "bulk": "Rundschreiben / Newsletter", "spam": "Spam"}
SENDER_WORDS = {"public_body": "Öffentliche Stelle", "cluster_organisation": "Cluster- oder Wirtschaftsförderorganisation",
                "research": "Forschungseinrichtung", "consultancy": "Beratungsunternehmen", "unknown": "nicht erkennbar"}
LEVEL_WORDS = {"national": "Bundesebene", "regional": "Landesebene", "local": "kommunale Ebene"}


def unreadable_words(error: Exception) -> str:
    """Why the state cannot be read, for the editors: a state file not there yet is said plainly."""
    settings = console().settings
    if not settings.state_url and not settings.state_path.exists():
        return f"es gibt noch keine Zustandsdatei {settings.state_path}: ist mailrelay schon einmal gelaufen?"
    return str(error)


def shown_time(stamp: str | None, never: str = "nie") -> str:
    """A stored time (ISO 8601, UTC) as the editors read it: '02.12.2026 01:23' in the server's time zone."""
    if not stamp:
        return never
    try:
        return f"{datetime.fromisoformat(stamp).astimezone():%d.%m.%Y %H:%M}"
    except ValueError:
        return stamp


@dataclass(frozen=True)
class Search:
    """The history's filters as the form gives them; each given one must hold."""

    sender: str = ""
    subject: str = ""
    desk: str = ""
    kind: str = ""
    outcome: str = ""
    since: date | None = None
    until: date | None = None

    def where(self) -> MailFilter:
        """What the trail filters itself; the rest (subject, until) is left to `keeps`."""
        since = _utc_start(self.since) if self.since else None
        return MailFilter(since=since, sender=self.sender or None, desk=self.desk or None, kind=self.kind or None,
                          state=self.outcome or None)

    def keeps(self, mail: dict) -> bool:
        if self.subject and self.subject.casefold() not in (mail["subject"] or "").casefold():
            return False
        return self.until is None or local_day(mail["first_seen"]) <= self.until


def read_search(args) -> tuple[Search, list[str]]:
    """The filters from the query string, and what is wrong with them (a date not written YYYY-MM-DD)."""
    problems, dates = [], {}
    for name, label in (("since", "von"), ("until", "bis")):
        text = args.get(name, "").strip()
        try:
            dates[name] = date.fromisoformat(text) if text else None
        except ValueError:
            problems.append(f"Datum „{label}“ bitte als JJJJ-MM-TT angeben, z. B. 2026-11-28 (nicht „{text}“)")
            dates[name] = None
    words = {name: args.get(name, "").strip() for name in FILTERS[:5]}
    return Search(**words, **dates), problems


def _utc_start(day: date) -> str:
    """The first moment of a day in the server's time zone, written as the store writes times (UTC)."""
    start = datetime.combine(day, time()).astimezone().astimezone(timezone.utc)
    return start.isoformat(timespec="milliseconds")


@bp.get("/verlauf")
def index():
    search, problems = read_search(request.args)
    mails, unreadable = ([], None) if problems else _found(search)
    pages = max((len(mails) + PAGE_SIZE - 1) // PAGE_SIZE, 1)
    page = min(max(request.args.get("seite", 1, type=int) or 1, 1), pages)
    shown = mails[(page - 1) * PAGE_SIZE:page * PAGE_SIZE]
    return render_template("history.html", search=search, problems=problems, unreadable=unreadable,
                           mails=shown, total=len(mails), page=page, pages=pages, desks=desk_names(),
                           states=STATE_WORDS, kinds=KIND_WORDS, when=shown_time,
                           args={name: request.args[name] for name in FILTERS if request.args.get(name)}), \
        503 if unreadable else 200


def _found(search: Search) -> tuple[list[dict], str | None]:
    """The mails the search selects, newest first; or why the state cannot be read."""
    try:
        with open_trail_for(console().settings) as trail:
            mails = [mail for mail in trail.mails(search.where()) if search.keeps(mail)]
    except UNREADABLE as error:
        return [], unreadable_words(error)
    mails.reverse()
    return mails, None


def desk_names() -> dict[str, str]:
    """The desks of the rules in force by name, with the name they go by; empty when the rules cannot be read."""
    from mailrelay.rules import load_rules
    from mailrelay.tomlcheck import ConfigError

    try:
        desks = load_rules(console().settings.rules_path).desks
    except (ConfigError, OSError):
        return {}
    return {name: desks[name].display_name or name for name in sorted(desks)}


@bp.get("/mail/<int:mail_id>")
def mail(mail_id: int):
    settings = console().settings
    try:
        store = reader()
        record = store.find_id(mail_id)
        if record is None:
            return render_template("mail.html", mail_id=mail_id, unknown=True), 404
        with open_trail_for(settings) as trail:
            told = story(trail, dataclasses.asdict(record))
        raw = store.raw(record.sha256)
    except UNREADABLE as error:
        return render_template("mail.html", unreadable=unreadable_words(error), mail_id=mail_id), 503
    decided = _last(told["events"], "mail.decided")
    return render_template(
        "mail.html", mail_id=mail_id, record=record, events=events_in_german(told["events"]), when=shown_time,
        states=STATE_WORDS, kinds=KIND_WORDS, actions=ACTION_WORDS, builtin=BUILT_IN_RULES, desks=desk_names(),
        decided=decided, classified=_classified(decided),
        reasons=_reasons(decided), findings=_findings(decided), original=_original(record, raw),
        summary=summary_again(record, told["events"], raw, settings) if _last(told["events"], "mail.forwarded")
        else None)


def _last(events: list[dict], name: str) -> dict | None:
    """The detail of the latest record `name` (a released mail is decided twice: the latest counts)."""
    found = [event["detail"] for event in events if event["event"] == name and isinstance(event["detail"], dict)]
    return found[-1] if found else None


def recorded_classification(decided: dict | None) -> Classification | None:
    """The classification as the decision recorded it, with its evidence; None for a mail not classified."""
    found = (decided or {}).get("classification")
    if not isinstance(found, dict):
        return None
    evidence = tuple(Evidence(str(item.get("field")), str(item.get("value")), str(item.get("signal")),
                              str(item.get("where")), float(item.get("weight") or 0))
                     for item in decided.get("evidence") or [] if isinstance(item, dict))
    return Classification(kind=found.get("kind"), sender=found.get("sender"), level=found.get("level"),
                          country=found.get("country") or "unknown", confidence=float(found.get("confidence") or 0),
                          evidence=evidence, unauthenticated=tuple(found.get("unauthenticated") or ()))


def _classified(decided: dict | None) -> list[tuple[str, str]]:
    """Kind, sender type, country and confidence in German words."""
    found = recorded_classification(decided)
    if found is None:
        return []
    sender = SENDER_WORDS.get(found.sender, found.sender) + (f" ({LEVEL_WORDS.get(found.level, found.level)})"
                                                             if found.level else "")
    rows = [("Art", KIND_WORDS.get(found.kind, found.kind)), ("Absenderart", sender),
            ("Land", country_name(found.country)), ("Sicherheit", f"{found.confidence:.2f}".replace(".", ","))]
    if found.unauthenticated:
        rows.append(("Absender nicht bestätigt", ", ".join(found.unauthenticated)))
    return rows


def _reasons(decided: dict | None):
    """What decided each field, as the desk's summary says it (reasons.py)."""
    found = recorded_classification(decided)
    return desk_reasons(found) if found else ()


def _findings(decided: dict | None) -> list[dict]:
    """Every finding in a few German words (reasons.py); the classifier's own notes (its scores) are left out."""
    from mailrelay.ruletext import field_name

    found = recorded_classification(decided)
    return [{"field": field_name(item.field), "value": _value_words(item.field, item.value), "words": words,
             "where": item.where, "weight": item.weight}
            for item in (found.evidence if found else ()) if (words := phrase(item))]


def _value_words(field: str, value: str) -> str:
    words = {"kind": dict(KIND_WORDS, person="von einem Menschen geschrieben"), "sender": SENDER_WORDS,
             "level": LEVEL_WORDS}.get(field)
    if words is not None:
        return words.get(value, value)
    return country_name(value) if field == "country" else value


def _original(record, raw: bytes | None) -> dict:
    """The sender as written (with the display name), the attachments and the text's beginning, from the
    kept bytes; what is known without them once they were purged."""
    if raw is None:
        return {"kept": False}
    from mailrelay.model import RawMail
    from mailrelay.parse import parse

    try:
        inbound = parse(RawMail(record.source_key, raw))
    except Exception as error:  # a mail the parser cannot read is shown without its text
        return {"kept": True, "error": f"{type(error).__name__}: {error}"}
    lines = [line for line in inbound.text.splitlines() if line.strip()][:15]
    return {"kept": True, "from": str(inbound.from_) if inbound.from_ else "", "to": [str(item) for item in inbound.to],
            "date": inbound.date, "attachments": inbound.attachments, "text": "\n".join(lines),
            "problems": inbound.parse_problems}


# one mail's events in German


EVENT_WORDS = {
    "mail.received": "eingegangen", "mail.try": "Bearbeitung begonnen", "mail.decided": "entschieden",
    "mail.sending": "wird an das Referat gesendet", "mail.forwarded": "weitergeleitet",
    "mail.deferred": "Zustellung verschoben", "mail.refused": "Zustellung abgelehnt",
    "mail.ignored": "nicht weitergeleitet, nur archiviert", "mail.quarantined": "in die Quarantäne gelegt",
    "mail.archived": "im Postfach abgelegt", "mail.archive_failed": "Ablegen im Postfach fehlgeschlagen",
    "mail.duplicate": "noch einmal eingegangen (schon bearbeitet)", "mail.resumed": "Bearbeitung fortgesetzt",
    "mail.moved": "im Posteingang verschoben", "mail.vanished": "aus dem Posteingang verschwunden",
    "mail.failed": "Fehler bei der Bearbeitung", "mail.circuit_breaker": "Sicherung ausgelöst: zu viele Weiterleitungen",
    "ack.queued": "Eingangsbestätigung vorgemerkt", "ack.sending": "Eingangsbestätigung wird gesendet",
    "ack.sent": "Eingangsbestätigung gesendet", "ack.deferred": "Eingangsbestätigung verschoben",
    "ack.refused": "Eingangsbestätigung abgelehnt", "ack.skipped": "keine Eingangsbestätigung",
    "queue.release_requested": "Freigabe erbeten", "queue.released": "freigegeben",
    "queue.drop_requested": "Verwerfen erbeten", "queue.dropped": "verworfen",
    "queue.release_refused": "Freigabe nicht möglich", "queue.drop_refused": "Verwerfen nicht möglich",
    "queue.move_refused": "Verschieben nicht möglich",
}
ACTION_WORDS = {"forward": "weiterleiten", "ignore": "nur archivieren", "quarantine": "in die Quarantäne"}
# Rules the relay applies itself, not from the editors' routing file.
BUILT_IN_RULES = {
    "loop-guard": "Schleifenschutz: eine Mail des Relays selbst oder eine Antwort darauf",
    "machine-mail-guard": "Maschinenpost (automatische Antworten, Zustellfehler, Rundschreiben, Spam) "
                          "wird nie weitergeleitet",
    "low-confidence-review": "unsichere Erkennung: zur Prüfung an die Redaktion",
    "size-limit": "zu groß: nur der Kopf wurde abgerufen, ein Mensch entscheidet",
    "editor-release": "von der Redaktion aus einer Liste freigegeben",
}


def events_in_german(events: list[dict]) -> list[dict]:
    """Each record with its time, what happened in a few German words and the details that matter."""
    return [{"at": event["at"], "event": event["event"], "words": EVENT_WORDS.get(event["event"], event["event"]),
             "lines": _detail_lines(event["event"], event["detail"])} for event in events]


def _detail_lines(event: str, detail: object) -> list[str]:
    if not isinstance(detail, dict):
        return [f"Eintrag nicht lesbar: {detail!r}"]
    if event == "mail.decided":
        return [_decision_words(detail)] + ([f"freigegeben von {detail['released_by']}"]
                                            if detail.get("released_by") else [])
    if event in ("mail.forwarded", "mail.deferred", "mail.refused"):
        return _delivery_lines(detail)
    said = {"desk": "Referat", "message_id": "Message-ID", "mailbox": "Ordner", "error": "Fehler", "reason": "Grund",
            "by": "von", "to": "an", "reply": "Antwort des Servers", "try": "Versuch", "from": "von", "key": "Stelle",
            "source": "Stelle", "released_by": "freigegeben von", "would": "Referat nach den Regeln", "rule": "Regel"}
    return [f"{said[key]}: {value}" for key, value in detail.items() if key in said and value not in (None, "", [])]


def _decision_words(detail: dict) -> str:
    action = ACTION_WORDS.get(str(detail.get("action")), str(detail.get("action")))
    desk = f" an {detail['route']}" if detail.get("route") not in (None, "", "none") else ""
    reason = f": {detail['reason']}" if detail.get("reason") else ""
    return f"{action}{desk} nach Regel {detail.get('rule')}{reason}"


def _delivery_lines(detail: dict) -> list[str]:
    recipients = ", ".join(detail.get("recipients") or [])
    lines = [f"an {detail.get('desk')} ({recipients})", f"Antwort des Servers: {detail.get('reply')}"]
    if detail.get("refused"):
        lines.append(f"abgelehnte Empfänger: {', '.join(detail['refused'])}")
    if detail.get("next_attempt"):
        lines.append(f"nächster Versuch {shown_time(detail['next_attempt'])}")
    return lines


# the summary the desk received


def summary_again(record, events: list[dict], raw: bytes | None, settings) -> dict:
    """The summary of the latest forward, made again: the relay keeps only the original, not the text it
    sent. It is rendered from the kept bytes with the decision and classification as recorded then, and
    the templates in force now; `same_rules` says whether those are still the files of then."""
    sent = _last(events, "mail.forwarded") or {}
    sending = _last(events, "mail.sending") or {}
    decided = _last(events, "mail.decided") or {}
    told = {"desk": sent.get("desk"), "recipients": sent.get("recipients") or [], "reply": sent.get("reply"),
            "message_id": record.forward_message_id or sending.get("message_id"), "at": record.forwarded_at,
            "version_then": decided.get("rules_version") or ""}
    if raw is None:
        return dict(told, missing="Das Original ist nicht mehr aufbewahrt (keep_raw_days): die Zusammenfassung "
                                  "lässt sich nicht neu erzeugen.")
    try:
        return dict(told, **_render_again(record, raw, decided, told, settings))
    except Exception as error:  # a template or mail that no longer renders costs this section, not the page
        return dict(told, missing=f"Die Zusammenfassung lässt sich nicht neu erzeugen: {type(error).__name__}: {error}")


_RECORDED = ("kind", "sender", "level", "country", "confidence", "evidence", "unauthenticated")


def _render_again(record, raw: bytes, decided: dict, told: dict, settings) -> dict:
    import email
    import email.policy

    from mailrelay.model import Action, Decision, RawMail
    from mailrelay.parse import parse
    from mailrelay.pipeline import Identity, judge
    from mailrelay.policy import load_policy
    from mailrelay.render import render

    policy = load_policy(settings)
    desk = policy.rules.desks.get(told["desk"] or "")
    if desk is None:
        return {"missing": f"Das Referat {told['desk']} gibt es in den geltenden Regeln nicht mehr."}
    judged = judge(parse(RawMail(record.source_key, raw)), policy, Identity.of(settings))
    recorded = recorded_classification(decided)
    if recorded is None:
        return {"missing": "Zu dieser Mail ist keine Einordnung aufgezeichnet."}
    # What the classifier found then; what it derives besides (region, domain) from the mail as it is now.
    classification = recorded if judged.classification is None else dataclasses.replace(
        judged.classification, **{name: getattr(recorded, name) for name in _RECORDED})
    decision = Decision(Action.FORWARD, decided.get("rule") or record.rule or "", desk.name,
                        decided.get("reason") or "", told["version_then"])
    forward = render(judged.inbound, classification, decision, desk, policy.templates,
                     settings.from_address, settings.relay_id)
    message = email.message_from_bytes(forward.data, policy=email.policy.default)
    body = message.get_body(("plain",))
    return {"subject": str(message["Subject"] or ""), "text": body.get_content().replace("\r\n", "\n") if body else "",
            "version_now": policy.version, "same_rules": policy.version == told["version_then"],
            "same_message_id": forward.message_id == told["message_id"]}

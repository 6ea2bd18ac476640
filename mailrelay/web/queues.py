"""Pages: the two queues, Zur Prüfung and Quarantäne, with release and drop recorded as the commands record them.

A request goes through mailrelay.queues.core (request_release, request_drop), the code path of `quarantine
release` and `review drop`, with `by` the logged-in editor; the next poll carries it out. A refusal is the
core's own message, its command-line hints reworded for the page."""
from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, session, url_for

from mailrelay.queues.core import DONE, QueueError, entry, request_drop, request_release
from mailrelay.state import StoreUnavailable
from mailrelay.tomlcheck import ConfigError
from mailrelay.web.app import console, reader, writer

bp = Blueprint("queues", __name__)

_TITLES = {"review": "Zur Prüfung", "quarantine": "Quarantäne"}
_EMPTY = {"review": "Keine Mail wartet auf Prüfung.", "quarantine": "Die Quarantäne ist leer."}
# The core speaks to the command line; on the page the desk is chosen in a list and the reason in a field.
_PAGE_WORDS = (
    ("; mit --to REFERAT geht sie an ein Referat", "; wählen Sie ein Referat, geht sie dorthin"),
    ("zur Prüfung gesandte Mails gehen mit --to REFERAT weiter",
     "Zur Prüfung gesandte Mails gehen nur an ein gewähltes Referat weiter: bitte eines auswählen"),
    ("--reason sagt, warum die Mail verworfen wird", "Bitte einen Grund angeben, warum die Mail verworfen wird"),
    ("; mailrelay quarantine list", "; sie steht unter „Quarantäne“"),
    ("; mailrelay review list", "; sie steht unter „Zur Prüfung“"),
)


@bp.get("/pruefung")
def review():
    return _page("review")


@bp.get("/quarantaene")
def quarantine():
    return _page("quarantine")


@bp.post("/pruefung/<int:mail_id>/freigeben")
def review_release(mail_id: int):
    return _release("review", mail_id)


@bp.post("/pruefung/<int:mail_id>/erledigt")
def review_done(mail_id: int):
    return _drop("review", mail_id)


@bp.post("/quarantaene/<int:mail_id>/freigeben")
def quarantine_release(mail_id: int):
    return _release("quarantine", mail_id)


@bp.post("/quarantaene/<int:mail_id>/verwerfen")
def quarantine_drop(mail_id: int):
    return _drop("quarantine", mail_id)


def _page(queue: str):
    """The waiting mails, oldest first, each with its release and drop forms."""
    problem, mails = None, []
    if _no_state():
        problem = "Das Relay hat noch keine Mail bearbeitet: es gibt noch keinen Zustand."
    else:
        try:
            mails = [_row(entry(record)) for record in reader().queue(queue)]
        except StoreUnavailable:
            problem = _UNREACHABLE
    desks, desk_problem = _desks()
    return render_template("queue.html", queue=queue, title=_TITLES[queue], empty=_EMPTY[queue], mails=mails,
                           desks=desks, problem=problem or desk_problem)


def _release(queue: str, mail_id: int):
    desk = request.form.get("desk", "").strip() or None

    def ask() -> str:
        from mailrelay.pipeline import Identity
        from mailrelay.policy import load_policy

        settings = console().settings
        _, decision = request_release(writer(), load_policy(settings), Identity.of(settings), queue, mail_id, desk,
                                      session["editor"])
        how = f"an {decision.desk}" if desk else f"an {decision.desk} (Regel {decision.rule})"
        return f"Mail {mail_id} freigegeben: der nächste Abruf leitet sie {how} weiter."
    return _request(queue, ask)


def _drop(queue: str, mail_id: int):
    reason = request.form.get("reason", "")
    reason = reason if reason.strip() or queue == "quarantine" else DONE

    def ask() -> str:
        request_drop(writer(), queue, mail_id, reason, session["editor"])
        if queue == "review":
            return f"Mail {mail_id} erledigt: sie ist aus der Liste „Zur Prüfung“ genommen."
        return f"Mail {mail_id} verworfen: der nächste Abruf legt sie ins Postfach für ignorierte Mails."
    return _request(queue, ask)


def _request(queue: str, ask) -> object:
    """Record the request; what came of it is flashed, and the browser goes back to the queue (PRG)."""
    if _no_state():
        flash("Das Relay hat noch keine Mail bearbeitet: es gibt noch keinen Zustand.")
    else:
        try:
            flash(ask())
        except QueueError as error:
            flash(_page_words(str(error)))
        except ConfigError:
            flash(_BROKEN_RULES)
        except StoreUnavailable:
            flash(_UNREACHABLE)
    return redirect(url_for(f"queues.{queue}"))


def _row(mail: dict) -> dict:
    return dict(mail, date_shown=_time(mail["date"]), since_shown=_time(mail["since"]))


def _time(stamp: str | None) -> str:
    return (stamp or "")[:16].replace("T", " ") or "–"


def _desks() -> tuple[list[tuple[str, str]], str | None]:
    """The desks of the routing file in force, (name, display name) in its order; or why there are none."""
    from mailrelay.rules import load_rules

    try:
        rules = load_rules(console().settings.rules_path)
    except ConfigError:
        return [], _BROKEN_RULES
    return [(name, desk.display_name or name) for name, desk in rules.desks.items()], None


def _no_state() -> bool:
    """A state file that is not there yet: reading it would make an empty one."""
    settings = console().settings
    return settings.state_url is None and not settings.state_path.exists()


def _page_words(message: str) -> str:
    for command_words, page_words in _PAGE_WORDS:
        message = message.replace(command_words, page_words)
    return message


_BROKEN_RULES = ("Die geltenden Regeln lassen sich nicht laden (config/routing.toml); `mailrelay check` nennt "
                 "die Fehler. Bis dahin ist keine Freigabe möglich.")
_UNREACHABLE = "Die Zustandsdatenbank ist nicht erreichbar; bitte später noch einmal versuchen."

"""A reload the relay refused: kept in the state for `status` until a later reload succeeds, and told to
the alert desk in one note per refused change. The same broken files loaded again (the same problems,
word for word) are the same change: they are not told twice."""
from __future__ import annotations

from datetime import datetime, timezone

from mailrelay.health import RefusedReload
from mailrelay.model import Forward
from mailrelay.render import render_notice
from mailrelay.runner import Relay
from mailrelay.state import Store
from mailrelay.tomlcheck import Problem
from mailrelay.transports.base import Delivery, Status


def refused(store: Store, problems: tuple[Problem, ...], version_in_force: str) -> tuple[RefusedReload, bool]:
    """Record the refusal; True when it is a new change (the one before had other problems, or none)."""
    texts = tuple(str(problem) for problem in problems)
    before = RefusedReload.from_json(store.flag("reload_refused"))
    if before is not None and sorted(before.problems) == sorted(texts):
        return before, False
    files = tuple(sorted({problem.file for problem in problems}))
    now = datetime.now(timezone.utc).isoformat(timespec="milliseconds")
    refusal = RefusedReload(now, files, texts, version_in_force)
    store.set_flags(reload_refused=refusal.to_json())
    return refusal, True


def in_force(store: Store, version: str) -> None:
    """The editors' files loaded: this version is in force, and no refused change stands any more."""
    store.set_flags(rules_version=version, reload_refused=None)


def note(refusal: RefusedReload, relay: Relay) -> Forward | None:
    """The German note to the alert desk naming every problem as file:line; None without an alert desk."""
    rules = relay.policy().rules
    if not rules.alert_desk:
        return None
    body = ("mailrelay hat die geänderten Dateien der Redaktion beim Neuladen nicht übernommen.\n"
            f"In Kraft bleiben die bisherigen Regeln, Signale und Vorlagen (Version {refusal.version_in_force}).\n\n"
            "Bitte diese Fehler beheben und danach neu laden (systemctl reload mailrelay);\n"
            "`mailrelay check` zeigt sie ebenso:\n\n"
            + "".join(f"- {problem}\n" for problem in refusal.problems))
    return render_notice("[mailrelay] Regeländerung nicht übernommen", body, rules.desks[rules.alert_desk],
                         relay.identity.from_address, relay.identity.relay_id)


def tell_alert_desk(relay: Relay) -> bool | None:
    """Send the note about a refused change not told yet; None when there is nothing to tell. A note that
    cannot be sent is tried again after the next poll; the log has each try."""
    refusal = RefusedReload.from_json(relay.store.flag("reload_refused"))
    forward = note(refusal, relay) if refusal is not None and not refusal.noted else None
    if forward is None:
        return None
    delivery = _send(relay, forward)
    accepted = delivery.status is Status.ACCEPTED
    detail = {"desk": forward.desk, "problems": list(refusal.problems), "reply": delivery.reply}
    getattr(relay.log, "warning" if accepted else "error")(
        "reload.note_sent" if accepted else "reload.note_failed", **detail)
    relay.store.event(None, "reload.note_sent" if accepted else "reload.note_failed", detail)
    if accepted and RefusedReload.from_json(relay.store.flag("reload_refused")) == refusal:
        relay.store.set_flags(reload_refused=RefusedReload(refusal.at, refusal.files, refusal.problems,
                                                           refusal.version_in_force, noted=True).to_json())
    return accepted


def _send(relay: Relay, forward: Forward) -> Delivery:
    relay.store.sync()  # a node that lost its lease sends nothing
    try:
        with relay.transport.open() as outbox:
            return outbox.send(forward)
    except Exception as error:  # the note must never cost the service; the log has it then
        return Delivery(Status.TEMPORARY, f"{type(error).__name__}: {error}")

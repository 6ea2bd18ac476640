"""Outage notes: the operators hear once that the relay cannot do its job, and once that it can again."""
from __future__ import annotations

import dataclasses
from datetime import datetime, timezone

from mailrelay import health
from mailrelay.render import render_notice
from mailrelay.rules import Desk
from mailrelay.transports.base import Delivery, Status


def check(relay) -> None:  # the runner's Relay: its store, thresholds, log, policy and transport
    """Tell the operators once when the relay has not been able to do its job for longer than the
    outage time, and once when it can again; in the log always, by mail when the SMTP server works."""
    # A pause has told the editors already, with what to do; the note is for what nobody was told of.
    verdict = health.assess(dataclasses.replace(health.facts(relay.store), paused=None), relay.thresholds)
    since = relay.store.flag("outage_since")
    if verdict.code == health.FAILING and since is None:
        relay.store.set_flags(outage_since=_now())
        relay.log.error("health.outage", problems=verdict.problems)
        relay.store.event(None, "health.outage", {"problems": verdict.problems})
        _notify_operators(relay, "[mailrelay] Störung: Weiterleitung beeinträchtigt",
                          "mailrelay kann seine Arbeit seit längerem nicht tun:\n\n", verdict.problems)
    elif verdict.code != health.FAILING and since is not None:
        relay.store.set_flags(outage_since=None)
        relay.log.warning("health.recovered", outage_since=since, status=verdict.word)
        relay.store.event(None, "health.recovered", {"outage_since": since, "status": verdict.word})
        _notify_operators(relay, "[mailrelay] Störung behoben",
                          f"mailrelay arbeitet wieder (gestört seit {since}).\n\n", verdict.problems)


def _notify_operators(relay, subject: str, opening: str, problems: list[str]) -> None:
    rules = relay.policy().rules
    addresses = relay.operators or (rules.desks[rules.alert_desk].addresses if rules.alert_desk else ())
    if not addresses:
        return
    body = opening + "".join(f"- {problem}\n" for problem in problems) + "\nmailrelay status zeigt den Stand.\n"
    note = render_notice(subject, body, Desk("operators", "operators", addresses), relay.identity.from_address,
                         relay.identity.relay_id)
    relay.store.sync()  # a node that lost its lease sends nothing
    try:
        with relay.transport.open() as outbox:
            delivery = outbox.send(note)
    except Exception as error:  # the SMTP server may be the outage; the log has the note then
        delivery = Delivery(Status.TEMPORARY, f"{type(error).__name__}: {error}")
    if delivery.status is not Status.ACCEPTED:
        relay.log.error("health.note_failed", subject=subject, reply=delivery.reply)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")

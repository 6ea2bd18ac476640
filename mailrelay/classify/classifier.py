"""Inbound -> Classification: pure; every conclusion carries the evidence that led to it."""
from __future__ import annotations

import dataclasses
from collections import Counter
from dataclasses import dataclass

from mailrelay.classify.findings import about_findings, kind_findings, scores, text_language
from mailrelay.model import UNKNOWN_COUNTRY, Classification, Evidence, Inbound, Kind, Level, Sender
from mailrelay.classify.machine import Facts, ServerReport
from mailrelay.classify.origin import (Origin, country_evidence, organisation_evidence, read_origin, region_of,
                                       sender_host)
from mailrelay.classify.reference import Reference, registrable_domain
from mailrelay.classify.signals import Signals
from mailrelay.classify.signature import Letter, read_letter

# Machine kinds are decided before a person's mail; on equal scores the earlier one wins, because a
# bounce also carries Auto-Submitted and an auto-reply may carry "Precedence: bulk".
MACHINE_ORDER = (Kind.BOUNCE, Kind.AUTO_REPLY, Kind.BULK, Kind.SPAM)


@dataclass(frozen=True)
class Verdict:
    """One field's decision: the value (None when it cannot be told), how sure, and why."""

    value: str | None
    confidence: float
    note: Evidence


_SHIPPED = Reference()


def classify(inbound: Inbound, signals: Signals, server: ServerReport = ServerReport(),
             reference: Reference = _SHIPPED) -> Classification:
    """What the mail is, who sent it from where, how sure, and the evidence for each conclusion."""
    letter = read_letter(inbound.text, signals.text)
    facts = Facts(inbound, server, reference.is_disposable)
    found = kind_findings(facts, letter, signals) + _letter_notes(letter)
    kind = _kind(scores(found), signals)
    evidence = found + [kind.note]
    if Kind(kind.value).is_machine:
        host = sender_host(inbound)
        return Classification(Kind(kind.value), Sender.UNKNOWN, None, UNKNOWN_COUNTRY, kind.confidence,
                              tuple(evidence), domain=registrable_domain(host) if host else "", host=host)
    return _person_mail(inbound, letter, signals, kind, evidence, read_origin(inbound, letter, reference))


def _person_mail(inbound: Inbound, letter: Letter, signals: Signals, kind: Verdict,
                 evidence: list[Evidence], origin: Origin) -> Classification:
    """Who wrote it and from where; the level only for a public body; the region for DE, AT and CH."""
    sender, sender_found = _about("sender", inbound, letter, signals, origin)
    country, country_found = _about("country", inbound, letter, signals, origin)
    level, level_found = (_about("level", inbound, letter, signals, origin) if sender.value == Sender.PUBLIC_BODY
                          else (None, []))
    region, region_found = region_of(origin, country.value or UNKNOWN_COUNTRY)
    evidence = evidence + sender_found + country_found + level_found + region_found
    return Classification(
        kind=Kind(kind.value),
        sender=Sender(sender.value) if sender.value else Sender.UNKNOWN,
        level=Level(level.value) if level and level.value else None,
        country=country.value or UNKNOWN_COUNTRY,
        confidence=min(kind.confidence, sender.confidence, country.confidence),
        evidence=tuple(evidence),
        language=text_language(letter, signals),
        region=region,
        domain=origin.domain,
        host=origin.host,
    )


def _about(field: str, inbound: Inbound, letter: Letter, signals: Signals,
           origin: Origin) -> tuple[Verdict, list[Evidence]]:
    """One field about the sender decided, with its findings and the decision note after them."""
    found = about_findings(field, inbound, letter, signals, origin.free_mail)
    found += country_evidence(origin) if field == "country" else organisation_evidence(origin, field)
    return _decide_by_tiers(field, found, signals)


def _decide_by_tiers(field: str, found: list[Evidence], signals: Signals) -> tuple[Verdict, list[Evidence]]:
    """Reference data first, the sender's own signature and domain next, the body last: a tier decides
    when it passes the threshold clearly; only then are later tiers left out of the count."""
    limits = signals.thresholds
    threshold = getattr(limits, field)
    for tier in (1, 2):
        upper = [item for item in found if _tier(item) <= tier]
        verdict = _decide(field, scores(upper), threshold, limits.margin)
        if verdict.value is not None and len(upper) < len(found):
            note = dataclasses.replace(verdict.note, signal=f"{verdict.note.signal}, from the "
                                       f"{_TIER_NAMES[tier]} (the body is not counted)")
            return dataclasses.replace(verdict, note=note), found + [note]
    verdict = _decide(field, scores(found), threshold, limits.margin)
    return verdict, found + [verdict.note]


_TIER_NAMES = {1: "reference data", 2: "signature and sender domain"}


def _tier(item: Evidence) -> int:
    """1: what reference data says of the sender's domain; 2: the sender's signature and domain; 3: the rest."""
    if item.where.startswith("reference"):
        return 1
    if item.where.startswith("signature") or item.where == "sender domain":
        return 2
    return 3


def _kind(totals: Counter, signals: Signals) -> Verdict:
    """A machine kind only on positive evidence that passes its threshold; anything else is a person's
    application or inquiry, which the editors see. "Cannot tell" is never a reason to archive a mail."""
    limits = signals.thresholds
    machine = [kind for kind in MACHINE_ORDER if totals[kind] >= limits.kind]
    if machine:
        best = max(machine, key=lambda kind: (totals[kind], -MACHINE_ORDER.index(kind)))
        # Signs of a person (a greeting, the topic) do not contest a machine kind: auto-replies quote them.
        return _chosen("kind", str(best), totals - Counter({"person": totals["person"]}), limits.kind)
    application, inquiry = totals[Kind.APPLICATION], totals[Kind.INQUIRY]
    if application >= limits.application and application > inquiry:
        return _chosen("kind", Kind.APPLICATION, Counter({"application": application, "inquiry": inquiry}),
                       limits.application)
    if totals["person"] + application + inquiry <= 0:
        return _cannot_tell(totals, limits.kind)
    return _chosen("kind", Kind.INQUIRY, Counter({"inquiry": inquiry, "application": application}),
                   limits.application, floor=0.5)


def _cannot_tell(totals: Counter, threshold: float) -> Verdict:
    """No sign of a person and not enough of a machine: an inquiry, so that the editors look at it."""
    machine = max(totals[kind] for kind in MACHINE_ORDER)
    note = Evidence("kind", str(Kind.INQUIRY), f"undecided: no sign of a person, machine evidence {machine:.2f} "
                    f"below {threshold:.2f}; the editors decide", "classifier", 0.0)
    return Verdict(str(Kind.INQUIRY), 0.5, note)


def _chosen(field: str, value: str, totals: Counter, threshold: float, floor: float = 0.0) -> Verdict:
    top = totals[value]
    second = max((score for other, score in totals.items() if other != value), default=0.0)
    confidence = max(floor, _confidence(top, second, threshold))
    note = Evidence(field, str(value), f"decided: {value} {top:.2f} against {second:.2f}", "classifier",
                    round(top, 3))
    return Verdict(str(value), confidence, note)


def _decide(field: str, totals: Counter, threshold: float, margin: float) -> Verdict:
    """The best value if it passes the threshold and beats the runner-up by the margin; else unknown."""
    ranked = totals.most_common(2) + [("", 0.0), ("", 0.0)]
    (best, top), (runner, second) = ranked[0], ranked[1]
    if top >= threshold and top >= margin * second:
        return _chosen(field, best, totals, threshold)
    reason = (f"{best} {top:.2f} too close to {runner} {second:.2f}" if top >= threshold
              else f"{best or 'nothing'} {top:.2f} below the threshold {threshold:.2f}")
    note = Evidence(field, "unknown", f"undecided: {reason}", "classifier", round(top, 3))
    return Verdict(None, _unsure(top, threshold), note)


def _confidence(top: float, second: float, threshold: float) -> float:
    """Near 1 for strong, unopposed evidence; lower when it is thin (near the threshold) or contested."""
    if top <= 0:
        return 0.0
    purity = top / (top + second)
    strength = top / (top + threshold / 2)
    return round(purity * strength, 3)


def _unsure(top: float, threshold: float) -> float:
    """How sure 'cannot be told' is: less so the closer the evidence came to deciding."""
    return round(1.0 - 0.5 * min(1.0, top / threshold), 3)


def _letter_notes(letter: Letter) -> list[Evidence]:
    return [Evidence("text", "left out", note, "text", 0.0) for note in letter.notes]

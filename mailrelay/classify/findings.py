"""The signal groups looked for in one mail: each finding is an Evidence saying what, where, and how much it counts."""
from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator

from mailrelay.classify.machine import DETECTORS, Facts, ServerReport
from mailrelay.model import Evidence, Inbound, header_values
from mailrelay.classify.signals import Group, Signals
from mailrelay.classify.signature import Letter, Spot

# "+49 30 1234", "0049 711 ...": the digits after + or 00; dialling codes are prefix-free, so the
# code is simply the start of those digits.
_PHONE = re.compile(r"(?<![\w+.,/])(?:\+|00)\s?(\d[\d ()/\-]{4,}\d)")
_WORD = re.compile(r"[^\W\d_]+")
_MIN_LANGUAGE_WORDS = 3


def kind_findings(facts: Facts, letter: Letter, signals: Signals) -> list[Evidence]:
    """Evidence for the kinds: headers, our server's verdicts, sender address, subject, the sender's text,
    attachment names, MIME parts and the built-in detectors."""
    inbound = facts.inbound
    found: list[Evidence] = []
    for group in signals.groups_for("kind"):
        found += [hit for hit in (_header_hit(group, inbound), _trusted_header_hit(group, facts.server),
                                  _sender_hit(group, inbound), _subject_hit(group, inbound.subject),
                                  _attachment_hit(group, inbound), _part_hit(group, inbound))
                  if hit is not None]
        found += _detector_hits(group, facts)
        found += _best_text_hits(group, letter.body, lambda spot: 1.0)
    return found


def about_findings(field: str, inbound: Inbound, letter: Letter, signals: Signals,
                   free_mail: bool = False) -> list[Evidence]:
    """Evidence about the sender (field sender, level or country): its signature, own text and domain.
    `free_mail`: the reference data knows the sender's domain as a free-mail provider."""
    language = text_language(letter, signals)
    found: list[Evidence] = []
    for group in signals.groups_for(field):
        found += _best_text_hits(group, letter.spots, lambda spot: _factor(spot, signals), plain=True)
        hit = _domain_hit(group, inbound, signals, free_mail)
        if hit is not None:
            found.append(hit)
        if group.language and group.language == language:
            found.append(_evidence(group, language, "language of the text", 1.0))
    return found


def scores(found: list[Evidence]) -> Counter:
    total: Counter = Counter()
    for evidence in found:
        total[evidence.value] += evidence.weight
    return total


def text_language(letter: Letter, signals: Signals) -> str | None:
    """The language whose frequent words clearly outnumber every other's in the sender's own text."""
    words = Counter(word.lower() for spot in letter.spots for word in _WORD.findall(spot.text))
    counts = sorted(((sum(words[w] for w in vocabulary), code) for code, vocabulary in signals.languages),
                    reverse=True)
    if not counts or counts[0][0] < _MIN_LANGUAGE_WORDS:
        return None
    if len(counts) > 1 and counts[0][0] < 2 * counts[1][0]:
        return None
    return counts[0][1]


def _evidence(group: Group, matched: str, where: str, factor: float) -> Evidence:
    return Evidence(group.field, group.value, f"{group.name} '{matched.strip()[:60]}'", where,
                    round(group.weight * factor, 3))


def _factor(spot: Spot, signals: Signals) -> float:
    where = signals.where
    if spot.region == "signature":
        return where.unit if spot.unit else where.signature
    factors = [where.body] + [where.weaker] * spot.weaker + [where.question] * spot.question
    return min(factors)


def _best_text_hits(group: Group, spots: tuple[Spot, ...], factor, plain: bool = False) -> list[Evidence]:
    """The group's best finding in each region (body, signature): a group counts once per region."""
    best: dict[str, Evidence] = {}
    for spot in spots:
        text = spot.plain if plain else spot.text
        matched = _text_match(group, text)
        if matched is None:
            continue
        evidence = _evidence(group, matched, spot.where, factor(spot))
        if spot.region not in best or evidence.weight > best[spot.region].weight:
            best[spot.region] = evidence
    return list(best.values())


def _text_match(group: Group, text: str) -> str | None:
    for pattern in (group.words, *group.patterns):
        match = pattern.search(text) if pattern is not None else None
        if match:
            return match.group(0)
    return next(_phone_numbers(group, text), None)


def _phone_numbers(group: Group, text: str) -> Iterator[str]:
    if not group.phone_codes:
        return
    for match in _PHONE.finditer(text):
        digits = re.sub(r"\D", "", match.group(1))
        if any(digits.startswith(code) for code in group.phone_codes):
            yield match.group(0)


def _header_hit(group: Group, inbound: Inbound) -> Evidence | None:
    return _first_header_hit(group, group.headers, inbound.headers, "")


def _trusted_header_hit(group: Group, server: ServerReport) -> Evidence | None:
    return _first_header_hit(group, group.trusted_headers, server.headers, " from our server")


def _first_header_hit(group: Group, tests, headers, source: str) -> Evidence | None:
    for name, pattern in tests:
        for value in header_values(headers, name):
            if pattern.search(value):
                return _evidence(group, value, f"header {_header_name(name)}{source}", 1.0)
    return None


def _part_hit(group: Group, inbound: Inbound) -> Evidence | None:
    if group.parts is None:
        return None
    matched = next((kind for kind in inbound.part_types if group.parts.match(kind)), None)
    return _evidence(group, matched, f"MIME part {matched}", 1.0) if matched else None


def _detector_hits(group: Group, facts: Facts) -> list[Evidence]:
    hits = []
    for name in group.detectors:
        detector, where = DETECTORS[name]
        found = detector(facts)
        if found:
            hits.append(_evidence(group, found, where, 1.0))
    return hits


def _header_name(name: str) -> str:
    return "-".join(part.capitalize() for part in name.split("-"))


def _sender_hit(group: Group, inbound: Inbound) -> Evidence | None:
    address = inbound.from_.address if inbound.from_ else ""
    if group.senders is not None and address and group.senders.match(address):
        return _evidence(group, address, "sender address", 1.0)
    return None


def _subject_hit(group: Group, subject: str) -> Evidence | None:
    matched = _text_match(group, subject)
    if matched is None and group.subject is not None:
        match = group.subject.search(subject)
        matched = match.group(0) if match else None
    return _evidence(group, matched, "subject", 1.0) if matched is not None else None


def _attachment_hit(group: Group, inbound: Inbound) -> Evidence | None:
    if group.attachments is None:
        return None
    for attachment in inbound.attachments:
        if group.attachments.match(attachment.filename):
            return _evidence(group, attachment.filename, f"attachment '{attachment.filename}'", 1.0)
    return None


def _domain_hit(group: Group, inbound: Inbound, signals: Signals, free_mail: bool) -> Evidence | None:
    """The sender's domain; a free-mail domain is only looked at by lists meant for free-mail providers."""
    domain = inbound.from_.address.rpartition("@")[2] if inbound.from_ else ""
    if not domain:
        return None
    free = free_mail or bool(signals.free_mail and signals.free_mail.match(domain))
    pattern = group.free_mail_domains if free else group.domains
    if pattern is not None and pattern.match(domain):
        return _evidence(group, domain, "sender domain", 1.0)
    return None

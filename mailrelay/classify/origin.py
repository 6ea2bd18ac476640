"""Who the sender is and where, from reference data and the region reader: evidence for the classifier."""
from __future__ import annotations

from dataclasses import dataclass

from mailrelay.classify.reference import Organisation, Reference, registrable_domain
from mailrelay.classify.region import REFERENCE_WEIGHT, decide_region, where_findings
from mailrelay.classify.signature import Letter
from mailrelay.model import Evidence, Inbound

# Where-findings that count for the country beside the signals file's own are the reference entry and
# VAT IDs: the others (telephone codes, country domains, postcodes) are in signals.toml already and
# would count twice.
_MAX_BODY_LINE = 120


@dataclass(frozen=True)
class Origin:
    """The sender's host and registrable domain, what reference data knows of it, and where-evidence."""

    host: str
    domain: str
    free_mail: bool
    organisation: Organisation | None
    where: tuple[Evidence, ...]


def sender_host(inbound: Inbound) -> str:
    return inbound.from_.address.rpartition("@")[2].lower() if inbound.from_ else ""


def read_origin(inbound: Inbound, letter: Letter, reference: Reference) -> Origin:
    """Reference data on the sender's domain (never for free mail), and the where-evidence of the
    domain, the signature and the sender's own text."""
    host = sender_host(inbound)
    free = bool(host) and reference.is_free_mail(host)
    organisation = reference.organisation(host) if host and not free else None
    # Telephone numbers and addresses stand on short lines; the number matcher takes milliseconds on a long
    # sentence, so only short sentences of the body are read.
    lines = [(spot.text, spot.where) for spot in letter.signature + letter.body
             if spot.region == "signature" or len(spot.text) <= _MAX_BODY_LINE]
    where = where_findings("" if free else host, lines, reference)
    return Origin(host, registrable_domain(host) if host else "", free, organisation, tuple(where))


def organisation_evidence(origin: Origin, field: str) -> list[Evidence]:
    """What the reference entry says of `field` ("sender" or "level"); it outweighs the signature."""
    found = origin.organisation
    if found is None:
        return []
    value = str(found.kind) if field == "sender" else (str(found.level) if found.level else None)
    if value is None:
        return []
    return [Evidence(field, value, f"{found.name} ({found.source})", "reference data", REFERENCE_WEIGHT)]


def country_evidence(origin: Origin) -> list[Evidence]:
    return [item for item in origin.where if item.field == "country"
            and (item.where == "reference data" or item.signal.startswith("VAT ID"))]


def region_of(origin: Origin, country: str) -> tuple[str | None, list[Evidence]]:
    """The region in the decided country: from the reference entry, the domain and the signature if they
    tell one, else from the sender's own text; with the findings and the decision note."""
    found = [item for item in origin.where if item.field == "region"]
    upper = [item for item in found if not item.where.startswith("body")]
    region, note = decide_region(upper, country)
    if region is None and len(upper) < len(found):
        region, note = decide_region(found, country)
    return region, found + [note]

"""Why a mail was judged as it was, in a few words of plain German for the desks (pure; no identifiers)."""
from __future__ import annotations

import re
from dataclasses import dataclass

from mailrelay.model import UNKNOWN_COUNTRY, Classification, Evidence

SHOWN_PER_FIELD = 3
# The fields a desk reads reasons for, with the label the summary gives them.
FIELD_LABELS = (("kind", "Art"), ("sender", "Absenderart"), ("level", "Ebene"), ("country", "Land"))
COUNTRY_NAMES = {
    "DE": "Deutschland", "AT": "Österreich", "CH": "Schweiz", "FR": "Frankreich", "NL": "Niederlande",
    "BE": "Belgien", "LU": "Luxemburg", "PL": "Polen", "CZ": "Tschechien", "DK": "Dänemark", "IT": "Italien",
    "ES": "Spanien", "PT": "Portugal", "SE": "Schweden", "FI": "Finnland", "IE": "Irland",
    "GB": "Vereinigtes Königreich", "HU": "Ungarn", "SK": "Slowakei", "SI": "Slowenien", "GR": "Griechenland",
    "BG": "Bulgarien", "CY": "Zypern", "EE": "Estland", "HR": "Kroatien", "LT": "Litauen", "LV": "Lettland",
    "MT": "Malta", "RO": "Rumänien", "NO": "Norwegen", "IS": "Island", "LI": "Liechtenstein", "US": "USA",
}
LANGUAGE_NAMES = {"de": "Deutsch", "en": "Englisch", "fr": "Französisch", "nl": "Niederländisch", "pl": "Polnisch",
                  "it": "Italienisch", "es": "Spanisch"}
# "Zur Prüfung:", "[Prüfen]", "Bitte prüfen -": the summary says it once itself, so a reason's own is dropped.
_REVIEW_WORDS = r"(?:zur\s+pr(?:ü|ue)fung|bitte\s+pr(?:ü|ue)fen|zu\s+pr(?:ü|ue)fen|pr(?:ü|ue)fen|pr(?:ü|ue)fung)"
_REVIEW_PREFIX = re.compile(
    rf"^\s*(?:\[\s*{_REVIEW_WORDS}\s*\][\s:\-–—]*"  # "[Prüfen] ..."
    rf"|zur\s+pr(?:ü|ue)fung\b[\s:\-–—]*"  # "Zur Prüfung: ...", "Zur Prüfung ..."
    rf"|{_REVIEW_WORDS}\s*(?:[:\-–—]+\s*|$))",  # "Prüfen: ...", "Bitte prüfen – ..."
    re.IGNORECASE)
_REVIEW_SUFFIX = re.compile(r"[\s;,.:\-–—]*\b(?:bitte\s+pr(?:ü|ue)fen|zur\s+pr(?:ü|ue)fung)\s*[.!]*\s*$",
                            re.IGNORECASE)  # "...; bitte prüfen."
_MATCHED = re.compile(r"^\S+ '(?P<text>.*)'$", re.DOTALL)  # a signal group's finding: "group.name 'text'"
_PHONE = re.compile(r"^(?:\+|00)\s?\d[\d ()/\-]*$")
_POSTCODE = re.compile(r"^(?:[A-Z]{1,2}-)?\d{2,5}(?:[\s-]\d{3}|\s?[A-Z]{2})?\s+\w")


@dataclass(frozen=True)
class FieldReasons:
    """The few findings that decided one field, each as a short phrase ("„Hochschule“ in der Signatur")."""

    field: str
    label: str
    phrases: tuple[str, ...]


def review_reason(reason: str) -> str:
    """The reason without a "Zur Prüfung:" (or a closing "bitte prüfen.") of its own: the summary says it once."""
    text = _REVIEW_SUFFIX.sub("", reason.strip())
    stripped = _REVIEW_PREFIX.sub("", text, count=1)
    while stripped != text:
        text, stripped = stripped, _REVIEW_PREFIX.sub("", stripped, count=1)
    return text[:1].upper() + text[1:]


def country_name(code: str) -> str:
    """The country in German; a code without a name stays as written, an unknown one says so."""
    if code == UNKNOWN_COUNTRY:
        return "nicht erkennbar"
    return COUNTRY_NAMES.get(code, code)


def desk_reasons(classification: Classification) -> tuple[FieldReasons, ...]:
    """For kind, sender, level and country as decided: the findings that decided each, strongest first."""
    found = []
    for field, label in FIELD_LABELS:
        value = _decided(classification, field)
        if value is None:
            continue
        phrases = _best_phrases(item for item in classification.evidence
                                if item.field == field and item.value == value)
        if phrases:
            found.append(FieldReasons(field, label, phrases))
    return tuple(found)


def _decided(classification: Classification, field: str) -> str | None:
    value = getattr(classification, field)
    if value is None or str(value) in ("unknown", UNKNOWN_COUNTRY):
        return None
    return str(value)


def _best_phrases(items) -> tuple[str, ...]:
    """Reference data first, then the signature and domain, then the body; each finding said once."""
    ranked = sorted(items, key=lambda item: (_tier(item), -item.weight))
    phrases: list[str] = []
    seen: set[str] = set()
    for item in ranked:
        text = phrase(item)
        key = (_matched(item.signal) or text or "").casefold()
        if text and text not in phrases and key not in seen:
            phrases.append(text)
            seen.add(key)
        if len(phrases) == SHOWN_PER_FIELD:
            break
    return tuple(phrases)


def _tier(item: Evidence) -> int:
    if item.where.startswith("reference"):
        return 1
    return 2 if item.where.startswith("signature") or item.where == "sender domain" else 3


def phrase(item: Evidence) -> str | None:
    """One finding in a few German words; None for the classifier's own notes (scores, not findings)."""
    if item.where == "classifier" or item.field == "text":
        return None
    if item.where == "reference data":
        return f"Verzeichniseintrag „{_reference_name(item.signal)}“"
    for test, say in _BY_WHERE:
        if test(item.where):
            return say(item, _matched(item.signal))
    return _text_phrase(item, _matched(item.signal))


def _reference_name(signal: str) -> str:
    """'Land Niedersachsen (curated)' -> 'Land Niedersachsen': the source's name is for explain."""
    name, bracket, _source = signal.rpartition(" (")
    return name if bracket and signal.endswith(")") else signal


def _matched(signal: str) -> str | None:
    """What a signal group found, as written in the mail; None for findings of another shape."""
    found = _MATCHED.match(signal)
    if found is None:
        return None
    return " ".join(found.group("text").split()).strip(" ,;|·") or None


def _domain(item: Evidence, matched: str | None) -> str:
    if item.signal.startswith("domain ending ."):
        return f"Absenderdomain endet auf .{item.signal.removeprefix('domain ending .')}"
    if matched and "disposable" in matched:
        return f"Wegwerf-Adresse ({matched.split()[0]})"
    if matched and item.field == "country":
        return f"Absenderdomain endet auf .{matched.rpartition('.')[2]}"
    return f"Absenderdomain {matched}" if matched else "Absenderdomain"


def _address(item: Evidence, matched: str | None) -> str:
    return f"Absenderadresse {matched}" if matched else "Absenderadresse"


def _language(item: Evidence, matched: str | None) -> str:
    name = LANGUAGE_NAMES.get(matched or "")
    return f"Text auf {name}" if name else "Sprache des Textes"


def _header(item: Evidence, matched: str | None) -> str:
    name = item.where.removeprefix("header ").removesuffix(" from our server")
    return f"Kopfzeile {name} von unserem Mailserver" if item.where.endswith("from our server") \
        else f"Kopfzeile {name}"


def _part(item: Evidence, matched: str | None) -> str:
    return f"Mailteil vom Typ {item.where.removeprefix('MIME part ')}"


def _attachment(item: Evidence, matched: str | None) -> str:
    return f"Anhang „{matched}“" if matched else "Anhang"


def _bounce_detector(item: Evidence, matched: str | None) -> str:
    return "Zustellfehler im Bericht des Mailservers"


def _authentication(item: Evidence, matched: str | None) -> str:
    return "Absender-Prüfung (DMARC) unseres Mailservers fehlgeschlagen"


def _script(item: Evidence, matched: str | None) -> str:
    return "Text überwiegend nicht in lateinischer Schrift"


_BY_WHERE = (
    (lambda where: where == "sender domain", _domain),
    (lambda where: where == "sender address", _address),
    (lambda where: where == "language of the text", _language),
    (lambda where: where.startswith("header "), _header),
    (lambda where: where.startswith("MIME part "), _part),
    (lambda where: where.startswith("attachment"), _attachment),
    (lambda where: where.startswith("bounce detectors"), _bounce_detector),
    (lambda where: where.endswith("Authentication-Results"), _authentication),
    (lambda where: where == "subject and text", _script),
)


def _text_phrase(item: Evidence, matched: str | None) -> str:
    """A finding in the subject, the sender's text or signature: what was found, and where."""
    place = _place(item.where)
    for prefix, name in (("telephone ", "Telefonnummer"), ("postcode ", "Postleitzahl"), ("VAT ID ", "USt-IdNr.")):
        if item.signal.startswith(prefix):
            return f"{name} {_first_part(item.signal.removeprefix(prefix))} {place}".strip()
    if matched is None:
        return f"weiteres Merkmal {place}".strip()
    if _PHONE.match(matched):
        return f"Telefonnummer {matched} {place}".strip()
    if item.field == "country" and _POSTCODE.match(matched):
        return f"Postleitzahl {matched} {place}".strip()
    return f"„{matched}“ {place}".strip()


def _first_part(text: str) -> str:
    """'089 1234 (national form, read as DE): area code of Munich' -> '089 1234'."""
    return text.split(" (")[0].split(":")[0].strip()


def _place(where: str) -> str:
    if where.startswith("signature"):
        return "in der Signatur"
    if where.startswith("body"):
        return "im Text"
    return "im Betreff" if where == "subject" else ""

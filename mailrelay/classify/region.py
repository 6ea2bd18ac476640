"""Where a sender is: country and region evidence from the domain, telephone numbers, postcodes and VAT IDs."""
from __future__ import annotations

import re
from collections import Counter

from mailrelay.classify.reference import REGION_COUNTRIES, Reference, normalise_host
from mailrelay.model import Evidence

# How much each kind of finding counts against the others; the classifier weighs them against its
# own evidence (dataclasses.replace on the weight, when it wants another scale).
REFERENCE_WEIGHT = 2.0  # the organisation's entry: who it is settles where it is
VAT_WEIGHT = 2.0  # a VAT ID is issued by the country of the business
POSTCODE_WEIGHT = 1.5  # checked against the place written beside it
GEO_TLD_WEIGHT = 1.5  # .bayern, .wien: chosen to say where
PHONE_WEIGHT = 1.0
NATIONAL_PHONE_WEIGHT = 0.5  # "089 1234": the country is inferred, see phone_findings
CCTLD_WEIGHT = 1.0

_DIGIT = re.compile(r"\d")
_MIN_PHONE_DIGITS = 6
_NATIONAL_ORDER = ("DE", "CH", "AT")  # how a number in national form is read; see phone_findings
_GEO_TLDS = {"bayern": ("DE", "DE-BY"), "berlin": ("DE", "DE-BE"), "hamburg": ("DE", "DE-HH"),
             "nrw": ("DE", "DE-NW"), "koeln": ("DE", "DE-NW"), "cologne": ("DE", "DE-NW"), "ruhr": ("DE", "DE-NW"),
             "saarland": ("DE", "DE-SL"), "wien": ("AT", "AT-9"), "tirol": ("AT", "AT-7"),
             "zuerich": ("CH", "CH-ZH"), "swiss": ("CH", None)}
# Country-code domains sold worldwide for their letters (.io, .tv) say nothing about where the owner is.
_VANITY_TLDS = frozenset("ac ag ai am bz cc cd cf co cx fm ga gd gg gq gs io la ly me ml ms nu sc sh so st su tk "
                         "to tv vc ws".split())
_TLD_COUNTRY = {"uk": "GB", "eu": None}
_POSTCODE = re.compile(r"(?<![\w-])(?:(?P<prefix>DE|D|AT|A|CH)[-‐–] ?)?(?P<code>\d{4,5})\s+"
                       r"(?P<place>[^\W\d_](?:[^\W\d_]|[ .'’()/-])*)")
_POSTCODE_COUNTRIES = {"DE": ("DE",), "D": ("DE",), "AT": ("AT",), "A": ("AT",), "CH": ("CH",)}
_MAX_PLACE_WORDS = 4
_VAT_FORMATS = ((re.compile(r"\bDE ?\d{9}\b"), "DE"), (re.compile(r"\bATU ?\d{8}\b"), "AT"),
                (re.compile(r"\bCHE[- ]?\d{3}\.?\d{3}\.?\d{3}\b"), "CH"))
_EU_VAT = re.compile(r"\b(BE|BG|CY|CZ|DK|EE|EL|ES|FI|FR|HR|HU|IE|IT|LT|LU|LV|MT|NL|PL|PT|RO|SE|SI|SK) ?"
                     r"([0-9A-Z]{0,2}\d{6,10}[0-9A-Z]{0,3})\b")
_VAT_WORDS = re.compile(r"(?i)\b(vat|ust|umsatzsteuer|uid|mwst|tva|iva|btw|moms|alv|nip|di[cč]|pdv|cif|nif)")


def where_findings(host: str, lines: list[tuple[str, str]], reference: Reference) -> list[Evidence]:
    """Evidence for "country" and "region" from the sender's host and from lines of its own text,
    each given with where it was seen ("signature line 3"); the caller weighs and decides."""
    found = domain_findings(host, reference)
    for text, where in lines:
        if _DIGIT.search(text):  # every source below needs digits; most lines of a letter have none
            found += phone_findings(text, where, reference)
            found += postcode_findings(text, where, reference)
            found += vat_findings(text, where)
    return found


def domain_findings(host: str, reference: Reference) -> list[Evidence]:
    """The reference organisation's country and region, a regional top-level domain, a country's domain."""
    host = normalise_host(host)
    found = []
    organisation = reference.organisation(host)
    if organisation:
        signal = f"{organisation.name} ({organisation.source})"
        found += _pair(organisation.country, organisation.region, signal, "reference data", REFERENCE_WEIGHT)
    tld = host.rsplit(".", 1)[-1]
    if tld in _GEO_TLDS:
        country, region = _GEO_TLDS[tld]
        found += _pair(country, region, f"domain ending .{tld}", "sender domain", GEO_TLD_WEIGHT)
    elif len(tld) == 2 and tld.isalpha() and tld not in _VANITY_TLDS:
        country = _TLD_COUNTRY.get(tld, tld.upper())
        found += _pair(country, None, f"domain ending .{tld}", "sender domain", CCTLD_WEIGHT)
    return found


def phone_findings(text: str, where: str, reference: Reference) -> list[Evidence]:
    """The country of each telephone number in `text` and, in DE, AT and CH, the region of its area code.

    Numbers in international form (+49 89 ..., 0049 89 ...) are read as written. A number in national
    form (089 ...) has no country written: it is read as German, else Swiss, else Austrian, the first
    whose numbering plan accepts it, because those are who write to this German-language inbox, and it
    counts half. One that is both a German and a Swiss number ("044 412 11 11": Zürich, and a town in
    Lower Saxony) is left out. Austria's plan accepts almost any digits, so it is tried last; an Austrian
    writing national form that also fits Germany's plan is misread as German, at half weight."""
    if len(_DIGIT.findall(text)) < _MIN_PHONE_DIGITS:
        return []
    found = []
    for number, raw in _read_numbers(text):
        country = _phonenumbers().region_code_for_number(number)
        if not country or not country.isalpha():
            continue  # "001": a non-geographic number (satellite, international freephone)
        national = not raw.lstrip("( ").startswith(("+", "00"))
        weight = NATIONAL_PHONE_WEIGHT if national else PHONE_WEIGHT
        signal = f"telephone {raw}" + (f" (national form, read as {country})" if national else "")
        found.append(Evidence("country", country, signal, where, weight))
        area = reference.phone_area(f"{number.country_code}{number.national_number}")
        if area and country in REGION_COUNTRIES:
            found.append(Evidence("region", area[0], f"{signal}: area code of {area[1]}", where, weight))
    return found


def _read_numbers(text: str) -> list[tuple[object, str]]:
    """(number, as written) for each number in `text`, read as phone_findings describes."""
    phonenumbers = _phonenumbers()
    readings: dict[int, dict[str, tuple]] = {}
    for country in _NATIONAL_ORDER:
        for match in phonenumbers.PhoneNumberMatcher(text, country):
            readings.setdefault(match.start, {})[country] = (match.number, match.raw_string)
    numbers, seen = [], set()
    for start in sorted(readings):
        found = readings[start]
        digits = {(number.country_code, number.national_number) for number, _raw in found.values()}
        if len(digits) > 1 and "DE" in found and "CH" in found:
            continue
        number, raw = next(found[country] for country in _NATIONAL_ORDER if country in found)
        if (number.country_code, number.national_number) not in seen:
            numbers.append((number, raw))
            seen.add((number.country_code, number.national_number))
    return numbers


def _phonenumbers():
    import phonenumbers  # here, not at the top: `mailrelay --help` must not pay for it

    return phonenumbers


def postcode_findings(text: str, where: str, reference: Reference) -> list[Evidence]:
    """Country and region of each postcode whose place is written as the postcode table has it.

    "80331 München", "D-80331 München", "A-1010 Wien", "CH-8001 Zürich", "1010 Wien". Checking the
    place keeps French, Italian or Spanish postcodes (five digits too) from being read as German."""
    found = []
    for match in _POSTCODE.finditer(text):
        code, words = match.group("code"), match.group("place").split()
        countries = _POSTCODE_COUNTRIES.get(match.group("prefix") or "", ("DE",) if len(code) == 5 else ("AT", "CH"))
        for country in countries:
            if len(code) != (5 if country == "DE" else 4):
                continue
            place, region = _place_region(reference, country, code, words)
            if region:
                found += _pair(country, region, f"postcode {match.group(0).split()[0]} {place}", where, POSTCODE_WEIGHT)
    return found


def _place_region(reference: Reference, country: str, code: str, words: list[str]) -> tuple[str, str | None]:
    """The longest start of the written words that the table knows as a place of `code`
    ("München Deutschland" -> "München")."""
    for length in range(min(len(words), _MAX_PLACE_WORDS), 0, -1):
        place = " ".join(words[:length]).strip(",.;")
        region = reference.postcode_region(country, code, place)
        if region:
            return place, region
    return "", None


def vat_findings(text: str, where: str) -> list[Evidence]:
    """The country of each VAT ID: DE + 9 digits, ATU + 8 digits, CHE-123.456.789; another EU
    country's only beside a word for VAT (USt, TVA, IVA, BTW, ...), as its formats are less telling."""
    found = []
    for pattern, country in _VAT_FORMATS:
        found += [Evidence("country", country, f"VAT ID {match.group(0)}", where, VAT_WEIGHT)
                  for match in pattern.finditer(text)]
    if _VAT_WORDS.search(text):
        for match in _EU_VAT.finditer(text):
            country = "GR" if match.group(1) == "EL" else match.group(1)
            found.append(Evidence("country", country, f"VAT ID {match.group(0)}", where, VAT_WEIGHT))
    return found


def decide_region(evidence: list[Evidence], country: str) -> tuple[str | None, Evidence]:
    """The region, when the decided country is DE, AT or CH and all region evidence in that country
    points to one region; None when there is none or it is split. Regions abroad are left out."""
    if country not in REGION_COUNTRIES:
        return None, _note("unknown", f"undecided: regions are told for {', '.join(REGION_COUNTRIES)} only", 0.0)
    totals: Counter = Counter()
    abroad = set()
    for item in evidence:
        if item.field == "region":
            if item.value.startswith(f"{country}-"):
                totals[item.value] += item.weight
            else:
                abroad.add(item.value)
    left_out = f"; left out, not in {country}: {', '.join(sorted(abroad))}" if abroad else ""
    if not totals:
        return None, _note("unknown", f"undecided: no evidence of a region in {country}{left_out}", 0.0)
    if len(totals) > 1:
        split = ", ".join(f"{region} {score:.2f}" for region, score in totals.most_common())
        return None, _note("unknown", f"undecided: split between {split}{left_out}", 0.0)
    region, score = totals.most_common(1)[0]
    return region, _note(region, f"decided: {region} {score:.2f}{left_out}", round(score, 3))


def _note(value: str, signal: str, weight: float) -> Evidence:
    return Evidence("region", value, signal, "classifier", weight)


def _pair(country: str, region: str | None, signal: str, where: str, weight: float) -> list[Evidence]:
    """A country finding, and a region finding beside it when there is one."""
    found = [Evidence("country", country, signal, where, weight)] if country else []
    if region:
        found.append(Evidence("region", region, signal, where, weight))
    return found

"""Reference data on sender domains and places: shipped tables, read once per process, plus the editors' additions."""
from __future__ import annotations

import difflib
import functools
import ipaddress
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from mailrelay.i18n import tr
from mailrelay.model import Level, Sender
from mailrelay.tomlcheck import Problem, TomlFile

DATA = Path(__file__).with_name("data")
REGION_COUNTRIES = ("DE", "AT", "CH")  # where a region (ISO 3166-2) is told

_COUNTRY = re.compile(r"^[A-Z]{2}$")
_REGION = re.compile(r"^[A-Z]{2}-[A-Z0-9]{1,3}$")
_HOST = re.compile(r"^(?=.{3,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9-]*[a-z0-9]$")
_UMLAUTS = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss"})
_NOT_WORD = re.compile(r"[\W_]+")


@dataclass(frozen=True, slots=True)
class Organisation:
    """What reference data says of a domain: a public body (with its level) or a research organisation."""

    kind: Sender
    level: Level | None  # None for research, and for EU institutions (above every national level)
    country: str  # ISO 3166-1 alpha-2; "" when unknown (EU institutions sit in many member states)
    region: str | None  # ISO 3166-2 ("DE-BY") when the body belongs to one
    name: str
    source: str  # "german-gov-domains", "publicbodies", "hipo", "curated" or the editors' file name


@dataclass(frozen=True)
class Tables:
    """The shipped data, keyed for direct lookups."""

    organisations: dict[str, Organisation]
    free_mail: frozenset[str]
    disposable: frozenset[str]
    postcodes: dict[tuple[str, str], tuple[tuple[str, str], ...]]  # (country, code) -> ((place, region), ...)
    phone_areas: dict[str, tuple[str, str]]  # E.164 digits of an area code ("4989") -> (region, place)
    longest_area: int


@dataclass(frozen=True)
class Additions:
    """The editors' additions (config/reference.toml); they win over the shipped data."""

    organisations: dict[str, Organisation] = field(default_factory=dict)
    free_mail: frozenset[str] = frozenset()
    disposable: frozenset[str] = frozenset()
    not_free_mail: frozenset[str] = frozenset()
    not_disposable: frozenset[str] = frozenset()


@dataclass(frozen=True, eq=False)
class Reference:
    """Lookups by host, postcode and dialling code; the shipped tables are read on the first lookup."""

    additions: Additions = field(default_factory=Additions)

    @property
    def tables(self) -> Tables:
        return shipped_tables()

    def organisation(self, host: str) -> Organisation | None:
        """The entry of the most specific of `host` and its parent domains; None for free and throwaway mail."""
        host = normalise_host(host)
        if self.is_free_mail(host) or self.is_disposable(host):
            return None
        shipped = self.tables.organisations
        for domain in parent_domains(host):
            found = self.additions.organisations.get(domain) or shipped.get(domain)
            if found:
                return found
        return None

    def is_free_mail(self, host: str) -> bool:
        """The whole host is a free-mail service: addresses at its subdomains belong to someone else
        (berlin.de was a citizens' mail service; senwiwi.berlin.de is the Land Berlin)."""
        host = normalise_host(host)
        listed = host in self.tables.free_mail or host in self.additions.free_mail
        return listed and host not in self.additions.not_free_mail

    def is_disposable(self, host: str) -> bool:
        """The host or one of its parent domains hands out throwaway addresses."""
        for domain in parent_domains(normalise_host(host)):
            listed = domain in self.tables.disposable or domain in self.additions.disposable
            if listed and domain not in self.additions.not_disposable:
                return True
        return False

    def postcode_region(self, country: str, postcode: str, place: str) -> str | None:
        """The region of `postcode` when `place` is written as the table has it ("Frankfurt" for
        "Frankfurt am Main", "Wien" for "Wien, Innere Stadt"); None for any other place."""
        written = normalise_place(place)
        for known, region in self.tables.postcodes.get((country, postcode), ()):
            known = normalise_place(known)  # here, not on loading: a postcode has a few places, the table 40,000
            if written and (known == written or known.startswith(written + " ")):
                return region
        return None

    def phone_area(self, digits: str) -> tuple[str, str] | None:
        """(region, place) of the area code that an E.164 number's digits ("498912345") begin with."""
        areas = self.tables.phone_areas
        for length in range(min(len(digits), self.tables.longest_area), 2, -1):
            found = areas.get(digits[:length])
            if found:
                return found
        return None


# --- names -------------------------------------------------------------------------------------------------

@functools.cache
def _suffix_list():
    from publicsuffixlist import PublicSuffixList  # its bundled snapshot: no network, read once

    return PublicSuffixList(only_icann=True)  # private entries (ruhr-uni-bochum.de) do not split organisations


def normalise_host(host: str) -> str:
    """Lower case, no trailing dot, international names in their ASCII form (xn--...)."""
    host = host.strip().rstrip(".").lower()
    if host.isascii():
        return host
    try:
        return host.encode("idna").decode("ascii")
    except UnicodeError:
        return host


def registrable_domain(host: str) -> str:
    """The part of `host` its owner registered ("zoll.bund.de" -> "bund.de", "www.ox.ac.uk" -> "ox.ac.uk");
    the host itself when it has none (an address literal, a bare public suffix)."""
    host = normalise_host(host)
    if _is_address(host):
        return host
    return _suffix_list().privatesuffix(host) or host


def is_public_suffix(host: str) -> bool:
    """True for a suffix under which others register ("de", "gv.at", "ac.uk"), not for "bund.de"."""
    return _suffix_list().is_public(normalise_host(host))


def parent_domains(host: str) -> list[str]:
    """`host` and every parent domain down to two labels: "a.b.bund.de" -> a.b.bund.de, b.bund.de, bund.de."""
    labels = host.split(".")
    return [".".join(labels[start:]) for start in range(max(1, len(labels) - 1))]


@functools.lru_cache(maxsize=4096)
def normalise_place(text: str) -> str:
    """A place name for comparing: lower case, umlauts spelled out, accents and punctuation gone."""
    text = text.casefold().translate(_UMLAUTS)
    if not text.isascii():
        text = "".join(char for char in unicodedata.normalize("NFKD", text) if not unicodedata.combining(char))
    words = _NOT_WORD.sub(" ", text).split()
    return " ".join("sankt" if word == "st" else word for word in words)


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


# --- the shipped tables --------------------------------------------------------------------------------

@functools.cache
def shipped_tables() -> Tables:
    """Read the data files once per process."""
    organisations = {row[0]: _body(row, "") for row in _rows("public_bodies.tsv")}
    organisations.update((row[0], Organisation(Sender.RESEARCH, None, row[1], None, row[2], row[3]))
                         for row in _rows("research.tsv"))
    postcodes: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for country, code, place, region in _rows("postcodes.tsv"):
        postcodes.setdefault((country, code), []).append((place, region))
    areas = {prefix: (region, place) for prefix, region, place in _rows("phone_areas.tsv")}
    return Tables(organisations, _lines("free_mail.txt"), _lines("disposable.txt"),
                  {key: tuple(value) for key, value in postcodes.items()}, areas, max(map(len, areas), default=0))


def _body(row: list[str], source: str) -> Organisation:
    domain, level, country, region, name, shipped_source = row
    return Organisation(Sender.PUBLIC_BODY, Level(level) if level else None, country, region or None, name,
                        source or shipped_source)


def _rows(name: str) -> list[list[str]]:
    lines = (DATA / name).read_text(encoding="utf-8").splitlines()
    return [line.split("\t") for line in lines[1:]]


def _lines(name: str) -> frozenset[str]:
    return frozenset((DATA / name).read_text(encoding="utf-8").split())


# --- the editors' additions ----------------------------------------------------------------------------

_TOP_KEYS = ("free_mail", "not_free_mail", "disposable", "not_disposable", "public_bodies", "research")
_BODY_KEYS = ("level", "country", "region", "name")
_RESEARCH_KEYS = ("country", "region", "name")
_LEVELS = tuple(level.value for level in Level)
_HEADER = re.compile(r"^\s*\[\s*([^\[\]]+?)\s*\]\s*(#.*)?$")


def load_reference(extra: Path | None = None) -> Reference:
    """The shipped data plus the editors' additions in `extra`; raises ConfigError naming every problem."""
    if extra is None:
        return Reference()
    doc = TomlFile.load(extra)
    additions = _additions(doc)
    doc.raise_if_problems()
    return Reference(additions)


def _additions(doc: TomlFile) -> Additions:
    _unknown_keys(doc, doc.data, _TOP_KEYS, lambda name: doc.line_of((name,)))
    lists = {name: _domain_list(doc, name) for name in _TOP_KEYS[:4]}
    for listed, removed in (("free_mail", "not_free_mail"), ("disposable", "not_disposable")):
        for domain in sorted(lists[listed] & lists[removed]):
            _problem(doc, _item_line(doc, removed, domain), tr(f"'{domain}' steht in {listed} und in {removed}",
                                                               f"'{domain}' is in {listed} and in {removed}"),
                     tr("aus einer der beiden Listen streichen", "remove it from one of the lists"))
    bodies = _entries(doc, "public_bodies", _BODY_KEYS)
    research = _entries(doc, "research", _RESEARCH_KEYS)
    for domain in sorted(bodies.keys() & research.keys()):
        _problem(doc, _entry_line(doc, "research", domain),
                 tr(f"'{domain}' steht unter [public_bodies] und unter [research]",
                    f"'{domain}' is under [public_bodies] and under [research]"),
                 tr("eine Domain, ein Eintrag", "one domain, one entry"))
    return Additions({**bodies, **research}, lists["free_mail"], lists["disposable"], lists["not_free_mail"],
                     lists["not_disposable"])


def _domain_list(doc: TomlFile, name: str) -> frozenset[str]:
    values = doc.data.get(name, [])
    if not isinstance(values, list):
        _problem(doc, doc.line_of((name,)), tr(f"'{name}' muss eine Liste sein", f"'{name}' must be a list"),
                 tr(f'{name} = ["beispiel.de"]', f'{name} = ["example.de"]'))
        return frozenset()
    domains = set()
    for value in values:
        domain = _domain(doc, value, lambda: _item_line(doc, name, str(value)))
        if domain:
            domains.add(domain)
    return frozenset(domains)


def _entries(doc: TomlFile, table: str, allowed: tuple[str, ...]) -> dict[str, Organisation]:
    section = doc.data.get(table, {})
    if not isinstance(section, dict):
        _problem(doc, doc.line_of((table,)), tr(f"'{table}' muss eine Tabelle sein", f"'{table}' must be a table"),
                 tr(f"schreiben Sie [{table}]", f"write [{table}]"))
        return {}
    found = {}
    for key, entry in section.items():
        line = _entry_line(doc, table, key)
        if not isinstance(entry, dict):
            _problem(doc, line, tr(f"der Eintrag zu '{key}' muss eine Tabelle sein", f"the entry for '{key}' must be a table"),
                     f'"{key}" = {{ name = "...", ... }}')
        elif domain := _domain(doc, key, lambda: line):
            _unknown_keys(doc, entry, allowed, lambda name: line)
            organisation = _organisation(doc, entry, table, line)
            if organisation:
                found[domain] = organisation
    return found


def _organisation(doc: TomlFile, entry: dict, table: str, line: int) -> Organisation | None:
    """One entry checked; every problem in it is reported, at the entry's line."""
    name, level, region, country = (entry.get(key) for key in ("name", "level", "region", "country"))
    problems = len(doc.problems)
    if not isinstance(name, str) or not name.strip():
        _problem(doc, line, tr("der Name fehlt", "the name is missing"), 'name = "Stadt Beispiel"')
    if table == "public_bodies" and level not in _LEVELS:
        message = (tr(f"Stufe '{level}' ist unbekannt", f"unknown level '{level}'") if level is not None
                   else tr("die Stufe (level) fehlt", "the level is missing"))
        _problem(doc, line, f"{message} ({tr('erlaubt', 'allowed')}: {', '.join(_LEVELS)})")
    region_ok = isinstance(region, str) and bool(_REGION.match(region))
    if region is not None and not region_ok:
        _problem(doc, line, tr(f"Region '{region}' ist kein ISO-3166-2-Code", f"region '{region}' is not an ISO 3166-2 code"),
                 tr("zum Beispiel DE-BY, AT-9, CH-ZH", "like DE-BY, AT-9, CH-ZH"))
    if country is not None and not (isinstance(country, str) and _COUNTRY.match(country)):
        _problem(doc, line, tr(f"Land '{country}' ist kein Ländercode", f"country '{country}' is not a country code"),
                 tr("zwei Großbuchstaben, zum Beispiel DE, AT, CH", "two capital letters, like DE, AT, CH"))
    elif country is None and region is None:
        _problem(doc, line, tr("das Land fehlt", "the country is missing"),
                 tr('country = "DE" oder region = "DE-BY" angeben', 'give country = "DE" or region = "DE-BY"'))
    elif country and region_ok and not region.startswith(f"{country}-"):
        _problem(doc, line, tr(f"Region '{region}' liegt nicht im Land '{country}'",
                               f"region '{region}' is not in country '{country}'"))
    country = country or (region[:2] if region_ok else None)
    if len(doc.problems) > problems:
        return None
    kind = Sender.PUBLIC_BODY if table == "public_bodies" else Sender.RESEARCH
    return Organisation(kind, Level(level) if level else None, country, region, name.strip(), doc.path.name)


def _domain(doc: TomlFile, value, line) -> str | None:
    domain = normalise_host(value) if isinstance(value, str) else ""
    if not _HOST.match(domain) or "." not in domain:
        _problem(doc, line(), tr(f"'{value}' ist kein Domainname", f"'{value}' is not a domain name"),
                 tr('zum Beispiel "stadt-beispiel.de"', 'like "stadt-beispiel.de"'))
        return None
    return domain


def _unknown_keys(doc: TomlFile, table: dict, allowed: tuple[str, ...], line) -> None:
    for name in table:
        if name not in allowed:
            close = difflib.get_close_matches(name, allowed, n=1)
            hint = (tr(f"gemeint ist wohl '{close[0]}'", f"did you mean '{close[0]}'?") if close
                    else tr(f"erlaubt: {', '.join(allowed)}", f"allowed: {', '.join(allowed)}"))
            _problem(doc, line(name), tr(f"unbekannter Schlüssel '{name}'", f"unknown key '{name}'"), hint)


def _problem(doc: TomlFile, line: int, message: str, hint: str = "") -> None:
    doc.problems.append(Problem(str(doc.path), line, message, hint))


def _entry_line(doc: TomlFile, table: str, key: str) -> int:
    """The line of `"key" = ...` in [table], or of [table."key"]. TomlFile.line_of cannot be used here:
    it splits keys at their dots, and every key here is a domain."""
    current = ""
    assignment = re.compile(rf"""^\s*(["']?){re.escape(key)}\1\s*=""")
    for number, line in enumerate(doc.text.splitlines(), start=1):
        header = _HEADER.match(line)
        if header:
            current = header.group(1).replace(" ", "")
            if current in (f'{table}."{key}"', f"{table}.'{key}'", f"{table}.{key}"):
                return number
        elif current == table and assignment.match(line):
            return number
    return doc.line_of((table,))


def _item_line(doc: TomlFile, name: str, value: str) -> int:
    """The line where a list item is written, at or after the line of its list."""
    lines = doc.text.splitlines()
    start = doc.line_of((name,))
    for number in range(start, len(lines) + 1):
        if f'"{value}"' in lines[number - 1] or f"'{value}'" in lines[number - 1]:
            return number
    return start

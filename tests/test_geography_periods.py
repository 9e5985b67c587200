from datetime import date

import pytest

from geo_cs.errors import NotFoundError
from geo_cs.geography import nation_of, registry
from geo_cs.periods import edition, parse_period, quarter


@pytest.mark.parametrize(
    ("columns", "expected"),
    [
        (["id", "LSOA11CD", "LSOA11NM"], "lsoa2011"),
        (["lsoa21_code", "lsoa21_name"], "lsoa2021"),
        (["DZ_CODE", "DZ_NAME"], "datazone2001"),
        (["dz11_code", "dz11_name"], "datazone2011"),
        (["WD13CD", "WD13NM"], "ward2013"),
        (["LAD13CD", "LAD13NM"], "lad2013"),
        (["PCON13CD", "PCON13NM"], "wpc2010"),
        (["lsoa11cd"], "lsoa2011"),  # case-insensitive, as some exports lower-case headers
    ],
)
def test_registry_recognises_ons_and_nrs_code_columns(columns, expected):
    assert registry().detect(columns).set_id == expected


def test_registry_knows_nothing_of_unrelated_columns():
    assert registry().detect(["areacd", "areanm"]) is None


def test_unknown_set_lists_the_known_ones():
    with pytest.raises(NotFoundError, match="known sets: .*lsoa2011"):
        registry().get("lsoa1999")


def test_by_type_resolves_geography_and_vintage():
    assert registry().by_type("datazone", 2001).set_id == "datazone2001"


def test_expected_codes_are_shipped_for_the_census_geographies():
    codes = registry().get("datazone2001").expected_codes()
    assert len(codes) == 6505 and "S01002296" in codes


def test_nation_of_codes():
    assert [nation_of(c) for c in ("E01000001", "W01000001", "S01000001", "K03000001")] == [
        "E", "W", "S", None]


@pytest.mark.parametrize(
    ("text", "period_id"),
    [("May 2006", "2006-05"), ("May-06", "2006-05"), ("2006-05", "2006-05"),
     ("2010/05/01", "2010-05"), ("200611", "2006-11"), ("2007 Feb", "2007-02"),
     ("2019", "2019")],
)
def test_parse_period_accepts_dwp_nomis_and_statxplore_forms(text, period_id):
    assert parse_period(text).period_id == period_id


def test_dwp_quarters_end_in_feb_may_aug_nov():
    q = quarter(2007, 2)
    assert (q.start, q.end, q.label) == (date(2006, 12, 1), date(2007, 2, 28), "February 2007")
    with pytest.raises(ValueError, match="not a DWP quarter"):
        parse_period("2006-03")


def test_an_index_edition_refers_to_its_data_year():
    imd = edition("IMD 2010", data_year=2008)
    assert (imd.period_id, imd.kind, imd.data_year, imd.label) == (
        "imd2010", "edition", 2008, "IMD 2010 (2008 data)")


def test_garbage_is_not_a_period():
    with pytest.raises(ValueError, match="not a period"):
        parse_period("last spring")

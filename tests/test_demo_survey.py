"""The survey employment rate in the demo (issue 29): the bundle carries both APS files and the
district boundaries they are mapped on, so `geo-cs demo` shows figures 4.1 and 4.2 on a fresh
clone without ../shared. Expected figures are computed here from the bundle's own copy of the
file (csv module), never by geo-cs."""

from __future__ import annotations

import csv
import math
import tomllib

import pytest
from conftest import REPO, SHARED_DATA

from geo_cs.store import Store

BUNDLE = REPO / "boundaries" / "demo"
SURVEY_FILES = ("aps_employment_rate_la_2019.csv", "aps_lad_north_2004_2023.csv")
GREATER_MANCHESTER = [f"E080000{i:02d}" for i in range(1, 11)]


def test_the_manifest_ingests_the_survey_after_the_code_history_it_needs():
    steps = tomllib.loads((BUNDLE / "manifest.toml").read_text(encoding="utf-8"))["steps"]
    where = {s.get("path") or s.get("set"): i for i, s in enumerate(steps) if s.get("path") or s.get("set")}
    changes = where["lookups/lad_changes_2014_2025.csv"]
    for name in SURVEY_FILES:
        assert where[f"indicators/{name}"] > changes, name
        assert "spec" not in steps[where[f"indicators/{name}"]]     # read by shape
    districts = {s["set"]: s for s in steps if s["kind"] == "boundaries" and "set" in s}
    assert set(districts) == {"lad2020", "lad2021"}
    for set_id, year in (("lad2020", 2020), ("lad2021", 2021)):
        step = districts[set_id]
        assert where[set_id] > changes          # so Glasgow is stored as S12000049
        assert (step["alive_in"], step["layer"], step["code_col"], step["name_col"]) == (
            year, "ltla", "areacd", "areanm")
        assert (BUNDLE / step["paths"][0]).is_file()


def test_every_bundle_file_has_its_provenance_and_the_survey_files_are_copied_whole():
    with open(BUNDLE / "PROVENANCE.tsv", encoding="utf-8") as fh:
        rows = {r["file"]: r for r in csv.DictReader(fh, delimiter="\t")}
    for name in SURVEY_FILES:
        row = rows[f"indicators/{name}"]
        assert (row["how"], row["from_shared_file"]) == ("copied", f"indicators/{name}")
        assert row["source_repo"] and row["commit"]
    cut = rows["boundaries/uk_admin_2014_2025_ltla_north.topojson"]
    assert cut["from_shared_file"] == "boundaries/uk_admin_2014_2025.topojson"
    assert cut["how"].startswith("the ltla object's 72 districts of aps_lad_north_2004_2023.csv only")
    assert rows["boundaries/uk_admin_2014_2025.topojson"]["how"] == "copied"
    assert rows["lookups/ward19_lad19_rgn19.csv"]["how"] == "copied"
    files = {str(p.relative_to(BUNDLE)) for p in BUNDLE.rglob("*") if p.is_file()}
    listed = files - {"manifest.toml", "PROVENANCE.tsv", "ATTRIBUTION.txt",
                      "boundaries/LICENCE-martinjc.txt"}
    assert listed <= set(rows), sorted(listed - set(rows))


@pytest.mark.shared_data
def test_the_bundle_copies_are_the_published_files_byte_for_byte():
    for name in (*(f"indicators/{n}" for n in SURVEY_FILES), "boundaries/uk_admin_2014_2025.topojson",
                 "lookups/ward19_lad19_rgn19.csv"):
        assert (BUNDLE / name).read_bytes() == (SHARED_DATA / name).read_bytes(), name


def test_the_demo_holds_both_survey_files_on_their_district_editions(demo_db):
    with Store.open(demo_db, read_only=True) as store:
        sets = dict(store.sql("""
            SELECT o.set_id || ' ' || o.indicator_id, count(DISTINCT o.code) FROM observations o
            WHERE o.indicator_id LIKE 'aps.%' GROUP BY 1""").fetchall())
        mapped = dict(store.sql("""
            SELECT set_id, count(*) FROM areas WHERE set_id IN ('lad2020', 'lad2021')
            AND area_m2 IS NOT NULL GROUP BY 1""").fetchall())
        glasgow = store.sql("SELECT name, area_m2 > 0 FROM areas WHERE set_id = 'lad2020' "
                            "AND code = 'S12000049'").fetchone()
        old_glasgow = store.sql("SELECT count(*) FROM areas WHERE set_id = 'lad2020' "
                                "AND code = 'S12000046'").fetchone()[0]
    assert sets == {"lad2020 aps.employment_rate": 368, "cty2020 aps.employment_rate": 25,
                    "lad2021 aps.employment_rate": 72, "lad2021 aps.unemployment_rate": 72,
                    "lad2021 aps.inactivity_rate": 72}
    # every district of both files has its boundary, so both are on the map
    assert mapped == {"lad2020": 368, "lad2021": 72}
    assert glasgow == ("Glasgow City", True) and old_glasgow == 0


def test_the_demo_code_history_gains_no_change_from_the_survey_boundaries(demo_db):
    """The 49 changes the demo had before (1 inferred: Gateshead 2013), none inferred from the
    2020 or 2021 districts (the bundle's small areas cover the partnerships only)."""
    from geo_cs.district_codes import code_history

    with Store.open(demo_db, read_only=True) as store:
        history = code_history(store)
    assert len(history) == 49
    inferred = history[history["basis"] == "inferred"]
    assert list(zip(inferred["old_code"], inferred["new_code"], strict=True)) == [("E08000020", "E08000037")]


def test_code_history_infers_no_merger_from_a_partial_set_of_small_areas(tmp_path):
    """The demo's own files: all 2021 UK districts (alive in 2021), the LSOA 2021 boundaries and
    lookup lines of two Dudley LSOAs by the South Staffordshire border, the official changes.
    South Staffordshire (E07000196) was inferred 'merged' into Dudley in 2022: its membership on
    the 2021 boundaries was those two LSOAs alone (their point on surface falls in it on the
    generalised boundaries). A district the held small areas barely cover is not compared."""
    import geopandas as gpd

    from geo_cs.district_codes import code_history
    from geo_cs.ingest import ingest_boundaries, ingest_lookup

    lsoas = {"E01009847", "E01009919"}
    frame = gpd.read_parquet(BUNDLE / "boundaries" / "lsoa2021.parquet")
    frame[frame["lsoa21_code"].isin(lsoas)].to_parquet(tmp_path / "lsoa2021.parquet")
    lines = (BUNDLE / "lookups" / "lsoa11_lsoa21_ew.csv").read_text(encoding="utf-8").splitlines(True)
    (tmp_path / "lsoa11_lsoa21_ew.csv").write_text(
        "".join([lines[0], *(line for line in lines[1:] if line.split(",")[0] in lsoas)]), encoding="utf-8")
    with Store.open(":memory:") as store:
        ingest_boundaries(store, [tmp_path / "lsoa2021.parquet"])
        ingest_lookup(store, tmp_path / "lsoa11_lsoa21_ew.csv")
        ingest_lookup(store, BUNDLE / "lookups" / "lad_changes_2014_2025.csv")
        ingest_boundaries(store, [BUNDLE / "boundaries" / "uk_admin_2014_2025.topojson"], layer="ltla",
                          set_id="lad2021", code_col="areacd", name_col="areanm", alive_in=2021)
        history = code_history(store)
    assert not (history["old_code"] == "E07000196").any(), history[history["old_code"] == "E07000196"]


def test_greater_manchester_in_the_demo_as_computed_by_hand_from_the_bundle(demo_db):
    from geo_cs.survey import employment_rates

    with open(BUNDLE / "indicators" / SURVEY_FILES[0], encoding="utf-8", newline="") as fh:
        rows = {r[1]: r for r in csv.reader(fh) if len(r) == 6 and r[0].startswith("ladu:")}
    gm = [rows[c] for c in GREATER_MANCHESTER]
    total = sum(float(r[3]) for r in gm)
    rate = sum(float(r[2]) for r in gm) / total * 100
    half = math.sqrt(sum((float(r[3]) / total * float(r[5])) ** 2 for r in gm))
    with Store.open(demo_db, read_only=True) as store:
        table = employment_rates(store, set_id="lad2020", partnerships=["greater_manchester"])
        series = employment_rates(store, partnerships=["liverpool_city_region"])
    row = table.set_index("group").loc["greater_manchester"]
    assert (row["rate"], row["half_width"]) == pytest.approx((rate, half), rel=1e-12)
    assert row["gap_real"] is True and table.attrs["benchmark"] == "Great Britain"
    # the regions are whole (the demo carries the whole ward-district-region lookup)
    regions = table[table["group_kind"] == "region"].set_index("name")["districts"].to_dict()
    assert regions["North East"] == 12 and regions["North West"] == 39 and len(regions) == 9
    # the API extract: 77 rolling years, no interval published, the northern benchmark
    lcr = series[series["group"] == "liverpool_city_region"]
    assert len(lcr) == 77 and set(lcr["interval"]) == {"no interval published"}
    assert series.attrs["benchmark"].startswith("All 72 districts of North East")

"""Issue 15, points 4 and 5 from the command line and the web service, on the demo database:
NI 153 for Tyne and Wear on LSOA 2001 (through Gateshead's 2011 code), the API's partnership
selections, and ward statistics coded to the ward edition of their year."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest
from conftest import REPO, run_cli
from fastapi.testclient import TestClient

from geo_cs.api.app import create_app
from geo_cs.config import Settings
from geo_cs.ingest.ward_editions import HeldWardSet, choose_ward_edition
from geo_cs.store import Store

LOOKUPS = REPO / "boundaries" / "demo" / "lookups"
TYNE_AND_WEAR_2011 = {"E08000020", "E08000021", "E08000022", "E08000023", "E08000024"}


def bundle_rows(name: str) -> list[dict[str, str]]:
    with open(REPO / "boundaries" / "demo" / name, encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture
def db(demo_db: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "demo.duckdb"
    shutil.copy(demo_db, copy)
    return copy


def test_ni153_for_tyne_and_wear_on_lsoa_2001(db: Path, tmp_path: Path, capsys):
    # IMD 2010 publishes only a rate on LSOA 2001: its denominators are the 2019 working-age
    # population carried back from LSOA 2011 by the official lookup
    steps = [
        ["crosswalk", "build", "--from", "lsoa2011", "--to", "lsoa2001"],
        ["harmonise", "-i", "population2019_lsoa11.working_age_population", "--to", "lsoa2001"],
    ]
    for step in steps:
        assert run_cli(capsys, "--db", str(db), *step).code == 0
    out = tmp_path / "ni153.csv"
    args = ["--db", str(db), "analyse", "ni153", "-i", "imd2010.employment_rate", "-g", "lsoa2001",
            "-p", "tyne_and_wear", "--count-is-rate",
            "--denominator", "population2019_lsoa11.working_age_population"]
    shown = run_cli(capsys, *args)
    assert shown.code == 0, shown.stderr
    assert "tyne_and_wear" in shown.stdout and "cohort_rate" in shown.stdout
    assert run_cli(capsys, *args, "-o", str(out)).code == 0
    with open(out, encoding="utf-8") as fh:
        (row,) = list(csv.DictReader(fh))
    # every LSOA 2001 of the five districts (2011 codes) in the ONS lookup, counted here
    lsoas = {r["LSOA01CD"] for r in bundle_rows("lookups/lsoa01_lsoa11_ew.csv") if r["LAD11CD"] in TYNE_AND_WEAR_2011}
    assert int(row["n_cohort"]) + int(row["n_rest"]) == len(lsoas) == 719
    # the cohort: LSOAs whose IMD 2010 employment score (a fraction in the file) is above 25%
    scores = {r["lsoa01_code"]: float(r["Employment_score"])
              for r in bundle_rows("indicators/imd2010_england_lsoa01.csv")}
    assert int(row["n_cohort"]) == sum(1 for c in lsoas if scores[c] * 100 > 25) == 64
    gap, low, high = float(row["gap"]), float(row["gap_low"]), float(row["gap_high"])
    assert float(row["cohort_rate"]) > 25 > float(row["rest_rate"])
    assert low < gap < high and gap == pytest.approx(float(row["cohort_rate"]) - float(row["rest_rate"]))
    assert row["partnership_version"].endswith("lookup")


@pytest.fixture(scope="module")
def client(demo_db: Path):
    with TestClient(create_app(Settings(db=demo_db))) as c:
        yield c


def test_api_selects_tyne_and_wear_on_every_held_edition(client):
    # LSOA 2011 through the 2011 districts (Gateshead E08000020), 2021 through the 2022 ones,
    # the 2013 wards by geometry
    lsoa11 = {r["LSOA11CD"] for r in bundle_rows("lookups/lsoa01_lsoa11_ew.csv") if r["LAD11CD"] in TYNE_AND_WEAR_2011}
    for collection, expected in (("lsoa2011", len(lsoa11)), ("lsoa2021", 727), ("ward2013", 111)):
        response = client.get(f"/collections/{collection}/items",
                              params={"partnership": "tyne_and_wear", "limit": 1})
        assert response.status_code == 200, response.text
        assert response.json()["numberMatched"] == expected, collection
    # LSOA 2001 has no published boundaries: no collection, and the answer says which there are
    response = client.get("/collections/lsoa2001/items", params={"partnership": "tyne_and_wear"})
    assert response.status_code == 404 and "lsoa2011" in response.json()["detail"]


def test_map_page_of_tyne_and_wear(client):
    response = client.get("/maps/tyne_and_wear", params={"geography": "lsoa2011",
                                                        "indicator": "employment_deprived"})
    assert response.status_code == 200, response.text
    assert "Tyne" in response.text
    csv_page = client.get("/collections/lsoa2011/items", params={
        "partnership": "tyne_and_wear", "indicator": "employment_deprived", "limit": 10000, "f": "csv"})
    lines = csv_page.text.strip().splitlines()
    assert len(lines) - 1 == 719


# -- point 5: ward editions ---------------------------------------------------------------------

def test_choose_ward_edition_prefers_boundaries_then_the_nearest_edition():
    held = {"ward2011": HeldWardSet("ward2011", 2011, frozenset("AB"), False),
            "ward2013": HeldWardSet("ward2013", 2013, frozenset("AB"), True),
            "ward2019": HeldWardSet("ward2019", 2019, frozenset("ABC"), False)}
    assert choose_ward_edition("ward2015", 2015, {"A", "B"}, held).target == "ward2013"
    assert choose_ward_edition("ward2018", 2018, {"A", "C"}, held).target == "ward2019"
    assert choose_ward_edition("ward2019", 2019, {"A", "C"}, held).note is None
    missing = choose_ward_edition("ward2013", 2013, {"A", "Z"}, held)
    assert (missing.target, missing.against, missing.missing, missing.nowhere) == (None, "ward2013", ["Z"], 1)


def test_ward_file_of_a_later_edition_is_stored_on_the_held_wards_with_a_note(db: Path, tmp_path: Path, capsys):
    path = tmp_path / "claimants_wards2015.csv"
    # Rhyl's five wards: their 2015 codes are their 2013 codes
    lines = ["area_code,period,measure,value"] + [f"W0500017{i},2016,claimants,{10 + i}" for i in range(5)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = run_cli(capsys, "--db", str(db), "ingest", "indicator", str(path), "--layout", "long",
                     "--set", "ward2015", "--source-id", "cc_wards")
    assert result.code == 0, result.stderr
    assert "all 5 ward codes of the file (declared ward2015) are ward2013 codes" in result.stdout
    with Store.open(db, read_only=True) as store:
        stored = store.sql("SELECT set_id, count(*), sum(value) FROM observations "
                           "WHERE indicator_id = 'cc_wards.claimants' GROUP BY set_id").fetchall()
        report = store.sql("SELECT report->>'geography_notes' FROM ingests ORDER BY ingest_id DESC LIMIT 1").fetchone()[0]
    assert stored == [("ward2013", 5, 60.0)]
    assert "stored on ward2013" in report


@pytest.mark.slow
def test_ward_file_with_codes_no_held_set_has_names_them(db: Path, tmp_path: Path, capsys):
    from conftest import snapshot

    path = tmp_path / "claimants_wards2017.csv"
    codes = ["W05000170"] + [f"E0509{i:04d}" for i in range(12)]
    path.write_text("area_code,period,measure,value\n"
                    + "".join(f"{c},2017,claimants,5\n" for c in codes), encoding="utf-8")
    with Store.open(db, read_only=True) as store:
        before = snapshot(store)
    result = run_cli(capsys, "--db", str(db), "ingest", "indicator", str(path), "--layout", "long",
                     "--set", "ward2017", "--source-id", "cc_wards")
    assert result.code == 3
    message = " ".join(result.stderr.split())
    assert f"{path}, row 3, column 'area_code'" in message
    assert "12 of the file's 13 ward codes (declared ward2017) are not ward2013 codes" in message
    assert "E05090000, E05090001" in message and "E05090009, …" in message and "(12 in all)" in message
    assert "E05090011" not in message
    with Store.open(db, read_only=True) as store:
        assert snapshot(store) == before

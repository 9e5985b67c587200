"""Postcode districts for the map's search (issue 16, point 7): a postcode directory in the NSPL's
own layout ingested into a copy of the demo store, searched by district and by full postcode,
through the core, the API and the page in Chromium.

The shipped data hold no postcode directory, so the file is written here in the NSPL's layout
(its 41 columns, ``pcd``/``pcds`` forms, ``doterm`` for terminated postcodes, ``lsoa11`` holding
LSOA and Data Zone codes, pseudo codes for the Channel Islands) from the demo's real areas.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import run_cli, snapshot
from fastapi.testclient import TestClient

from geo_cs.api.app import create_app
from geo_cs.config import Settings
from geo_cs.errors import InputError, NotFoundError
from geo_cs.ingest.postcodes import ingest_postcodes
from geo_cs.places import outward_code, postcode_district, search_areas, search_note
from geo_cs.store import Store
from tests.servers import running_service
from tests.test_clients import _launch, needs_chromium, watch_console

#: The NSPL's header, as the ONS publishes it
NSPL_HEADER = [
    "pcd", "pcd2", "pcds", "dointr", "doterm", "usertype", "oseast1m", "osnrth1m", "osgrdind", "oa11",
    "cty", "ced", "laua", "ward", "hlthau", "nhser", "ctry", "rgn", "pcon", "eer", "teclec", "ttwa",
    "pct", "itl", "park", "lsoa11", "msoa11", "wz11", "ccg", "bua11", "buasd11", "ru11ind", "oac11",
    "lat", "long", "lep1", "lep2", "pfa", "imd", "calncv", "stp"]


def nspl_row(postcode: str, lsoa11: str, laua: str, doterm: str = "") -> str:
    row = dict.fromkeys(NSPL_HEADER, "")
    outward, inward = postcode.split()
    row.update(pcd=f"{outward:<4}{inward}", pcd2=f"{outward:<5}{inward}", pcds=postcode,
               dointr="198001", doterm=doterm, usertype="0", lsoa11=lsoa11, laua=laua, ctry="E92000001")
    return ",".join(row[c] for c in NSPL_HEADER)


@pytest.fixture(scope="module")
def areas(demo_db) -> dict[str, list[str]]:
    with Store.open(demo_db, read_only=True) as store:
        def first(sql: str) -> list[str]:
            return [r[0] for r in store.sql(sql).fetchall()]
        return {
            # Govan's data zones stand in for G51's; Nottingham's first LSOAs for NG7's
            "G51": first("SELECT code FROM areas WHERE set_id = 'datazone2011' AND name ILIKE 'Govan%' "
                         "ORDER BY code LIMIT 4"),
            "NG7": first("SELECT a.code FROM areas a WHERE a.set_id = 'lsoa2011' AND a.name LIKE 'Nottingham %' "
                         "ORDER BY a.code LIMIT 3"),
        }


@pytest.fixture(scope="module")
def nspl(areas, tmp_path_factory) -> Path:
    rows = []
    for i, code in enumerate(areas["G51"]):
        rows += [nspl_row(f"G51 {i}AB", code, "S12000049"), nspl_row(f"G51 {i}AD", code, "S12000049")]
    rows.append(nspl_row("G51 9ZZ", areas["G51"][0], "S12000049", doterm="201505"))   # terminated
    for i, code in enumerate(areas["NG7"]):
        rows.append(nspl_row(f"NG7 {i}RD", code, "E06000018"))
    rows.append(nspl_row("GY1 1AA", "L99999999", "L99999999"))        # Guernsey: pseudo codes
    rows.append(nspl_row("ZZ99 9ZZ", "", ""))                         # a dummy postcode, no area
    path = tmp_path_factory.mktemp("nspl") / "NSPL_NOV_2025_UK.csv"
    path.write_text(",".join(NSPL_HEADER) + "\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def postcode_db(demo_db, nspl, tmp_path_factory) -> Path:
    db = tmp_path_factory.mktemp("postcodes") / "demo.duckdb"
    shutil.copy(demo_db, db)
    with Store.open(db) as store:
        ingest_postcodes(store, nspl)
    return db


def test_postcode_texts():
    assert [outward_code(t) for t in ("G51 4TP", "g514tp", "EC1A 1BB", "W1A 0AX", "G51", "Govan")] == \
        ["G51", "G51", "EC1A", "W1A", None, None]
    assert [postcode_district(t) for t in ("ng7", "NG7 2RD", " g51 ", "S01007682")] == ["NG7", "NG7", "G51", None]


def test_a_directory_in_the_nspl_layout_is_read_and_reported(demo_db, nspl, areas, tmp_path):
    db = tmp_path / "demo.duckdb"
    shutil.copy(demo_db, db)
    with Store.open(db) as store:
        report = ingest_postcodes(store, nspl)
        assert report.postcode_column == "pcds"
        assert (report.rows_read, report.terminated_left_out, report.postcodes_used, report.districts) == \
            (8 + 1 + 3 + 2, 1, 8 + 3, 2)      # GY1 1AA and ZZ99 9ZZ are in no area held
        assert report.links["lsoa11 -> datazone2011"] == 4 and report.links["lsoa11 -> lsoa2011"] == 3
        assert report.codes_not_held["lsoa11"] == 1                   # L99999999
        held = dict(store.sql("SELECT code, postcodes FROM postcode_districts WHERE district = 'G51' "
                              "AND set_id = 'datazone2011'").fetchall())
        assert held == dict.fromkeys(areas["G51"], 2)                # the terminated one is not counted
        lines = "\n".join(report.lines())
        assert "1 terminated postcode(s) left out" in lines and "does not hold" in lines
        # re-ingesting replaces the districts whole
        before = store.sql("SELECT count(*) FROM postcode_districts").fetchone()[0]
        ingest_postcodes(store, nspl)
        assert store.sql("SELECT count(*) FROM postcode_districts").fetchone()[0] == before


def test_search_finds_a_district_and_a_full_postcode_as_its_district(postcode_db, areas):
    with Store.open(postcode_db, read_only=True) as store:
        for query in ("G51", "g51 1ab"):
            found = search_areas(store, query)
            hit = found.iloc[0]
            assert (hit["set_id"], hit["code"]) == ("postcode_district", "G51"), found
            assert sorted(hit["codes"]) == sorted(areas["G51"])
            bounds = store.sql("SELECT min(xmin), min(ymin), max(xmax), max(ymax) FROM areas "
                               "WHERE set_id = 'datazone2011' AND list_contains(?, code)", [areas["G51"]]).fetchone()
            assert (hit["west"], hit["south"], hit["east"], hit["north"]) == pytest.approx(bounds)
            assert "8 postcodes in 4 of" in hit["set_label"]
        assert search_note("g51 1ab", search_areas(store, "g51 1ab"), True) == \
            "g51 1ab is a full postcode: its district, G51, is shown"
        assert search_note("KW17", search_areas(store, "KW17"), True) == \
            "No live postcodes of KW17 are in this store's postcode directory"
        # names and codes are still found as before
        assert search_areas(store, areas["NG7"][0]).iloc[0]["code"] == areas["NG7"][0]


def test_without_a_directory_the_note_says_how_to_load_one(demo_db):
    with Store.open(demo_db, read_only=True) as store:
        found = search_areas(store, "G51")
        assert found.empty
        note = search_note("G51", found)
        # in words for the person searching: the command is for whoever runs the server
        assert "ONS postcode directory" in note and "geo-cs" not in note


@pytest.mark.slow  # a corpus of broken directories, each through the CLI: ~13 s; .ci/run runs it
def test_bad_directories_name_the_file_and_leave_the_store_as_it_was(demo_db, tmp_path):
    db = tmp_path / "demo.duckdb"
    shutil.copy(demo_db, db)
    no_postcodes = tmp_path / "areas.csv"
    no_postcodes.write_text("code,name\nS01007682,Govan\n")
    no_areas = tmp_path / "elsewhere.csv"
    no_areas.write_text("pcds,lsoa11\nGY1 1AA,L99999999\n")
    with Store.open(db) as store:
        before = snapshot(store)
        with pytest.raises(InputError, match=r"areas\.csv: no postcode column: expected one of pcds"):
            ingest_postcodes(store, no_postcodes)
        with pytest.raises(InputError, match=r"elsewhere\.csv: no column holds codes of the areas"):
            ingest_postcodes(store, no_areas)
        with pytest.raises(InputError, match=r"no column 'PCD' for the postcode"):
            ingest_postcodes(store, no_areas, postcode_col="PCD")
        with pytest.raises(NotFoundError):
            ingest_postcodes(store, tmp_path / "missing.csv")
        assert snapshot(store) == before


def test_the_cli_reports_and_exits_3_on_a_bad_file(demo_db, nspl, tmp_path, capsys):
    db = tmp_path / "demo.duckdb"
    shutil.copy(demo_db, db)
    done = run_cli(capsys, "--db", str(db), "ingest", "postcodes", str(nspl))
    assert done.code == 0 and "11 live postcodes in areas of this store, in 2 postcode districts" in done.stdout, done
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    failed = run_cli(capsys, "--db", str(db), "-q", "ingest", "postcodes", str(bad))
    assert failed.code == 3 and "bad.csv: no postcode column" in failed.stderr, failed


def test_the_api_search_answers_a_district(postcode_db, areas):
    with TestClient(create_app(Settings(db=postcode_db))) as client:
        body = client.get("/maps/glasgow/search", params={"q": "G51"}).json()
        assert body["results"][0]["code"] == "G51" and sorted(body["results"][0]["codes"]) == sorted(areas["G51"])
        assert body["results"][0]["set_id"] == "postcode_district"


@needs_chromium
def test_the_page_zooms_to_a_district_and_highlights_its_areas(postcode_db, tmp_path):
    from playwright.sync_api import sync_playwright

    with running_service({"GEO_CS_DB": str(postcode_db)}, tmp_path / "uvicorn.log") as base, \
            sync_playwright() as p:
        browser = _launch(p)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        console = watch_console(page)
        page.goto(f"{base}/maps/glasgow")
        page.wait_for_selector('body[data-tiles="loaded"]', state="attached", timeout=30_000)
        zoom = page.evaluate("geoCs.map.getZoom()")
        page.fill("#geo-cs-search", "G51 4TP")
        page.click("#geo-cs-search-go")
        hit = page.locator("#geo-cs-search-results button").first
        hit.wait_for(timeout=10_000)
        assert hit.inner_text().startswith("G51 postcode district"), hit.inner_text()
        hit.click()
        page.wait_for_selector('body[data-highlighted="4"]', state="attached", timeout=10_000)
        assert page.evaluate("geoCs.map.getZoom()") > zoom
        browser.close()
    assert not console, console

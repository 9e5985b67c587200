"""Boundaries and keys: each test sits exactly where a rule changes its answer (issue 31, point 3).

A rule that is right in the middle of its range and wrong at its edge passes every test that
stays in the middle: `<` and `<=` agree everywhere but at the minimum, a tolerance of 0 and of
0.1 agree on every change of a point or more. So these tests stand on the edges — a count of
exactly the disclosure minimum, a change of exactly the tolerance, two visitors who differ in
one parameter only, a cell of text that is a number — through the functions and through the
service people use. Every expected figure is written here by hand.

The service tests run on a database of six 1 km squares (the grid of ``conftest``) with two
count measures written here, built in a few seconds (no demo database): the mutation run
(``scripts/mutation.py``) runs these tests once per mutant.
"""

from __future__ import annotations

import atexit
import csv
import gzip
import io
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import mapbox_vector_tile
import numpy as np
import pandas as pd
import pytest
from conftest import DX, DY, GRID_CODES, ORIGIN, REPO, grid_frame
from fastapi.testclient import TestClient
from starlette.requests import Request

from geo_cs import stats, tiles
from geo_cs.analysis import MethodParams, classify_changes, summarise_changes
from geo_cs.api.app import create_app
from geo_cs.api.deps import CachedMapSources, open_cursor
from geo_cs.config import Settings
from geo_cs.disclosure import DisclosureControl
from geo_cs.errors import InputError, NotFoundError
from geo_cs.features import CRS84, EPSG4326, EPSG27700, bbox_to_lonlat, crs_from_param
from geo_cs.maps.page import NAMED_AREA_ZOOM, read_page_config
from geo_cs.spreadsheet import csv_text, neutralise, write_csv

CONTROL = DisclosureControl(round_to=5, min_count=10)

# -- the service's database: six squares, two measures, two quarters ----------------------------

#: claimants per square (of 1,000 people each): 9 is one under the disclosure minimum, 10 is
#: exactly it, 11 one over; the other three put three squares over the 25% threshold.
CLAIMANTS = dict(zip(GRID_CODES, [9, 10, 11, 200, 300, 400], strict=True))
#: the later quarter: the fourth square rises from 20% to 26%, so it is worst-performing on a
#: baseline of the later quarter (26%), not on the default one, the first (20%), nor on both (23%)
CLAIMANTS_LATER = {**CLAIMANTS, GRID_CODES[3]: 260}
#: a second measure on the same squares, every figure different from the first's
LONE = dict(zip(GRID_CODES, [50, 60, 70, 80, 90, 100], strict=True))
#: a third measure held on the four eastern squares only: the western partnership has no map of it
EAST = {code: 7 for code in (GRID_CODES[1], GRID_CODES[2], GRID_CODES[4], GRID_CODES[5])}
#: area names: numbers written as text (left as they are in a CSV) and text a spreadsheet would
#: run (neutralised)
NAMES = dict(zip(GRID_CODES, ["-1.5", "+44 20 7946 0000", "=1+2", "12", "@SUM(A1)", "Testtown"],
                 strict=True))
PERIODS = ("2011-02", "2011-05")
EDGE_YAML = f"""
member_geography: lsoa2011
partnerships:
  - id: edge
    name: Edge partnership
    nation: England
    confidence: stated
    members: [{', '.join(GRID_CODES)}]
  - id: west
    name: West of the squares
    nation: England
    confidence: stated
    members: [{GRID_CODES[0]}, {GRID_CODES[3]}]
"""


#: The database and boundaries folder, built once per process: the mutation run
#: (scripts/mutation.py) starts a pytest session per mutant in forks of one process, and would
#: otherwise build the same database again for each. Nothing writes to it after the build.
_BUILT: dict[str, Path] = {}


def _build() -> dict[str, Path]:
    from geo_cs.ingest import ingest_boundaries
    from geo_cs.ingest.indicators import ingest_indicator, spec_from_dict
    from geo_cs.store import Store

    if _BUILT:
        return _BUILT
    tmp = Path(tempfile.mkdtemp(prefix="geo-cs-edges-"))
    atexit.register(shutil.rmtree, tmp, ignore_errors=True)
    root = tmp / "boundaries"
    shutil.copytree(REPO / "boundaries", root, ignore=shutil.ignore_patterns("demo"))
    with gzip.open(root / "registry" / "codes" / "lsoa2011.txt.gz", "wt") as fh:
        fh.write("\n".join(GRID_CODES) + "\n")
    for existing in (root / "partnerships").glob("*.yaml"):
        existing.unlink()
    (root / "partnerships" / "edge.yaml").write_text(EDGE_YAML, encoding="utf-8")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GEO_CS_BOUNDARIES_DIR", str(root))
        squares = grid_frame()
        squares["LSOA11NM"] = squares["LSOA11CD"].map(NAMES)
        boundaries = tmp / "squares.geojson"
        squares.to_file(boundaries)
        source = tmp / "edge.csv"
        source.write_text("area_code,period,measure,value,denominator\n" + "".join(
            f"{code},{period},{measure},{figures[code]},1000\n"
            for code in GRID_CODES for period in PERIODS
            for measure, figures in (("claimants", CLAIMANTS if period == PERIODS[0] else CLAIMANTS_LATER),
                                     ("lone", LONE), ("east", EAST)) if code in figures),
            encoding="utf-8")
        spec = spec_from_dict({"id": "edge", "layout": "long", "geography": "lsoa2011",
                               "denominator_column": "denominator",
                               "measures": [{"id": "claimants", "kind": "count"},
                                            {"id": "lone", "kind": "count"},
                                            {"id": "east", "kind": "count"}]})
        db = tmp / "edge.duckdb"
        with Store.open(db) as store:
            ingest_boundaries(store, [boundaries])
            ingest_indicator(store, source, spec)
    _BUILT.update(db=db, boundaries=root)
    return _BUILT


@pytest.fixture(scope="module")
def edge_db() -> Iterator[Path]:
    """The database, and a boundaries folder whose one partnership is the six squares (set as
    GEO_CS_BOUNDARIES_DIR for the module's tests: the service reads partnerships per request)."""
    built = _build()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GEO_CS_BOUNDARIES_DIR", str(built["boundaries"]))
        yield built["db"]


@pytest.fixture(scope="module")
def published(edge_db: Path) -> Iterator[TestClient]:
    """The service with disclosure control on, as an authority publishes."""
    with TestClient(create_app(Settings(db=edge_db, disclosure_control=True))) as client:
        yield client


@pytest.fixture
def service(edge_db: Path) -> Iterator[TestClient]:
    """A fresh service (empty caches) per test: the first visitor of a test is the first."""
    with TestClient(create_app(Settings(db=edge_db))) as client:
        yield client


def items(client: TestClient, indicator: str = "edge.claimants", **params) -> dict[str, dict]:
    response = client.get("/collections/lsoa2011/items",
                          params={"indicator": indicator, "period": PERIODS[0], **params})
    assert response.status_code == 200, response.text
    return {f["properties"]["code"]: f["properties"] for f in response.json()["features"]}


def items_csv(client: TestClient, **params) -> dict[str, dict]:
    response = client.get("/collections/lsoa2011/items",
                          params={"indicator": "edge.claimants", "period": PERIODS[0], "f": "csv",
                                  **params})
    assert response.status_code == 200, response.text
    return {row["code"]: row for row in csv.DictReader(io.StringIO(response.text))}


# -- exactly the disclosure minimum: 10 published, 9 withheld ---------------------------------

def test_a_count_of_exactly_the_minimum_is_published_and_one_under_it_withheld():
    assert CONTROL.withheld([9.0, 10.0, 11.0]).tolist() == [True, False, False]
    frame = pd.DataFrame({
        "code": ["nine", "ten", "eleven"], "period_id": "p", "value": [0.9, 1.0, 1.1],
        "value_low": 0.0, "value_high": 5.0, "count": [9.0, 10.0, 11.0],
        "denominator": [1000.0, 1000.0, 1000.0], "worst": False, "baseline_value": 1.0,
        "estimated_share": 0.0})
    out = CONTROL.area_values(frame).set_index("code")
    assert out["suppressed"].tolist() == [True, False, False]
    assert out.loc["nine", ["value", "count", "denominator"]].isna().all()
    # 10 of 1,000 is published as it is (10 is a multiple of 5): 1.0%
    assert (out.loc["ten", "count"], out.loc["ten", "denominator"]) == (10.0, 1000.0)
    assert out.loc["ten", "value"] == pytest.approx(1.0)
    # 11 rounds to 10: the rate is the published one, 10 / 1,000
    assert out.loc["eleven", "value"] == pytest.approx(1.0)


def test_a_denominator_of_exactly_the_minimum_is_published_and_one_under_it_withheld():
    frame = pd.DataFrame({
        "code": ["nine", "ten"], "period_id": "p", "value": [100.0, 100.0], "value_low": 0.0,
        "value_high": 100.0, "count": [10.0, 10.0], "denominator": [9.0, 10.0], "worst": None,
        "baseline_value": np.nan, "estimated_share": 0.0})
    out = CONTROL.area_values(frame).set_index("code")
    assert out["suppressed"].tolist() == [True, False]
    assert np.isnan(out.loc["nine", "denominator"]) and out.loc["ten", "denominator"] == 10.0


def test_a_count_published_alone_at_exactly_the_minimum_is_published():
    frame = pd.DataFrame({"code": ["nine", "ten"], "period_id": "p", "value": [9.0, 10.0],
                          "value_low": np.nan, "value_high": np.nan, "count": np.nan,
                          "denominator": np.nan, "worst": None, "baseline_value": np.nan,
                          "estimated_share": 0.0})
    out = CONTROL.area_values(frame, counts=True)
    assert out["suppressed"].tolist() == [True, False]
    assert np.isnan(out["value"].iat[0]) and out["value"].iat[1] == 10.0


def test_a_group_of_exactly_the_minimum_is_published_in_a_table_and_one_under_it_withheld():
    table = pd.DataFrame({"count": [9.0, 10.0], "denominator": [500.0, 500.0]})
    out = CONTROL.rate_table(table)
    assert out["suppressed"].tolist() == [True, False]
    assert np.isnan(out["rate"].iat[0]) and out["rate"].iat[1] == pytest.approx(2.0)


def test_the_minimum_is_the_setting_not_a_constant():
    # an authority that publishes counts from 3 up: 3 is published, 2 withheld
    assert DisclosureControl(round_to=1, min_count=3).withheld([2.0, 3.0]).tolist() == [True, False]


def test_the_service_publishes_a_count_of_exactly_the_minimum_and_withholds_nine(published):
    seen = items(published)
    nine, ten, eleven = (seen[c] for c in GRID_CODES[:3])
    assert nine["suppressed"] is True
    assert nine["value"] is None and nine["count"] is None and nine["denominator"] is None
    assert ten["suppressed"] is False and ten["count"] == 10 and ten["denominator"] == 1000
    assert ten["value"] == pytest.approx(1.0)
    # 11 is published, rounded to 10
    assert eleven["suppressed"] is False and eleven["count"] == 10


def test_the_csv_download_publishes_exactly_the_minimum_and_withholds_nine(published):
    rows = items_csv(published)
    nine, ten = rows[GRID_CODES[0]], rows[GRID_CODES[1]]
    assert (nine["suppressed"], nine["value"], nine["count"]) == ("true", "", "")
    assert (ten["suppressed"], float(ten["count"]), float(ten["value"])) == ("false", 10.0, 1.0)


def test_the_tiles_draw_exactly_the_minimum_and_withhold_nine(published):
    z = 12
    x, y = tiles.lonlat_to_tile(-1.53, 53.805, z)
    tile = published.get(f"/tiles/lsoa2011/{z}/{x}/{y}.mvt",
                         params={"indicator": "edge.claimants", "period": PERIODS[0]})
    assert tile.status_code == 200
    drawn = {f["properties"]["code"]: f["properties"]
             for f in mapbox_vector_tile.decode(tile.content)["lsoa2011"]["features"]}
    assert set(drawn) == set(GRID_CODES)
    assert drawn[GRID_CODES[0]].get("suppressed") is True and "value" not in drawn[GRID_CODES[0]]
    assert "suppressed" not in drawn[GRID_CODES[1]]
    assert drawn[GRID_CODES[1]]["value"] == pytest.approx(1.0)


# -- exactly the 0.1-point tolerance of closed / widened --------------------------------------

def _two_periods(gaps: dict[str, tuple[float, float]], half_width: float = 0.001,
                 rates: dict[str, tuple[float, float]] | None = None) -> pd.DataFrame:
    """An NI 153 series of two periods: each partnership's gap (and cohort rate) then and now,
    each with an interval of ± ``half_width``."""
    rows = []
    for name, pair in gaps.items():
        for period, i in (("then", 0), ("now", 1)):
            gap = pair[i]
            rate = rates[name][i] if rates else 30.0
            rows.append({"partnership": name, "period_id": period, "gap": gap,
                         "gap_low": gap - half_width, "gap_high": gap + half_width,
                         "cohort_rate": rate, "cohort_rate_low": rate - half_width,
                         "cohort_rate_high": rate + half_width, "n_cohort": 3})
    return pd.DataFrame(rows)


def _directions(table: pd.DataFrame, column: str = "gap_direction") -> dict[str, str]:
    return classify_changes(table, "then", "now", MethodParams()).set_index("partnership")[column].to_dict()


def test_a_change_in_the_gap_must_exceed_the_tolerance_to_close_or_widen_it():
    """The rule (MethodParams, classify_changes): a change counts only when it is *larger* than
    0.1 points (and its interval excludes 0). A change of exactly 0.1 is "unchanged".

    0.2 → 0.1 and 0.1 → 0.2 are changes of exactly 0.1 in floating point too (for gaps of a
    point or more no difference is ever exactly 0.1: see the test below)."""
    gaps = {"closed 0.09": (5.0, 4.91), "closed 0.1": (0.2, 0.1), "closed 0.11": (5.0, 4.89),
            "widened 0.09": (5.0, 5.09), "widened 0.1": (0.1, 0.2), "widened 0.11": (5.0, 5.11),
            # a negative gap (the cohort below the rest) closes when its size shrinks
            "negative closed 0.11": (-5.0, -4.89), "negative widened 0.11": (-5.0, -5.11),
            "negative closed 0.09": (-5.0, -4.91)}
    assert _directions(_two_periods(gaps)) == {
        "closed 0.09": "unchanged", "closed 0.1": "unchanged", "closed 0.11": "closed",
        "widened 0.09": "unchanged", "widened 0.1": "unchanged", "widened 0.11": "widened",
        "negative closed 0.11": "closed", "negative widened 0.11": "widened",
        "negative closed 0.09": "unchanged"}


def test_a_change_in_the_cohort_rate_must_exceed_the_tolerance_to_count():
    rates = {"down 0.09": (5.0, 4.91), "down 0.1": (0.2, 0.1), "down 0.11": (5.0, 4.89),
             "up 0.09": (5.0, 5.09), "up 0.1": (0.1, 0.2), "up 0.11": (5.0, 5.11)}
    table = _two_periods({name: (3.0, 3.0) for name in rates}, rates=rates)
    assert _directions(table, "cohort_rate_direction") == {
        "down 0.09": "unchanged", "down 0.1": "unchanged", "down 0.11": "reduced",
        "up 0.09": "unchanged", "up 0.1": "unchanged", "up 0.11": "increased"}


def test_within_noise_is_said_only_of_a_change_beyond_the_tolerance():
    """``gap_change_within_noise``: a change larger than the tolerance whose interval holds 0
    (the summary then says noise, not the tolerance, kept it "unchanged")."""
    gaps = {"0.09": (5.0, 4.91), "0.1": (0.2, 0.1), "0.11": (5.0, 4.89), "2.0": (5.0, 3.0)}
    changes = classify_changes(_two_periods(gaps, half_width=2.0), "then", "now").set_index("partnership")
    assert changes["gap_direction"].eq("unchanged").all()
    assert changes["gap_change_within_noise"].to_dict() == {"0.09": False, "0.1": False, "0.11": True,
                                                          "2.0": True}


def test_a_change_of_exactly_the_tolerance_between_published_figures_is_unchanged():
    # a gap of 3.0 points that falls to 2.9 changed by exactly 0.1 for anyone reading the
    # figures, though 2.9 - 3.0 is -0.10000000000000009 in floating point; DWP's published rates
    # have one decimal, so such changes are common (the tolerance has THRESHOLD_EPSILON for it)
    gaps = {"3.0 → 2.9": (3.0, 2.9), "2.5 → 2.4": (2.5, 2.4), "1.0 → 1.1": (1.0, 1.1),
            "5.0 → 4.9": (5.0, 4.9)}
    assert set(_directions(_two_periods(gaps)).values()) == {"unchanged"}


# -- a second visitor who changes only the indicator gets that indicator ------------------------

def test_a_second_visitor_who_changes_only_the_indicator_gets_its_items(service):
    first = items(service, "edge.claimants")
    second = items(service, "edge.lone")
    assert {c: p["count"] for c, p in first.items()} == CLAIMANTS
    assert {c: p["count"] for c, p in second.items()} == LONE
    assert {p["indicator"] for p in second.values()} == {"edge.lone"}
    # and the first indicator is still the first visitor's
    assert {c: p["count"] for c, p in items(service, "edge.claimants").items()} == CLAIMANTS


def _map(client: TestClient, indicator: str) -> dict:
    response = client.get("/maps/edge", params={"geography": "lsoa2011", "indicator": indicator})
    assert response.status_code == 200, response.text
    return read_page_config(response.text)


@pytest.mark.parametrize("order", [("edge.claimants", "edge.lone"), ("edge.lone", "edge.claimants")])
def test_a_second_visitor_who_changes_only_the_indicator_gets_its_map(service, order):
    first, second = (_map(service, indicator) for indicator in order)
    assert (first["indicator"], second["indicator"]) == order
    for config, indicator in zip((first, second), order, strict=True):
        assert f"indicator={indicator}&" in config["periods"][0]["tiles"]
        # the map's figures are the indicator's own: the partnership's rate is its sum over
        # 6,000 people (claimants 930 → 15.5%, lone 450 → 7.5%)
        expected = sum((CLAIMANTS if indicator == "edge.claimants" else LONE).values()) / 6000 * 100
        assert config["periods"][0]["summary"]["partnership_value"] == pytest.approx(expected)


def test_a_second_visitor_who_changes_only_the_indicator_gets_its_figures(service):
    def figures(indicator: str) -> dict:
        response = service.get("/maps/edge/figures.json",
                               params={"geography": "lsoa2011", "indicator": indicator})
        assert response.status_code == 200, response.text
        return response.json()["periods"][0]["summary"]

    assert figures("edge.claimants")["partnership_value"] == pytest.approx(15.5)
    assert figures("edge.lone")["partnership_value"] == pytest.approx(7.5)


# -- numbers written as text are left alone in a CSV; formulas are not --------------------------

def test_numeric_text_is_left_as_it_is_and_formula_text_is_neutralised():
    for number in ("-1.5", "+1.5", "-0", "-12", "+44", "-1e3", "1.5"):
        assert neutralise(number) == number
    for formula in ("=1+2", "+44 20 7946 0000", "-2+3", "@SUM(A1)", "-cmd|' /C calc'!A0",
                    "\t=1", "\r=1"):
        assert neutralise(formula) == "'" + formula
    # numbers (not text) are numbers whatever their sign
    assert neutralise(-1.5) == -1.5 and neutralise(np.float64(-2.0)) == -2.0


def test_a_csv_keeps_numeric_text_a_spreadsheet_reads_as_a_number(tmp_path: Path):
    frame = pd.DataFrame({"name": ["-1.5", "+44", "=1+2"], "gap": [-1.5, 2.0, 0.0]})
    written = tmp_path / "gaps.csv"
    write_csv(frame, written)
    for text in (csv_text(frame), written.read_text(encoding="utf-8")):
        rows = list(csv.DictReader(io.StringIO(text)))
        assert [r["name"] for r in rows] == ["-1.5", "+44", "'=1+2"]
        assert [r["gap"] for r in rows] == ["-1.5", "2.0", "0.0"]


def test_the_items_csv_keeps_numeric_names_and_neutralises_formula_names(service):
    rows = items_csv(service)
    assert {code: rows[code]["name"] for code in GRID_CODES} == {
        GRID_CODES[0]: "-1.5", GRID_CODES[1]: "'+44 20 7946 0000", GRID_CODES[2]: "'=1+2",
        GRID_CODES[3]: "12", GRID_CODES[4]: "'@SUM(A1)", GRID_CODES[5]: "Testtown"}


def test_a_csv_is_the_frame_as_published_with_no_index_column(tmp_path: Path):
    frame = pd.DataFrame({"name": ["-1.5", "=1+2"], "gap": [-1.5, 2.0]})
    expected = "name,gap\n-1.5,-1.5\n'=1+2,2.0\n"
    assert csv_text(frame) == expected
    written = tmp_path / "gaps.csv"
    write_csv(frame, written)
    assert written.read_text(encoding="utf-8") == expected
    # where the figures come from, as columns of their own on every row (and never over a column
    # of the frame's own)
    write_csv(frame, written, about={"source": "=SIMD", "gap": "not this"})
    assert written.read_text(encoding="utf-8") == "name,gap,source\n-1.5,-1.5,'=SIMD\n'=1+2,2.0,'=SIMD\n"


@pytest.mark.parametrize(("column", "written"), [
    (pd.Series([True, False], dtype=bool), ["true", "false"]),
    (pd.Series([True, pd.NA, False], dtype="boolean"), ["true", "", "false"]),
    # yes/no held as Python objects, with a missing value as None or as NaN (after a merge)
    (pd.Series([True, None, False], dtype=object), ["true", "", "false"]),
    (pd.Series([np.True_, np.nan, False], dtype=object), ["true", "", "false"]),
])
def test_yes_no_columns_are_written_true_and_false_and_missing_stays_empty(column, written):
    rows = list(csv.reader(io.StringIO(csv_text(pd.DataFrame({"worst": column})))))
    assert rows == [["worst"], *([w] for w in written)]


@pytest.mark.parametrize(("column", "written"), [
    # text, and text held with other objects: every text cell is neutralised, numbers kept
    (pd.Series(["=1+2", "-1.5"], dtype=object), ["'=1+2", "-1.5"]),
    (pd.Series(["=1+2", 3], dtype=object), ["'=1+2", "3"]),
    (pd.Series(["=1+2", None], dtype="string"), ["'=1+2", ""]),
    # a column of nothing is not a yes/no column
    (pd.Series([None, None], dtype=object), ["", ""]),
    # a yes/no among text is written true/false like any, and the text stays text
    (pd.Series([True, "=x"], dtype=object), ["true", "'=x"]),
    # numbers are numbers
    (pd.Series([-1.5, 2.0]), ["-1.5", "2.0"]),
])
def test_text_cells_are_neutralised_in_any_column_that_holds_text(column, written):
    rows = list(csv.reader(io.StringIO(csv_text(pd.DataFrame({"cell": column})))))
    assert rows == [["cell"], *([w] for w in written)]


# -- coordinates in the CRS asked for, in its axis order ------------------------------------------

#: the lon/lat centre of the fifth square (GRID_CODES[4]: second row, middle)
CENTRE = (ORIGIN[0] + 1.5 * DX, ORIGIN[1] + 1.5 * DY)


def _bng(lon: float, lat: float) -> tuple[float, float]:
    """British National Grid easting/northing of a lon/lat point, by PROJ directly."""
    import pyproj

    return pyproj.Transformer.from_crs("OGC:CRS84", "EPSG:27700", always_xy=True).transform(lon, lat)


def _outer_ring(client: TestClient, code: str, **params) -> tuple[list[list[float]], str]:
    response = client.get(f"/collections/lsoa2011/items/{code}", params=params)
    assert response.status_code == 200, response.text
    return response.json()["geometry"]["coordinates"][0][0], response.headers["content-crs"]


def test_crs_names_are_read_in_every_form_and_anything_else_refused():
    assert crs_from_param(None, "crs") == crs_from_param("", "crs") == CRS84
    for form, uri in ((" crs84 ", CRS84), ("OGC:CRS84", CRS84), ("epsg:4326", EPSG4326),
                      ("https://www.opengis.net/def/crs/EPSG/0/4326", EPSG4326),
                      ("urn:ogc:def:crs:EPSG::27700", EPSG27700), (EPSG27700, EPSG27700)):
        assert crs_from_param(form, "crs") == uri, form
    for unknown in ("EPSG:3857", "4326", "EPSG:4326:x"):
        with pytest.raises(InputError, match="bbox-crs="):
            crs_from_param(unknown, "bbox-crs")


def test_a_bbox_is_read_in_its_crs_axis_order_and_checked_at_its_edges():
    assert bbox_to_lonlat((-1.55, 53.80, -1.50, 53.82), CRS84) == (-1.55, 53.80, -1.50, 53.82)
    # EPSG:4326 is latitude first
    assert bbox_to_lonlat((53.80, -1.55, 53.82, -1.50), EPSG4326) == (-1.55, 53.80, -1.50, 53.82)
    # the whole world, exactly, in either order
    assert bbox_to_lonlat((-180, -90, 180, 90), CRS84) == (-180, -90, 180, 90)
    assert bbox_to_lonlat((-90, -180, 90, 180), EPSG4326) == (-180, -90, 180, 90)
    for outside in ((-180.01, -90, 180, 90), (-180, -90.01, 180, 90), (-180, -90, 180.01, 90),
                    (-180, -90, 180, 90.01)):
        with pytest.raises(InputError, match="out of range"):
            bbox_to_lonlat(outside, CRS84)
    for outside in ((-90.01, -180, 90, 180), (-90, -180.01, 90, 180)):     # latitude first
        with pytest.raises(InputError, match="out of range"):
            bbox_to_lonlat(outside, EPSG4326)
    for inverted, crs in (((-1.50, 53.80, -1.55, 53.82), CRS84), ((-1.55, 53.82, -1.50, 53.80), CRS84),
                          ((53.82, -1.55, 53.80, -1.50), EPSG4326), ((431000, 433000, 430000, 434000), EPSG27700)):
        with pytest.raises(InputError, match="min must not exceed max"):
            bbox_to_lonlat(inverted, crs)
    for wrong in ((1.0, 2.0, 3.0), (1.0, 2.0, 3.0, 4.0, 5.0)):
        with pytest.raises(InputError, match="expected 4 numbers"):
            bbox_to_lonlat(wrong, CRS84)
    for bad in (float("nan"), float("inf")):
        with pytest.raises(InputError, match="finite"):
            bbox_to_lonlat((-1.55, 53.80, bad, 53.82), CRS84)


def test_a_british_national_grid_bbox_becomes_the_lon_lat_box_around_it():
    east, north = _bng(*CENTRE)
    west_lon, south_lat, east_lon, north_lat = bbox_to_lonlat((east - 100, north - 100, east + 100, north + 100),
                                                              EPSG27700)
    # 200 m is about 0.003° of longitude and 0.0018° of latitude at 53.8°N
    assert west_lon < CENTRE[0] < east_lon and south_lat < CENTRE[1] < north_lat
    assert east_lon - west_lon == pytest.approx(0.00304, abs=2e-4)
    assert north_lat - south_lat == pytest.approx(0.0018, abs=1e-4)


@pytest.mark.parametrize(("crs", "swapped"), [(None, False), ("EPSG:4326", True), ("CRS84", False)])
def test_items_come_in_lon_lat_or_lat_lon_as_the_crs_says(service, crs, swapped):
    ring, content_crs = _outer_ring(service, GRID_CODES[0], **({"crs": crs} if crs else {}))
    assert content_crs == f"<{EPSG4326 if swapped else CRS84}>"
    firsts, seconds = zip(*ring, strict=True)
    lons, lats = (seconds, firsts) if swapped else (firsts, seconds)
    # the first square's corners: ORIGIN and ORIGIN + (DX, DY)
    assert (min(lons), max(lons)) == pytest.approx((ORIGIN[0], ORIGIN[0] + DX), abs=1e-9)
    assert (min(lats), max(lats)) == pytest.approx((ORIGIN[1], ORIGIN[1] + DY), abs=1e-9)


def test_items_in_british_national_grid_are_eastings_and_northings(service):
    ring, content_crs = _outer_ring(service, GRID_CODES[0], crs="EPSG:27700")
    assert content_crs == f"<{EPSG27700}>"
    corner = _bng(*ORIGIN)
    nearest = min(ring, key=lambda p: (p[0] - corner[0]) ** 2 + (p[1] - corner[1]) ** 2)
    assert nearest[0] == pytest.approx(corner[0], abs=2.0) and nearest[1] == pytest.approx(corner[1], abs=2.0)


def _codes(client: TestClient, **params) -> list[str]:
    response = client.get("/collections/lsoa2011/items", params=params)
    assert response.status_code == 200, response.text
    return [f["properties"]["code"] for f in response.json()["features"]]


def test_a_bbox_selects_the_same_square_in_every_crs(service):
    lon, lat = CENTRE
    d = 0.001
    east, north = _bng(lon, lat)
    assert _codes(service, bbox=f"{lon - d},{lat - d},{lon + d},{lat + d}") == [GRID_CODES[4]]
    assert _codes(service, bbox=f"{lat - d},{lon - d},{lat + d},{lon + d}", **{"bbox-crs": "EPSG:4326"}) \
        == [GRID_CODES[4]]
    assert _codes(service, bbox=f"{east - 50},{north - 50},{east + 50},{north + 50}",
                  **{"bbox-crs": "EPSG:27700"}) == [GRID_CODES[4]]
    # the same numbers in the other axis order are another place: nothing there
    assert _codes(service, bbox=f"{lat - d},{lon - d},{lat + d},{lon + d}") == []
    assert sorted(_codes(service, bbox="-180,-90,180,90")) == sorted(GRID_CODES)
    assert sorted(_codes(service, bbox="-90,-180,90,180", **{"bbox-crs": "EPSG:4326"})) == sorted(GRID_CODES)


def test_a_filter_point_selects_the_same_square_in_every_crs(service):
    lon, lat = CENTRE
    east, north = _bng(lon, lat)
    for literal, crs in ((f"POINT({lon} {lat})", None), (f"POINT({lon} {lat})", "CRS84"),
                         (f"POINT({lat} {lon})", "EPSG:4326"), (f"POINT({east} {north})", "EPSG:27700")):
        params = {"filter": f"S_INTERSECTS(geometry, {literal})", **({"filter-crs": crs} if crs else {})}
        assert _codes(service, **params) == [GRID_CODES[4]], params
        # and with the page's geometry left out (a CSV), the same square
        response = service.get("/collections/lsoa2011/items", params={**params, "f": "csv"})
        assert [row["code"] for row in csv.DictReader(io.StringIO(response.text))] == [GRID_CODES[4]]


def test_a_partnership_outline_comes_in_the_crs_asked_and_its_bbox_only_in_lon_lat(service):
    lonlat = service.get("/collections/partnerships/items/edge").json()
    assert lonlat["bbox"] == pytest.approx([ORIGIN[0], ORIGIN[1], ORIGIN[0] + 3 * DX, ORIGIN[1] + 2 * DY],
                                           abs=1e-9)
    # the second request differs in its crs only: it gets its own outline (the cache key has it)
    bng = service.get("/collections/partnerships/items/edge", params={"crs": "EPSG:27700"})
    assert bng.headers["content-crs"] == f"<{EPSG27700}>"
    assert bng.json()["bbox"] is None
    corner = _bng(*ORIGIN)
    ring = bng.json()["geometry"]["coordinates"][0][0]
    nearest = min(ring, key=lambda p: (p[0] - corner[0]) ** 2 + (p[1] - corner[1]) ** 2)
    assert nearest == pytest.approx(list(corner), abs=2.0)
    latlon = service.get("/collections/partnerships/items/edge", params={"crs": "EPSG:4326"}).json()
    ring = latlon["geometry"]["coordinates"][0][0]
    assert min(p[0] for p in ring) == pytest.approx(ORIGIN[1], abs=1e-9)    # latitude first


# -- more visitors who change one thing -------------------------------------------------------

def test_a_visitor_who_names_a_partnership_gets_its_areas_and_the_next_every_area(service):
    west = sorted([GRID_CODES[0], GRID_CODES[3]])
    assert sorted(_codes(service, partnership="west")) == west
    assert sorted(_codes(service)) == sorted(GRID_CODES)
    assert sorted(_codes(service, partnership="edge")) == sorted(GRID_CODES)
    assert sorted(_codes(service, partnership="west")) == west
    assert sorted(items_csv(service, partnership="west")) == west
    # a box and a partnership together: the partnership's areas in the box
    lon, lat = CENTRE
    assert _codes(service, partnership="edge", bbox=f"{lon - 0.001},{lat - 0.001},{lon + 0.001},{lat + 0.001}") \
        == [GRID_CODES[4]]


def test_a_second_visitor_who_changes_only_the_threshold_gets_their_own_worst_areas(service):
    def worst(threshold: float | None) -> set[str]:
        seen = items(service, **({"threshold": threshold} if threshold is not None else {}))
        return {code for code, p in seen.items() if p["worst"]}

    # rates: 0.9, 1.0, 1.1, 20, 30, 40 %; worst is strictly above the threshold
    assert worst(None) == {GRID_CODES[4], GRID_CODES[5]}
    assert worst(20) == {GRID_CODES[4], GRID_CODES[5]}
    assert worst(19.9) == {GRID_CODES[3], GRID_CODES[4], GRID_CODES[5]}
    assert worst(1.0) == set(GRID_CODES[2:])
    # a threshold means one decimal: 19.96 is 20.0, and 20% is not above it
    assert worst(19.96) == {GRID_CODES[4], GRID_CODES[5]}
    assert worst(None) == {GRID_CODES[4], GRID_CODES[5]}


def test_a_second_visitor_who_changes_only_the_threshold_gets_their_own_map(service):
    def summary(**params) -> dict:
        response = service.get("/maps/edge", params={"geography": "lsoa2011", "indicator": "edge.claimants",
                                                      **params})
        assert response.status_code == 200, response.text
        config = read_page_config(response.text)
        return {"threshold": config["threshold"], "n_cohort": config["periods"][0]["summary"]["n_cohort"]}

    assert summary() == {"threshold": 25, "n_cohort": 2}
    assert summary(threshold=19.9) == {"threshold": 19.9, "n_cohort": 3}
    assert summary() == {"threshold": 25, "n_cohort": 2}


# -- the intervals at their edges (geo_cs.stats) ------------------------------------------------

Z95 = 1.959963984540054    # the 97.5% point of the standard normal


def _same(a, b) -> None:
    """Equal arrays (or tuples of them), NaN where the other has NaN."""
    if isinstance(a, tuple):
        assert isinstance(b, tuple) and len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            _same(x, y)
    else:
        np.testing.assert_array_equal(np.asarray(a, dtype=float), np.asarray(b, dtype=float))


NAN = float("nan")
#: (function, arguments with a missing figure as NaN): the same call with None in its place
#: must give the same answer (a missing figure from a nullable column or a JSON null)
WITH_MISSING = [
    (stats.wilson_interval, ([25.0, NAN], [100.0, 100.0])),
    (stats.wilson_interval, ([25.0, 25.0], [100.0, NAN])),
    (stats.rate_with_interval, ([25.0, NAN], [100.0, 100.0])),
    (stats.rate_with_interval, ([25.0, 25.0], [NAN, 100.0])),
    *((stats.difference_interval, tuple([10.0, NAN] if i == k else [10.0, 12.0] for i in range(6)))
      for k in range(6)),
    *((stats.change_interval, tuple([10.0, NAN] if i == k else [10.0, 12.0] for i in range(6)))
      for k in range(6)),
    (stats.index_interval, ([25.0, NAN], [20.0, 20.0])),
    (stats.index_interval, ([25.0, 25.0], [NAN, 20.0])),
    (stats.rounding_sd, ([4.0, NAN],)),
    *((stats.widen_for_denominator, tuple([10.0, NAN] if i == k else v for i, v in enumerate(
        ([10.0, 10.0], [9.0, 9.0], [11.0, 11.0], [1000.0, 1000.0], [100.0, 100.0])))) for k in range(5)),
    (stats.linear_half_width, ([0.5, 0.5], [3.0, NAN])),
    (stats.linear_half_width, ([0.5, NAN], [3.0, 4.0])),
    (stats.combine_survey_rates, ([70_000.0, NAN], [100_000.0, 300_000.0], [3.0, 2.0])),
    (stats.combine_survey_rates, ([70_000.0, 222_000.0], [100_000.0, NAN], [3.0, 2.0])),
    (stats.known_half_widths, ([[0.5, 0.5]], [[3.0, NAN]])),
    (stats.known_half_widths, ([[0.5, NAN]], [[3.0, 4.0]])),
    (CONTROL.round, ([3.0, NAN],)),
    (CONTROL.withheld, ([3.0, NAN],)),
]


@pytest.mark.parametrize(("function", "args"), WITH_MISSING,
                         ids=[f"{getattr(f, '__name__', 'f')}-{i}" for i, (f, _) in enumerate(WITH_MISSING)])
def test_a_missing_figure_given_as_none_is_missing_like_nan(function, args):
    def as_none(value):
        if isinstance(value, list):
            return [as_none(v) for v in value]
        return None if isinstance(value, float) and np.isnan(value) else value

    _same(function(*(as_none(a) for a in args)), function(*args))


def test_a_zero_or_missing_denominator_gives_no_rate_and_no_warning():
    """Nothing is printed on an officer's terminal or in the server's log for an area with no
    population: its rate and interval are simply missing."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        low, high = stats.wilson_interval([0.0, 5.0, 5.0], [0.0, 0.0, NAN])
        rate, rate_low, _ = stats.rate_with_interval([0.0, 5.0, 5.0], [0.0, 0.0, NAN])
        index, index_low, _ = stats.index_interval([0.0, 5.0, 0.0], [0.0, 0.0, 5.0])
        wide_low, _ = stats.widen_for_denominator([0.0, 5.0], [0.0, 4.0], [1.0, 6.0], [0.0, 0.0],
                                                  [1.0, 1.0])
    assert np.isnan(low).all() and np.isnan(high).all() and np.isnan(rate).all() and np.isnan(rate_low).all()
    assert np.isnan(index[:2]).all() and index[2] == 0.0 and np.isnan(index_low).all()
    # without a denominator the interval is left as it was
    assert wide_low.tolist() == [0.0, 4.0]


def test_wilson_reaches_exactly_0_and_100_at_the_ends():
    """At a count of 0 the interval starts at 0% and at a count of all it ends at 100%, never
    beyond: the formula alone gives -1e-15% or 100.00000000000001% for some denominators."""
    n = np.arange(1.0, 3001.0)
    for confidence in (0.9, 0.95, 0.99):
        low, _ = stats.wilson_interval(np.zeros_like(n), n, confidence)
        _, high = stats.wilson_interval(n, n, confidence)
        assert (low >= 0.0).all() and (low < 1e-12).all()
        assert (high <= 100.0).all() and (high > 100.0 - 1e-12).all()


def test_the_index_and_its_interval_at_a_count_of_one():
    index, low, high = stats.index_interval([1.0, 3.0, 1.0], [1.0, 1.0, 4.0])
    assert index.tolist() == [100.0, 300.0, 25.0]
    # Poisson log-ratio interval: index × exp(±z √(1/c + 1/b))
    for i, (c, b) in enumerate(((1, 1), (3, 1), (1, 4))):
        spread = Z95 * np.sqrt(1 / c + 1 / b)
        assert (low[i], high[i]) == pytest.approx((index[i] * np.exp(-spread), index[i] * np.exp(spread)))


def test_a_derived_denominator_of_one_is_still_a_denominator_and_noise_in_its_variance_is_nothing():
    low, high = stats.widen_for_denominator([10.0, 10.0], [9.0, 9.0], [11.0, 11.0], [1.0, 1000.0],
                                            [0.01, -1e-12])
    # a denominator of 1 with an SD of 0.1 adds z × 10 × 0.1 / 1 = 1.96 points in quadrature
    extra = Z95 * 10 * 0.1
    assert (low[0], high[0]) == pytest.approx((10 - np.hypot(1, extra), 10 + np.hypot(1, extra)))
    # a variance of -1e-12 (float noise from a difference) adds nothing
    assert (low[1], high[1]) == (9.0, 11.0)


def test_a_population_of_one_is_a_population():
    assert stats.combine_survey_rates([1.0], [1.0], [2.0]) == (100.0, 2.0)
    rate, half_width = stats.combine_survey_rates([0.0], [0.0], [2.0])
    assert np.isnan(rate) and np.isnan(half_width)


def test_the_cohort_share_counts_a_missing_denominator_as_no_one():
    wide = pd.DataFrame({
        "cohort_rate": [10.0, 10.0, 10.0, 10.0], "cohort_rate_low": 9.0, "cohort_rate_high": 11.0,
        "rest_rate": [5.0, 5.0, 5.0, 5.0], "rest_rate_low": 4.0, "rest_rate_high": 6.0,
        "cohort_denominator": [NAN, 1000.0, 1.0, NAN], "rest_denominator": [3000.0, NAN, 0.0, NAN]})
    stats.add_gap(wide)
    assert wide["cohort_share"].iloc[:3].tolist() == [0.0, 1.0, 1.0]
    assert np.isnan(wide["cohort_share"].iat[3])
    assert wide["gap"].tolist() == [5.0] * 4


# -- the disclosure settings and what a table carries -------------------------------------------

def test_disclosure_settings_are_checked_at_their_edges():
    DisclosureControl(round_to=1, min_count=0)      # publish everything, rounded to 1: allowed
    for round_to, min_count in ((0, 10), (5, -1), (0, -1)):
        with pytest.raises(ValueError, match="round_to >= 1 and min_count >= 0"):
            DisclosureControl(round_to=round_to, min_count=min_count)


def test_a_published_table_keeps_its_notes_and_states_the_control_once():
    table = pd.DataFrame({"count": [100.0], "denominator": [1000.0]})
    table.attrs["notes"] = ["Source: DWP"]
    once = CONTROL.rate_table(table)
    assert once.attrs["notes"] == ["Source: DWP", CONTROL.note]
    assert CONTROL.rate_table(once).attrs["notes"] == ["Source: DWP", CONTROL.note]


def test_a_published_gap_table_takes_the_confidence_asked():
    table = pd.DataFrame({"cohort_count": [120.0], "cohort_denominator": [400.0],
                          "rest_count": [300.0], "rest_denominator": [3000.0]})
    for role in ("cohort", "rest"):
        table[f"{role}_rate"] = table[f"{role}_count"] / table[f"{role}_denominator"] * 100
    at90, at95 = CONTROL.gap_table(table.copy(), 0.90), CONTROL.gap_table(table.copy())
    # 90% intervals are narrower, for each rate and for the gap
    for column in ("cohort_rate", "rest_rate", "gap"):
        assert at95[f"{column}_low"].iat[0] < at90[f"{column}_low"].iat[0] < at90[column].iat[0]
    # the cohort's 90% interval is Wilson's at z = 1.645 (the rates are already multiples of 5)
    low, high = stats.wilson_interval(120, 400, 0.90)
    assert (at90["cohort_rate_low"].iat[0], at90["cohort_rate_high"].iat[0]) == pytest.approx((low, high))


def test_an_unclassified_area_is_neither_worst_nor_not_worst():
    frame = pd.DataFrame({"code": ["a", "b", "c"], "period_id": ["p", "p", "q"],
                          "value": [30.0, 10.0, 30.0]})
    cohort = DisclosureControl.published_cohort(frame, ("p",), 25.0).set_index("code")
    # c has no value in the baseline period: not classified, held as NA in a yes/no column
    assert cohort["worst"].dtype == "boolean"
    assert [bool(cohort.loc[c, "worst"]) for c in ("a", "b")] == [True, False]
    assert cohort.loc["c", "worst"] is pd.NA


# -- every column of the classification, and every clause of its sentence ----------------------

def test_the_classification_of_changes_column_by_column():
    """Two periods of three partnerships, every figure of the result worked by hand: ``closer``
    narrows a positive gap (asymmetric intervals), ``below`` is a negative gap that grows in
    size (so it widens), ``none`` has no worst-performing areas, ``gone`` has no second period."""
    rows = [
        # partnership, period, gap, gap_low, gap_high, cohort rate, low, high, n_cohort
        ("closer", "then", 5.0, 4.6, 5.5, 30.0, 29.0, 31.5, 3),
        ("closer", "now", 4.0, 3.8, 4.1, 28.0, 27.5, 28.2, 3),
        ("below", "then", -2.0, -2.3, -1.8, 10.0, 9.5, 10.5, 2),
        ("below", "now", -3.0, -3.1, -2.6, 10.05, 9.6, 10.4, 2),
        ("none", "then", 1.0, 0.5, 1.5, 20.0, 19.0, 21.0, 0),
        ("none", "now", 0.5, 0.4, 0.6, 20.0, 19.0, 21.0, 0),
        ("gone", "then", 1.0, 0.5, 1.5, 20.0, 19.0, 21.0, 1),
    ]
    table = pd.DataFrame(rows, columns=["partnership", "period_id", "gap", "gap_low", "gap_high",
                                        "cohort_rate", "cohort_rate_low", "cohort_rate_high", "n_cohort"])
    params = MethodParams(threshold=20.0)
    out = classify_changes(table, "then", "now", params)
    assert list(out.columns) == [
        "partnership", "from_period", "to_period", "gap_from", "gap_to", "gap_change", "gap_change_low",
        "gap_change_high", "gap_direction", "gap_change_within_noise", "cohort_rate_from", "cohort_rate_to",
        "cohort_rate_change", "cohort_rate_change_low", "cohort_rate_change_high", "cohort_rate_direction",
        "n_cohort", "method"]
    got = out.set_index("partnership")
    assert got.index.tolist() == ["closer", "below", "none", "gone"]
    assert (got["from_period"] == "then").all() and (got["to_period"] == "now").all()
    assert (got["method"] == params.to_json()).all()
    # closer: the gap's size 5.0 → 4.0 (change −1.0); each side's half-widths in quadrature, the
    # lower end from the later period's lower and the earlier period's upper half-width
    c = got.loc["closer"]
    assert (c["gap_from"], c["gap_to"], c["gap_change"]) == (5.0, 4.0, -1.0)
    assert c["gap_change_low"] == pytest.approx(-1.0 - np.hypot(0.2, 0.5))
    assert c["gap_change_high"] == pytest.approx(-1.0 + np.hypot(0.1, 0.4))
    assert c["gap_direction"] == "closed" and not c["gap_change_within_noise"]
    assert (c["cohort_rate_from"], c["cohort_rate_to"], c["cohort_rate_change"]) == (30.0, 28.0, -2.0)
    assert c["cohort_rate_change_low"] == pytest.approx(-2.0 - np.hypot(0.5, 1.5))
    assert c["cohort_rate_change_high"] == pytest.approx(-2.0 + np.hypot(0.2, 1.0))
    assert c["cohort_rate_direction"] == "reduced" and c["n_cohort"] == 3
    # below: sizes 2.0 → 3.0, intervals flipped with the sign: [1.8, 2.3] → [2.6, 3.1]
    b = got.loc["below"]
    assert (b["gap_from"], b["gap_to"], b["gap_change"]) == (-2.0, -3.0, 1.0)
    assert b["gap_change_low"] == pytest.approx(1.0 - np.hypot(0.4, 0.3))
    assert b["gap_change_high"] == pytest.approx(1.0 + np.hypot(0.1, 0.2))
    assert b["gap_direction"] == "widened" and not b["gap_change_within_noise"]
    # the cohort's rate rose by 0.05: within the tolerance
    assert b["cohort_rate_change"] == pytest.approx(0.05) and b["cohort_rate_direction"] == "unchanged"
    # none: no worst-performing areas, whatever its figures did
    assert got.loc["none", "gap_direction"] == got.loc["none", "cohort_rate_direction"] == "no cohort"
    # gone: nothing to compare
    g = got.loc["gone"]
    assert np.isnan(g["gap_to"]) and g["gap_direction"] == g["cohort_rate_direction"] == "no data"
    assert not g["gap_change_within_noise"]


def test_a_missing_period_is_refused_by_name():
    table = pd.DataFrame({"partnership": ["p"], "period_id": ["then"], "gap": [1.0]})
    with pytest.raises(NotFoundError, match="'now' not in the table"):
        classify_changes(table, "then", "now")
    with pytest.raises(NotFoundError, match="'before' not in the table"):
        classify_changes(table, "before", "then")


def _changes(gap: list[str], rate: list[str], noise: list[bool]) -> pd.DataFrame:
    return pd.DataFrame({"gap_direction": gap, "cohort_rate_direction": rate,
                         "gap_change_within_noise": noise})


def test_the_sentence_counts_every_kind_of_change():
    assert summarise_changes(_changes(
        ["closed", "closed", "unchanged", "widened", "no cohort", "no data"],
        ["reduced", "increased", "unchanged", "unchanged", "no cohort", "no data"],
        [False, False, True, False, False, False])) == (
        "2 of 6 closed the gap, 1 unchanged, 1 widened; 1 of 6 reduced the rate in their "
        "worst-performing neighbourhoods, 2 unchanged, 1 increased; 1 of 6 have no worst-performing "
        "neighbourhoods at this threshold; 1 without data in one of the periods "
        "(1 change in the gap within noise, counted as unchanged)")
    assert summarise_changes(_changes(["unchanged", "unchanged"], ["reduced", "reduced"], [True, True])) == (
        "0 of 2 closed the gap, 2 unchanged, 0 widened; 2 of 2 reduced the rate in their "
        "worst-performing neighbourhoods, 0 unchanged, 0 increased "
        "(2 changes in the gap within noise, counted as unchanged)")
    assert summarise_changes(_changes(["widened"], ["increased"], [False])) == (
        "0 of 1 closed the gap, 0 unchanged, 1 widened; 0 of 1 reduced the rate in their "
        "worst-performing neighbourhoods, 0 unchanged, 1 increased")


# -- what a published frame carries, column by column --------------------------------------------

def test_published_intervals_are_wilsons_on_the_rounded_figures_never_the_exact_ones():
    from statsmodels.stats.proportion import proportion_confint

    frame = pd.DataFrame({
        "code": ["ten", "forty-two"], "period_id": "p", "value": [1.0, 4.196],
        # the exact figures' own intervals: never to be published beside rounded counts
        "value_low": [0.55, 3.1], "value_high": [1.8, 5.6], "count": [10.0, 42.0],
        "denominator": [1000.0, 1001.0], "worst": False, "baseline_value": 1.0, "estimated_share": 0.0})
    out = CONTROL.area_values(frame).set_index("code")
    for code, (count, denominator) in (("ten", (10, 1000)), ("forty-two", (40, 1000))):
        low, high = proportion_confint(count, denominator, method="wilson")
        assert (out.loc[code, "value_low"], out.loc[code, "value_high"]) == pytest.approx((low * 100, high * 100))


def test_a_count_published_alone_has_no_interval_and_stays_a_number():
    frame = pd.DataFrame({"code": ["a", "b"], "period_id": "p", "value": [539.0, 2.0],
                          "value_low": [530.0, 1.0], "value_high": [550.0, 3.0], "count": np.nan,
                          "denominator": np.nan, "worst": None, "baseline_value": np.nan,
                          "estimated_share": 0.0})
    out = CONTROL.area_values(frame, counts=True)
    # an interval around the exact count would give it back
    for column in ("value_low", "value_high"):
        assert out[column].isna().all() and out[column].dtype == float


def test_a_baseline_or_a_threshold_alone_leaves_the_cohort_as_it_was():
    frame = pd.DataFrame({
        "code": ["a"], "period_id": "p", "value": [30.0], "value_low": 29.0, "value_high": 31.0,
        "count": [300.0], "denominator": [1000.0], "worst": [True], "baseline_value": [30.0],
        "estimated_share": 0.0})
    for kwargs in ({"threshold": 35.0}, {"baseline": ("p",)}):
        out = CONTROL.area_values(frame, **kwargs)
        assert bool(out["worst"].iat[0]) and out["baseline_value"].iat[0] == 30.0


def test_a_published_rate_of_exactly_the_threshold_is_not_worst():
    from geo_cs.stats import THRESHOLD_EPSILON

    frame = pd.DataFrame({"code": ["exactly", "noise", "above"], "period_id": "p",
                          "value": [25.0, 25.0 + THRESHOLD_EPSILON, 25.0 + 3 * THRESHOLD_EPSILON]})
    worst = DisclosureControl.published_cohort(frame, ("p",), 25.0).set_index("code")["worst"]
    # exactly 25.0 is not above 25; nor is float noise of at most THRESHOLD_EPSILON above it
    assert [bool(worst[c]) for c in ("exactly", "noise", "above")] == [False, False, True]


def test_a_second_visitor_who_changes_only_the_baseline_gets_their_own_cohort(service):
    def worst(**params) -> set[str]:
        return {code for code, p in items(service, **params).items() if p["worst"]}

    usual = {GRID_CODES[4], GRID_CODES[5]}
    assert worst() == usual                                            # the first quarter: 20%
    assert worst(baseline=PERIODS[1]) == usual | {GRID_CODES[3]}       # the later one: 26%
    # both quarters, however the list is spaced: 23%, worst only below a threshold of 23
    assert worst(baseline=f" {PERIODS[0]} , {PERIODS[1]} ,") == usual
    assert worst(baseline=f"{PERIODS[0]},{PERIODS[1]}", threshold=22.9) == usual | {GRID_CODES[3]}
    assert worst() == usual


def test_the_links_of_a_page_carry_the_measure_as_asked(service):
    from urllib.parse import parse_qs, urlsplit

    def self_link(**params) -> dict[str, list[str]]:
        response = service.get("/collections/lsoa2011/items",
                               params={"indicator": "edge.claimants", "period": PERIODS[0], **params})
        href = next(link["href"] for link in response.json()["links"] if link["rel"] == "self")
        return {k: v for k, v in parse_qs(urlsplit(href).query).items() if k not in ("version", "offset", "limit")}

    assert self_link() == {"indicator": ["edge.claimants"], "period": [PERIODS[0]]}
    # the default threshold is left out; any other is written as few digits as it has
    assert self_link(threshold=25)["indicator"] == ["edge.claimants"] and "threshold" not in self_link(threshold=25)
    assert self_link(threshold=19.9)["threshold"] == ["19.9"]
    assert self_link(threshold=20)["threshold"] == ["20"]
    assert self_link(baseline=f" {PERIODS[0]} , {PERIODS[1]} ")["baseline"] == [f"{PERIODS[0]},{PERIODS[1]}"]
    assert self_link(denominator="edge.lone")["denominator"] == ["edge.lone"]


def test_a_gap_of_zero_and_an_interval_that_ends_exactly_at_zero():
    """A gap of exactly 0 counts as positive (its size is the gap itself), and a change whose
    interval ends exactly at 0 holds 0: "unchanged", within noise."""
    rows = [
        # partnership, period, gap, gap_low, gap_high
        ("from zero", "then", 0.0, -0.001, 0.001), ("from zero", "now", 0.5, 0.499, 0.501),
        # 1.0 (upper half-width 0) → 1.5 (lower half-width 0.5): the change 0.5 runs from exactly 0
        ("low end 0", "then", 1.0, 0.9, 1.0), ("low end 0", "now", 1.5, 1.0, 1.6),
        # 1.0 (lower half-width 0) → 0.5 (upper half-width 0.5): the change −0.5 runs to exactly 0
        ("high end 0", "then", 1.0, 1.0, 1.1), ("high end 0", "now", 0.5, 0.4, 1.0),
    ]
    table = pd.DataFrame(rows, columns=["partnership", "period_id", "gap", "gap_low", "gap_high"])
    table = table.assign(cohort_rate=30.0, cohort_rate_low=29.0, cohort_rate_high=31.0, n_cohort=1)
    got = classify_changes(table, "then", "now").set_index("partnership")
    assert got.loc["from zero", "gap_change"] == 0.5
    assert got.loc["from zero", "gap_change_low"] == pytest.approx(0.5 - np.hypot(0.001, 0.001))
    assert got.loc["from zero", "gap_direction"] == "widened"
    assert (got.loc["low end 0", "gap_change"], got.loc["low end 0", "gap_change_low"]) == (0.5, 0.0)
    assert (got.loc["high end 0", "gap_change"], got.loc["high end 0", "gap_change_high"]) == (-0.5, 0.0)
    for name in ("low end 0", "high end 0"):
        assert got.loc[name, "gap_direction"] == "unchanged" and got.loc[name, "gap_change_within_noise"]


def _map_page(client: TestClient, **params):
    response = client.get("/maps/edge", params={"geography": "lsoa2011", "indicator": "edge.claimants",
                                                 **params})
    assert response.status_code == 200, response.text
    return response


def test_a_map_is_drawn_once_per_view_and_served_from_the_cache_after(service):
    assert _map_page(service).headers["x-cache"] == "miss"
    assert _map_page(service).headers["x-cache"] == "hit"
    # another view (its baseline) is drawn for its first visitor, then served
    assert _map_page(service, baseline=PERIODS[1]).headers["x-cache"] == "miss"
    assert _map_page(service, baseline=PERIODS[1]).headers["x-cache"] == "hit"


def test_a_map_on_another_baseline_shows_that_baseline_s_cohort(service):
    def cohort(**params) -> tuple[list[str], int]:
        config = read_page_config(_map_page(service, **params).text)
        return config["baseline"], config["periods"][0]["summary"]["n_cohort"]

    # the first quarter (default): 30% and 40%; the later one: 26% too; both: 23% on average
    assert cohort() == ([PERIODS[0]], 2)
    assert cohort(baseline=PERIODS[1]) == ([PERIODS[1]], 3)
    assert cohort(baseline=f"{PERIODS[0]},{PERIODS[1]}") == ([PERIODS[0], PERIODS[1]], 2)
    assert cohort(baseline=f"{PERIODS[0]},{PERIODS[1]}", threshold=22.9) == ([PERIODS[0], PERIODS[1]], 3)
    assert cohort() == ([PERIODS[0]], 2)


def test_a_map_under_disclosure_control_shows_the_published_figures(published):
    config = read_page_config(_map_page(published).text)
    assert config["disclosure"] and config["minCount"] == 10
    # the partnership's count 930 is published rounded (930) over 6,000: 15.5%
    assert config["periods"][0]["summary"]["partnership_value"] == pytest.approx(15.5)


def test_every_edge_of_the_world_is_a_valid_bbox_edge():
    for box in ((180, -90, 180, 90), (-180, -90, -180, 90), (-180, 90, 180, 90), (-180, -90, 180, -90)):
        assert bbox_to_lonlat(box, CRS84) == box
    # a box of no width or no height (a line) is a box: min equal to max is not min above max
    assert bbox_to_lonlat((-1.5, 53.8, -1.5, 53.9), CRS84) == (-1.5, 53.8, -1.5, 53.9)
    assert bbox_to_lonlat((-1.6, 53.8, -1.5, 53.8), CRS84) == (-1.6, 53.8, -1.5, 53.8)


def test_a_measure_s_values_come_with_areas_chosen_by_a_bbox_or_a_filter(service):
    lon, lat = CENTRE
    box = {"bbox": f"{lon - 0.001},{lat - 0.001},{lon + 0.001},{lat + 0.001}"}
    east, north = _bng(lon, lat)
    for chosen in (box, {"filter": "value > 25"}, {"filter": f"S_INTERSECTS(geometry, POINT({lon} {lat}))"},
                   {"filter": f"S_INTERSECTS(geometry, POINT({east} {north}))", "filter-crs": "EPSG:27700"}):
        seen = items(service, **chosen)
        expected = {GRID_CODES[4]} if "bbox" in chosen or "POINT" in chosen["filter"] \
            else {GRID_CODES[4], GRID_CODES[5]}
        assert set(seen) == expected, chosen
        assert {code: p["count"] for code, p in seen.items()} == {c: CLAIMANTS[c] for c in expected}
        assert all(p["value"] == CLAIMANTS[c] / 10 for c, p in seen.items())
        rows = items_csv(service, **chosen)
        assert {code: float(row["count"]) for code, row in rows.items()} == {c: CLAIMANTS[c] for c in expected}


def test_after_an_update_the_service_serves_the_new_data_not_its_cached_answers(edge_db: Path, tmp_path: Path):
    """Every cache key starts with the data version: an update renamed over the served file is
    what the next request gets (collections, selections, values), not what was cached before."""
    from geo_cs.ingest.indicators import ingest_indicator, spec_from_dict
    from geo_cs.store import Store

    served = tmp_path / "served.duckdb"
    shutil.copyfile(edge_db, served)
    with TestClient(create_app(Settings(db=served))) as client:
        before = {c["id"] for c in client.get("/collections").json()["collections"]}
        assert {c: p["count"] for c, p in items(client, partnership="west").items()} == {
            GRID_CODES[0]: 9, GRID_CODES[3]: 200}
        # the update: a third measure, and the first measure's first quarter revised, written to
        # a copy and renamed over the served file (as geo-cs updates a served database)
        update = tmp_path / "update.duckdb"
        shutil.copyfile(edge_db, update)
        source = tmp_path / "update.csv"
        source.write_text("area_code,period,measure,value,denominator\n" + "".join(
            f"{code},{PERIODS[0]},{measure},{value},1000\n" for code in GRID_CODES
            for measure, value in (("claimants", 100), ("carers", 5))), encoding="utf-8")
        spec = spec_from_dict({"id": "edge", "layout": "long", "geography": "lsoa2011",
                               "denominator_column": "denominator",
                               "measures": [{"id": "claimants", "kind": "count"},
                                            {"id": "carers", "kind": "count"}]})
        with Store.open(update) as store:
            ingest_indicator(store, source, spec)
        os.replace(update, served)
        client.app.state.served.current(check_now=True)    # as the next check would (every few s)
        after = {c["id"] for c in client.get("/collections").json()["collections"]}
        assert after - before == {"lsoa2011_carers_rate"}
        assert {c: p["count"] for c, p in items(client, partnership="west").items()} == {
            GRID_CODES[0]: 100, GRID_CODES[3]: 100}
        assert sorted(_codes(client, partnership="west")) == sorted([GRID_CODES[0], GRID_CODES[3]])


def test_the_map_warmed_ahead_of_a_visitor_is_the_one_a_bare_address_asks_for():
    from geo_cs.api.deps import default_map_request
    from geo_cs.api.routers.maps import map_request

    assert default_map_request("edge") == map_request("edge")


def test_a_second_visitor_who_changes_only_the_partnership_gets_its_map(service):
    def areas(partnership: str) -> list[str]:
        response = service.get(f"/maps/{partnership}",
                               params={"geography": "lsoa2011", "indicator": "edge.claimants"})
        assert response.status_code == 200, response.text
        config = read_page_config(response.text)
        assert config["partnership"] == partnership
        # the areas listed beside the map (search, table) are the partnership's own too
        assert sorted(config["areas"]["code"]) == sorted(config["codes"])
        return sorted(config["codes"])

    assert areas("edge") == sorted(GRID_CODES)
    assert areas("west") == sorted([GRID_CODES[0], GRID_CODES[3]])
    assert areas("edge") == sorted(GRID_CODES)


def test_each_partnership_is_offered_the_maps_of_its_own_areas(service):
    def offers_east(partnership: str) -> bool:
        return 'data-indicator="east"' in _map_page_of(service, partnership).text

    assert offers_east("edge") and not offers_east("west") and offers_east("edge")


def _map_page_of(client: TestClient, partnership: str, **params):
    response = client.get(f"/maps/{partnership}",
                          params={"geography": "lsoa2011", "indicator": "edge.claimants", **params})
    assert response.status_code == 200, response.text
    return response


def test_a_rate_over_another_measure_s_counts_is_that_rate_on_items_and_maps(service):
    """``denominator=``: the claimants over the lone parents' counts (9 of 50 is 18%), not over the
    claimants' own population; the second visitor who adds it gets it, the third who drops it not."""
    plain = items(service)
    over = items(service, denominator="edge.lone")
    assert plain[GRID_CODES[0]]["value"] == pytest.approx(0.9)
    assert {c: p["value"] for c, p in over.items()} == pytest.approx(
        {c: CLAIMANTS[c] / LONE[c] * 100 for c in GRID_CODES}, abs=1e-4)   # published to 4 decimals
    summary = lambda **params: read_page_config(_map_page_of(service, "edge", **params).text)[  # noqa: E731
        "periods"][0]["summary"]["partnership_value"]
    assert summary() == pytest.approx(15.5)
    assert summary(denominator="edge.lone") == pytest.approx(930 / 450 * 100, abs=1e-3)   # 3 decimals
    assert summary() == pytest.approx(15.5)


def test_a_change_of_the_tolerance_plus_float_noise_is_not_more_than_the_tolerance():
    from geo_cs.stats import THRESHOLD_EPSILON

    edge = 0.1 + THRESHOLD_EPSILON     # the classification's own bound: not above it
    gaps = {"up to the bound": (0.0, edge), "down to the bound": (edge, 0.0),
            "just past it, up": (0.0, edge + 1e-9), "just past it, down": (edge + 1e-9, 0.0)}
    assert _directions(_two_periods(gaps, half_width=1e-6)) == {
        "up to the bound": "unchanged", "down to the bound": "unchanged",
        "just past it, up": "widened", "just past it, down": "closed"}


@pytest.mark.parametrize("crs", [None, "EPSG:4326", "EPSG:27700"])
def test_one_item_comes_with_its_measure_s_values_in_any_crs(service, crs):
    response = service.get(f"/collections/lsoa2011/items/{GRID_CODES[4]}",
                           params={"indicator": "edge.claimants", "period": PERIODS[0],
                                   **({"crs": crs} if crs else {})})
    assert response.status_code == 200, response.text
    props = response.json()["properties"]
    assert (props["count"], props["denominator"], props["value"], props["worst"]) == (300.0, 1000.0, 30.0, True)


def test_a_map_under_disclosure_control_withholds_a_group_of_fewer_than_ten(published):
    """West's cohort at a threshold of 19.9 is its fourth square (200 of 1,000); the rest is its
    first square alone, 9 claimants: withheld, and with it the gap."""
    summary = read_page_config(_map_page_of(published, "west", threshold=19.9).text)["periods"][0]["summary"]
    assert summary["cohort_rate"] == pytest.approx(20.0)
    assert summary["rest_rate"] is None and summary["gap"] is None


def test_a_period_the_measure_does_not_have_is_refused_after_a_good_request(service):
    assert items(service)                       # the measure's values, now cached
    response = service.get("/collections/lsoa2011/items",
                           params={"indicator": "edge.claimants", "period": "2099-01"})
    assert response.status_code == 404 and "2099-01" in response.text


def test_the_map_labels_are_kept_apart_by_their_bounds_and_their_named_set(service):
    """The names a map page shows are cached per box and per named set: a second page whose box
    or named areas differ gets its own names, not the first page's."""
    # a request of the running service (its caches and its snapshot of the data)
    request = Request({"type": "http", "app": service.app, "headers": [], "state": {}})
    store = open_cursor(request)
    try:
        sources = CachedMapSources(request, store)
        squares = grid_frame().total_bounds.tolist()
        far_away = [10.0, 60.0, 10.1, 60.1]
        # first a box with nothing in it, then the squares' box: not the first box's (no) names
        assert sources.labels(far_away, "lsoa2011").empty
        named = sources.labels(squares, "lsoa2011")
        assert sorted(named["name"]) == sorted(NAMES.values())
        assert set(named["set_id"]) == {"lsoa2011"} and set(named["min_zoom"]) == {NAMED_AREA_ZOOM}
        # the same box without a named set: the edge database has no districts or wards to name
        assert sources.labels(squares).empty
        # and asked again, the named set's names are the ones kept
        assert sources.labels(squares, "lsoa2011") is named
    finally:
        store.close()


def test_the_queryables_refuse_a_period_the_measure_does_not_have(service):
    """Every OGC route takes the items' parameters and answers as items would: a period the
    measure lacks is a 404 naming it, on the queryables too, not the schema of a layer that is
    not there."""
    good = service.get("/collections/lsoa2011/queryables",
                       params={"indicator": "edge.claimants", "period": PERIODS[0]})
    assert good.status_code == 200 and "value" in good.json()["properties"]
    response = service.get("/collections/lsoa2011/queryables",
                           params={"indicator": "edge.claimants", "period": "2099-01"})
    assert response.status_code == 404 and "2099-01" in response.text

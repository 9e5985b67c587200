"""Disclosure control: counts rounded to 5, small rates suppressed — the same in the API, the
tiles, the map page and the exports (on the demo's SIMD data zones, whose counts go below 10)."""

from __future__ import annotations

import csv
from pathlib import Path

import mapbox_vector_tile
import numpy as np
import pandas as pd
import pytest
from conftest import run_cli
from fastapi.testclient import TestClient

from geo_cs import tiles
from geo_cs.api.app import create_app
from geo_cs.config import Settings
from geo_cs.disclosure import DisclosureControl

CONTROL = DisclosureControl(round_to=5, min_count=10)
MEASURE = {"indicator": "employment_deprived", "period": "simd2016"}
GLASGOW_TILE = (12, *tiles.lonlat_to_tile(-4.25, 55.86, 12))


def test_rounding_is_to_the_nearest_five_halves_away_from_zero():
    assert CONTROL.round([0, 2, 2.5, 3, 7.5, 12, 1234, np.nan]).tolist()[:7] == [0, 0, 5, 5, 10, 10, 1235]
    assert np.isnan(CONTROL.round([np.nan])[0])


def test_area_rates_are_recomputed_from_rounded_counts_and_small_ones_suppressed():
    frame = pd.DataFrame({
        "code": ["a", "b", "c"], "period_id": "p", "value": [0.333, 4.196, 50.0],
        "value_low": 0.0, "value_high": 1.0, "count": [3.0, 42.0, np.nan],
        "denominator": [900.0, 1001.0, np.nan], "worst": [True, False, None],
        "baseline_value": [30.0, 4.0, None], "estimated_share": 0.0,
    })
    published = CONTROL.area_values(frame)
    a, b, c = (published.iloc[i] for i in range(3))
    assert a["suppressed"] and np.isnan(a["value"]) and np.isnan(a["baseline_value"])
    # a withheld rate's count and denominator are withheld too: together they would give it back
    assert np.isnan(a["count"]) and np.isnan(a["denominator"])
    assert not b["suppressed"] and (b["count"], b["denominator"]) == (40, 1000)
    assert b["value"] == pytest.approx(4.0)       # 40 / 1000, not 42 / 1001
    assert b["value_low"] < 4.0 < b["value_high"]
    # a value with no count (a published rate or a score) is left as it was
    assert not c["suppressed"] and c["value"] == 50.0


def test_the_cohort_is_chosen_on_the_published_rates():
    # b's exact baseline (4.196%) is above 4.1, its published one (40 / 1000 = 4.0%) is not
    frame = pd.DataFrame({
        "code": ["a", "b"], "period_id": "p", "value": [0.333, 4.196], "value_low": 0.0,
        "value_high": 1.0, "count": [3.0, 42.0], "denominator": [900.0, 1001.0],
        "worst": [True, True], "baseline_value": [30.0, 4.196], "estimated_share": 0.0})
    published = CONTROL.area_values(frame, baseline=("p",), threshold=4.1).set_index("code")
    assert published.loc["b", "baseline_value"] == pytest.approx(4.0) and not published.loc["b", "worst"]
    assert published.loc["b", "count"] == 40
    # a withheld baseline classifies nothing: a (suppressed) is neither worst nor not
    assert pd.isna(published.loc["a", "worst"]) and np.isnan(published.loc["a", "baseline_value"])
    assert CONTROL.area_values(frame, baseline=("p",), threshold=3.9).set_index("code").loc["b", "worst"]


def test_counts_published_alone_are_rounded_and_small_ones_withheld():
    frame = pd.DataFrame({"code": ["a", "b", "c", "d"], "period_id": "p",
                          "value": [539.0, 0.0, 2.0, 10.0],
                          "value_low": np.nan, "value_high": np.nan, "count": np.nan,
                          "denominator": np.nan, "worst": None, "baseline_value": np.nan,
                          "estimated_share": 0.0})
    published = CONTROL.area_values(frame, counts=True)
    # a count under the minimum is withheld on its own as in a rate (issue 27): 0 and 2 too
    assert published["value"].tolist()[::3] == [540.0, 10.0]
    assert published["value"].iloc[1:3].isna().all()
    assert published["suppressed"].tolist() == [False, True, True, False]


def test_a_rate_over_a_small_denominator_is_withheld():
    """The denominator role: a population over a count of 8 would give the 8 back (issue 27)."""
    frame = pd.DataFrame({"code": ["a", "b"], "period_id": "p", "value": [3812.5, 50.0],
                          "value_low": np.nan, "value_high": np.nan, "count": [305.0, 305.0],
                          "denominator": [8.0, 610.0], "worst": None, "baseline_value": np.nan,
                          "estimated_share": 0.0})
    published = CONTROL.area_values(frame)
    assert published["suppressed"].tolist() == [True, False]
    assert published.loc[0, ["value", "count", "denominator"]].isna().all()
    assert published.loc[1, "denominator"] == 610.0


def test_a_gap_is_suppressed_with_either_of_its_rates():
    table = pd.DataFrame({"cohort_count": [8.0, 120.0], "cohort_denominator": [40.0, 400.0],
                          "rest_count": [300.0, 301.0], "rest_denominator": [3000.0, 3001.0]})
    for role in ("cohort", "rest"):
        table[f"{role}_rate"] = table[f"{role}_count"] / table[f"{role}_denominator"] * 100
    published = CONTROL.gap_table(table)
    assert np.isnan(published["gap"].iat[0]) and published["cohort_suppressed"].iat[0]
    assert published["gap"].iat[1] == pytest.approx(120 / 400 * 100 - 300 / 3000 * 100)
    assert CONTROL.note in published.attrs["notes"]


# -- one control, everywhere figures are published ---------------------------------------------

@pytest.fixture(scope="module")
def client(demo_db):
    settings = Settings(db=demo_db, disclosure_control=True)
    with TestClient(create_app(settings)) as c:
        yield c


@pytest.fixture(scope="module")
def published_items(client) -> dict[str, dict]:
    response = client.get("/collections/datazone2011/items", params={**MEASURE, "limit": 10_000})
    assert response.status_code == 200
    return {f["properties"]["code"]: f["properties"] for f in response.json()["features"]}


def test_api_items_carry_rounded_counts_and_suppress_small_rates(published_items):
    props = [p for p in published_items.values() if p["count"] is not None]
    assert props and all(p["count"] % 5 == 0 and p["denominator"] % 5 == 0 for p in props)
    suppressed = [p for p in published_items.values() if p["suppressed"]]
    assert suppressed, "the demo's data zones have counts under 10"
    assert all(p["value"] is None and p["value_low"] is None and p["count"] is None
               and p["denominator"] is None for p in suppressed)
    for p in props:
        if not p["suppressed"] and p["denominator"]:
            assert p["value"] == pytest.approx(p["count"] / p["denominator"] * 100, abs=1e-4)


def test_csv_download_is_under_the_same_control(client, published_items):
    response = client.get("/collections/datazone2011/items",
                          params={**MEASURE, "limit": 10_000, "f": "csv"})
    rows = list(csv.DictReader(response.text.splitlines()))
    assert len(rows) == len(published_items)
    for row in rows:
        assert row["count"] == "" or float(row["count"]) % 5 == 0
        if row["suppressed"].lower() == "true":
            assert row["value"] == ""


def test_tiles_draw_suppressed_areas_as_no_data(client, published_items):
    z, x, y = GLASGOW_TILE
    tile = client.get(f"/tiles/datazone2011/{z}/{x}/{y}.mvt", params=MEASURE)
    features = mapbox_vector_tile.decode(tile.content)["datazone2011"]["features"]
    assert len(features) > 50
    seen_suppressed = 0
    for feature in features:
        props = feature["properties"]
        published = published_items[props["code"]]
        if published["suppressed"]:
            seen_suppressed += 1
            # withheld, and said so: a map can tell it from missing data
            assert "value" not in props and props["suppressed"] is True
        else:
            assert "suppressed" not in props   # the flag costs nothing on the other areas
            if published["value"] is not None:
                assert props["value"] == pytest.approx(published["value"], abs=0.01)
    assert seen_suppressed
    fields = client.get("/tiles/datazone2011/tilejson.json", params=MEASURE).json()["vector_layers"][0]["fields"]
    assert fields["suppressed"] == "Boolean"


def test_map_page_states_the_control(client):
    page = client.get("/maps/glasgow", params={"geography": "datazone2011", **MEASURE})
    assert page.status_code == 200
    assert CONTROL.note in page.text and '"minCount": 10' in page.text


@pytest.mark.slow  # every export format under disclosure control: ~16 s; .ci/run runs it
def test_exports_are_under_the_control(demo_db: Path, tmp_path: Path, capsys, monkeypatch):
    monkeypatch.setenv("GEO_CS_DISCLOSURE_CONTROL", "0")  # restored after the flag sets it
    result = run_cli(capsys, "--db", str(demo_db), "-q", "--disclosure-control", "export", "charts",
                     "-p", "glasgow", "-o", str(tmp_path), "--format", "svg")
    assert result.code == 0, result.stderr
    gap = pd.read_csv(tmp_path / "fig4_7_worst_vs_rest_glasgow.csv")
    assert (gap["cohort_count"].dropna() % 5 == 0).all() and (gap["rest_count"].dropna() % 5 == 0).all()
    assert CONTROL.note in (tmp_path / "fig4_7_worst_vs_rest_glasgow.svg").read_text()
    rates = pd.read_csv(tmp_path / "fig4_3_index_of_count.csv")
    assert (rates["count"] % 5 == 0).all()
    # each command says it: the flag of the one before no longer lingers in the process
    result = run_cli(capsys, "--db", str(demo_db), "-q", "--disclosure-control", "export", "report",
                     "-p", "glasgow", "-o", str(tmp_path))
    assert result.code == 0, result.stderr
    assert CONTROL.note in (tmp_path / "glasgow.html").read_text()

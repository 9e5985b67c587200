"""Disclosure control attacked, as a reader of ``geo-cs serve --disclosure-control`` could: each of
the three known ways round it is tried against the service on the demo's SIMD data zones, and the
test fails if any figure finer than the published one comes back.

1. Counts published on their own (populations) must come rounded, like every count.
2. A withheld rate must not be recomputable from a published count and denominator.
3. Asking for many thresholds must bracket only the *published* baseline rate (recomputed from
   rounded counts), never the exact one; a withheld baseline must give nothing at all.
And every output path says the same: items, CSV, tiles, the map page's data.
"""

from __future__ import annotations

import csv
import io

import mapbox_vector_tile
import numpy as np
import pytest
from fastapi.testclient import TestClient

from geo_cs import tiles
from geo_cs.api.app import create_app
from geo_cs.config import Settings
from geo_cs.layers import area_values, resolve_measure
from geo_cs.maps.page import read_page_config
from geo_cs.store import Store

MEASURE = {"indicator": "employment_deprived"}
#: A Dundee data zone whose SIMD 2012 count is under 10, so its rate is withheld (the issue's
#: example: its exact baseline, 4.55%, was recoverable by varying the threshold).
WITHHELD = "S01007687"


@pytest.fixture(scope="module")
def client(demo_db):
    with TestClient(create_app(Settings(db=demo_db, disclosure_control=True))) as c:
        yield c


@pytest.fixture(scope="module")
def exact(demo_db):
    """The figures the service must not give away (what an analyst sees without the control)."""
    with Store.open(demo_db, read_only=True) as store:
        measure = resolve_measure(store, "datazone2011", "employment_deprived")
        return area_values(store, measure).frame.set_index(["code", "period_id"])


def item(client, code: str, **params) -> dict:
    response = client.get(f"/collections/datazone2011/items/{code}", params={**MEASURE, **params})
    assert response.status_code == 200, response.text
    return response.json()["properties"]


def test_attack_1_populations_come_rounded(client):
    response = client.get("/collections/datazone2011/items",
                          params={"indicator": "simd2016.working_age_population", "limit": 10_000})
    values = [f["properties"]["value"] for f in response.json()["features"]]
    assert len(values) > 1000
    assert all(v is None or v % 5 == 0 for v in values), [v for v in values if v % 5][:5]
    assert all(f["properties"]["value_low"] is None for f in response.json()["features"])
    # and in the CSV of the same
    rows = csv.DictReader(io.StringIO(client.get("/collections/datazone2011/items", params={
        "indicator": "simd2016.working_age_population", "limit": 10_000, "f": "csv"}).text))
    assert all(r["value"] == "" or float(r["value"]) % 5 == 0 for r in rows)


def test_attack_2_a_withheld_rate_has_no_count_or_denominator_anywhere(client, exact):
    published = item(client, WITHHELD, period="simd2012")
    assert published["suppressed"] is True and exact.loc[(WITHHELD, "simd2012"), "count"] < 10
    assert published["value"] is None and published["count"] is None and published["denominator"] is None
    # CSV
    rows = list(csv.DictReader(io.StringIO(client.get("/collections/datazone2011/items", params={
        **MEASURE, "period": "simd2012", "limit": 10_000, "f": "csv"}).text)))
    withheld = [r for r in rows if r["suppressed"].lower() == "true"]
    assert withheld and all(r["count"] == r["denominator"] == r["value"] == "" for r in withheld)
    # tiles: nothing but the flag
    z, x, y = 12, *tiles.lonlat_to_tile(-2.99, 56.46, 12)
    tile = client.get(f"/tiles/datazone2011/{z}/{x}/{y}.mvt", params={**MEASURE, "period": "simd2012"})
    features = mapbox_vector_tile.decode(tile.content)["datazone2011"]["features"]
    hidden = [f["properties"] for f in features if f["properties"].get("suppressed")]
    assert hidden and all(not ({"value", "count", "denominator", "value_low"} & set(p)) for p in hidden)


def _bracket(client, code: str, low: float = 0.0, high: float = 100.0) -> tuple[float, float] | None:
    """Bisect the threshold on the area's worst flag (the service takes thresholds to 0.1): the
    narrowest [low, high) its baseline rate is known to lie in, or None if the flag says nothing."""
    flags = {}
    for threshold in (low, high - 0.1):
        flags[threshold] = item(client, code, period="simd2012", threshold=threshold,
                                baseline="simd2012")["worst"]
    if flags[low] is None:
        return None
    while high - low > 0.15:
        mid = round((low + high) / 2, 1)
        worst = item(client, code, period="simd2012", threshold=mid, baseline="simd2012")["worst"]
        assert worst is not None
        if worst:
            low = mid
        else:
            high = mid
    return low, high


def test_attack_3_varying_the_threshold_recovers_only_the_published_rate(client, exact):
    # a withheld baseline: no threshold says anything about it
    assert _bracket(client, WITHHELD) is None
    for t in (1, 4.5, 4.6, 10, 50):
        assert item(client, WITHHELD, period="simd2012", threshold=t, baseline="simd2012")["worst"] is None
    # published areas whose exact baseline differs from the published one by more than the
    # threshold's step: bisection must land on the published value, not the exact one
    published = {f["properties"]["code"]: f["properties"] for f in client.get(
        "/collections/datazone2011/items",
        params={**MEASURE, "period": "simd2012", "limit": 10_000}).json()["features"]}
    candidates = []
    for code, props in published.items():
        if props["value"] is None or (code, "simd2012") not in exact.index:
            continue
        exact_rate = exact.loc[(code, "simd2012"), "value"]
        if abs(exact_rate - props["value"]) > 0.3 and 5 < props["value"] < 95:
            candidates.append((code, props["value"], exact_rate))
    assert candidates, "the demo has areas whose rounding moves the rate by more than 0.3 points"
    for code, published_rate, exact_rate in candidates[:3]:
        low, high = _bracket(client, code)
        assert low <= published_rate < high + 1e-9, (code, low, high, published_rate)
        assert not (low <= exact_rate < high), (code, "the exact rate was recovered", exact_rate)


def test_the_map_page_data_and_gap_follow_the_published_cohort(client, exact):
    cfg = read_page_config(client.get("/maps/dundee", params={"geography": "datazone2011", **MEASURE}).text)
    areas = cfg["areas"]
    i = areas["code"].index(WITHHELD)
    assert areas["worst"][i] is False and areas["values"][i][0] is None   # not in the cohort, withheld
    assert "count" not in areas and "denominator" not in areas
    # every worst flag on the page is the published baseline rate (the first period) above 25%
    for code, worst, values in zip(areas["code"], areas["worst"], areas["values"], strict=True):
        if values[0] is not None:
            assert worst == (values[0] > 25 + 1e-9), code
    # the cohort count in the figures is the number of flagged areas
    assert cfg["periods"][0]["summary"]["n_cohort"] == sum(areas["worst"])
    assert np.isfinite(cfg["periods"][0]["summary"]["gap"])


def test_prepared_tiles_withhold_the_same_values(demo_db, tmp_path):
    """Tiles prepared with their geometry encoded (``geo-cs tiles prepare``, written in memory
    per request by geo_cs.mvt) carry exactly the properties of tiles drawn by the database:
    a withheld rate is still only its flag."""
    import shutil

    prepared_db = tmp_path / "prepared.duckdb"
    shutil.copy(demo_db, prepared_db)
    with Store.open(prepared_db) as store:
        tiles.prepare_tiles(store, "datazone2011")
    z, x, y = 12, *tiles.lonlat_to_tile(-2.99, 56.46, 12)
    url = f"/tiles/datazone2011/{z}/{x}/{y}.mvt"
    params = {**MEASURE, "period": "simd2012"}
    decoded = {}
    for name, db in (("database", demo_db), ("prepared", prepared_db)):
        with TestClient(create_app(Settings(db=db, disclosure_control=True))) as c:
            response = c.get(url, params=params)
            assert response.status_code == 200, response.text
            features = mapbox_vector_tile.decode(response.content)["datazone2011"]["features"]
            decoded[name] = {f["properties"]["code"]: f["properties"] for f in features}
    assert decoded["prepared"] == decoded["database"]
    hidden = [p for p in decoded["prepared"].values() if p.get("suppressed")]
    assert WITHHELD in decoded["prepared"] and decoded["prepared"][WITHHELD].get("suppressed") is True
    assert hidden and all(not ({"value", "value_low", "value_high", "count"} & set(p)) for p in hidden)


def test_a_prepared_panel_keeps_the_published_cohort(demo_db, tmp_path):
    """With the measure's panel prepared (geo_cs.panels, ``geo-cs analyse prepare``), the gap
    under disclosure control is still that of the cohort chosen on the published rates, and the
    same as from the observations, for every threshold a map's control may send."""
    import shutil

    from geo_cs.analysis import Panel
    from geo_cs.disclosure import DisclosureControl
    from geo_cs.layers import measure_panel, partnership_gap
    from geo_cs.panels import prepare_panel

    prepared_db = tmp_path / "prepared.duckdb"
    shutil.copy(demo_db, prepared_db)
    with Store.open(prepared_db) as store:
        measure = resolve_measure(store, "datazone2011", "employment_deprived")
        with store.transaction():
            panel = Panel(store, measure_panel(store, measure).source, prepared=False)
            prepare_panel(store, panel)
            panel.drop()
    control = DisclosureControl()
    for threshold in (4.5, 25.0):
        tables = {}
        for name, db in (("observations", demo_db), ("prepared", prepared_db)):
            with Store.open(db, read_only=True) as store:
                measure = resolve_measure(store, "datazone2011", "employment_deprived")
                assert (measure_panel(store, measure).dense is not None) == (name == "prepared")
                tables[name] = partnership_gap(store, measure, "dundee", threshold=threshold,
                                               disclosure=control)
        columns = ["period_id", "cohort_rate", "rest_rate", "gap", "n_cohort", "cohort_share"]
        assert tables["prepared"][columns].equals(tables["observations"][columns]), threshold
    # the withheld area is never in the published cohort, whatever the threshold
    with Store.open(prepared_db, read_only=True) as store:
        measure = resolve_measure(store, "datazone2011", "employment_deprived")
        published = area_values(store, measure, baseline=("simd2012",), threshold=1.0,
                                disclosure=control).frame
        assert not published.loc[published["code"] == WITHHELD, "worst"].fillna(False).any()

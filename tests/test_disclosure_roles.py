"""Disclosure control whatever role a count plays: the attack of issue 27, kept in the suite.

With ``GEO_CS_DISCLOSURE_CONTROL=1``, a data zone's count of 8 employment-deprived people is
withheld when asked for as the indicator. A reader then tried it in the other roles a figure can
play: as the **denominator** of a population (``indicator=simd2020.working_age_population&
denominator=simd2020.employment_deprived``: the count came back rounded in the ``denominator``
column and, as 100 × 645 / 10, in the tiles), and as the **value** of a rate whose denominator
matches none of its periods (``denominator=simd2016.employment_rate``: the count came back as
the value). Here every indicator × denominator of the demo's data zones is asked for over every
path (items as GeoJSON and CSV, one item, tiles, the map page and its figures, PMTiles and the
static site), with thresholds varied, and each published figure is checked against the **raw
observations**: an area-period whose count, in any role, is under 10 publishes no number.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import math
from pathlib import Path

import mapbox_vector_tile
import pytest
import shapely.geometry
from fastapi.testclient import TestClient

from geo_cs import tiles
from geo_cs.api.app import create_app
from geo_cs.config import Settings
from geo_cs.maps.page import read_page_config
from geo_cs.store import Store

SET = "datazone2011"
MIN_COUNT = 10
#: The issue's example: a Dundee data zone with 8 employment-deprived people in SIMD 2020.
ATTACKED = "S01007771"
SWAP = {"indicator": "simd2020.working_age_population", "denominator": "simd2020.employment_deprived"}
MISMATCH = {"indicator": "simd2020.employment_deprived", "denominator": "simd2016.employment_rate"}

#: What is asked for as the indicator: counts (the attacked one, a population, a count carried
#: over from 2001 zones with fractional values), a published rate, and measures over editions.
INDICATORS = ("simd2020.employment_deprived", "simd2020.working_age_population",
              "simd2012.employment_deprived", "population2020_dz11.working_age_population",
              "simd2020.employment_rate", "employment_deprived")
#: … and as the denominator: none, every count, a rate of the same period and one of another.
DENOMINATORS = (None, "simd2020.employment_deprived", "simd2020.working_age_population",
                "population2020_dz11.working_age_population", "simd2012.employment_deprived",
                "simd2020.employment_rate", "simd2016.employment_rate")
NUMBERS = ("value", "value_low", "value_high", "count", "denominator")


@pytest.fixture(scope="module")
def client(demo_db):
    with TestClient(create_app(Settings(db=demo_db, disclosure_control=True))) as c:
        yield c


@pytest.fixture(scope="module")
def raw(demo_db) -> dict:
    """The oracle, read from the observations as ingested (no geo-cs arithmetic): per indicator
    its kind, its periods, and each (code, period)'s value."""
    with Store.open(demo_db, read_only=True) as store:
        rows = store.sql(
            "SELECT o.indicator_id, i.kind, o.code, o.period_id, o.value FROM observations o "
            "JOIN indicators i USING (indicator_id, set_id) WHERE o.set_id = ?", [SET]).fetchall()
    out: dict = {"kind": {}, "periods": {}, "value": {}}
    for indicator, kind, code, period, value in rows:
        out["kind"][indicator] = kind
        out["periods"].setdefault(indicator, set()).add(period)
        out["value"][(indicator, code, period)] = value
    return out


def _indicator_at(indicator: str, period: str, raw: dict) -> str:
    """The indicator behind a measure's period (``employment_deprived`` at simd2016 is
    simd2016.employment_deprived)."""
    return indicator if indicator in raw["kind"] else f"{period}.{indicator}"


def withheld_roles(raw: dict, indicator: str, denominator: str | None, code: str, period: str) -> list[str]:
    """The roles in which a count under the minimum stands behind this area-period's figures."""
    roles = []
    counted = _indicator_at(indicator, period, raw)
    value = raw["value"].get((counted, code, period))
    if raw["kind"][counted] == "count" and value is not None and value < MIN_COUNT:
        roles.append("count")
    if denominator is not None and raw["kind"][denominator] == "count":
        # every data zone indicator of the demo has one period: it is the one matched
        (den_period,) = raw["periods"][denominator]
        den = raw["value"].get((denominator, code, den_period))
        if den is not None and den < MIN_COUNT:
            roles.append("denominator")
    return roles


def mismatched(raw: dict, indicator: str, denominator: str | None) -> bool:
    """A denominator derived from a rate of none of the count's periods."""
    if denominator is None or raw["kind"][denominator] != "rate":
        return False
    counted = raw["periods"].get(indicator) or {p for i, ps in raw["periods"].items()
                                                  if i.endswith("." + indicator) for p in ps}
    return not counted <= raw["periods"][denominator]


def _params(indicator: str, denominator: str | None, **more) -> dict:
    return {"indicator": indicator, **({"denominator": denominator} if denominator else {}), **more}


def _number(text: str) -> float | None:
    return None if text in ("", None) else float(text)


COMBINATIONS = [(i, d) for i in INDICATORS for d in DENOMINATORS if d != i]


@pytest.mark.parametrize(("indicator", "denominator"), COMBINATIONS)
def test_items_publish_no_figure_of_a_withheld_count_in_any_role(client, raw, indicator, denominator):
    response = client.get(f"/collections/{SET}/items",
                          params=_params(indicator, denominator, f="csv", limit=10_000))
    if mismatched(raw, indicator, denominator):
        # never a silent fallback to the count's own values: a 400 that says why
        assert response.status_code == 400, response.text[:300]
        assert "denominator" in response.json()["detail"]
        return
    if response.status_code == 400:
        # a combination the service refuses (a rate over a rate): refused, not published
        assert "denominator" in response.json()["detail"] or "rate" in response.json()["detail"]
        return
    assert response.status_code == 200, response.text[:300]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert len(rows) > 1000
    leaks, withheld = [], 0
    for row in rows:
        roles = withheld_roles(raw, indicator, denominator, row["code"], row["period"])
        if not roles:
            continue
        withheld += 1
        published = {k: row[k] for k in NUMBERS if row[k] != ""}
        # (an area with no figure at all, such as a zone of no residents, has no flag either)
        if published:
            leaks.append((row["code"], row["period"], roles, published))
    assert not leaks, f"{len(leaks)} withheld counts published, e.g. {leaks[:3]}"
    if indicator.startswith("simd2020.employment_deprived") or denominator == "simd2020.employment_deprived":
        assert withheld >= 100   # the attack's 128 data zones are in play


@pytest.mark.parametrize("params", [SWAP, {"indicator": "simd2020.employment_deprived"},
                                   {"indicator": "simd2020.working_age_population"}])
@pytest.mark.parametrize("threshold", [0.0, 5.0, 25.0])
def test_thresholds_say_nothing_of_a_withheld_area(client, raw, params, threshold):
    """A withheld baseline is not classified, whatever the threshold (it would bracket the rate)."""
    features = client.get(f"/collections/{SET}/items", params={
        **params, "threshold": threshold, "limit": 10_000}).json()["features"]
    for feature in features:
        p = feature["properties"]
        if withheld_roles(raw, params["indicator"], params.get("denominator"), p["code"], p["period"]):
            assert p["worst"] is None, p
            assert all(p[k] is None for k in NUMBERS), p


def test_the_attacked_area_in_every_format_and_role(client, raw):
    assert raw["value"][("simd2020.employment_deprived", ATTACKED, "simd2020")] == 8
    for params in (SWAP, {"indicator": "simd2020.employment_deprived"}):
        p = client.get(f"/collections/{SET}/items/{ATTACKED}", params=params).json()["properties"]
        assert p["suppressed"] is True and all(p[k] is None for k in NUMBERS), (params, p)
    # the mismatched denominator: a 400 on every path, in plain words
    for path in (f"/collections/{SET}/items", f"/collections/{SET}/items/{ATTACKED}",
                 f"/tiles/{SET}/12/2017/1280.mvt", f"/tiles/{SET}/tilejson.json",
                 "/maps/dundee/figures.json", "/maps/dundee"):
        response = client.get(path, params={**MISMATCH, "geography": SET} if "maps" in path else MISMATCH)
        assert response.status_code == 400, (path, response.status_code, response.text[:200])
        assert "simd2016.employment_rate" in response.text, path


def _tile_of(client, code: str, z: int = 12) -> tuple[int, int, int]:
    geometry = client.get(f"/collections/{SET}/items/{code}").json()["geometry"]
    point = shapely.geometry.shape(geometry).representative_point()
    return (z, *tiles.lonlat_to_tile(point.x, point.y, z))


@pytest.mark.parametrize("params", [SWAP, {"indicator": "simd2020.employment_deprived"}])
def test_tiles_carry_only_the_flag_of_a_withheld_area(client, raw, params):
    z, x, y = _tile_of(client, ATTACKED)
    response = client.get(f"/tiles/{SET}/{z}/{x}/{y}.mvt", params=params)
    assert response.status_code == 200
    features = mapbox_vector_tile.decode(response.content)[SET]["features"]
    checked = 0
    for feature in features:
        p = feature["properties"]
        if withheld_roles(raw, params["indicator"], params.get("denominator"), p["code"], "simd2020"):
            checked += 1
            assert p.get("suppressed") is True and not (set(NUMBERS) & set(p)), p
    assert checked and ATTACKED in {f["properties"]["code"] for f in features}


def test_the_map_page_and_its_figures_withhold_the_denominator_role(client, raw):
    query = {**SWAP, "geography": SET}
    pages = {"page": read_page_config(client.get("/maps/dundee", params=query).text),
             "figures": client.get("/maps/dundee/figures.json", params=query).json()}
    for name, cfg in pages.items():
        areas = cfg["areas"]
        text = json.dumps(areas)
        assert "count" not in areas and "denominator" not in areas, name
        i = areas["code"].index(ATTACKED)
        assert all(v is None for v in areas["values"][i]), (name, areas["values"][i])
        assert areas["worst"][i] in (False, None), name
        for code, values in zip(areas["code"], areas["values"], strict=True):
            if withheld_roles(raw, SWAP["indicator"], SWAP["denominator"], code, "simd2020"):
                assert all(v is None for v in values), (name, code, values)
        assert "6450" not in text, name   # 100 × 645 / 10: the swapped rate of the issue


def test_pmtiles_and_the_static_site_withhold_the_denominator_role(demo_db, raw, tmp_path: Path):
    from pmtiles.reader import MmapSource, Reader, all_tiles

    from geo_cs.disclosure import DisclosureControl
    from geo_cs.export.pmtiles import write_layer_pmtiles
    from geo_cs.maps.page import MapRequest
    from geo_cs.maps.site import export_site

    control = DisclosureControl()
    archive = tmp_path / "swap.pmtiles"
    with Store.open(demo_db, read_only=True) as store:
        write_layer_pmtiles(store, SET, archive, indicator=SWAP["indicator"], denominator=SWAP["denominator"],
                            partnership="dundee", minzoom=11, maxzoom=11, disclosure=control)
        written = export_site(store, MapRequest("dundee", SET, SWAP["indicator"], SWAP["denominator"]),
                              tmp_path / "site", maxzoom=11, disclosure=control)
    with archive.open("rb") as f:
        decoded = [mapbox_vector_tile.decode(gzip.decompress(data))[SET]
                   for _, data in all_tiles(Reader(MmapSource(f)).get_bytes)]
    seen = set()
    for layer in decoded:
        for feature in layer["features"]:
            p = feature["properties"]
            seen.add(p["code"])
            if withheld_roles(raw, SWAP["indicator"], SWAP["denominator"], p["code"], "simd2020"):
                assert not (set(NUMBERS) & set(p)), p
    assert ATTACKED in seen
    rows = list(csv.DictReader(io.StringIO((tmp_path / "site" / "data" / "simd2020.csv").read_text())))
    assert ATTACKED in {r["code"] for r in rows}
    for row in rows:
        if withheld_roles(raw, SWAP["indicator"], SWAP["denominator"], row["code"], "simd2020"):
            assert all(row[k] == "" for k in NUMBERS), row
    geojson = json.loads((tmp_path / "site" / "data" / "simd2020.geojson").read_text())
    for feature in geojson["features"]:
        p = feature["properties"]
        if withheld_roles(raw, SWAP["indicator"], SWAP["denominator"], p["code"], "simd2020"):
            assert all(p.get(k) is None for k in NUMBERS), p
    page = read_page_config((tmp_path / "site" / "index.html").read_text())
    i = page["areas"]["code"].index(ATTACKED)
    assert all(v is None for v in page["areas"]["values"][i])
    assert written


def test_a_count_under_the_minimum_on_its_own_is_withheld(client, raw):
    """Counts published with no denominator (a population of 3) are withheld like any count."""
    indicator = "population2020_dz11.working_age_population"
    small = {code for (i, code, _), v in raw["value"].items() if i == indicator and v is not None
             and v < MIN_COUNT}
    assert small, "the demo has data zones with fewer than 10 people of working age"
    features = client.get(f"/collections/{SET}/items",
                          params={"indicator": indicator, "limit": 10_000}).json()["features"]
    for feature in features:
        p = feature["properties"]
        if p["code"] in small:
            assert p["value"] is None and p["suppressed"] is True, p
        elif p["value"] is not None:
            assert math.isclose(p["value"] % 5, 0), p

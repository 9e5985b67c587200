"""Crosswalks on hand-made geometries in British National Grid, with exact expected weights.

    LSOA 2011 (source)                 LSOA 2021 (target)
    E01000001 [0,1] km      U   ->     E01000001 [0,1]
    E01000002 [1,3] km      S   ->     E01033001 [1,2.5] and E01033002 [2.5,3]
    E01000003 [3,4] km      M   ->     E01033003 [3,5]
    E01000010 [4,5] km      M   ->     E01033003
    (all 1 km tall; x measured from 430,000 m east, y from 433,000 m north — Leeds)
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pytest
from shapely.geometry import box

from geo_cs.crosswalk import build_crosswalk, chain_crosswalks, harmonise
from geo_cs.errors import InputError, NotFoundError
from geo_cs.ingest import ingest_boundaries, ingest_indicator, ingest_lookup
from geo_cs.ingest.indicators import spec_from_dict
from geo_cs.store import Store

X0, Y0, KM = 430_000, 433_000, 1000


def _boxes(spec: dict[str, tuple[float, float]], code_col: str) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {code_col: list(spec)},
        geometry=[box(X0 + a * KM, Y0, X0 + b * KM, Y0 + KM) for a, b in spec.values()],
        crs="EPSG:27700",
    )


SOURCES = {"E01000001": (0, 1), "E01000002": (1, 3), "E01000003": (3, 4), "E01000010": (4, 5)}
TARGETS = {"E01000001": (0, 1), "E01033001": (1, 2.5), "E01033002": (2.5, 3), "E01033003": (3, 5)}
LOOKUP = (
    "LSOA11CD,LSOA11NM,LSOA21CD,LSOA21NM,CHGIND,LAD22CD,LAD22NM,LAD22NMW,ObjectId\n"
    "E01000001,a,E01000001,a,U,E08000035,Leeds,,1\n"
    "E01000002,b,E01033001,b1,S,E08000035,Leeds,,2\n"
    "E01000002,b,E01033002,b2,S,E08000035,Leeds,,3\n"
    "E01000003,c,E01033003,cd,M,E08000035,Leeds,,4\n"
    "E01000010,d,E01033003,cd,M,E08000035,Leeds,,5\n"
)
COUNTS = {"E01000001": 100, "E01000002": 200, "E01000003": 50, "E01000010": 70}


@pytest.fixture
def xw_store(tmp_path: Path) -> Store:
    store = Store.open(":memory:")
    _boxes(SOURCES, "LSOA11CD").to_file(tmp_path / "s.gpkg")
    _boxes(TARGETS, "lsoa21_code").to_file(tmp_path / "t.gpkg")
    # made-up codes on both sides, not on the official lists
    ingest_boundaries(store, [tmp_path / "s.gpkg"], allow_unlisted=True)
    ingest_boundaries(store, [tmp_path / "t.gpkg"], allow_unlisted=True)
    (tmp_path / "lookup.csv").write_text(LOOKUP)
    ingest_lookup(store, tmp_path / "lookup.csv", allow_unlisted=True)
    rows = "".join(f"{c},2019,claimants,{v},{v * 10}\n" for c, v in COUNTS.items())
    (tmp_path / "counts.csv").write_text("area_code,period,measure,value,denominator\n" + rows)
    ingest_indicator(store, tmp_path / "counts.csv", spec_from_dict({
        "id": "toy", "layout": "long", "geography": "lsoa2011", "denominator_column": "denominator",
        "measures": [{"id": "claimants", "kind": "count"}]}))
    yield store
    store.close()


def _weights(store: Store, crosswalk_id: str) -> dict[tuple[str, str], tuple[float, str, str]]:
    return {(a, b): (w, t, m) for a, b, w, t, m in store.sql(
        "SELECT from_code, to_code, weight, link_type, method FROM crosswalks WHERE crosswalk_id = ?",
        [crosswalk_id]).fetchall()}


def test_lookup_links_u_s_m_with_area_weights(xw_store: Store):
    report = build_crosswalk(xw_store, "lsoa2011", "lsoa2021")
    w = _weights(xw_store, "lsoa2011->lsoa2021")
    assert w[("E01000001", "E01000001")] == (1.0, "U", "single")
    assert w[("E01000002", "E01033001")][0] == pytest.approx(0.75, abs=1e-12)
    assert w[("E01000002", "E01033002")][0] == pytest.approx(0.25, abs=1e-12)
    assert w[("E01000002", "E01033001")][1:] == ("S", "area")
    assert w[("E01000003", "E01033003")] == (1.0, "M", "single")
    assert w[("E01000010", "E01033003")] == (1.0, "M", "single")
    assert report.links_by_type == {"U": 1, "S": 2, "M": 2}
    assert report.max_weight_sum_error < 1e-12


def test_population_weights_override_area(xw_store: Store, tmp_path: Path):
    # the small right-hand part holds most people: population, not area, must decide
    (tmp_path / "pop.csv").write_text("area_code,period,measure,value\nE01033001,2019,pop,100\n"
                                      "E01033002,2019,pop,300\nE01000001,2019,pop,50\nE01033003,2019,pop,80\n")
    ingest_indicator(xw_store, tmp_path / "pop.csv", spec_from_dict({
        "id": "pop21", "layout": "long", "geography": "lsoa2021",
        "measures": [{"id": "pop", "kind": "count"}]}))
    build_crosswalk(xw_store, "lsoa2011", "lsoa2021", population="pop21.pop")
    w = _weights(xw_store, "lsoa2011->lsoa2021")
    assert w[("E01000002", "E01033001")][:3:2] == (pytest.approx(0.25), "population")
    assert w[("E01000002", "E01033002")][0] == pytest.approx(0.75)


def test_reverse_direction_turns_merges_into_splits(xw_store: Store):
    build_crosswalk(xw_store, "lsoa2021", "lsoa2011")
    w = _weights(xw_store, "lsoa2021->lsoa2011")
    assert w[("E01033003", "E01000003")][:2] == (pytest.approx(0.5), "S")  # equal halves by area
    assert w[("E01033001", "E01000002")][:2] == (1.0, "M")


def test_counts_are_reallocated_and_totals_preserved(xw_store: Store):
    build_crosswalk(xw_store, "lsoa2011", "lsoa2021")
    report = harmonise(xw_store, "toy.claimants", "lsoa2021")
    values = dict(xw_store.sql("SELECT code, value FROM observations WHERE set_id = 'lsoa2021'").fetchall())
    assert values == pytest.approx({"E01000001": 100, "E01033001": 150, "E01033002": 50, "E01033003": 120})
    assert report.totals_before == {"2019": 420.0} and report.totals_after == pytest.approx({"2019": 420.0})
    shares = dict(xw_store.sql("SELECT code, apportioned_share FROM observations "
                               "WHERE set_id = 'lsoa2021'").fetchall())
    # split pieces are estimates; a 1:1 area and a merger of whole areas are exact
    assert shares["E01033001"] == pytest.approx(1.0) and shares["E01033003"] == 0
    assert shares["E01000001"] == 0
    dens = dict(xw_store.sql("SELECT code, denominator FROM observations WHERE set_id = 'lsoa2021'").fetchall())
    assert dens["E01033001"] == pytest.approx(1500)  # denominators move with their counts


def test_geometry_only_path_ignores_slivers(xw_store: Store, tmp_path: Path):
    # districts drawn 0.5 m off an LSOA edge: the 500 m² overlap (0.05%) is a sliver
    districts = gpd.GeoDataFrame(
        {"LAD13CD": ["E08000035", "E08000036"]},
        geometry=[box(X0, Y0, X0 + 3 * KM + 0.5, Y0 + KM), box(X0 + 3 * KM + 0.5, Y0, X0 + 5 * KM, Y0 + KM)],
        crs="EPSG:27700")
    districts.to_file(tmp_path / "lad.gpkg")
    ingest_boundaries(xw_store, [tmp_path / "lad.gpkg"])
    report = build_crosswalk(xw_store, "lsoa2011", "lad2013", basis="geometry")
    w = _weights(xw_store, "lsoa2011->lad2013")
    assert report.slivers_ignored == 1 and len(w) == 4
    assert w[("E01000003", "E08000036")][0] == pytest.approx(1.0)
    assert ("E01000003", "E08000035") not in w


def test_chained_crosswalk_equals_step_by_step(xw_store: Store, tmp_path: Path):
    districts = gpd.GeoDataFrame({"LAD13CD": ["E08000035", "E08000036"]},
                                 geometry=[box(X0, Y0, X0 + 2 * KM, Y0 + KM), box(X0 + 2 * KM, Y0, X0 + 5 * KM, Y0 + KM)],
                                 crs="EPSG:27700")
    districts.to_file(tmp_path / "lad.gpkg")
    ingest_boundaries(xw_store, [tmp_path / "lad.gpkg"])
    build_crosswalk(xw_store, "lsoa2011", "lsoa2021")
    build_crosswalk(xw_store, "lsoa2021", "lad2013", basis="geometry")
    harmonise(xw_store, "toy.claimants", "lsoa2021")
    harmonise(xw_store, "toy.claimants", "lad2013", from_set="lsoa2021", crosswalk_id="lsoa2021->lad2013")
    step_by_step = dict(xw_store.sql("SELECT code, value FROM observations WHERE set_id = 'lad2013'").fetchall())
    chained = chain_crosswalks(xw_store, "lsoa2011->lsoa2021", "lsoa2021->lad2013")
    assert chained.max_weight_sum_error < 1e-12
    harmonise(xw_store, "toy.claimants", "lad2013", from_set="lsoa2011", crosswalk_id=chained.crosswalk_id)
    direct = dict(xw_store.sql("SELECT code, value FROM observations WHERE set_id = 'lad2013'").fetchall())
    assert direct == pytest.approx(step_by_step)
    assert sum(direct.values()) == pytest.approx(420)


def test_rates_need_an_explicit_weight(xw_store: Store, tmp_path: Path):
    (tmp_path / "r.csv").write_text("area_code,period,measure,value\n" + "".join(
        f"{c},2019,score,{v / 10}\n" for c, v in COUNTS.items()))
    ingest_indicator(xw_store, tmp_path / "r.csv", spec_from_dict({
        "id": "idx", "layout": "long", "geography": "lsoa2011", "measures": [{"id": "score", "kind": "rate"}]}))
    build_crosswalk(xw_store, "lsoa2011", "lsoa2021")
    with pytest.raises(InputError, match="a rate without counts: carrying it needs --weight"):
        harmonise(xw_store, "idx.score", "lsoa2021")
    report = harmonise(xw_store, "idx.score", "lsoa2021", weight="toy.claimants")
    values = dict(xw_store.sql("SELECT code, value FROM observations WHERE indicator_id = 'idx.score' "
                               "AND set_id = 'lsoa2021'").fetchall())
    # E01033003 merges c (5.0, weight 50) and d (7.0, weight 70): (5·50 + 7·70) / 120
    assert values["E01033003"] == pytest.approx((5 * 50 + 7 * 70) / 120)
    assert values["E01033001"] == pytest.approx(20.0)  # a split keeps its source's rate
    assert report.weight == "toy.claimants"


def test_missing_crosswalk_and_coverage_are_reported(xw_store: Store):
    with pytest.raises(NotFoundError, match="no crosswalk 'lsoa2011->lsoa2021'; build it"):
        harmonise(xw_store, "toy.claimants", "lsoa2021")
    xw_store.sql("INSERT INTO areas (set_id, code, geography, vintage, nation, source, ingest_id) "
                 "VALUES ('lsoa2011', 'E01000009', 'lsoa', 2011, 'E', 'test', 0)")
    report = build_crosswalk(xw_store, "lsoa2011", "lsoa2021")
    assert report.sources_without_target == ["E01000009"]


def test_rates_of_harmonised_data_carry_their_estimated_share(xw_store: Store):
    import pandas as pd

    from geo_cs.analysis import Panel, RateSource, group_rates

    build_crosswalk(xw_store, "lsoa2011", "lsoa2021")
    harmonise(xw_store, "toy.claimants", "lsoa2021")
    panel = Panel(xw_store, RateSource("toy.claimants", "lsoa2021"))
    codes = list(TARGETS)
    rates = group_rates(panel, pd.DataFrame({"group": "all", "code": codes}))
    # 200 of the 420 claimants reached their 2021 LSOA through the split of E01000002
    assert rates.loc[0, "estimated_share"] == pytest.approx(200 / 420)

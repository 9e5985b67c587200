from pathlib import Path

import geopandas as gpd
import pytest
import shapely
from conftest import GRID_CODES, grid_frame, snapshot, write_geojson_without_crs, write_topojson
from shapely.geometry import Polygon

from geo_cs.errors import InputError, NotFoundError
from geo_cs.ingest import ingest_boundaries
from geo_cs.store import Store

KM2 = 1_000_000


def _areas(store: Store) -> dict[str, tuple]:
    return {
        r[0]: r[1:]
        for r in store.sql(
            "SELECT code, name, set_id, geography, vintage, nation, area_m2, xmin, ymin, "
            "ST_XMin(geom_27700), ST_GeometryType(geom_4326) FROM areas ORDER BY code"
        ).fetchall()
    }


@pytest.mark.parametrize("fmt", ["geojson", "gpkg", "fgb", "shp", "parquet"])
def test_each_format_is_read_into_both_crs(tmp_path: Path, store: Store, grid, fmt):
    path = tmp_path / f"lsoa.{fmt}"
    if fmt == "parquet":
        grid.to_parquet(path)
    else:
        grid.to_file(path, driver={"geojson": "GeoJSON", "gpkg": "GPKG", "fgb": "FlatGeobuf",
                                   "shp": "ESRI Shapefile"}[fmt])
    report = ingest_boundaries(store, [path])
    assert report.set_id == "lsoa2011" and report.areas_written == 6
    areas = _areas(store)
    assert list(areas) == sorted(GRID_CODES)
    name, set_id, geography, vintage, nation, area_m2, xmin, ymin, bng_x, gtype = areas["E01000001"]
    assert (name, set_id, geography, vintage, nation) == ("Testtown 000A", "lsoa2011", "lsoa", 2011, "E")
    assert 0.9 * KM2 < area_m2 < 1.1 * KM2  # a ~1 km square, measured in EPSG:27700
    assert xmin == pytest.approx(-1.55) and ymin == pytest.approx(53.80)
    assert 420_000 < bng_x < 440_000  # Leeds eastings
    assert gtype == "POLYGON"


def test_shapefile_in_british_national_grid_is_reprojected(tmp_path: Path, store: Store, grid):
    path = tmp_path / "bng.shp"
    grid.to_crs("EPSG:27700").to_file(path)
    ingest_boundaries(store, [path])
    xmin = store.sql("SELECT xmin FROM areas WHERE code = 'E01000001'").fetchone()[0]
    assert xmin == pytest.approx(-1.55, abs=1e-6)


def test_folder_of_per_district_topojson_without_crs(tmp_path: Path, store: Store, grid):
    folder = tmp_path / "lsoa11_by_lad"
    folder.mkdir()
    write_topojson(folder / "E08000035.json", grid.iloc[:3], "E08000035")
    write_topojson(folder / "E08000036.json", grid.iloc[3:], "E08000036")
    (folder / "README.txt").write_text("not a boundary file")
    report = ingest_boundaries(store, [folder])
    assert (report.files, report.features_read, report.areas_written) == (2, 6, 6)
    assert len(report.crs_assumed_files) == 2
    assert "taken as CRS84" in "\n".join(report.lines())
    assert {r[0] for r in store.sql("SELECT source FROM areas").fetchall()} == {
        str(folder / "E08000035.json"), str(folder / "E08000036.json")}


def test_no_crs_and_coordinates_not_lonlat_is_an_error(tmp_path: Path, store: Store, grid):
    path = write_geojson_without_crs(tmp_path / "bng.json", grid.to_crs("EPSG:27700"))
    before = snapshot(store)
    with pytest.raises(InputError, match=r"bng\.json: coordinates .* are not lon/lat .*no CRS declared"):
        ingest_boundaries(store, [path])
    assert snapshot(store) == before
    topo = write_topojson(tmp_path / "bng_topo.json", grid.to_crs("EPSG:27700"), "lsoa")
    with pytest.raises(InputError, match=r"bng_topo\.json: no CRS declared and coordinates .* not in lon/lat"):
        ingest_boundaries(store, [topo])
    assert snapshot(store) == before


def test_code_and_name_columns_can_be_named(tmp_path: Path, store: Store):
    frame = grid_frame(code_col="zone", name_col="label")
    path = tmp_path / "custom.gpkg"
    frame.to_file(path)
    with pytest.raises(InputError, match="cannot tell which geography set .*pass --set"):
        ingest_boundaries(store, [path])
    report = ingest_boundaries(store, [path], set_id="lsoa2011", code_col="zone", name_col="label")
    assert report.areas_written == 6
    assert store.sql("SELECT name FROM areas WHERE code = 'E01000002'").fetchone()[0] == "Testtown 001A"


def test_missing_code_column_names_the_columns(tmp_path: Path, store: Store, grid):
    path = tmp_path / "x.gpkg"
    grid.to_file(path)
    with pytest.raises(InputError, match="no code column 'CODE'"):
        ingest_boundaries(store, [path], set_id="lsoa2011", code_col="CODE")


def test_invalid_geometries_are_repaired_and_counted(tmp_path: Path, store: Store, grid):
    x0, y0 = -1.55, 53.80
    bowtie = Polygon([(x0, y0), (x0 + 0.01, y0 + 0.01), (x0 + 0.01, y0), (x0, y0 + 0.01), (x0, y0)])
    frame = grid.copy()
    frame.loc[1, "geometry"] = bowtie
    path = tmp_path / "bad.geojson"
    frame.to_file(path)
    report = ingest_boundaries(store, [path])
    assert report.repaired_codes == ["E01000002"]
    assert "invalid geometries repaired (make_valid): 1 (E01000002)" in report.lines()
    valid, gtype = store.sql(
        "SELECT ST_IsValid(geom_27700), ST_GeometryType(geom_27700) FROM areas WHERE code = 'E01000002'"
    ).fetchone()
    assert valid and gtype == "MULTIPOLYGON"


def test_identical_duplicates_are_dropped_with_a_count(tmp_path: Path, store: Store, grid):
    folder = tmp_path / "by_lad"
    folder.mkdir()
    grid.iloc[:4].to_file(folder / "a.geojson")
    grid.iloc[3:].to_file(folder / "b.geojson")  # E01000010 in both, same geometry
    report = ingest_boundaries(store, [folder])
    assert report.areas_written == 6
    assert list(report.identical_duplicates) == ["E01000010"]
    assert any("1 codes appeared more than once with the same geometry: E01000010 (a.geojson, "
               "b.geojson)" in line for line in report.lines())


def _conflict(tmp_path: Path, grid) -> Path:
    folder = tmp_path / "conflict"
    folder.mkdir()
    grid.iloc[:4].to_file(folder / "a.geojson")
    other = grid.iloc[3:].copy()
    other.loc[3, "geometry"] = shapely.affinity.scale(other.loc[3, "geometry"], 2, 2)
    other.to_file(folder / "b.geojson")
    return folder


def test_conflicting_duplicates_are_an_error_listing_codes_and_nothing_is_written(
    tmp_path: Path, store: Store, grid
):
    ingest_boundaries(store, [_write(tmp_path, grid.iloc[:2])])
    before = snapshot(store)
    with pytest.raises(InputError, match=r"1 code\(s\) appear more than once with different "
                                         r"geometries: E01000010 in a.geojson \(feature 4\), b.geojson \(feature 1\).*--on-duplicate"):
        ingest_boundaries(store, [_conflict(tmp_path, grid)])
    assert snapshot(store) == before


def _write(tmp_path: Path, frame: gpd.GeoDataFrame) -> Path:
    path = tmp_path / "first.geojson"
    frame.to_file(path)
    return path


@pytest.mark.parametrize(("policy", "factor"), [("first", 1.0), ("largest", 4.0)])
def test_conflicting_duplicates_resolved_by_policy(tmp_path: Path, store: Store, grid, policy, factor):
    report = ingest_boundaries(store, [_conflict(tmp_path, grid)], on_duplicate=policy)
    assert report.areas_written == 6 and list(report.conflicting_duplicates) == ["E01000010"]
    area = store.sql("SELECT area_m2 FROM areas WHERE code = 'E01000010'").fetchone()[0]
    base = store.sql("SELECT area_m2 FROM areas WHERE code = 'E01000003'").fetchone()[0]
    assert area / base == pytest.approx(factor, rel=0.01)


def test_missing_codes_of_a_known_set_are_named(tmp_path: Path, store: Store, grid, test_registry):
    path = tmp_path / "part.geojson"
    grid.iloc[:5].to_file(path)
    report = ingest_boundaries(store, [path])
    # the test registry expects the 6 grid codes + E01000007 (England) + W01000001 (Wales);
    # only England is in the file, so Wales is out of scope
    assert report.expected_count == 7 and report.present_count == 5
    assert report.missing_codes == ["E01000006", "E01000007"]
    assert "coverage: 5 of 7 expected codes (E) in the store; 2 missing: E01000006, E01000007" in report.lines()


def test_reingest_replaces_areas_and_loads_district_by_district(tmp_path: Path, store: Store, grid):
    first, second = tmp_path / "a.geojson", tmp_path / "b.geojson"
    grid.iloc[:3].to_file(first)
    grid.iloc[2:].to_file(second)
    ingest_boundaries(store, [first])
    ingest_boundaries(store, [second])
    assert store.sql("SELECT count(*) FROM areas").fetchone()[0] == 6
    assert store.data_version() == 2
    assert store.sql("SELECT count(*) FROM ingests WHERE finished_at IS NOT NULL").fetchone()[0] == 2


def test_empty_code_is_an_error_naming_the_feature(tmp_path: Path, store: Store):
    frame = grid_frame(["E01000001", " ", "E01000003"])
    path = tmp_path / "blank.geojson"
    frame.to_file(path)
    with pytest.raises(InputError, match=r"blank.geojson, feature 2, column 'LSOA11CD': empty area code"):
        ingest_boundaries(store, [path])


def test_missing_path_is_not_found(store: Store, tmp_path: Path):
    with pytest.raises(NotFoundError, match="no such file or folder"):
        ingest_boundaries(store, [tmp_path / "nowhere"])


def test_mixed_sets_in_one_ingest_are_refused(tmp_path: Path, store: Store, grid):
    folder = tmp_path / "mixed"
    folder.mkdir()
    grid.to_file(folder / "a.geojson")
    grid_frame(["S01000001"], code_col="DZ_CODE", name_col="DZ_NAME").to_file(folder / "b.geojson")
    with pytest.raises(InputError, match="looks like datazone2001 but earlier files were lsoa2011"):
        ingest_boundaries(store, [folder])


def test_missing_names_are_stored_as_null(tmp_path: Path, store: Store, grid):
    path = tmp_path / "codes_only.geojson"
    grid.drop(columns=["LSOA11NM"]).to_file(path)
    assert ingest_boundaries(store, [path]).areas_written == 6
    assert store.sql("SELECT count(*) FROM areas WHERE name IS NULL").fetchone()[0] == 6
    some = grid.copy()
    some.loc[2, "LSOA11NM"] = None  # one blank name among real ones, as in published files
    path = tmp_path / "some_names.geojson"
    some.to_file(path)
    assert ingest_boundaries(store, [path]).areas_written == 6
    assert store.sql("SELECT count(*) FROM areas WHERE name IS NULL").fetchone()[0] == 1


def test_shapefile_without_prj_in_bng_is_refused(tmp_path: Path, store: Store, grid):
    path = tmp_path / "noprj.shp"
    grid.to_crs("EPSG:27700").to_file(path)
    path.with_suffix(".prj").unlink()
    with pytest.raises(InputError, match=r"noprj.shp: no CRS declared .*a .prj for a shapefile"):
        ingest_boundaries(store, [path])


def test_multi_layer_file_needs_a_layer(tmp_path: Path, store: Store, grid):
    path = tmp_path / "two.gpkg"
    grid.to_file(path, layer="lsoa")
    grid.to_file(path, layer="copy")
    with pytest.raises(InputError, match=r"two.gpkg: holds several layers \(lsoa, copy\); choose one with --layer"):
        ingest_boundaries(store, [path])
    assert ingest_boundaries(store, [path], layer="copy").areas_written == 6


def test_empty_file_is_an_error(tmp_path: Path, store: Store, grid):
    path = tmp_path / "empty.geojson"
    path.write_text('{"type": "FeatureCollection", "features": []}')
    with pytest.raises(InputError, match="no features to ingest"):
        ingest_boundaries(store, [path])


def test_conflicting_duplicates_in_topojson(tmp_path: Path, store: Store, grid):
    frame = grid.copy()
    frame.loc[5, "LSOA11CD"] = "E01000001"  # a second, different polygon for the same code
    path = write_topojson(tmp_path / "conflict.json", frame, "lsoa")
    with pytest.raises(InputError, match=r"E01000001 in conflict.json \(feature 1\), conflict.json \(feature 6\)"):
        ingest_boundaries(store, [path])


def test_points_are_not_boundaries(tmp_path: Path, store: Store, grid):
    path = tmp_path / "points.geojson"
    grid.set_geometry(grid.representative_point()).to_file(path)
    with pytest.raises(InputError, match=r"points.geojson, feature 1 \(code E01000001\): Point geometry; "
                                         r"boundaries must be polygons \(6 features are not\)"):
        ingest_boundaries(store, [path])


def test_swapped_lat_lon_is_caught(tmp_path: Path, store: Store, grid):
    swapped = grid.copy()
    swapped.geometry = shapely.transform(swapped.geometry.to_numpy(), lambda xy: xy[:, ::-1])
    path = tmp_path / "swapped.geojson"
    swapped.to_file(path)
    with pytest.raises(InputError, match="reaches outside Great Britain — longitude and latitude look swapped"):
        ingest_boundaries(store, [path])


def test_a_code_that_is_not_of_the_set_is_refused(tmp_path: Path, store: Store):
    path = tmp_path / "typo.geojson"
    grid_frame(["E01000001", "X123"]).to_file(path)
    with pytest.raises(InputError, match=r"typo.geojson, feature 2, column 'LSOA11CD': 'X123' is not a "
                                         r"lsoa2011 code"):
        ingest_boundaries(store, [path])

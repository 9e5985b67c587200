from pathlib import Path

import duckdb
import pytest

from geo_cs.errors import StoreError
from geo_cs.store import Store, load_spatial, spatial_extension_path


def test_spatial_extension_loads_from_the_package_file():
    path = spatial_extension_path()
    assert path.name == "spatial.duckdb_extension"
    assert f"v{duckdb.__version__}" in str(path)
    with Store.open(":memory:") as store:
        wkt = store.sql(
            "SELECT ST_AsText(ST_Transform(ST_Point(-2.0, 53.0), 'OGC:CRS84', 'EPSG:27700'))"
        ).fetchone()[0]
    x, y = map(float, wkt.removeprefix("POINT (").rstrip(")").split())
    assert abs(x - 400097) < 5 and abs(y - 344742) < 5  # British National Grid metres


def test_a_broken_extension_file_gives_a_clear_error(tmp_path: Path):
    bogus = tmp_path / "spatial.duckdb_extension"
    bogus.write_bytes(b"not an extension")
    con = duckdb.connect()
    with pytest.raises(StoreError, match="cannot load the DuckDB spatial extension from"):
        load_spatial(con, bogus)


def test_schema_is_created_and_read_only_connections_cannot_write(db_path: Path):
    with Store.open(db_path) as store:
        assert store.data_version() == 0
        tables = {r[0] for r in store.sql("SELECT table_name FROM information_schema.tables").fetchall()}
        assert {"areas", "geography_sets", "lookup_links", "observations", "periods",
                "indicators", "ingests", "meta"} <= tables
    with Store.open(db_path, read_only=True) as store:
        assert store.data_version() == 0
        with pytest.raises(duckdb.Error):
            store.sql("INSERT INTO meta VALUES ('x', 'y')")


def test_read_only_open_of_a_missing_database_names_it(tmp_path: Path):
    missing = tmp_path / "nope.duckdb"
    with pytest.raises(StoreError, match="nope.duckdb does not exist"):
        Store.open(missing, read_only=True)


def test_transaction_rolls_back_on_error(store: Store):
    with pytest.raises(RuntimeError), store.transaction():
        store.sql("INSERT INTO meta VALUES ('k', 'v')")
        raise RuntimeError("boom")
    assert store.sql("SELECT count(*) FROM meta WHERE key = 'k'").fetchone()[0] == 0


def test_the_extension_signature_is_checked_once_and_an_altered_file_is_refused(tmp_path: Path):
    from geo_cs.store import _file_identity, _signature_checked, check_signature, spatial_extension_path

    real = spatial_extension_path()
    check_signature(real)
    assert _file_identity(real) in _signature_checked
    # the same bytes with one changed in the middle: DuckDB's signature check must refuse them
    altered = tmp_path / "spatial.duckdb_extension"
    data = bytearray(real.read_bytes())
    data[len(data) // 2] ^= 0xFF
    altered.write_bytes(bytes(data))
    with pytest.raises(StoreError, match="cannot load the DuckDB spatial extension from"):
        check_signature(altered)
    assert _file_identity(altered) not in _signature_checked

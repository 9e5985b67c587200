"""A new quarter ingested while the service answers: readers never see half an ingest, the switch
is atomic, caches and ETags follow the data version, and a killed ingest leaves the served data
as it was."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time

import httpx
import pytest

from tests.conftest import SHARED_DATA
from tests.servers import readers_asking, running_service, wait_until

GEO_CS = [sys.executable, "-m", "geo_cs.cli"]
NEW_QUARTER = "area_code,period,measure,value,denominator\nE14000530,2012-05,claimants,5000,60000\n" \
              "E14000531,2012-05,claimants,4000,50000\n"


@pytest.fixture
def served(demo_db, tmp_path):
    """A copy of the demo database served by uvicorn; yields (base URL, database path). A server
    that does not start fails the test, with its output."""
    db = tmp_path / "served.duckdb"
    shutil.copy(demo_db, db)
    with running_service({"GEO_CS_DB": str(db)}, tmp_path / "served.log") as base:
        yield base, db


def _version(base: str) -> int:
    return httpx.get(f"{base}/health", timeout=30).json()["data_version"]   # under the readers, on a loaded machine: seconds


@pytest.mark.slow  # a served store updated under load: ~13 s; .ci/run runs it
def test_a_new_quarter_goes_live_atomically_while_requests_run(served, tmp_path):
    base, db = served
    before = _version(base)
    tile = f"{base}/tiles/wpc2010/7/63/41.mvt?indicator=claimants"
    etag = httpx.get(tile, timeout=30).headers["etag"]
    # readers all through the update
    with readers_asking(f"{base}/collections/wpc2010/items", {"limit": 50, "indicator": "claimants"}) as statuses:
        csv = tmp_path / "newq.csv"
        csv.write_text(NEW_QUARTER)
        result = subprocess.run([*GEO_CS, "--db", str(db), "-q", "ingest", "indicator", str(csv), "--layout",
                                 "long", "--set", "wpc2010"], capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr
        wait_until(lambda: _version(base) != before, 10, "the service to take up the new data version")
    assert _version(base) == before + 1
    assert statuses and set(statuses) == {200}, sorted(set(statuses))
    # the new data are served, and the tile's ETag moved with the data version
    item = httpx.get(f"{base}/collections/wpc2010/items/E14000530",
                     params={"indicator": "newq.claimants", "period": "2012-05"}, timeout=30).json()
    assert item["properties"]["value"] == pytest.approx(5000 / 60000 * 100, abs=1e-3)
    assert httpx.get(tile, timeout=30).headers["etag"] != etag
    assert not list(db.parent.glob(f".{db.name}.*.updating*"))   # no copy left behind


@pytest.mark.skipif(not SHARED_DATA.exists(), reason=f"real data not found at {SHARED_DATA}")
@pytest.mark.slow  # a real-data ingest killed mid-way under a live server: ~15 s; .ci/run runs it
def test_an_ingest_killed_midway_leaves_the_served_data_intact(served, tmp_path):
    base, db = served
    before = _version(base)
    size = db.stat().st_size
    # a long ingest (all LSOA 2011 boundaries), killed once it has started writing its copy
    proc = subprocess.Popen([*GEO_CS, "--db", str(db), "-q", "ingest", "boundaries",
                             str(SHARED_DATA / "boundaries" / "lsoa11_bgc_topo_by_lad")])
    try:
        # the kill must land mid-ingest: the working copy exists and the ingest is still running
        wait_until(lambda: list(db.parent.glob(f".{db.name}.*.updating")) or proc.poll() is not None, 60,
                   "the ingest to start its working copy")
        assert list(db.parent.glob(f".{db.name}.*.updating")), "the ingest ended before its working copy"
        time.sleep(1.0)   # a second into writing it, not the moment it appears
        assert proc.poll() is None, f"the ingest ended by itself (exit {proc.returncode}) before it was killed"
    finally:
        proc.send_signal(signal.SIGKILL)   # also when the test failed: no ingest left running
        proc.wait()
    assert db.stat().st_size == size
    assert _version(base) == before
    assert httpx.get(f"{base}/collections/lsoa2011/items", params={"limit": 1}, timeout=30).json()[
        "numberMatched"] == 9941
    # the next update clears the abandoned copy
    csv = tmp_path / "newq.csv"
    csv.write_text(NEW_QUARTER)
    result = subprocess.run([*GEO_CS, "--db", str(db), "-q", "ingest", "indicator", str(csv), "--layout", "long",
                             "--set", "wpc2010"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert not list(db.parent.glob(f".{db.name}.*.updating*"))


def test_two_updates_at_once_both_land(demo_db, tmp_path):
    """Updates queue on a lock: neither removes the other's working copy, both are kept."""
    from geo_cs.store import Store

    db = tmp_path / "queued.duckdb"
    shutil.copy(demo_db, db)
    with Store.open(db, read_only=True) as store:
        before = store.data_version()
    files = []
    for i, code in enumerate(("E14000530", "E14000531")):
        csv = tmp_path / f"q{i}.csv"
        csv.write_text(f"area_code,period,measure,value,denominator\n{code},2012-05,claimants,{5000 + i},60000\n")
        files.append(csv)
    procs = [subprocess.Popen([*GEO_CS, "--db", str(db), "-q", "ingest", "indicator", str(f), "--layout", "long",
                               "--set", "wpc2010"], stderr=subprocess.PIPE, text=True) for f in files]
    for proc in procs:
        assert proc.wait(timeout=300) == 0, proc.stderr.read()
    with Store.open(db, read_only=True) as store:
        assert store.data_version() == before + 2
        assert store.sql("SELECT count(*) FROM observations WHERE indicator_id IN ('q0.claimants', "
                         "'q1.claimants')").fetchone()[0] == 2


def test_serving_through_many_updates_keeps_at_most_one_superseded_version(tmp_path):
    """Three updates in a row while serving: the served file, one superseded version (kept a
    minute for requests that took it just before the swap) and nothing else stays on disk."""
    from geo_cs.api.deps import ServedStore
    from geo_cs.store import Store, updating

    db = tmp_path / "served.duckdb"
    with Store.open(db) as store:
        store.sql("CREATE TABLE t AS SELECT range AS i FROM range(1000)")
    served = ServedStore(db, check_seconds=0)
    try:
        versions = []
        for n in range(3):
            with updating(db) as store:
                store.sql("INSERT INTO t VALUES (?)", [10_000 + n])
            snapshot = served.current(check_now=True)
            versions.append(snapshot.store.sql("SELECT count(*) FROM t").fetchone()[0])
            # the served version's own link is the served file (same inode): only others take room
            superseded = {p.stat().st_ino for p in tmp_path.glob(f".{db.name}.served-*")} - {db.stat().st_ino}
            assert len(served._retired) <= 1 and len(superseded) <= 1, (n, superseded)
        assert versions == [1001, 1002, 1003]
        # a superseded version still in use by a request stays until the request ends
        cursor = served.snapshot.cursor()
        with updating(db) as store:
            store.sql("INSERT INTO t VALUES (1)")
        served.current(check_now=True)
        assert cursor.sql("SELECT count(*) FROM t").fetchone()[0] == 1003
        cursor.close()
    finally:
        served.close()
    assert not list(tmp_path.glob(f".{db.name}.served-*"))

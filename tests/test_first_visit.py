"""The first visitor of the morning waits no longer than a repeat one (issue 28, point 15): after
a start, and after an update, the server draws every partnership's default map page in the
background and says so on ``/health`` (``ready``); a first visit is then a cache hit
(``X-Cache: hit``: nothing is drawn for it), not a wall-clock guess."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time

import httpx
import pytest

from geo_cs.partnerships import load_partnerships
from tests.servers import running_service

GEO_CS = [sys.executable, "-m", "geo_cs.cli"]
NEW_QUARTER = "area_code,period,measure,value,denominator\nE14000530,2012-05,claimants,5000,60000\n" \
              "E14000531,2012-05,claimants,4000,50000\n"


def _ready(base: str, version: int | None = None, seconds: float = 180) -> dict:
    """/health once it says ready (for data version ``version`` if given)."""
    deadline = time.monotonic() + seconds
    while True:
        health = httpx.get(f"{base}/health", timeout=30).json()
        if health["ready"] and (version is None or health["data_version"] == version):
            return health
        assert time.monotonic() < deadline, f"not ready after {seconds:.0f} s: {health}"
        time.sleep(0.2)


def _first_visits(base: str) -> dict[str, str]:
    """Each partnership's default map page: its X-Cache (only those the store can draw)."""
    seen = {}
    with httpx.Client(timeout=60) as client:
        for partnership in load_partnerships():
            response = client.get(f"{base}/maps/{partnership}")
            if response.status_code == 200:
                seen[partnership] = response.headers["x-cache"]
    return seen


@pytest.mark.slow  # a real server warmed twice, an ingest between: ~30 s; .ci/run runs it
def test_first_visits_are_served_warm_after_a_start_and_after_an_update(demo_db, tmp_path):
    db = tmp_path / "served.duckdb"
    shutil.copy(demo_db, db)
    with running_service({"GEO_CS_DB": str(db)}, tmp_path / "server.log") as base:
        health = _ready(base)
        first = _first_visits(base)
        assert len(first) >= 5, first   # the demo draws most partnerships
        assert set(first.values()) == {"hit"}, first
        assert health["warmed"] == len(first)
        # the header means what it says: a view nobody has asked for is drawn for its visitor
        response = httpx.get(f"{base}/maps/{next(iter(first))}", params={"k": 4}, timeout=60)
        assert response.headers["x-cache"] == "miss"

        # an ingest swaps a new data version in: drawn before anyone asks for it
        csv = tmp_path / "newq.csv"
        csv.write_text(NEW_QUARTER)
        result = subprocess.run([*GEO_CS, "--db", str(db), "-q", "ingest", "indicator", str(csv),
                                 "--layout", "long", "--set", "wpc2010"],
                                capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr
        after = _ready(base, health["data_version"] + 1)
        again = _first_visits(base)
        assert set(again) == set(first) and set(again.values()) == {"hit"}, again
        assert after["warmed"] == len(again)


def test_without_the_warm_up_a_first_visit_is_drawn_for_its_visitor(demo_db, tmp_path):
    with running_service({"GEO_CS_DB": str(demo_db), "GEO_CS_WARM_MAPS": "0"},
                         tmp_path / "server.log") as base:
        health = _ready(base, seconds=10)
        assert health["warmed"] == 0
        with httpx.Client(timeout=60) as client:
            assert client.get(f"{base}/maps/glasgow").headers["x-cache"] == "miss"
            assert client.get(f"{base}/maps/glasgow").headers["x-cache"] == "hit"

"""Pages cost what they show, however many measures a store holds (issue 27, point 8).

A file with 2,000 measures made a cold ``/collections`` take 24.5 s and a map page 25 s (each
measure was resolved by its own query and scan of every other); 800 more and ``/collections``
and every items request answered 503 at the query limit, for good. Here the demo store gains
3,000 measures on its data zones (a wide file's worth) and the service, with a query limit of
5 s, must answer every page that lists or uses them.
"""

from __future__ import annotations

import shutil

import pytest
from fastapi.testclient import TestClient

from geo_cs.api.app import create_app
from geo_cs.config import Settings
from geo_cs.store import Store

N_MEASURES = 3_000


@pytest.fixture(scope="module")
def many_db(demo_db, tmp_path_factory):
    path = tmp_path_factory.mktemp("many") / "many.duckdb"
    shutil.copy(demo_db, path)
    with Store.open(path) as store, store.transaction():
        # as `ingest indicator` stores a wide file: one indicator per column, half of them
        # counts; 60 data zones each keep the store small and the test fast
        store.sql("""
            INSERT INTO indicators
            SELECT 'wide.m' || i, 'wide', 'm' || i, CASE WHEN i % 2 = 0 THEN 'count' ELSE 'score' END,
                   NULL, 'Measure ' || i, 'datazone2011', 'A wide file', 'Tester', 'OGL', 'wide.csv', 1.0
            FROM range(?) t(i)""", [N_MEASURES])
        store.sql("""
            INSERT INTO observations
            SELECT 'wide.m' || i, 'datazone2011', a.code, 'simd2020', 100.0 + i, NULL, NULL, 99, NULL
            FROM range(?) t(i),
                 (SELECT code FROM areas WHERE set_id = 'datazone2011' ORDER BY code LIMIT 60) a""",
                  [N_MEASURES])
    return path


@pytest.fixture(scope="module")
def client(many_db):
    with TestClient(create_app(Settings(db=many_db, query_timeout_s=5))) as c:
        yield c


def test_collections_lists_every_measure_within_the_limit(client):
    response = client.get("/collections")     # cold: the first request of the process
    assert response.status_code == 200, response.text[:300]
    ids = {c["id"] for c in response.json()["collections"]}
    assert {f"datazone2011_m{i}" for i in range(N_MEASURES)} <= ids


@pytest.mark.parametrize(("path", "params"), [
    ("/collections/datazone2011_m2999", {}),
    ("/collections/datazone2011_m2998/items", {"limit": 10}),
    ("/collections/datazone2011/items", {"indicator": "wide.m17", "limit": 10}),
    ("/maps/dundee", {}),
    ("/maps/dundee", {"geography": "datazone2011", "indicator": "m2998"}),
    ("/tiles/datazone2011/tilejson.json", {"indicator": "m12"}),
])
def test_pages_that_use_one_measure_answer(client, path, params):
    response = client.get(path, params=params)
    assert response.status_code == 200, (path, response.text[:300])


def test_an_unknown_measure_is_named_in_a_readable_error(client):
    response = client.get("/collections/datazone2011/items", params={"indicator": "nope"})
    assert response.status_code == 404
    detail = response.json()["detail"]
    # the valid values are listed, but not all 3,000 of them
    assert "nope" in detail and "more" in detail and len(detail) < 2_000, len(detail)

"""The service's limits and its one key-protected operation, on the demo database."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient

from geo_cs.api.app import create_app
from geo_cs.api.deps import Snapshot, open_served
from geo_cs.api.limits import SizeLimits
from geo_cs.api.problems import QueryTimeout
from geo_cs.config import Settings

MEASURE = {"indicator": "employment_deprived"}


def problem(response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status and "Traceback" not in response.text
    return body


@pytest.fixture(scope="module")
def client(demo_db):
    with TestClient(create_app(Settings(db=demo_db, api_key="s3cret-key"))) as c:
        yield c


def test_a_url_over_the_limit_is_414(client):
    body = problem(client.get("/collections", params={"q": "x" * 9000}), 414)
    assert "at most 8,192" in body["detail"]
    assert client.get("/collections", params={"indicator": "x" * 100}).status_code == 200


def test_a_request_body_over_the_limit_is_413_before_any_route(client):
    body = problem(client.post("/admin/refresh", content=b"x" * 70_000), 413)
    assert "70,000 bytes" in body["detail"]


def test_a_streamed_body_over_the_limit_is_413():
    # no route of the service reads a body; an app that does shows the guard of streamed ones
    async def reads_its_body(scope, receive, send):
        while (await receive()).get("more_body"):
            pass
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"read"})

    def chunks():
        for _ in range(40):
            yield b"y" * 4096

    guarded = SizeLimits(reads_its_body, max_url_bytes=8192, max_request_bytes=65536,
                         max_response_bytes=10**6)
    c = TestClient(guarded)  # not entered: this bare app has no lifespan
    problem(c.post("/", content=chunks()), 413)
    assert c.post("/", content=b"small").text == "read"


@pytest.mark.parametrize("encoding", ["identity", "gzip"])
def test_a_response_over_the_limit_is_cut_and_the_client_can_tell(demo_db, tmp_path, encoding):
    """A response cut at GEO_CS_MAX_RESPONSE_MB ends without its end (short of its
    Content-Length, or with no last chunk): a real client reports an incomplete download,
    never a truncated page that looks whole (issue 27, point 7)."""
    import httpx

    from tests.servers import running_service

    env = {"GEO_CS_DB": str(demo_db), "GEO_CS_MAX_RESPONSE_MB": "1"}
    with running_service(env, tmp_path / "server.log") as base:
        with pytest.raises(httpx.RemoteProtocolError):
            httpx.get(f"{base}/collections/lsoa2011/items", params={"limit": 10_000},
                      headers={"Accept-Encoding": encoding}, timeout=60)
        # the worker goes on serving, and a page under the cap is whole
        small = httpx.get(f"{base}/collections/lsoa2011/items", params={"limit": 10}, timeout=60)
        assert small.status_code == 200 and len(small.json()["features"]) == 10
    assert "cut at the" in (tmp_path / "server.log").read_text()


def test_a_request_whose_queries_run_past_the_timeout_is_503(demo_db):
    with TestClient(create_app(Settings(db=demo_db, query_timeout_s=0.001))) as hurried:
        body = problem(hurried.get("/collections/datazone2011/items", params=MEASURE), 503)
    assert "GEO_CS_QUERY_TIMEOUT_S" in body["detail"]


def test_a_running_query_is_interrupted_at_the_deadline(demo_db):
    snapshot = Snapshot(open_served(demo_db))
    cursor = snapshot.cursor(timeout=0.3)
    started = time.monotonic()
    try:
        with pytest.raises(QueryTimeout):
            # minutes of work if left alone
            cursor.sql("SELECT sum(i * i % 7) FROM range(100_000_000_000) t(i)").fetchone()
    finally:
        cursor.close()
        snapshot.close()
    assert time.monotonic() - started < 5


def test_admin_operations_are_off_without_a_key(demo_db):
    with TestClient(create_app(Settings(db=demo_db))) as keyless:
        body = problem(keyless.post("/admin/refresh", headers={"X-API-Key": "anything"}), 403)
    assert "GEO_CS_API_KEY" in body["detail"]


@pytest.mark.parametrize("headers", [{}, {"X-API-Key": "wrong"}, {"Authorization": "Bearer wrong"},
                                     {"Authorization": "s3cret-key"}])
def test_admin_refresh_needs_the_key(client, headers):
    response = client.post("/admin/refresh", headers=headers)
    problem(response, 401)
    assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize("headers", [{"X-API-Key": "s3cret-key"}, {"Authorization": "Bearer s3cret-key"}])
def test_admin_refresh_with_the_key_empties_the_caches(client, headers):
    assert client.get("/collections/datazone2011/items", params={**MEASURE, "limit": 1}).status_code == 200
    response = client.post("/admin/refresh", headers=headers)
    assert response.status_code == 200
    body = response.json()
    assert body["values_dropped"] >= 1 and body["data_version"] >= 1
    assert client.app.state.values_cache.bytes == 0 and len(client.app.state.values_cache._items) == 0

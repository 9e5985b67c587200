from pathlib import Path

from fastapi.testclient import TestClient

from geo_cs.api.app import create_app
from geo_cs.config import Settings
from geo_cs.ingest import ingest_boundaries
from geo_cs.store import Store


def test_health_reports_the_database_and_attribution(tmp_path: Path, grid):
    db = tmp_path / "api.duckdb"
    path = tmp_path / "grid.geojson"
    grid.to_file(path)
    with Store.open(db) as store:
        ingest_boundaries(store, [path])
    with TestClient(create_app(Settings(db=db))) as client:
        response = client.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok" and body["areas"] == 6 and body["data_version"] == 1
    assert "Open Government Licence v3.0" in body["attribution"]

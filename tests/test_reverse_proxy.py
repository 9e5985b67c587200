"""Readers beyond one machine: Debian's nginx, with the shipped configuration
(``deploy/nginx-geo-cs.conf``), in front of two ``geo-cs serve`` processes on one database
(issue 33, point 7).

Through the proxy: links carry the public address given with ``--base-url``, ETag and 304 come
back, byte ranges of a download are answered (206), a gzipped answer is gzipped once, and an
ingest that lands while both serve is seen by both within a second while every request made
meanwhile is answered 200.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.servers import free_port, readers_asking, start_on_a_free_port, wait_until

REPO = Path(__file__).resolve().parent.parent
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
GEO_CS = [sys.executable, "-m", "geo_cs.cli"]
PREFIX = "/geo-cs"

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(NGINX is None, reason="nginx not installed (Debian: apt-get install nginx-light)")]


def _nginx_conf(folder: Path, port: int, upstreams: list[int]) -> Path:
    """The shipped site configuration with this test's ports, in a minimal nginx.conf of its own
    (its temporary files, logs and pid in ``folder``)."""
    site = (REPO / "deploy" / "nginx-geo-cs.conf").read_text(encoding="utf-8")
    assert site.count("server 127.0.0.1:800") == 2
    site = site.replace("server 127.0.0.1:8001;", f"server 127.0.0.1:{upstreams[0]};")
    site = site.replace("server 127.0.0.1:8002;", f"server 127.0.0.1:{upstreams[1]};")
    site = site.replace("listen 80;", f"listen 127.0.0.1:{port};")
    (folder / "geo-cs.conf").write_text(site, encoding="utf-8")
    temp = "\n".join(f"    {kind}_temp_path {folder}/{kind};" for kind in
                     ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    main = folder / "nginx.conf"
    main.write_text(f"""
worker_processes 1;
daemon off;
pid {folder}/nginx.pid;
error_log {folder}/error.log warn;
events {{ worker_connections 256; }}
http {{
    log_format upstream '$request $status $upstream_addr';
    access_log {folder}/access.log upstream;
{temp}
    include {folder}/geo-cs.conf;
}}
""", encoding="utf-8")
    return main


@pytest.fixture
def proxied(demo_db: Path, tmp_path: Path) -> Iterator[dict]:
    """Two servers on a copy of the demo database behind nginx; yields the addresses."""
    db = tmp_path / "geo-cs.duckdb"
    shutil.copyfile(demo_db, db)
    proxy_port = free_port()
    base = f"http://127.0.0.1:{proxy_port}{PREFIX}"
    servers: list[subprocess.Popen] = []
    ports: list[int] = []
    try:
        for i in range(2):
            def start(port: int, i: int = i) -> subprocess.Popen:
                log = (tmp_path / f"server{i}.log").open("wb")
                return subprocess.Popen(
                    [*GEO_CS, "--db", str(db), "serve", "--port", str(port), "--workers", "1",
                     "--base-url", base], stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                    env={**_env(), "GEO_CS_WARM_MAPS": "0"})
            server, port = start_on_a_free_port(start, tmp_path / f"server{i}.log", 120, f"geo-cs serve {i}")
            servers.append(server)
            ports.append(port)
        folder = tmp_path / "nginx"
        folder.mkdir()
        conf = _nginx_conf(folder, proxy_port, ports)
        nginx = subprocess.Popen([NGINX, "-p", str(folder), "-c", str(conf)], stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, start_new_session=True)
        servers.append(nginx)

        def up() -> bool:
            try:
                return httpx.get(f"{base}/health", timeout=5).status_code == 200
            except httpx.HTTPError:
                return False
        wait_until(up, 60, lambda: f"nginx in front of the servers: {(folder / 'error.log').read_text()}")
        yield {"base": base, "db": db, "upstreams": [f"http://127.0.0.1:{p}" for p in ports],
               "access_log": folder / "access.log"}
    finally:
        for process in servers:
            try:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(30)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                os.killpg(process.pid, signal.SIGKILL)


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("GEO_CS_")}


def test_links_carry_the_public_address_given_with_base_url(proxied):
    base = proxied["base"]
    response = httpx.get(f"{base}/collections/datazone2011_employment_rate/items",
                         params={"partnership": "glasgow", "limit": 10}, timeout=60)
    assert response.status_code == 200
    links = [link["href"] for link in response.json()["links"]]
    assert links and all(href.startswith(base + "/") for href in links), links
    assert any("rel" in link and link["rel"] == "next" for link in response.json()["links"])
    # what a GIS client is sent to next goes through the proxy too
    following = next(link["href"] for link in response.json()["links"] if link["rel"] == "next")
    assert httpx.get(following, timeout=60).status_code == 200


def test_etag_and_304_pass_through_the_proxy(proxied):
    tile = f"{proxied['base']}/tiles/datazone2011/10/499/319.mvt?indicator=employment_deprived"
    first = httpx.get(tile, timeout=60)
    assert first.status_code == 200 and first.headers.get("etag")
    again = httpx.get(tile, headers={"If-None-Match": first.headers["etag"]}, timeout=60)
    assert again.status_code == 304 and again.content == b""
    assert "max-age" in first.headers.get("cache-control", "")


def test_a_download_is_answered_by_byte_ranges_through_the_proxy(proxied):
    url = f"{proxied['base']}/collections/datazone2011_employment_rate/download"
    params = {"partnership": "glasgow"}
    whole = httpx.get(url, params=params, timeout=120)
    assert whole.status_code == 200 and whole.content[:16] == b"SQLite format 3\x00"   # a GeoPackage
    part = httpx.get(url, params=params, headers={"Range": "bytes=100-1123"}, timeout=120)
    assert part.status_code == 206
    assert part.headers["content-range"] == f"bytes 100-1123/{len(whole.content)}"
    assert part.content == whole.content[100:1124]


def test_a_gzipped_answer_is_gzipped_once(proxied):
    with httpx.Client(timeout=60) as client, client.stream(
            "GET", f"{proxied['base']}/collections", headers={"Accept-Encoding": "gzip"}) as response:
        raw = b"".join(response.iter_raw())
    assert response.headers.get("content-encoding") == "gzip"
    collections = json.loads(gzip.decompress(raw))   # once: the result is the JSON itself
    assert collections["collections"]


def test_an_ingest_lands_on_both_servers_within_a_second_while_every_request_is_answered(proxied, tmp_path):
    base, upstreams = proxied["base"], proxied["upstreams"]

    def versions() -> list[int]:
        return [httpx.get(f"{u}/health", timeout=30).json()["data_version"] for u in upstreams]

    before = versions()
    assert before[0] == before[1]
    with readers_asking(f"{base}/collections/wpc2010/items", {"limit": 20, "indicator": "claimants"}) as statuses:
        source = tmp_path / "newq.csv"
        source.write_text("area_code,period,measure,value,denominator\n"
                          "E14000530,2012-05,claimants,5000,60000\nE14000531,2012-05,claimants,4000,50000\n")
        done = subprocess.run([*GEO_CS, "--db", str(proxied["db"]), "-q", "ingest", "indicator", str(source),
                               "--layout", "long", "--set", "wpc2010"], capture_output=True, text=True,
                              timeout=300, env=_env())
        landed = time.monotonic()
        assert done.returncode == 0, done.stderr
        seen = wait_until(lambda: (v := versions())[0] == v[1] == before[0] + 1 and v, 5,
                          lambda: f"both servers on version {before[0] + 1}: {versions()}", every=0.02)
        took = time.monotonic() - landed
    assert seen == [before[0] + 1] * 2
    assert took <= 1.0, f"the servers took {took:.2f} s to serve the new version"
    assert len(statuses) > 10 and set(statuses) == {200}, {s: statuses.count(s) for s in set(statuses)}
    # nginx spread the readers over both servers
    def served_by() -> list[str]:
        return re.findall(r"GET /geo-cs/collections/wpc2010/items\S* HTTP/1\.1 200 (\S+)",
                          proxied["access_log"].read_text())

    # nginx writes a request's line once its response is sent: the last one may come just after
    wait_until(lambda: len(served_by()) == len(statuses), 5,
               lambda: f"{len(statuses)} requests in nginx's log, not {len(served_by())}")
    served_by = served_by()
    assert {u.removeprefix("http://") for u in upstreams} == set(served_by)

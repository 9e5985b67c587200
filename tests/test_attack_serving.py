"""Attacks on a running server (issue 27, points 5-7), each run against a real uvicorn process
on the demo database: a server that cannot write its database's folder, clients that stop
reading, a client that reads slowly.

What they must show: an update is served by a server with read access only; a client that
stalls keeps no superseded version of the database open (at most one stays, whoever reads
what); a slow download arrives whole however long it takes; a client that stops reading is cut
off after the send timeout, and its response is visibly incomplete.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.servers import REPO, _up_until_done, free_port
from tests.test_updates_while_serving import GEO_CS, NEW_QUARTER

#: A page large enough to outlast the kernel's socket buffers (20.6 MB of GeoJSON on the demo).
BIG_PAGE = "/collections/lsoa2011/items?limit=10000"


@contextlib.contextmanager
def serving(db: Path, log: Path, env: dict[str, str] | None = None, user: str | None = None,
            python: str = sys.executable) -> Iterator[tuple[str, int]]:
    """``uvicorn geo_cs.api.app:create_app`` serving ``db`` (as ``user`` when given, with ``python``),
    its output in ``log``; yields its base URL and process id (the server itself: one process)."""
    port = free_port()
    account = pwd.getpwnam(user) if user else None
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [python, "-m", "uvicorn", "geo_cs.api.app:create_app", "--factory", "--host", "127.0.0.1",
             "--port", str(port), "--log-level", "warning"],
            env={**os.environ, "PYTHONUNBUFFERED": "1", "GEO_CS_DB": str(db), **(env or {})},
            stdout=out, stderr=subprocess.STDOUT, cwd=REPO,
            user=account.pw_uid if account else None, group=account.pw_gid if account else None,
            extra_groups=[] if account else None)
        with _up_until_done(proc, f"http://127.0.0.1:{port}", "/health", 90, log) as base:
            yield base, proc.pid


def as_user(account: pwd.struct_passwd, command: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(command, user=account.pw_uid, group=account.pw_gid, extra_groups=[],
                          env={**os.environ, **env}, cwd=REPO, capture_output=True, text=True, timeout=120)


def python_for(account: pwd.struct_passwd, env: dict[str, str]) -> str | None:
    """A Python interpreter ``account`` can run that imports the service from this checkout:
    this one, or else the system's of the same version with this one's packages on its path
    (``env``'s PYTHONPATH) — a virtual environment made from a Python under root's home cannot
    be run by anyone else. None when there is none."""
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    for python in (sys.executable, f"/usr/bin/{version}", f"/usr/local/bin/{version}"):
        with contextlib.suppress(OSError):   # not theirs to run
            if as_user(account, [python, "-c", "import geo_cs.api.app"], env).returncode == 0:
                return python
    return None


def data_version(base: str) -> int:
    return httpx.get(f"{base}/health", timeout=30).json()["data_version"]


def ingest_a_quarter(db: Path, folder: Path, n: int) -> None:
    """An update of ``db`` by the CLI, as an operator runs it (a copy renamed over the file)."""
    csv = folder / f"quarter{n}.csv"
    csv.write_text(NEW_QUARTER.replace("5000", str(5000 + n)))
    result = subprocess.run([*GEO_CS, "--db", str(db), "-q", "ingest", "indicator", str(csv), "--layout",
                             "long", "--set", "wpc2010"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr


def wait_for_version(base: str, version: int, seconds: float = 15) -> int:
    deadline = time.monotonic() + seconds
    while (seen := data_version(base)) < version and time.monotonic() < deadline:
        time.sleep(0.2)
    return seen


def superseded_versions(pid: int, db: Path) -> dict[int, int]:
    """The superseded versions of ``db`` process ``pid`` holds open, inode → bytes on disk: its
    open files in ``db``'s folder (named, or deleted since) other than the file served now and
    the update lock. Whatever the server's way of opening them, /proc shows each open file."""
    current = db.stat().st_ino
    held: dict[int, int] = {}
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):   # closed meanwhile
            target = os.readlink(fd).removesuffix(" (deleted)")
            if Path(target).parent != db.parent or target.endswith(".lock"):
                continue
            info = os.stat(fd)   # the open file itself, deleted or not
            if info.st_ino != current:
                held[info.st_ino] = info.st_blocks * 512
    return held


def request(port_base: str, path: str, rcvbuf: int = 4096) -> socket.socket:
    """A raw HTTP/1.1 GET on a socket with a small receive buffer (so that a client that does
    not read holds the server up at once), without Accept-Encoding: the bytes as sent."""
    host, port = port_base.removeprefix("http://").split(":")
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.connect((host, int(port)))
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
    return sock


def read_response(sock: socket.socket, first: bytes = b"", bytes_per_second: float | None = None,
                  timeout: float = 60) -> tuple[dict[str, str], bytes, bool]:
    """Read an HTTP/1.1 response to its end or until the server closes the connection (at
    ``bytes_per_second`` when given): its headers, its body (de-chunked) and whether it was
    complete (its Content-Length reached, or its last chunk read)."""
    sock.settimeout(timeout)
    data = bytearray(first)
    started = time.monotonic()
    while b"\r\n\r\n" not in data:
        received = sock.recv(65536)
        assert received, f"closed before the headers: {bytes(data)!r}"
        data += received
    head, _, rest = bytes(data).partition(b"\r\n\r\n")
    headers = dict(line.split(": ", 1) for line in head.decode("latin-1").split("\r\n")[1:])
    headers = {k.lower(): v for k, v in headers.items()}
    body = bytearray(rest)
    length = int(headers["content-length"]) if "content-length" in headers else None

    def done() -> bool:
        return len(body) >= length if length is not None else body.endswith(b"\r\n0\r\n\r\n")

    while not done():
        chunk = sock.recv(65536)
        if not chunk:
            break   # closed by the server
        body += chunk
        if bytes_per_second:
            ahead = len(data) + len(body) - bytes_per_second * (time.monotonic() - started)
            if ahead > 0:
                time.sleep(ahead / bytes_per_second)
    complete = done()
    if length is None:
        body = _dechunked(bytes(body))
    return headers, bytes(body), complete


def _dechunked(raw: bytes) -> bytearray:
    out, at = bytearray(), 0
    while (end := raw.find(b"\r\n", at)) != -1:
        size = int(raw[at:end].split(b";")[0], 16)
        out += raw[end + 2:end + 2 + size]
        at = end + 2 + size + 2
        if size == 0:
            break
    return out


# -- 5. a server with read access only --------------------------------------------------------

@pytest.mark.slow   # a server as another user, an ingest: ~25 s; .ci/run runs it
@pytest.mark.skipif(os.geteuid() != 0, reason="runs the server as user nobody: needs root")
def test_a_server_that_cannot_write_the_database_folder_serves_each_update(demo_db, tmp_path):
    """A server run as nobody, on a database in a folder nobody can read but not write, serves
    the update an operator (root) ingests, within seconds, with nothing in its log (it logged
    PermissionError tracebacks and served the old data for good)."""
    nobody = pwd.getpwnam("nobody")
    # folders nobody can reach (pytest's own tmp folders are root's alone)
    folder = Path(tempfile.mkdtemp(prefix="geo-cs-read-only-", dir="/tmp"))
    caches = Path(tempfile.mkdtemp(prefix="geo-cs-nobody-", dir="/tmp"))   # numba's cache, HOME
    try:
        folder.chmod(0o755)
        os.chown(caches, nobody.pw_uid, nobody.pw_gid)
        db = folder / "served.duckdb"
        shutil.copy(demo_db, db)
        db.chmod(0o644)
        site = next(p for p in sys.path if p.endswith("site-packages"))
        env = {"NUMBA_CACHE_DIR": str(caches), "HOME": str(caches), "PYTHONPATH": f"{site}:{REPO}"}
        python = python_for(nobody, env)
        if python is None:
            pytest.skip("no Python interpreter that user nobody can run imports the service")
        cannot = as_user(nobody, [python, "-c", f"open({str(folder / 'x')!r}, 'w')"], env)
        assert "PermissionError" in cannot.stderr, "the attack needs a folder the server cannot write"
        log = tmp_path / "server.log"
        with serving(db, log, env, user="nobody", python=python) as (base, _):
            before = data_version(base)
            ingest_a_quarter(db, tmp_path, 0)     # as root, as an operator's cron would
            assert wait_for_version(base, before + 1, 10) == before + 1, log.read_text()
            item = httpx.get(f"{base}/collections/wpc2010/items/E14000530",
                             params={"indicator": "quarter0.claimants", "period": "2012-05"}, timeout=30)
            assert item.status_code == 200, item.text
            assert item.json()["properties"]["value"] == pytest.approx(5000 / 60000 * 100, abs=1e-3)
        text = log.read_text()
        assert "Traceback" not in text and "PermissionError" not in text and "cannot open" not in text, text
        # the server wrote nothing there (no link, no file of its own)
        assert not [p.name for p in folder.iterdir()
                    if "served-" in p.name or p.stat().st_uid == nobody.pw_uid]
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        shutil.rmtree(caches, ignore_errors=True)


# -- 6. clients that stop reading -------------------------------------------------------------

@pytest.mark.slow   # four ingests of the demo under a live server: ~40 s; .ci/run runs it
def test_clients_that_stall_keep_no_superseded_version_open(demo_db, tmp_path):
    """Four clients each read 1 KB of a 10,000-item page and stall, an update after each: the
    server keeps at most one superseded version open throughout (it was four: 968 MB for a
    194 MB database), while the stalled clients are still connected."""
    (tmp_path / "data").mkdir()
    db = tmp_path / "data" / "served.duckdb"   # alone in its folder: what the server opens there is a version
    shutil.copy(demo_db, db)
    stalled: list[socket.socket] = []
    held_at_most = 0
    # a send timeout longer than the test: what releases the versions is not the cut-off
    with serving(db, tmp_path / "server.log", {"GEO_CS_SEND_TIMEOUT_S": "600"}) as (base, pid):
        try:
            version = data_version(base)
            for n in range(4):
                sock = request(base, BIG_PAGE)
                sock.settimeout(60)
                assert sock.recv(1024).startswith(b"HTTP/1.1 200")
                stalled.append(sock)
                ingest_a_quarter(db, tmp_path, n)
                version += 1
                assert wait_for_version(base, version) == version
                data_version(base)   # a request after the swap, which closes what is no longer needed
                held = superseded_versions(pid, db)
                held_at_most = max(held_at_most, len(held))
                assert len(held) <= 1, (n, held)
        finally:   # before the server stops: it waits for its connections
            for sock in stalled:
                sock.close()
    assert held_at_most == 1   # the one superseded version kept a minute for requests just before


# -- 7. a slow reader; a reader that stops ----------------------------------------------------

@pytest.mark.slow   # a 20 MB page read at 2 MB/s: ~12 s; .ci/run runs it
def test_a_slow_download_arrives_whole_past_the_query_limit(demo_db, tmp_path):
    """The query limit bounds a request's work, not its client's download: a page read for
    longer than GEO_CS_QUERY_TIMEOUT_S arrives whole, valid JSON (it was cut mid-way, invalid)."""
    timeout = 4.0
    with serving(demo_db, tmp_path / "server.log", {"GEO_CS_QUERY_TIMEOUT_S": str(timeout)}) as (base, _):
        httpx.get(f"{base}{BIG_PAGE}", timeout=60)   # a first, cold page: the caches are warm after it
        started = time.monotonic()
        sock = request(base, BIG_PAGE, rcvbuf=65536)
        try:
            headers, body, complete = read_response(sock, bytes_per_second=2_000_000)
        finally:
            sock.close()
        took = time.monotonic() - started
    assert complete, f"cut after {len(body):,} bytes, {took:.1f} s in ({headers})"
    assert took > 2 * timeout, f"the download took {took:.1f} s: not slow enough to show anything"
    page = json.loads(body)
    assert page["numberReturned"] == len(page["features"]) == 9941


@pytest.mark.slow   # a client stalled past a 2 s send timeout: ~10 s; .ci/run runs it
def test_a_client_that_stops_reading_is_cut_off_and_can_tell(demo_db, tmp_path):
    """A client that takes nothing for GEO_CS_SEND_TIMEOUT_S is cut off: the connection is
    closed, and what it got is visibly incomplete (fewer bytes than the Content-Length), never a
    body that looks whole. The server says so in one line, with no traceback."""
    log = tmp_path / "server.log"
    with serving(demo_db, log, {"GEO_CS_SEND_TIMEOUT_S": "2"}) as (base, _):
        sock = request(base, BIG_PAGE)
        try:
            sock.settimeout(60)
            first = sock.recv(1024)
            time.sleep(6)          # stalled: three times the send timeout
            headers, body, complete = read_response(sock, first, timeout=30)
        finally:
            sock.close()
        assert httpx.get(f"{base}/health", timeout=30).status_code == 200   # serving on
    assert not complete
    assert 0 < len(body) < int(headers["content-length"])
    text = log.read_text()
    assert re.search(r"took nothing for 2 s \(GEO_CS_SEND_TIMEOUT_S\); its response is cut", text), text
    assert "Traceback" not in text, text

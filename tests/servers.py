"""Starting the real servers the client tests talk to: the service as users start it (uvicorn
on a real port) and a plain static host for exported sites. One place for the start-and-poll
loop, so every client test waits and fails the same way."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_until_up(proc: subprocess.Popen, url: str, seconds: float, log: Path | None) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"server did not start:\n{log.read_text() if log else ''}")
        time.sleep(0.2)


@contextlib.contextmanager
def running_service(env: dict[str, str], log: Path, access_log: bool = False) -> Iterator[str]:
    """``uvicorn api.app:create_app --factory`` with ``env`` added to the environment, its
    output in ``log``; yields the base URL and stops it after."""
    port = free_port()
    level = ["--log-level", "info", "--access-log"] if access_log else ["--log-level", "warning"]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "api.app:create_app", "--factory", "--host", "127.0.0.1",
             "--port", str(port), *level],
            env={**os.environ, "PYTHONUNBUFFERED": "1", **env}, stdout=out, stderr=subprocess.STDOUT, cwd=REPO)
        with _up_until_done(proc, f"http://127.0.0.1:{port}", "/health", 60, log) as base:
            yield base


@contextlib.contextmanager
def static_host(folder: Path) -> Iterator[str]:
    """A plain static file server over ``folder`` (byte ranges, nothing else): where an
    exported site is meant to run with no geo-cs behind it. Yields its base URL."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-c", "import sys, uvicorn; from starlette.applications import Starlette; "
         "from starlette.staticfiles import StaticFiles; app = Starlette(); "
         "app.mount('/', StaticFiles(directory=sys.argv[1], html=True)); "
         "uvicorn.run(app, host='127.0.0.1', port=int(sys.argv[2]), log_level='warning')",
         str(folder), str(port)])
    with _up_until_done(proc, f"http://127.0.0.1:{port}", "/", 30, None) as base:
        yield base


@contextlib.contextmanager
def _up_until_done(proc: subprocess.Popen, base: str, probe: str, timeout: float,
                   log: Path | None) -> Iterator[str]:
    """Wait until ``proc`` answers ``base + probe``, yield ``base``, and stop ``proc`` after."""
    try:
        _wait_until_up(proc, f"{base}{probe}", timeout, log)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=10)

"""Starting the real servers the client tests talk to: the service as users start it (uvicorn
on a real port) and a plain static host for exported sites. One place for the start-and-poll
loop, so every client test waits and fails the same way, and for :func:`wait_until`, the one
way a test waits for something to happen (never a fixed sleep before asserting).

Ports: under pytest-xdist several workers start servers at once, and a port chosen free and
bound later can be taken meanwhile (by another worker's server, or as the local port of any
outgoing connection); the server then fails to start, or worse, the test talks to another
test's server. Where the server is uvicorn, the test binds the socket itself and hands it over
(``uvicorn --fd``): no window at all. ``geo-cs serve`` and ``geo-cs demo`` bind their own
port: :func:`free_port` keeps the port from other processes meanwhile, :func:`listens_on`
checks that the process that answers is the one started, and :func:`start_on_a_free_port`
starts it again on another port should the port have been taken all the same."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import httpx
import pytest

REPO = Path(__file__).resolve().parent.parent

T = TypeVar("T")


def wait_until(condition: Callable[[], T], timeout: float, what: str | Callable[[], str], *,
               every: float = 0.1, pause: Callable[[float], object] = time.sleep) -> T:
    """Call ``condition`` until it returns something true, and return that; fail the test when
    it has not within ``timeout`` seconds, saying what was awaited (``what``; a callable is
    called then, to show e.g. a server's log as it is at the failure). ``pause(seconds)`` waits
    between calls: a Playwright page's ``wait_for_timeout`` where the browser's events must be
    dispatched meanwhile."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"waited {timeout:g} s for {what() if callable(what) else what}")
        pause(every)


def listening_socket() -> socket.socket:
    """A socket listening on a port of 127.0.0.1 the kernel chose: for a server that takes it
    (``uvicorn --fd N`` with ``pass_fds``), so that no other process can take the port first."""
    sock = socket.socket()
    try:
        sock.bind(("127.0.0.1", 0))
        sock.listen(128)   # connections made before the server accepts wait here
    except OSError:
        sock.close()
        raise
    return sock


def free_port() -> int:
    """A free port of 127.0.0.1 for a server that binds it itself, kept from other processes
    meanwhile: a connection to it is made and closed by the listening side first, which leaves
    the port in TIME_WAIT for a minute. Until then the kernel gives it to no bind to port 0 and
    to no outgoing connection, yet a server that binds it with SO_REUSEADDR (as uvicorn does)
    gets it. A server slower to bind than that, or one that does not set SO_REUSEADDR, may
    still lose it: :func:`start_on_a_free_port` tries again then."""
    with socket.socket() as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            accepted, _ = listener.accept()
            accepted.close()
    return port


def listens_on(pid: int, port: int) -> bool:
    """Whether process ``pid`` holds the socket listening on 127.0.0.1:``port`` (Linux: the
    listening socket's inode in ``/proc/net/tcp``, among the process's open files): the server
    answering there is that process, not another test's that took the port first."""
    local = f"0100007F:{port:04X}"
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1] == local and fields[3] == "0A":   # 0A: LISTEN
            inodes.add(f"socket:[{fields[9]}]")
    if not inodes:
        return False
    with contextlib.suppress(OSError):   # the process has ended
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            with contextlib.suppress(OSError):   # closed meanwhile
                if os.readlink(fd) in inodes:
                    return True
    return False


def _stop(proc: subprocess.Popen) -> None:
    """Kill ``proc``, and its whole process group when it leads one (uvicorn's workers)."""
    with contextlib.suppress(ProcessLookupError):
        if os.getpgid(proc.pid) == proc.pid:
            os.killpg(proc.pid, signal.SIGKILL)
        else:
            proc.kill()
    proc.wait()


def start_on_a_free_port(start: Callable[[int], subprocess.Popen], log: Path, timeout: float,
                         what: str, tries: int = 3) -> tuple[subprocess.Popen, int]:
    """``start(port)`` starts a server that binds its own port (``geo-cs serve``, ``geo-cs
    demo``: no socket can be handed to them), its output in ``log``; wait until that process
    listens on the port (:func:`listens_on`), and return it and the port. A server that exits
    or is not listening within ``timeout`` seconds fails the test with its log, unless the port
    was taken meanwhile: then it is started again on another port, ``tries`` times in all."""
    for attempt in range(1, tries + 1):
        port = free_port()
        proc = start(port)
        _listening_or_ended(proc, port, timeout, what, log)
        if proc.poll() is None:
            return proc, port
        if "address already in use" not in _text(log).lower() or attempt == tries:
            pytest.fail(f"{what} did not start (exit {proc.returncode}, port {port}, try {attempt}):\n"
                        f"{_text(log)}")
    raise AssertionError("unreachable")


def _listening_or_ended(proc: subprocess.Popen, port: int, timeout: float, what: str, log: Path) -> None:
    """Wait until ``proc`` listens on ``port`` or has ended; kill it and fail after ``timeout``."""
    try:
        wait_until(lambda: proc.poll() is not None or listens_on(proc.pid, port), timeout,
                   lambda: f"{what} to listen on port {port}; its output:\n{_text(log)}")
    except BaseException:
        _stop(proc)
        raise


def _text(log: Path | None) -> str:
    return log.read_text(errors="replace") if log is not None and log.exists() else ""


def _wait_until_up(proc: subprocess.Popen, url: str, seconds: float, log: Path | None) -> None:
    """Wait until ``proc`` itself answers ``url`` (another test's server on the port does not
    count); fail with ``log`` when it exits first or takes over ``seconds``."""
    port = httpx.URL(url).port
    assert port is not None, url

    def up() -> bool:
        if proc.poll() is not None:
            pytest.fail(f"server exited ({proc.returncode}) before it answered {url}:\n{_text(log)}")
        try:
            return httpx.get(url, timeout=2).status_code < 500 and listens_on(proc.pid, port)
        except httpx.HTTPError:
            return False

    try:
        wait_until(up, seconds, lambda: f"the server to answer {url}; its output:\n{_text(log)}", every=0.2)
    except BaseException:
        _stop(proc)
        raise


@contextlib.contextmanager
def running_service(env: dict[str, str], log: Path, access_log: bool = False) -> Iterator[str]:
    """``uvicorn geo_cs.api.app:create_app --factory`` with ``env`` added to the environment, its
    output in ``log``, on a socket this process bound (:func:`listening_socket`); yields the
    base URL and stops it after."""
    level = ["--log-level", "info", "--access-log"] if access_log else ["--log-level", "warning"]
    with listening_socket() as sock, log.open("wb") as out:
        port = sock.getsockname()[1]
        proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "geo_cs.api.app:create_app", "--factory",
             "--fd", str(sock.fileno()), *level],
            env={**os.environ, "PYTHONUNBUFFERED": "1", **env}, stdout=out, stderr=subprocess.STDOUT,
            cwd=REPO, pass_fds=[sock.fileno()])
    # the socket is the server's alone now: should it exit, a client is refused, not left waiting
    with _up_until_done(proc, f"http://127.0.0.1:{port}", "/health", 60, log) as base:
        yield base


#: A plain static file server: ``python -c STATIC_HOST FOLDER FD``.
STATIC_HOST = ("import sys, uvicorn; from starlette.applications import Starlette; "
               "from starlette.staticfiles import StaticFiles; app = Starlette(); "
               "app.mount('/', StaticFiles(directory=sys.argv[1], html=True)); "
               "uvicorn.run(app, fd=int(sys.argv[2]), log_level='warning')")


@contextlib.contextmanager
def static_host(folder: Path) -> Iterator[str]:
    """A plain static file server over ``folder`` (byte ranges, nothing else): where an
    exported site is meant to run with no geo-cs behind it. Yields its base URL."""
    with tempfile.TemporaryDirectory(prefix="static-host-") as logs:
        log = Path(logs) / "server.log"
        with listening_socket() as sock, log.open("wb") as out:
            port = sock.getsockname()[1]
            proc = subprocess.Popen([sys.executable, "-c", STATIC_HOST, str(folder), str(sock.fileno())],
                                    stdout=out, stderr=subprocess.STDOUT, pass_fds=[sock.fileno()])
        with _up_until_done(proc, f"http://127.0.0.1:{port}", "/", 30, log) as base:
            yield base


@contextlib.contextmanager
def _up_until_done(proc: subprocess.Popen, base: str, probe: str, timeout: float,
                   log: Path | None) -> Iterator[str]:
    """Wait until ``proc`` answers ``base + probe``, yield ``base``, and stop ``proc`` after."""
    _wait_until_up(proc, f"{base}{probe}", timeout, log)
    try:
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            _stop(proc)


@contextlib.contextmanager
def readers_asking(url: str, params: dict[str, object], count: int = 3) -> Iterator[list[int]]:
    """``count`` threads asking ``url`` (with ``params``) back to back while the block runs, as
    readers do through an update; yields the list their answers' status codes are added to
    (complete once the block has ended)."""
    import threading

    statuses: list[int] = []
    stop = threading.Event()

    def ask() -> None:
        with httpx.Client(timeout=60) as client:
            while not stop.is_set():
                statuses.append(client.get(url, params=params).status_code)

    threads = [threading.Thread(target=ask) for _ in range(count)]
    for thread in threads:
        thread.start()
    try:
        yield statuses
    finally:
        stop.set()
        for thread in threads:
            thread.join(60)

"""What the benchmarks share: one process per side driven over pipes, geo-cs served by uvicorn
on loopback, memory readings, machine facts, the commit being measured and the results file.
Scripts in bench/ import it as a sibling module."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
#: where each benchmark writes its JSON (read back by ``python -m bench --table``)
RESULTS = REPO / "bench" / "results"


def proc_status_mb(field: str, pid: int | str = "self") -> float:
    """A memory field of /proc/<pid>/status (VmRSS: now, VmHWM: peak since exec), in MB.

    Not ru_maxrss: Linux carries a parent's peak into a child across fork and exec.
    """
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return float("nan")
    for line in text.splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def git_commit() -> str:
    """The commit under measurement (``-dirty`` when the tree has changes)."""
    try:
        return subprocess.run(["git", "-C", str(REPO), "describe", "--always", "--dirty"],
                              capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


# -- clean trees only ------------------------------------------------------------------------------

#: set (to 1) by ``--allow-dirty`` here or by ``python -m bench --allow-dirty`` for its children
ALLOW_DIRTY_ENV = "GEO_CS_BENCH_ALLOW_DIRTY"
#: exit status of a benchmark that refuses to write its result (a dirty tree, or HEAD moved)
EXIT_DIRTY = 3
#: untracked folders that are caches, not code (a result from a tree with only these is clean)
CACHE_DIRS = frozenset({"__pycache__", ".pytest_cache", ".ruff_cache", ".mypy_cache", ".hypothesis",
                        ".cache", ".benchmarks", "htmlcov", ".tox", ".nox", ".ipynb_checkpoints"})


def _git(*args: str) -> str | None:
    try:
        done = subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True)
    except OSError:
        return None
    return done.stdout if done.returncode == 0 else None


def _ignored_change(status: str, path: str) -> bool:
    """A ``git status`` entry that does not make a result dirty: anything under bench/results/
    (the results themselves) and untracked cache folders or files."""
    if path.startswith("bench/results/"):
        return True
    if status != "??":
        return False
    parts = [p for p in path.split("/") if p]
    return (any(p in CACHE_DIRS or p.endswith(".egg-info") for p in parts)
            or parts[-1].endswith((".pyc", ".pyo")) or parts[-1].startswith(".coverage"))


def tree_changes() -> list[str] | None:
    """``git status --porcelain`` of the checkout, less what :func:`_ignored_change` ignores
    (``XY path`` lines); None when git cannot say (not a checkout, git missing)."""
    out = _git("status", "--porcelain=v1", "-z", "--untracked-files=normal")
    if out is None:
        return None
    entries = out.split("\0")
    changes, i = [], 0
    while i < len(entries):
        entry = entries[i]
        i += 1
        if len(entry) < 4:
            continue
        status, path = entry[:2], entry[3:]
        if status[0] in "RC":  # a rename or copy: the next entry is where it came from
            i += 1
        if not _ignored_change(status, path):
            changes.append(f"{status} {path}")
    return changes


def tree_state() -> dict[str, Any]:
    """The checkout now: ``commit`` (full hash of HEAD, None outside a checkout), ``describe``,
    ``dirty`` (True, False, or None when unknown) and ``changes`` (:func:`tree_changes`)."""
    head = _git("rev-parse", "HEAD")
    changes = tree_changes()
    return {"commit": head.strip() if head else None,
            "describe": (_git("describe", "--always", "--abbrev=12") or "unknown").strip(),
            "dirty": None if changes is None or head is None else bool(changes),
            "changes": changes or []}


_STARTED: dict[str, Any] | None = None


def started_state() -> dict[str, Any]:
    """The tree as it was when this benchmark started (first call; :func:`add_out` makes it):
    the commit a result describes is the one its run started on."""
    global _STARTED
    if _STARTED is None:
        _STARTED = tree_state()
    return _STARTED


def allow_dirty_requested() -> bool:
    """Whether ``--allow-dirty`` was given (here or to ``python -m bench``)."""
    return os.environ.get(ALLOW_DIRTY_ENV, "") not in ("", "0")


class _AllowDirty(argparse.Action):
    def __call__(self, parser, namespace, values, option_string=None) -> None:
        setattr(namespace, self.dest, True)
        os.environ[ALLOW_DIRTY_ENV] = "1"  # seen by write_results and by the benchmark's children


def dirty_refusal(state: Mapping[str, Any], started: Mapping[str, Any] | None = None) -> str | None:
    """Why a result of a run that started on ``started`` and ends on ``state`` may not be written
    (None when it may): uncommitted changes, HEAD moved during the run, or no checkout."""
    started = started or state
    if state["commit"] is None:
        return "not a git checkout (or git missing): the commit measured is unknown"
    if started["commit"] != state["commit"]:
        return f"HEAD moved during the run ({started['describe']} -> {state['describe']})"
    changes = list(dict.fromkeys([*started["changes"], *state["changes"]]))
    if changes:
        shown = ", ".join(changes[:8]) + (f" and {len(changes) - 8} more" if len(changes) > 8 else "")
        return f"the working tree has uncommitted changes ({shown})"
    return None


def require_clean(console: Any = None, allow_dirty: bool | None = None) -> None:
    """Refuse to start (``SystemExit(EXIT_DIRTY)``) on a dirty tree unless dirty results are
    allowed: call it before a long run, so it is not thrown away at the end."""
    allowed = allow_dirty_requested() if allow_dirty is None else allow_dirty
    reason = dirty_refusal(started_state())
    if reason and not allowed:
        message = (f"refusing to benchmark: {reason}. Commit first (results come from clean trees "
                   "only), or pass --allow-dirty for a result marked dirty, not to be committed.")
        (console.print if console is not None else print)(message)
        raise SystemExit(EXIT_DIRTY)


def package_versions(*dists: str) -> dict[str, str]:
    """Installed versions of ``dists`` ("not installed" for those missing), for results JSON."""
    import importlib.metadata

    out = {}
    for dist in dists:
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[dist] = "not installed"
    return out


def timestamp() -> str:
    """Now, in UTC, to the second (ISO 8601), for a results file's ``timestamp``."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def memory_gb() -> float:
    """The machine's physical memory in GB (one decimal)."""
    return round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)


def machine(**facts: Any) -> dict[str, Any]:
    """A results file's ``machine``: CPU count and platform, then ``facts`` (versions …) in order."""
    return {"nproc": os.cpu_count(), "platform": platform.platform(), **facts}


def warn_if_busy(console: Any, noisy: str = "timings", threshold: float = 0.5) -> tuple[float, float, float]:
    """The load average now; says so when the 1-minute figure is above ``threshold``."""
    load = os.getloadavg()
    if load[0] > threshold:
        console.print(f"[yellow]the machine is busy (1-min load average {load[0]:.1f} on "
                      f"{os.cpu_count()} CPUs): {noisy} will be noisy[/]")
    return load


def stop_on_sigterm() -> None:
    """Turn SIGTERM into ``SystemExit(1)``, so the ``finally`` clauses stop what was started here."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))


def add_out(parser: argparse.ArgumentParser, default: Path) -> None:
    """The options every benchmark has: ``--out`` (where its JSON results go) and
    ``--allow-dirty`` (write a result from a tree with uncommitted changes, marked dirty).
    Also notes the tree as the benchmark starts (:func:`started_state`)."""
    parser.add_argument("--out", type=Path, default=default, help=f"JSON results (default {default})")
    parser.add_argument("--allow-dirty", action=_AllowDirty, nargs=0, default=False,
                        help="for development: write the result even though the working tree has "
                             "uncommitted changes; it is marked dirty and is not to be committed")
    started_state()


def parse_with_repeat(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """``parser.parse_args(argv)``, refusing ``--repeat`` below 1."""
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    return args


def workdir_or_temp(workdir: Path | None, prefix: str) -> tuple[tempfile.TemporaryDirectory | None, Path]:
    """``workdir`` (created when missing), or a new temporary folder named ``prefix…`` and its
    handle (the caller cleans it up; ``None`` for a given folder)."""
    if workdir is None:
        tmp = tempfile.TemporaryDirectory(prefix=prefix)
        return tmp, Path(tmp.name)
    workdir = workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    return None, workdir


def installed_packages() -> dict[str, str]:
    """Every distribution installed in this interpreter's environment, name -> version."""
    import importlib.metadata

    found: dict[str, str] = {}
    for dist in importlib.metadata.distributions():
        name = dist.metadata["Name"]
        if name:
            found.setdefault(name.lower(), dist.version)
    return dict(sorted(found.items()))


def other_python_packages(python: str | Path, *dists: str) -> dict[str, str]:
    """Python version and the versions of ``dists`` in another interpreter (a peer's venv, e.g.
    pygeoapi's), for :func:`peer` ``setup``; ``{"error": ...}`` when it cannot be asked."""
    probe = ("import importlib.metadata as m, json, platform, sys\n"
             "out = {'python': platform.python_version()}\n"
             "for d in sys.argv[1:]:\n"
             "    try: out[d] = m.version(d)\n"
             "    except m.PackageNotFoundError: out[d] = 'not installed'\n"
             "print(json.dumps(out))")
    try:
        done = subprocess.run([str(python), "-c", probe, *dists], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return {"error": str(exc)}
    if done.returncode != 0:
        return {"error": done.stderr.strip()[-500:]}
    return json.loads(done.stdout)


def peer(name: str, version: str | None, given: str, **setup: Any) -> dict[str, Any]:
    """A result's ``peer``: what geo-cs is compared with (``name``, its ``version``), what each
    side was ``given`` (in words), and its exact ``setup`` (package versions, server versions
    such as PostgreSQL's and PostGIS's, configuration, its command line …). Pass it to
    :func:`write_results`."""
    return {"name": name, "version": version, "given": given, "setup": setup}


def write_results(path: Path, results: dict[str, Any], console: Any, suffix: str = "", *,
                  peer: Mapping[str, Any] | None = None, allow_dirty: bool | None = None) -> None:
    """Write a benchmark's results as ``path`` (JSON) and say where.

    Results come from clean trees only: when the working tree has uncommitted changes (other
    than bench/results/ and untracked caches), when HEAD moved since the benchmark started, or
    outside a checkout, nothing is written to ``path`` and the benchmark exits with
    :data:`EXIT_DIRTY` (the figures go to a file in the temporary folder, named on the console)
    — unless ``allow_dirty`` (default: ``--allow-dirty`` was given), and then the result is
    marked ``"dirty": true`` and not committable.

    Every result gets ``provenance``: the commit measured, the tree's state, the command line,
    the interpreter, every installed package's version, and the ``peer`` (:func:`peer`, or
    ``results["peer"]`` when the benchmark put it there; a benchmark with a peer must give it:
    ``python -m bench --table`` says "not recorded" otherwise).
    """
    started = started_state()
    state = tree_state()
    reason = dirty_refusal(state, started)
    allowed = allow_dirty_requested() if allow_dirty is None else allow_dirty
    peer_info = dict(peer) if peer is not None else results.get("peer")
    provenance = {
        "commit": started["commit"],
        "describe": started["describe"],
        "clean": reason is None,
        "committable": reason is None,
        **({"dirty_because": reason,
            "changes": list(dict.fromkeys([*started["changes"], *state["changes"]]))} if reason else {}),
        "command": shlex.join([Path(sys.executable).name, *sys.argv]),
        "cwd": os.getcwd(),
        "python": platform.python_version(),
        "executable": sys.executable,
        "machine": {"nproc": os.cpu_count(), "platform": platform.platform(), "memory_gb": memory_gb()},
        "packages": installed_packages(),
        "peer": peer_info,
    }
    results = {**results, **({"peer": peer_info} if peer_info is not None else {}), "provenance": provenance}
    results.setdefault("commit", started["describe"] + ("-dirty" if reason else ""))
    if reason:
        results["dirty"] = True
    text = json.dumps(results, indent=2, default=str) + "\n"
    if reason and not allowed:
        kept = Path(tempfile.gettempdir()) / f"geo-cs-bench-{path.stem}-dirty-{os.getpid()}.json"
        kept.write_text(text)
        console.print(f"[red]not written to {path}[/]: {reason}. Results come from clean trees only: "
                      f"commit and run again (or pass --allow-dirty for a result marked dirty). "
                      f"The figures are in {kept}.")
        raise SystemExit(EXIT_DIRTY)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    mark = " [yellow](dirty tree: marked dirty, not to be committed)[/]" if reason else ""
    console.print(f"results written to {path}{suffix}{mark}")


class ChildFailed(RuntimeError):
    pass


class Child:
    """One side of a benchmark in its own process (``script --child SIDE …``), driven over
    pipes: each request is a line, each answer a JSON line; a JSON ``error`` or a closed pipe
    raises :class:`ChildFailed` with the end of the child's stderr."""

    def __init__(self, script: str, side: str, workdir: Path, extra: list[str] | None = None) -> None:
        self.side = side
        cmd = [sys.executable, str(Path(script).resolve()), "--child", side, "--workdir", str(workdir),
               *(extra or [])]
        self.err_path = workdir / f"child_{side}.err"
        self._err = self.err_path.open("wb")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self._err, text=True)
        self.ready = self.receive()

    def receive(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        message = json.loads(line) if line else None
        if message is None or "error" in message:
            self.proc.wait()
            self._err.close()
            raise ChildFailed(f"{self.side} failed (exit {self.proc.returncode}):\n"
                              f"{self.err_path.read_text(errors='replace')[-4000:]}")
        return message

    def request(self, command: str) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return self.receive()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()  # only reached on failure; this process was started here
        self.proc.wait()
        if not self._err.closed:
            self._err.close()


def alternate_runs(children: Mapping[str, Child], repeat: int, console: Any,
                   measure: Callable[[dict[str, Any]], Any] | None = None,
                   report: Callable[[dict[str, list[Any]]], str] | None = None,
                   ) -> tuple[dict[str, list[Any]], list[float]]:
    """``repeat`` rounds of one ``run`` request per child, the order of the sides rotated each
    round (so all meet the same machine conditions as far as possible; the idle ones wait on their
    pipes and use no CPU). Each answer goes through ``measure`` (default: kept as it is); after a
    round ``report(runs)`` is logged with the load average. Returns the runs per side and the
    1-minute load average before each run."""
    sides = list(children)
    runs: dict[str, list[Any]] = {side: [] for side in sides}
    loads: list[float] = []
    for i in range(repeat):
        k = i % len(sides)
        for side in sides[k:] + sides[:k]:
            loads.append(os.getloadavg()[0])
            with console.status(f"round {i + 1}/{repeat}: {side}"):
                answer = children[side].request("run")
            runs[side].append(measure(answer) if measure else answer)
        if report is not None:
            console.log(f"round {i + 1}: {report(runs)} (1-min load average {loads[-1]:.1f})")
    return runs, loads


def finish_children(children: Mapping[str, Child], runs: Mapping[str, list[Any]], loads: list[float],
                    console: Any, commands: Mapping[str, tuple[str, str]] | None = None) -> dict[str, Any]:
    """Ask each child for its final figures (``finish``, or ``commands[side]`` = (request, what
    the status line adds)), wait for it to exit, and merge its ready message, final figures,
    timed ``runs`` and the ``loads`` seen between rounds into one result per side."""
    results = {}
    for side, child in children.items():
        command, doing = (commands or {}).get(side, ("finish", ""))
        with console.status(f"{side}: writing results{doing}"):
            final = child.request(command)
        child.proc.wait()
        results[side] = {**child.ready, **final, "runs": runs[side], "loadavg_1min": loads}
    return results


def free_port() -> int:
    """A free TCP port on loopback."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def descendants(pid: int | str = "self") -> list[int]:
    """Every live process below ``pid`` (uvicorn's workers, tobler's pool), from /proc."""
    found: list[int] = []
    base = Path(f"/proc/{pid}/task")
    for task in base.iterdir() if base.exists() else []:
        try:
            children = [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
        for child in children:
            found.append(child)
            found.extend(descendants(child))
    return found


def geo_cs_server_command(port: int, workers: int = 1) -> list[str]:
    """``uvicorn geo_cs.api.app:create_app`` as deployed: loopback, no access log."""
    return [sys.executable, "-m", "uvicorn", "geo_cs.api.app:create_app", "--factory", "--host", "127.0.0.1",
            "--port", str(port), "--workers", str(workers), "--no-access-log", "--log-level", "warning"]


class Server:
    """One server process on loopback, started and stopped here; its output in ``workdir``."""

    def __init__(self, name: str, cmd: list[str], env: dict[str, str], port: int, cwd: Path,
                 workdir: Path) -> None:
        self.name, self.port, self.cmd = name, port, cmd
        self.base = f"http://127.0.0.1:{port}"
        workdir.mkdir(parents=True, exist_ok=True)
        self.err_path = workdir / f"server_{name}.err"
        self._err = self.err_path.open("wb")
        self.proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=self._err, stderr=subprocess.STDOUT)

    def pids(self) -> list[int]:
        return [self.proc.pid, *descendants(self.proc.pid)]

    def rss_mb(self, field: str = "VmRSS") -> float:
        values = [proc_status_mb(field, pid) for pid in self.pids()]
        return round(sum(v for v in values if v == v), 1)

    def wait_ready(self, path: str = "/health", timeout: float = 90.0, processes: int = 1) -> float:
        """Until ``path`` answers 200 (and, with several workers, all ``processes`` are up); the
        seconds that took."""
        import httpx

        started = time.monotonic()
        deadline = started + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ChildFailed(f"{self.name} exited ({self.proc.returncode}) at start:\n{self.log_tail()}")
            try:
                ready = httpx.get(self.base + path, timeout=5).status_code == 200
            except httpx.HTTPError:
                ready = False
            if ready and (processes == 1 or len(self.pids()) > processes):
                return time.monotonic() - started
            time.sleep(0.2)
        raise ChildFailed(f"{self.name} not ready after {timeout:.0f} s:\n{self.log_tail()}")

    def log_tail(self) -> str:
        self._err.flush()
        return self.err_path.read_text(errors="replace")[-3000:]

    def stop(self) -> None:
        stop_process(self.proc)
        self._err.close()


def start_geo_cs(db: Path, workdir: Path, workers: int = 1, access_log: bool = False) -> Server:
    """geo-cs (:func:`geo_cs_server_command`) serving ``db`` from this checkout, started (not yet
    ready: call :meth:`Server.wait_ready`); its output in ``workdir/server_geo-cs.err``."""
    port = free_port()
    env = {**os.environ, "GEO_CS_DB": str(db),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    cmd = geo_cs_server_command(port, workers)
    if access_log:
        cmd.remove("--no-access-log")
    return Server("geo-cs", cmd, env, port, REPO, workdir)


def stop_process(proc: subprocess.Popen) -> None:
    """Terminate a process started here (by its Popen handle), killing it after 15 s."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

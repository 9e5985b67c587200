"""Install geo-cs as a package index or pipx would, and run the demo from it (issue 33).

Builds the wheel from this checkout, installs it into a fresh virtual environment (its
dependencies from requirements.lock, pinned and hashed, as CI installs them), and then, in an
empty folder far from the checkout:

* ``geo-cs --version`` answers with the package's version;
* ``import api`` and ``import maps`` fail (the wheel installs them as ``geo_cs.api`` and
  ``geo_cs.maps``, no top-level names another distribution may own) and every packaged file the
  program reads is inside the installed package, not the checkout;
* ``geo-cs demo --port P`` builds the demo database from the data the wheel carries and serves
  it: ``/health``, the list of maps and Glasgow's map page answer 200, the page's own script and
  a vector tile too, and the folder then holds only the database (and its lock).

    python scripts/check_wheel.py             # exit 0 when all of that holds
    python scripts/check_wheel.py --keep      # leave the venv and the folder (printed) to look at

Run by ``.ci/run``; needs the package index (or pip's cache) for the dependencies.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
#: the map page the check opens (a partnership of the demo bundle)
PARTNERSHIP = "glasgow"


def run(*args: str | Path, cwd: Path | None = None, env: dict | None = None) -> str:
    done = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"failed (exit {done.returncode}): {' '.join(map(str, args))}\n"
                         f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return done.stdout


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get(url: str, timeout: float = 30) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def check(condition: bool, what: str) -> None:
    if not condition:
        raise SystemExit(f"FAILED: {what}")
    print(f"ok: {what}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keep", action="store_true", help="keep the venv and the demo folder")
    args = parser.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="geo-cs-wheel-"))
    venv, folder, dist = work / "venv", work / "empty", work / "dist"
    folder.mkdir()
    try:
        print(f"building the wheel from {REPO}")
        run(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", dist, REPO)
        wheel = next(dist.glob("geo_cs-*.whl"))
        print(f"installing {wheel.name} ({wheel.stat().st_size / 1e6:.1f} MB) into a fresh venv")
        run(sys.executable, "-m", "venv", venv)
        python, geo_cs = venv / "bin" / "python", venv / "bin" / "geo-cs"
        run(python, "-m", "pip", "install", "--quiet", "--require-hashes", "-r", REPO / "requirements.lock")
        run(python, "-m", "pip", "install", "--quiet", "--no-deps", wheel)

        # nothing of the checkout on the path: the folder is empty, the environment clean
        env = {k: v for k, v in os.environ.items() if not k.startswith(("GEO_CS_", "PYTHON"))}
        version = run(geo_cs, "--version", cwd=folder, env=env).strip()
        check(re.fullmatch(r"geo-cs \d+\.\d+\.\d+\S*", version) is not None, f"`geo-cs --version`: {version}")
        for name in ("api", "maps"):
            done = subprocess.run([python, "-c", f"import {name}"], cwd=folder, env=env, capture_output=True)
            check(done.returncode != 0, f"no top-level `{name}` installed")
        where = run(python, "-c", "import geo_cs, geo_cs.api.app, geo_cs.maps.page\n"
                    "from geo_cs.config import boundaries_dir\n"
                    "print(geo_cs.__file__); print(geo_cs.api.app.__file__); "
                    "print(geo_cs.maps.page.__file__); print(boundaries_dir())",
                    cwd=folder, env=env).split()
        site = (venv / "lib").resolve()
        check(all(Path(p).resolve().is_relative_to(site) for p in where),
              "the package, its web layer and its boundaries/ come from the installed wheel")

        port = free_port()
        server = subprocess.Popen([geo_cs, "demo", "--port", str(port)], cwd=folder, env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                  start_new_session=True)
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 600
            while time.monotonic() < deadline:
                if server.poll() is not None:
                    raise SystemExit(f"FAILED: geo-cs demo exited {server.returncode}:\n"
                                     f"{server.stdout.read()[-3000:]}")
                try:
                    status, _ = get(f"{base}/health", timeout=5)
                    if status == 200:
                        break
                except OSError:
                    pass
                time.sleep(1)
            else:
                raise SystemExit("FAILED: geo-cs demo did not serve within 10 minutes")
            check(True, f"`geo-cs demo` in an empty folder serves on {base}")
            status, body = get(f"{base}/maps/")
            check(status == 200 and PARTNERSHIP.encode() in body, "the list of maps (/maps/)")
            status, page = get(f"{base}/maps/{PARTNERSHIP}")
            text = page.decode("utf-8", "replace")
            check(status == 200 and "Glasgow" in text, f"the map page /maps/{PARTNERSHIP}")
            script = re.search(r'<script[^>]+src="(/static/geo-cs/map\.[0-9a-f]+\.js)"', text)
            check(script is not None and get(base + script.group(1))[0] == 200,
                  "the page's own script, served from the package")
            tile = re.search(r'"(/tiles/[^"]+?/\{z\}/\{x\}/\{y\}[^"]*)"', text)
            check(tile is not None, "the page names its vector tiles")
            # the z10 tile over central Glasgow (55.86 N, 4.25 W)
            url = tile.group(1).replace("{z}", "10").replace("{x}", "499").replace("{y}", "319")
            status, body = get(base + url.replace("\\u0026", "&"))
            check(status == 200 and len(body) > 1000, f"a vector tile of Glasgow ({len(body):,} bytes)")
            left = sorted(p.name for p in folder.iterdir())
            check(set(left) <= {"geo-cs.duckdb", ".geo-cs.duckdb.lock"},
                  f"the folder holds the database only: {', '.join(left)}")
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
    finally:
        if args.keep:
            print(f"kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    print("the wheel installs and serves the demo")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Vendor the web map's JavaScript and CSS from pinned npm packages into maps/static/vendor/.

geo-cs is installed inside closed council and partnership networks where browsers often cannot reach
public CDNs (unpkg, jsDelivr, cdnjs), and where loading third-party code from the internet would not
pass an information-governance review anyway. The web map therefore never references a CDN: every
script, stylesheet and image it uses is served by the API itself from ``maps/static/vendor/``.

This script is the one place those files come from. It downloads each pinned npm tarball ONCE, at
development time, verifies it against the ``dist.integrity`` (sha512, SRI format) published by the
registry and hard-coded below, and extracts only the listed browser builds plus the licence text.
The result, with a ``manifest.json`` recording version, integrity, SPDX licence, source tarball and a
sha256 per file, is committed to the repository — so users never need npm, Node or network access.

    python scripts/vendor_web_assets.py            # (re)create maps/static/vendor/ (needs the registry)
    python scripts/vendor_web_assets.py --check    # offline: files on disk match manifest.json?

To upgrade a package, change its version and integrity (from
``https://registry.npmjs.org/<name>/<version>`` -> ``dist.integrity``), rerun, review the diff.
Only the Python standard library is used; no npm CLI is needed.
"""

from __future__ import annotations

import argparse
import base64
import fnmatch
import hashlib
import io
import json
import shutil
import sys
import tarfile
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENDOR = ROOT / "maps" / "static" / "vendor"
MANIFEST = "manifest.json"
REGISTRY = "https://registry.npmjs.org"
TIMEOUT_S = 60
NETWORK_HINT = (
    "run this where registry.npmjs.org is reachable; the vendored files are committed, so users never need to"
)

# The pmtiles npm tarball ships no licence file (only package.json says BSD-3-Clause). This is the
# upstream LICENSE of https://github.com/protomaps/PMTiles (the repository the package is built from),
# written next to the vendored build so the BSD notice travels with the binary form as clause 2 requires.
PMTILES_LICENSE = """\
The below license (BSD-3) applies to the reference implementations in this repository.

The PMTiles specification itself is public domain, or CC0 where applicable.

Sample tilesets available in this repository are subject to their own license terms.

---

Copyright 2021 Protomaps LLC

Redistribution and use in source and binary forms, with or without modification, are permitted \
provided that the following conditions are met:

1. Redistributions of source code must retain the above copyright notice, this list of conditions \
and the following disclaimer.

2. Redistributions in binary form must reproduce the above copyright notice, this list of conditions \
and the following disclaimer in the documentation and/or other materials provided with the distribution.

3. Neither the name of the copyright holder nor the names of its contributors may be used to endorse \
or promote products derived from this software without specific prior written permission.

THIS SOFTWARE IS PROVIDED BY THE COPYRIGHT HOLDERS AND CONTRIBUTORS "AS IS" AND ANY EXPRESS OR IMPLIED \
WARRANTIES, INCLUDING, BUT NOT LIMITED TO, THE IMPLIED WARRANTIES OF MERCHANTABILITY AND FITNESS FOR A \
PARTICULAR PURPOSE ARE DISCLAIMED. IN NO EVENT SHALL THE COPYRIGHT HOLDER OR CONTRIBUTORS BE LIABLE FOR \
ANY DIRECT, INDIRECT, INCIDENTAL, SPECIAL, EXEMPLARY, OR CONSEQUENTIAL DAMAGES (INCLUDING, BUT NOT \
LIMITED TO, PROCUREMENT OF SUBSTITUTE GOODS OR SERVICES; LOSS OF USE, DATA, OR PROFITS; OR BUSINESS \
INTERRUPTION) HOWEVER CAUSED AND ON ANY THEORY OF LIABILITY, WHETHER IN CONTRACT, STRICT LIABILITY, OR \
TORT (INCLUDING NEGLIGENCE OR OTHERWISE) ARISING IN ANY WAY OUT OF THE USE OF THIS SOFTWARE, EVEN IF \
ADVISED OF THE POSSIBILITY OF SUCH DAMAGE.
"""


@dataclass(frozen=True)
class Package:
    """One pinned npm package and what to take from its tarball.

    ``files`` and ``licence`` are paths inside the tarball's ``package/`` folder (``fnmatch``
    patterns allowed, each must match at least one file); they keep their relative paths on disk.
    ``licence_text`` maps an output name to licence text written verbatim when the tarball has none.
    """

    name: str
    version: str
    integrity: str
    files: tuple[str, ...]
    licence: tuple[str, ...] = ()
    licence_text: dict[str, str] = field(default_factory=dict)
    globals: tuple[str, ...] = ()  # what the browser build defines on window, for the manifest

    @property
    def tarball(self) -> str:
        return f"{REGISTRY}/{self.name}/-/{self.name.rsplit('/', 1)[-1]}-{self.version}.tgz"

    @property
    def folder(self) -> str:
        return f"{self.name}@{self.version}"


PACKAGES: tuple[Package, ...] = (
    Package(
        name="leaflet",
        version="1.9.4",
        integrity="sha512-nxS1ynzJOmOlHp+iL3FyWqK89GtNL8U8rvlMOsQdTTssxZwCXh8N2NB3GDQOL+YR3XnWyZAxwQixURb+FA74PA==",
        files=("dist/leaflet.js", "dist/leaflet.css", "dist/images/*"),
        licence=("LICENSE",),
        globals=("L", "leaflet"),
    ),
    Package(
        name="leaflet.vectorgrid",
        version="1.3.0",
        integrity="sha512-kWmj1pKM+MVdo/7Mg5zsB3YrGZvo/uIuiANV9MvWUFOG+Y2xAJzrteDhoIcCgTjHSSRJ36xdeGdIQVhuWjnCZw==",
        files=("dist/Leaflet.VectorGrid.bundled.min.js",),
        # The tarball has no LICENSE file; the Beerware notice (and the licences of the bundled pbf,
        # vector-tile, topojson and geojson-vt) are in its README.md.
        licence=("README.md",),
        globals=("L.VectorGrid", "L.vectorGrid"),
    ),
    Package(
        name="pmtiles",
        version="4.5.0",
        integrity="sha512-CBeD4SoUluFziGdy/8k7FOjQxQy486n+929W/tWophauvMICpkZ26vGBWhDt/6b1FZQWNaf4jFdT/5+q0Wii5w==",
        files=("dist/pmtiles.js",),
        licence_text={"LICENSE": PMTILES_LICENSE},
        globals=("pmtiles",),
    ),
    Package(
        name="protomaps-leaflet",
        version="5.1.0",
        integrity="sha512-N0YY1Gbw5nZ9n8VUOvwHKm/w3zhTTuaZEeMZl8doHemeM4ujGPp2otI6t4Sgqrz8iM4svx2rpG1Q17rHkOWSaA==",
        files=("dist/protomaps-leaflet.js",),
        licence=("LICENSE",),
        globals=("protomapsL",),
    ),
    # Not used by any page: the browser tests load it from the app (the pages' Content-Security-
    # Policy admits only the app's own scripts) to check the map for accessibility (WCAG).
    Package(
        name="axe-core",
        version="4.14.1",
        integrity="sha512-FHfa+lmNjQZfJz1q8wKqIDwC6DExcHt/pkjNQb09a3NPjCKg2rhu5qb2S4r76ASyFNNtuFooJpZe37OgudVGtQ==",
        files=("axe.min.js",),
        licence=("LICENSE",),
        globals=("axe",),
    ),
)


class VendorError(RuntimeError):
    """A failure worth one clear line on stderr rather than a traceback."""


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def download(url: str) -> bytes:
    """GET ``url``, turning network failures into a message saying where to run this."""
    request = urllib.request.Request(url, headers={"User-Agent": "geo-cs vendor_web_assets.py"})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
            return response.read()
    except urllib.error.HTTPError as exc:
        raise VendorError(f"{url}: the registry answered HTTP {exc.code} {exc.reason}") from exc
    except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
        reason = getattr(exc, "reason", exc)
        raise VendorError(f"cannot reach {url} ({reason}): {NETWORK_HINT}") from exc


def verify_integrity(data: bytes, integrity: str, what: str) -> None:
    """Check ``data`` against an SRI string such as ``sha512-<base64>``."""
    algorithm, _, expected = integrity.partition("-")
    if algorithm not in {"sha256", "sha384", "sha512"} or not expected:
        raise VendorError(f"{what}: unsupported integrity value {integrity!r}")
    actual = base64.b64encode(hashlib.new(algorithm, data).digest()).decode("ascii")
    if actual != expected:
        raise VendorError(f"{what}: integrity mismatch, expected {integrity}, got {algorithm}-{actual}")


def tar_members(data: bytes) -> dict[str, bytes]:
    """Regular files of an npm tarball, keyed by their path inside ``package/``."""
    members: dict[str, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        for info in tar.getmembers():
            top, _, rel = info.name.partition("/")
            if not info.isfile() or not rel or top != "package":
                continue
            extracted = tar.extractfile(info)
            if extracted is not None:
                members[rel] = extracted.read()
    return members


def select(members: dict[str, bytes], patterns: tuple[str, ...], what: str) -> dict[str, bytes]:
    """Members matching ``patterns``; every pattern must match something."""
    chosen: dict[str, bytes] = {}
    for pattern in patterns:
        hits = sorted(n for n in members if fnmatch.fnmatchcase(n, pattern))
        if not hits:
            raise VendorError(f"{what}: nothing in the tarball matches {pattern!r}")
        for name in hits:
            if name.startswith("/") or ".." in Path(name).parts:
                raise VendorError(f"{what}: refusing unsafe path {name!r}")
            chosen[name] = members[name]
    return chosen


def vendor_package(pkg: Package, dest: Path) -> dict[str, object]:
    """Download, verify and extract one package under ``dest``; return its manifest entry."""
    what = f"{pkg.name}@{pkg.version}"
    print(f"fetching {pkg.tarball}", file=sys.stderr)
    data = download(pkg.tarball)
    verify_integrity(data, pkg.integrity, what)
    members = tar_members(data)

    meta = json.loads(members["package.json"])
    if (meta.get("name"), meta.get("version")) != (pkg.name, pkg.version):
        raise VendorError(f"{what}: tarball's package.json says {meta.get('name')}@{meta.get('version')}")

    outputs = select(members, pkg.files, what)
    licence_files = select(members, pkg.licence, what) if pkg.licence else {}
    outputs |= licence_files
    outputs |= {name: text.encode("utf-8") for name, text in pkg.licence_text.items()}
    if not (licence_files or pkg.licence_text):
        raise VendorError(f"{what}: no licence file configured")

    files = []
    for rel, content in sorted(outputs.items()):
        target = dest / pkg.folder / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
        files.append({"path": f"{pkg.folder}/{rel}", "bytes": len(content), "sha256": sha256(content)})

    entry: dict[str, object] = {
        "name": pkg.name,
        "version": pkg.version,
        "integrity": pkg.integrity,
        "licence": meta.get("license"),
        "licence_files": [f"{pkg.folder}/{rel}" for rel in sorted([*licence_files, *pkg.licence_text])],
        "globals": list(pkg.globals),
        "source": pkg.tarball,
        "files": files,
    }
    if pkg.licence_text:
        entry["licence_note"] = (
            "licence file not in the npm tarball; upstream repository text written by vendor_web_assets.py"
        )
    return entry


def build(dest: Path) -> None:
    """(Re)create ``dest`` from scratch; nothing is replaced unless every package succeeded."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=".vendor-") as tmp:
        staging = Path(tmp) / "vendor"
        staging.mkdir()
        manifest = {
            "generated_by": "scripts/vendor_web_assets.py",
            "note": "Pinned npm browser builds served by geo-cs so the web map needs no CDN.",
            "packages": [vendor_package(pkg, staging) for pkg in PACKAGES],
        }
        text = json.dumps(manifest, indent=2, ensure_ascii=False) + "\n"
        (staging / MANIFEST).write_text(text, encoding="utf-8")
        if dest.exists():
            shutil.rmtree(dest)
        staging.rename(dest)
    print(f"wrote {dest} ({len(PACKAGES)} packages)", file=sys.stderr)


def check(dest: Path) -> list[str]:
    """Problems between ``dest`` and its manifest (empty if everything matches)."""
    manifest_path = dest / MANIFEST
    if not manifest_path.is_file():
        return [f"{manifest_path}: missing (run scripts/vendor_web_assets.py)"]
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    problems: list[str] = []
    expected: set[str] = {MANIFEST}
    for pkg in manifest["packages"]:
        for entry in pkg["files"]:
            rel = entry["path"]
            expected.add(rel)
            path = dest / rel
            if not path.is_file():
                problems.append(f"{rel}: missing")
            elif (actual := sha256(path.read_bytes())) != entry["sha256"]:
                problems.append(f"{rel}: sha256 {actual} != manifest {entry['sha256']}")
    for path in sorted(p for p in dest.rglob("*") if p.is_file()):
        rel = path.relative_to(dest).as_posix()
        if rel not in expected:
            problems.append(f"{rel}: not listed in {MANIFEST}")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--check", action="store_true", help="verify files against manifest.json (offline)")
    parser.add_argument("--dest", type=Path, default=VENDOR, help=f"output folder (default {VENDOR})")
    args = parser.parse_args(argv)
    dest: Path = args.dest.resolve()

    if args.check:
        problems = check(dest)
        for problem in problems:
            print(f"MISMATCH {problem}", file=sys.stderr)
        if not problems:
            print(f"{dest}: all files match {MANIFEST}", file=sys.stderr)
        return 1 if problems else 0

    try:
        build(dest)
    except VendorError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The web map for partnership staff: folium pages drawing the project's own vector tiles.

Every script and stylesheet is served by the app from ``maps/static`` — Leaflet, VectorGrid and
the PMTiles reader are vendored from pinned npm packages by ``scripts/vendor_web_assets.py`` — so
the map works on closed council networks with no CDN.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

STATIC_DIR = Path(__file__).resolve().parent / "static"
STATIC_URL = "/static"


@cache
def vendored() -> dict[str, dict]:
    """The vendored npm packages by name (from ``static/vendor/manifest.json``)."""
    manifest = json.loads((STATIC_DIR / "vendor" / "manifest.json").read_text(encoding="utf-8"))
    return {p["name"]: p for p in manifest["packages"]}


def vendor_url(package: str, file: str, static: str = STATIC_URL) -> str:
    """The URL of ``file`` (e.g. ``dist/leaflet.js``) of a vendored package, under ``static``
    (the app's ``/static``, or a static site's relative ``static``)."""
    entry = vendored()[package]
    path = f"{package}@{entry['version']}/{file}"
    if path not in {f["path"] for f in entry["files"]}:
        raise KeyError(f"{path} is not vendored; see scripts/vendor_web_assets.py")
    return f"{static}/vendor/{path}"

"""The web map for partnership staff: pages drawing the project's own vector tiles.

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

#: What a map page may load: its own scripts, styles, images and tiles and nothing else. No
#: ``'unsafe-inline'``: the pages hold no script, so one arriving in a name from a data file
#: would not run even if it escaped the escaping. (``blob:`` for the PMTiles reader's worker.)
#: A static site carries this in a ``<meta>``; the service adds ``frame-ancestors``, which only
#: a header can carry.
CONTENT_SECURITY_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self'; "
                           "img-src 'self' data: blob:; connect-src 'self'; worker-src 'self' blob:; "
                           "object-src 'none'; base-uri 'none'; form-action 'self'")
CONTENT_SECURITY_POLICY_HEADER = f"{CONTENT_SECURITY_POLICY}; frame-ancestors 'self'"


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

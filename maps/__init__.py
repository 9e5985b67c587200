"""The web map for partnership staff: pages drawing the project's own vector tiles.

Every script and stylesheet is served by the app from ``maps/static`` — Leaflet, VectorGrid and
the PMTiles reader are vendored from pinned npm packages by ``scripts/vendor_web_assets.py`` — so
the map works on closed council networks with no CDN.
"""

from __future__ import annotations

import hashlib
import json
import re
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


# -- fingerprinted asset URLs ------------------------------------------------------------------
#
# A page names its own script and stylesheet by their content (``geo-cs/map.3f2a9c1b04de.js``),
# so a browser may keep them for a year (``Cache-Control: immutable``) and still gets the new
# file the moment it changes: the page then names another URL. The app's static route
# (:class:`geo_cs.api.static.AssetFiles`) serves such a name from the plain file when the digest is the
# file's; vendored files carry their package version in their path and their sha256 in the
# manifest, which is their fingerprint.

#: How many hex digits of the sha256 a fingerprint keeps (48 bits: no collision between the
#: versions of one file).
FINGERPRINT_DIGITS = 12
_FINGERPRINTED_NAME = re.compile(rf"^(?P<stem>.+)\.(?P<digest>[0-9a-f]{{{FINGERPRINT_DIGITS}}})"
                                 r"(?P<suffix>\.[A-Za-z0-9]+)$")


def _static_file(relative_path: str) -> Path:
    path = (STATIC_DIR / relative_path).resolve()
    if not path.is_relative_to(STATIC_DIR) or not path.is_file():
        raise FileNotFoundError(f"{relative_path} is not a file of {STATIC_DIR}")
    return path


@cache
def _sha256_of(path: Path, mtime_ns: int, size: int) -> str:
    # keyed on the file's stat too: an edited file gets its new digest without a restart
    return hashlib.sha256(path.read_bytes()).hexdigest()


def asset_sha256(relative_path: str) -> str:
    """The sha256 (hex) of a file under :data:`STATIC_DIR`, e.g. ``geo-cs/map.js``."""
    path = _static_file(relative_path)
    stat = path.stat()
    return _sha256_of(path, stat.st_mtime_ns, stat.st_size)


def asset_fingerprint(relative_path: str) -> str:
    """The first :data:`FINGERPRINT_DIGITS` hex digits of the file's sha256."""
    return asset_sha256(relative_path)[:FINGERPRINT_DIGITS]


def asset_url(relative_path: str, static: str = STATIC_URL, *, in_path: bool = True) -> str:
    """The URL of a file under :data:`STATIC_DIR` that changes whenever its content does.

    ``in_path`` (the service): the digest goes into the file name, ``/static/geo-cs/map.<12 hex
    digits>.js``, which :class:`geo_cs.api.static.AssetFiles` serves with a one-year, immutable cache
    lifetime. ``in_path=False`` (a static site, whose host serves the files as they are named on
    disk): ``static/geo-cs/map.js?v=<12 hex digits>``, which busts any cache the same way.

    >>> url = asset_url("geo-cs/map.css")
    >>> bool(re.fullmatch(r"/static/geo-cs/map\\.[0-9a-f]{12}\\.css", url))
    True
    >>> asset_url("geo-cs/map.css", "static", in_path=False).startswith("static/geo-cs/map.css?v=")
    True
    """
    digest = asset_fingerprint(relative_path)
    if not in_path:
        return f"{static}/{relative_path}?v={digest}"
    folder, _, name = relative_path.rpartition("/")
    stem, dot, suffix = name.rpartition(".")
    fingerprinted = f"{stem}.{digest}.{suffix}" if dot else f"{name}.{digest}"
    return f"{static}/{folder + '/' if folder else ''}{fingerprinted}"


def split_fingerprint(relative_path: str) -> tuple[str, str | None]:
    """``(plain path, digest)`` of a fingerprinted name, ``(path, None)`` of any other.

    >>> split_fingerprint("geo-cs/map.0123456789ab.js")
    ('geo-cs/map.js', '0123456789ab')
    >>> split_fingerprint("geo-cs/map.js")
    ('geo-cs/map.js', None)
    """
    folder, slash, name = relative_path.rpartition("/")
    found = _FINGERPRINTED_NAME.match(name)
    if found is None:
        return relative_path, None
    return f"{folder}{slash}{found['stem']}{found['suffix']}", found["digest"]


def is_immutable_asset(relative_path: str, digest: str | None) -> bool:
    """Whether the file's content is pinned by its URL: ``digest`` (from a fingerprinted name or
    ``?v=``) is the file's own, or it is a vendored file (``vendor/<package>@<version>/…``)
    whose content is the sha256 the manifest records for it."""
    try:
        sha256 = asset_sha256(relative_path)
    except FileNotFoundError:
        return False
    if digest is not None:
        return sha256.startswith(digest) and len(digest) == FINGERPRINT_DIGITS
    return vendored_sha256().get(relative_path) == sha256


@cache
def vendored_sha256() -> dict[str, str]:
    """``vendor/<package>@<version>/<file>`` → its sha256 as the manifest records it."""
    return {f"vendor/{f['path']}": f["sha256"] for p in vendored().values() for f in p["files"]}

"""The embedded demo: a compact bundle of real data that builds a working store offline.

``boundaries/demo/manifest.toml`` lists ingest steps (boundaries, lookups, indicators, then
crosswalks and harmonised series) over files in the bundle; :func:`build_demo` runs them in
order through the same ingest functions a user's own data goes through. A boundaries step takes
``paths`` and optionally ``set``, ``layer``, ``code_col``, ``name_col``, ``on_duplicate`` and
``alive_in`` (as ``geo-cs ingest boundaries``); a lookup or indicator step a ``path`` (and an
indicator an optional ``spec``: without one, a file is read by its shipped spec or, for a Nomis
download of the Annual Population Survey, as survey estimates). The bundle is made by
``scripts/build_demo_bundle.py`` from ``../shared/data``.

Example
-------
>>> from geo_cs.store import Store, updating
>>> from geo_cs.demo import build_demo
>>> # not run here: the whole bundle takes about 35 s (tests/conftest.py's demo_db builds it
>>> # once per test session, and the tests read the demo through it)
>>> with Store.open(":memory:") as store:        # doctest: +SKIP
...     results = build_demo(store)
"""

from __future__ import annotations

import contextlib
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from geo_cs.attribution import OGL_ATTRIBUTION
from geo_cs.config import boundaries_dir
from geo_cs.crosswalk import build_crosswalk, harmonise
from geo_cs.district_codes import refresh_code_history
from geo_cs.errors import GeoCsError, InputError, NotFoundError
from geo_cs.ingest import ingest_boundaries, ingest_indicator, ingest_lookup, load_spec
from geo_cs.progress import Progress, SilentProgress
from geo_cs.store import Store, updating

__all__ = ["OGL_ATTRIBUTION", "DemoManifest", "build_demo", "check_demo_replaceable",
           "demo_database", "demo_dir", "load_manifest"]


def demo_dir() -> Path:
    return boundaries_dir() / "demo"


@dataclass
class DemoManifest:
    title: str
    attribution: str
    steps: list[dict[str, Any]] = field(default_factory=list)
    root: Path = Path(".")


def load_manifest(root: Path | None = None) -> DemoManifest:
    root = root or demo_dir()
    path = root / "manifest.toml"
    if not path.exists():
        raise NotFoundError(
            f"{path}: no demo bundle here; build it with python scripts/build_demo_bundle.py"
        )
    raw = tomllib.loads(path.read_text(encoding="utf-8"))
    bundle = raw.get("bundle", {})
    return DemoManifest(
        title=bundle.get("title", "geo-cs demo"),
        attribution=bundle.get("attribution", OGL_ATTRIBUTION),
        steps=list(raw.get("steps", [])),
        root=root,
    )


def check_demo_replaceable(path: Path, force: bool = False) -> None:
    """Refuse to replace a database at ``path`` that the demo did not build, unless ``force``:
    it may hold a partnership's own data. Nothing is deleted here (see :func:`demo_database`)."""
    if not path.exists() or force:
        return
    try:
        with Store.open(path, read_only=True) as store:
            row = store.sql("SELECT value FROM meta WHERE key = 'built_by'").fetchone()
    except GeoCsError:
        row = None
    if row is None or row[0] != "demo":
        raise InputError(
            f"{path} exists and was not built by the demo; choose another --db, or pass "
            "--force to replace it"
        )


@contextlib.contextmanager
def demo_database(path: Path, force: bool = False) -> Iterator[Store]:
    """An empty store to build the demo into, put at ``path`` only once it is complete.

    The demo is rebuilt from scratch every time, but never where it stands: a server may be
    serving ``path``, and a build killed part-way must not leave it a partial database (it
    used to delete the file first and build in place: a kill after 6 s left a 63 MB file the
    server switched to). The build goes through :func:`geo_cs.store.updating` with
    ``fresh=True``: a new file beside ``path``, renamed over it when the ``with`` block ends
    without error, with the old file's owner and mode. Until then ``path`` is untouched;
    a killed build's file (``.NAME.PID.updating``) is removed by the next update or build.
    ``force`` allows replacing a database the demo did not build (:func:`check_demo_replaceable`).
    """
    path = Path(path)
    check_demo_replaceable(path, force)
    with updating(path, fresh=True) as store:
        yield store


def build_demo(
    store: Store, root: Path | None = None, progress: Progress | None = None
) -> list[tuple[dict[str, Any], Any]]:
    """Run every step of the demo manifest into ``store``; return (step, report) pairs."""
    progress = progress or SilentProgress()
    manifest = load_manifest(root)
    results = []
    # the code history is read by later steps (a survey file's district edition, ward editions):
    # built once after the last lookup or boundaries step, so they do not each infer it again
    sources = [i for i, s in enumerate(manifest.steps) if s.get("kind") in ("boundaries", "lookup")]
    last_source = sources[-1] if sources else -1
    for index, step in enumerate(manifest.steps):
        kind = step.get("kind")
        if kind == "boundaries":
            # optional keys as for geo-cs ingest boundaries: one edition of a multi-edition
            # file (alive_in, after the district changes lookup), its code and name columns
            options = {key: step[key] for key in ("alive_in", "code_col", "name_col", "on_duplicate")
                       if key in step}
            report = ingest_boundaries(
                store,
                [manifest.root / p for p in step["paths"]],
                set_id=step.get("set"),
                layer=step.get("layer"),
                progress=progress,
                refresh_codes=False,
                **options,
            )
        elif kind == "lookup":
            report = ingest_lookup(store, manifest.root / step["path"], progress=progress,
                                   refresh_codes=False)
        elif kind == "indicator":
            spec = load_spec(step["spec"]) if "spec" in step else None
            report = ingest_indicator(store, manifest.root / step["path"], spec, progress=progress)
        elif kind == "crosswalk":
            report = build_crosswalk(store, step["from"], step["to"], population=step.get("population"))
        elif kind == "harmonise":
            report = harmonise(store, step["indicator"], step["to"])
        else:
            raise InputError(f"{manifest.root / 'manifest.toml'}: unknown step kind {kind!r}")
        results.append((step, report))
        if index == last_source and index < len(manifest.steps) - 1:
            with store.transaction():
                refresh_code_history(store)
    # the district code history, from every lookup and boundary set (not after each)
    with store.transaction():
        results.append(({"kind": "code_history"}, refresh_code_history(store)))
    store.sql("INSERT OR REPLACE INTO meta VALUES ('built_by', 'demo')")
    return results

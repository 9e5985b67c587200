"""geo-cs: worklessness analysis and mapping for local employment partnerships in Great Britain.

The public API, in the order a workflow uses it::

    from geo_cs import Store, ingest_boundaries, ingest_lookup, ingest_indicator, load_spec

    store = Store.open("geo-cs.duckdb")
    ingest_boundaries(store, ["lsoa11_bgc_topo_by_lad/"])
    ingest_lookup(store, "lsoa11_lsoa21_ew.csv")
    ingest_indicator(store, "population2019_lsoa11_ew.csv")   # spec found by file name
"""

from __future__ import annotations

import importlib
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from geo_cs.errors import GeoCsError, InputError, NotFoundError, StoreError

if TYPE_CHECKING:
    from geo_cs.geography import GeographySet, registry
    from geo_cs.ingest import ingest_boundaries, ingest_indicator, ingest_lookup, load_spec
    from geo_cs.periods import Period, parse_period
    from geo_cs.store import Store

try:
    __version__ = metadata.version("geo-cs")
except metadata.PackageNotFoundError:  # run from a checkout that was never installed
    __version__ = "0+unknown"

# The web service and the map pages are geo_cs.api and geo_cs.maps. A wheel installs them inside
# this package (no top-level "api" or "maps", names any other distribution may own); a checkout
# keeps them in the repository's api/ and maps/ beside geo_cs/, which this adds to the places the
# package's submodules are looked for.
_CHECKOUT = Path(__file__).resolve().parent.parent
if not Path(__file__).with_name("api").is_dir() and (_CHECKOUT / "api" / "__init__.py").is_file():
    __path__.append(str(_CHECKOUT))

#: The public names and the module each comes from. They are imported on first use (PEP 562),
#: so that ``import geo_cs.cli`` — every ``geo-cs`` command, ``--help`` included — does not
#: pay for pandas, GEOS, DuckDB and numba before it knows which command it runs.
_LAZY = {
    "GeographySet": "geo_cs.geography", "registry": "geo_cs.geography",
    "ingest_boundaries": "geo_cs.ingest", "ingest_indicator": "geo_cs.ingest",
    "ingest_lookup": "geo_cs.ingest", "load_spec": "geo_cs.ingest",
    "Period": "geo_cs.periods", "parse_period": "geo_cs.periods",
    "Store": "geo_cs.store",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'geo_cs' has no attribute {name!r}")


__all__ = [
    "GeoCsError",
    "GeographySet",
    "InputError",
    "NotFoundError",
    "Period",
    "Store",
    "StoreError",
    "__version__",
    "ingest_boundaries",
    "ingest_indicator",
    "ingest_lookup",
    "load_spec",
    "parse_period",
    "registry",
]

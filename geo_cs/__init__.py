"""geo-cs: worklessness analysis and mapping for local employment partnerships in Great Britain.

The public API, in the order a workflow uses it::

    from geo_cs import Store, ingest_boundaries, ingest_lookup, ingest_indicator, load_spec

    store = Store.open("geo-cs.duckdb")
    ingest_boundaries(store, ["lsoa11_bgc_topo_by_lad/"])
    ingest_lookup(store, "lsoa11_lsoa21_ew.csv")
    ingest_indicator(store, "population2019_lsoa11_ew.csv")   # spec found by file name
"""

from geo_cs.errors import GeoCsError, InputError, NotFoundError, StoreError
from geo_cs.geography import GeographySet, registry
from geo_cs.ingest import (
    ingest_boundaries,
    ingest_indicator,
    ingest_lookup,
    load_spec,
)
from geo_cs.periods import Period, parse_period
from geo_cs.store import Store

__version__ = "0.1.0"

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

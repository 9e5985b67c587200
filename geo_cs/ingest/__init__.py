"""Ingest: boundaries, lookups and indicators into the store, each as one transaction."""

from geo_cs.ingest.boundaries import BoundaryReport, ingest_boundaries, read_boundary_files
from geo_cs.ingest.indicators import IndicatorReport, IndicatorSpec, ingest_indicator, load_spec
from geo_cs.ingest.lookups import LookupReport, ingest_lookup

__all__ = [
    "BoundaryReport",
    "IndicatorReport",
    "IndicatorSpec",
    "LookupReport",
    "ingest_boundaries",
    "ingest_indicator",
    "ingest_lookup",
    "load_spec",
    "read_boundary_files",
]

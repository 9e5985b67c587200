"""The ``geo-cs`` command line: parsing and formatting only; the work is in the library.

One module per command group, each a Typer app the root (:mod:`geo_cs.cli.app`) registers:
``ingest`` (:mod:`.ingest`), ``analyse`` (:mod:`.analyse`), ``export`` (:mod:`.export`),
``crosswalk`` and ``harmonise`` (:mod:`.crosswalk`), ``tiles`` (:mod:`.tiles`), ``info``,
``demo`` and ``serve`` (:mod:`.serve`); :mod:`.common` holds what they share. The CLI is the
outermost layer: it may import the core, ``api`` and ``maps``; nothing imports it.

Exit codes: 0 success, 1 internal error, 2 usage, 3 invalid input data, 4 database/extension,
5 not found, 6 disk full (see :mod:`geo_cs.errors`).
"""

from geo_cs.cli.app import app, main

__all__ = ["app", "main"]

"""Run by Debian's own Python (``/usr/bin/python3``, where python3-qgis installs PyQGIS), from
``test_clients.py`` and ``test_gis_traps.py``: loads the service's layers the way QGIS's dialogs
do and prints what QGIS sees as JSON. Not a test module itself (PyQGIS is not importable in the
project's venv).

``qgis_client.py BASE`` loads the layers ``test_clients.py`` checks. ``qgis_client.py BASE
LAYERS`` loads each layer LAYERS (a JSON list) describes, as the OAPIF provider's data source
URI of QGIS 3.22 spells it (``url``, ``typename``, ``pageSize``, ``maxNumFeatures``… — the keys of
QgsWFSDataSourceURI, which QGIS writes from the connection dialog), and prints, per layer, what
QGIS reports: validity, ``featureCount()``, the features its iterator gives, and the same
after a second pass::

    [{"query": "?partnership=greater_manchester",        # the connection URL's query, if any
      "typename": "lsoa2011_employment_rate",
      "uri": {"pageSize": "100", "maxNumFeatures": "1000"},  # more data source URI keys
      "subset": "\\"value\\" > 30"}]                          # a Query Builder filter, if any
"""

from __future__ import annotations

import json
import os
import sys

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from qgis.core import QgsApplication, QgsVectorLayer, QgsVectorTileLayer


def main(base: str) -> None:
    app = QgsApplication([], False)
    app.initQgis()
    # Layer ▸ Add WFS / OGC API - Features Layer: a collection picked from the list by its id
    layer = QgsVectorLayer(f"url='{base}' typename='datazone2011_employment_rate' "
                           "restrictToRequestBBOX='0'", "dz", "OAPIF")
    values = [f["value"] for f in layer.getFeatures()] if layer.isValid() else []
    # the same layer with a filter typed in Layer Properties ▸ Query Builder (QGIS 3.22 applies
    # it on its side; test_clients compares it with the server's own filter)
    subset = QgsVectorLayer(f"url='{base}' typename='datazone2011_employment_rate' "
                            "restrictToRequestBBOX='0'", "rate", "OAPIF")
    subset_ok = subset.setSubsetString('"value" > 20 AND "nation" = \'S\'')
    subset_codes = sorted(f["code"] for f in subset.getFeatures()) if subset_ok else []
    # Layer ▸ Add Vector Tile Layer ▸ generic connection
    tiles = QgsVectorTileLayer(
        f"type=xyz&url={base}/tiles/datazone2011/{{z}}/{{x}}/{{y}}.mvt?indicator%3Demployment_deprived"
        "&zmin=0&zmax=14", "tiles")
    print(json.dumps({
        "valid": layer.isValid(), "features": layer.featureCount(), "wkb_type": int(layer.wkbType()),
        "fields": [f.name() for f in layer.fields()], "values": len([v for v in values if v is not None]),
        "max_value": max((v for v in values if v is not None), default=None),
        "tiles_valid": tiles.isValid(), "subset_ok": subset_ok, "subset_codes": subset_codes,
    }), flush=True)
    # PyQGIS 3.22 can crash in its own teardown (exitQgis with layers alive): what QGIS saw is
    # printed, so leave without it
    os._exit(0)


def data_source_uri(base: str, spec: dict) -> str:
    """The OAPIF data source URI of a layer ``spec`` (see the module's docstring): what QGIS
    3.22 writes when a collection is added from a connection whose URL is ``base`` plus the
    spec's query."""
    keys = {"url": base + spec.get("query", ""), "typename": spec["typename"],
            "restrictToRequestBBOX": "0", **spec.get("uri", {})}
    return " ".join(f"{key}='{value}'" for key, value in keys.items())


def probe(base: str, specs: list[dict]) -> None:
    app = QgsApplication([], False)
    app.initQgis()
    seen = []
    for spec in specs:
        layer = QgsVectorLayer(data_source_uri(base, spec), spec["typename"], "OAPIF")
        out: dict = {"valid": layer.isValid()}
        if layer.isValid():
            if spec.get("subset") is not None:
                out["subset_ok"] = layer.setSubsetString(spec["subset"])
            # what the attribute table's title and the layer's count say, then what a
            # renderer or an export gets, twice: the second pass reads QGIS's own cache
            out["feature_count"] = layer.featureCount()
            codes = [f["code"] for f in layer.getFeatures()]
            out["iterated"], out["distinct_codes"] = len(codes), len(set(codes))
            out["feature_count_after"] = layer.featureCount()
            out["iterated_again"] = sum(1 for _ in layer.getFeatures())
            field = layer.fields().field("worst") if layer.fields().indexOf("worst") >= 0 else None
            out["worst_type"] = field.typeName() if field is not None else None
        seen.append(out)
    print(json.dumps(seen), flush=True)
    os._exit(0)   # as in main: what QGIS saw is printed


if __name__ == "__main__":
    if len(sys.argv) > 2:
        probe(sys.argv[1], json.loads(sys.argv[2]))
    else:
        main(sys.argv[1])

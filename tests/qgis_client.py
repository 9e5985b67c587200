"""Run by Debian's own Python (``/usr/bin/python3``, where python3-qgis installs PyQGIS), from
``test_clients.py``: loads the service's layers the way QGIS's dialogs do and prints what QGIS
sees as JSON. Not a test module itself (PyQGIS is not importable in the project's venv)."""

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
    layer = QgsVectorLayer(f"url='{base}' typename='datazone2011_employment_deprived' "
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


if __name__ == "__main__":
    main(sys.argv[1])

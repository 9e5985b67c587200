"""Styles of the map collections (issue 30, point 4): the web map's classes as QML, SLD 1.0 and a
MapLibre style, and a QGIS project of a partnership's map.

Each format's breaks, colours and labels are compared with the map page's own (its config JSON,
``maps.page.read_page_config``) for the same partnership and measure; the XML is parsed with
lxml and the SLD checked against SLD 1.0's structure; PyQGIS (Debian's, as QGIS 3.22 users
have it) loads the QML and the SLD onto the features API's layer from a real server and renders
them, and opens the project. ``GEO_CS_WRITE_SCREENSHOTS=1`` keeps the render as the README's
picture (``docs/images/qgis-styled-layer.png``).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
from collections import Counter
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from lxml import etree

from geo_cs import styles
from geo_cs.api.app import create_app
from geo_cs.attribution import OGL_ATTRIBUTION
from geo_cs.config import Settings
from geo_cs.features import list_collections
from geo_cs.maps.page import MapRequest, MapSources, gather_map, page_config, read_page_config
from geo_cs.palette import NO_DATA
from geo_cs.store import Store
from tests.servers import running_service
from tests.test_clients import DEBIAN_PYTHON, needs_pyqgis

SCREENSHOTS = Path(__file__).resolve().parent.parent / "docs" / "images"
SLD = "{http://www.opengis.net/sld}"
OGC = "{http://www.opengis.net/ogc}"

#: (partnership, geography, indicator, denominator): a rate with worst-performing areas, a count
#: with its own denominators (Scotland), a rank (the palette reversed, whole numbers), a survey
#: rate (higher is better), a constituency series, a boundary set's measure with indicator=.
VIEWS = [
    ("blackburn", "lsoa2011", "employment_deprived", "population2019_lsoa11.working_age_population"),
    ("glasgow", "datazone2011", "employment_deprived", None),
    ("rhyl", "lsoa2011", "employment_rank", None),
    ("greater_manchester", "lad2021", "employment_rate", None),
    ("tyne_and_wear", "wpc2010", "claimants", None),
    ("blackburn", "lsoa2011", "imd_rank", None),
]




@pytest.fixture(scope="module")
def client(demo_db):
    with TestClient(create_app(Settings(db=demo_db))) as c:
        yield c


@pytest.fixture(scope="module")
def collections(demo_db) -> dict:
    with Store.open(demo_db, read_only=True) as store:
        return {c.id: c for c in list_collections(store)}


def collection_for(collections: dict, geography: str, indicator: str, denominator: str | None) -> tuple[str, dict]:
    """The map collection of a view (its id and the style's query), else the boundary set with
    indicator= (ids are looked up, not written here: they may be renamed)."""
    for c in collections.values():
        if c.kind == "measure" and (c.geography, c.indicator, c.denominator) == (geography, indicator, denominator):
            return c.id, {}
    return geography, {"indicator": indicator, **({"denominator": denominator} if denominator else {})}


def page(client, partnership: str, geography: str, indicator: str, denominator: str | None) -> dict:
    params = {"geography": geography, "indicator": indicator, **({"denominator": denominator} if denominator else {})}
    response = client.get(f"/maps/{partnership}", params=params)
    assert response.status_code == 200, response.text
    return read_page_config(response.text)


def style(client, collection: str, query: dict, partnership: str | None, f: str, **headers):
    params = {**query, **({"partnership": partnership} if partnership else {}), **({"f": f} if f else {})}
    response = client.get(f"/collections/{collection}/styles/{styles.STYLE_ID}", params=params, headers=headers)
    assert response.status_code == 200, response.text
    return response


# -- what each format says, read back ---------------------------------------------------------

def qml_classes(text: str) -> dict:
    """The graduated renderer of a QML: its ranges (lower, upper, label) and each symbol's fill
    and symbol layers, in range order."""
    root = etree.fromstring(text.split("\n", 1)[1].encode())   # after the DOCTYPE line
    renderer = root.find("renderer-v2")
    symbols = {s.get("name"): s for s in renderer.find("symbols")}
    out = {"type": renderer.get("type"), "attr": renderer.get("attr"), "ranges": [], "colours": [], "layers": []}
    for r in renderer.find("ranges"):
        out["ranges"].append((float(r.get("lower")), float(r.get("upper")), r.get("label")))
        symbol = symbols[r.get("symbol")]
        fill = symbol.find("layer[@class='SimpleFill']/prop[@k='color']").get("v")
        out["colours"].append("#" + "".join(f"{int(v):02x}" for v in fill.split(",")[:3]))
        out["layers"].append([layer.get("class") for layer in symbol.findall("layer")])
    return out


def sld_rules(text: str) -> list[dict]:
    root = etree.fromstring(text.encode())
    rules = []
    for rule in root.iter(f"{SLD}Rule"):
        filt = rule.find(f"{OGC}Filter")
        below = [float(e.find(f"{OGC}Literal").text) for e in filt.iter(f"{OGC}PropertyIsLessThanOrEqualTo")
                 if e.find(f"{OGC}PropertyName").text == "value" and e.find(f"{OGC}Literal") is not None
                 and e.find(f"{OGC}Literal").text != "100"]
        above = [float(e.find(f"{OGC}Literal").text) for e in filt.iter(f"{OGC}PropertyIsGreaterThan")
                 if e.find(f"{OGC}Literal") is not None and e.find(f"{OGC}Literal").text != "100"]
        fill = rule.find(f"{SLD}PolygonSymbolizer/{SLD}Fill/{SLD}CssParameter[@name='fill']")
        rules.append({"name": rule.find(f"{SLD}Name").text, "title": rule.find(f"{SLD}Title").text,
                      "upper": below[0] if below else None, "lower": above[0] if above else None,
                      "fill": fill.text if fill is not None else None,
                      "lines": len(rule.findall(f"{SLD}LineSymbolizer"))})
    return rules


# -- the classes are the web map's -------------------------------------------------------------

@pytest.mark.parametrize(("partnership", "geography", "indicator", "denominator"), VIEWS)
def test_every_format_has_the_map_pages_breaks_colours_and_labels(client, collections, partnership, geography,
                                                                  indicator, denominator):
    cfg = page(client, partnership, geography, indicator, denominator)
    breaks, colours, labels = cfg["breaks"], cfg["colours"], cfg["classLabels"]
    assert len(breaks) >= 2, "a view with classes"
    collection, query = collection_for(collections, geography, indicator, denominator)

    qml = qml_classes(style(client, collection, query, partnership, "qml").text)
    assert qml["type"] == "graduatedSymbol" and '"value"' in qml["attr"]
    classes, no_data = qml["ranges"][:-1], qml["ranges"][-1]
    assert [upper for _, upper, _ in classes[:-1]] == breaks[:-1]
    assert [lower for lower, _, _ in classes[1:]] == breaks[:-1]
    # the end classes are open: values rounded past the lowest and highest stay in them
    assert classes[0][0] < min(0.0, breaks[0]) - 1e6 and classes[-1][1] > breaks[-1] + 1e6
    assert [label for _, _, label in classes] == labels
    assert qml["colours"][:-1] == colours and qml["colours"][-1] == cfg["noData"] == NO_DATA
    assert no_data[0] == no_data[1] == styles.QGIS_NO_DATA_VALUE
    # the worst-performing outline is a halo and a line over each fill, where the map draws one
    assert qml["layers"][0] == (["SimpleFill", "SimpleLine", "SimpleLine"] if cfg["hasWorst"] else ["SimpleFill"])

    rules = sld_rules(style(client, collection, query, partnership, "sld").text)
    fills = [r for r in rules if r["name"].startswith("class-")]
    assert [r["upper"] for r in fills[:-1]] == breaks[:-1] and fills[-1]["upper"] is None
    assert [r["lower"] for r in fills[1:]] == breaks[:-1] and fills[0]["lower"] is None
    assert [r["fill"] for r in fills] == colours and [r["title"] for r in fills] == labels
    assert [r["fill"] for r in rules if r["name"] == "no-data"] == [NO_DATA]
    assert [r["lines"] for r in rules if r["name"] == "worst"] == ([2] if cfg["hasWorst"] else [])

    ml = style(client, collection, query, partnership, "mapbox").json()
    step = _step(ml["layers"][0]["paint"]["fill-color"])
    stops, outputs = step[3::2], [step[2], *step[4::2]]
    assert stops == styles.step_stops(breaks) and all(
        s > b and math.isclose(s, b, rel_tol=1e-12) for s, b in zip(stops, breaks, strict=False))
    assert outputs == colours and ml["metadata"]["geo-cs:breaks"] == breaks
    assert [entry["label"] for entry in ml["metadata"]["geo-cs:legend"][:len(labels)]] == labels
    assert any(layer["id"] == "worst" for layer in ml["layers"]) == cfg["hasWorst"]


def _step(expression: list) -> list:
    """The ``step`` inside a ``case`` fill-color expression."""
    if expression[0] == "step":
        return expression
    return next(_step(e) for e in expression if isinstance(e, list) and _contains_step(e))


def _contains_step(e) -> bool:
    return isinstance(e, list) and (e[:1] == ["step"] or any(_contains_step(x) for x in e))


def test_the_core_gives_the_page_config_classes_from_the_store(demo_db, collections):
    """:func:`geo_cs.styles.collection_classes` (scripts, exports) against ``page_config`` run
    on the same store, with no service between: the scheme and k are the page's defaults."""
    with Store.open(demo_db, read_only=True) as store:
        req = MapRequest("glasgow", "datazone2011", "employment_deprived")
        cfg = page_config(gather_map(MapSources(store), req))
        collection, query = collection_for(collections, "datazone2011", "employment_deprived", None)
        classes = styles.collection_classes(store, collections[collection], partnership="glasgow", **query)
    assert (MapRequest.scheme, MapRequest.k) == (styles.WEB_MAP_SCHEME, styles.WEB_MAP_K)
    assert list(classes.breaks) == cfg["breaks"] and list(classes.colours) == cfg["colours"]
    assert list(classes.labels) == cfg["classLabels"] and classes.title == cfg["legendTitle"]
    assert classes.low_is_worse == cfg["lowIsWorse"] and classes.worst == cfg["hasWorst"]


def test_a_collection_without_a_partnership_pools_every_area_and_period(demo_db, client, collections):
    from geo_cs.layers import area_values, class_breaks, resolve_measure

    collection, query = collection_for(collections, "lsoa2011", "employment_rank", None)
    whole = style(client, collection, query, None, "mapbox").json()["metadata"]["geo-cs:breaks"]
    rhyl = style(client, collection, query, "rhyl", "mapbox").json()["metadata"]["geo-cs:breaks"]
    with Store.open(demo_db, read_only=True) as store:
        values = area_values(store, resolve_measure(store, "lsoa2011", "employment_rank"))
    pooled = class_breaks(values.frame["value"], "quantiles", 5, whole=True)
    latest = class_breaks(values.at(None)["value"], "quantiles", 5, whole=True)
    assert whole == pooled and whole != rhyl
    # what a QGIS quantile of the latest period gives is not the web map's (issue 30)
    assert len(values.period_ids) > 1 and latest != pooled


# -- well-formed, valid, and the SLD 1.0 structure ---------------------------------------------

#: SLD 1.0's content models (StyledLayerDescriptor.xsd) of the elements written: each child in
#: this order, optional ones may be absent.
SLD_ORDER = {
    "StyledLayerDescriptor": ["Name", "Title", "Abstract", "NamedLayer", "UserLayer"],
    "NamedLayer": ["Name", "LayerFeatureConstraints", "NamedStyle", "UserStyle"],
    "UserStyle": ["Name", "Title", "Abstract", "IsDefault", "FeatureTypeStyle"],
    "FeatureTypeStyle": ["Name", "Title", "Abstract", "FeatureTypeName", "SemanticTypeIdentifier", "Rule"],
    "Rule": ["Name", "Title", "Abstract", "LegendGraphic", "Filter", "ElseFilter", "MinScaleDenominator",
             "MaxScaleDenominator", "Symbolizer"],
    "PolygonSymbolizer": ["Geometry", "Fill", "Stroke"],
    "LineSymbolizer": ["Geometry", "Stroke"],
    "Fill": ["GraphicFill", "CssParameter"],
    "Stroke": ["GraphicFill", "GraphicStroke", "CssParameter"],
}
SYMBOLIZERS = {"LineSymbolizer", "PolygonSymbolizer", "PointSymbolizer", "TextSymbolizer", "RasterSymbolizer"}
#: Filter Encoding 1.0: the operators and how many expressions or operands each takes.
OGC_OPERATORS = {"And": (2, None), "Or": (2, None), "Not": (1, 1), "PropertyIsNull": (1, 1),
                 "PropertyIsEqualTo": (2, 2), "PropertyIsLessThan": (2, 2), "PropertyIsGreaterThan": (2, 2),
                 "PropertyIsLessThanOrEqualTo": (2, 2), "PropertyIsGreaterThanOrEqualTo": (2, 2)}
CSS_PARAMETERS = {"fill", "fill-opacity", "stroke", "stroke-width", "stroke-opacity", "stroke-linejoin"}


def _check_sld_structure(element) -> None:
    name = etree.QName(element).localname
    ns = etree.QName(element).namespace
    if ns == OGC[1:-1]:
        if name in ("PropertyName", "Literal"):
            assert element.text and len(element) == 0, f"{name} holds text only"
            return
        assert name in OGC_OPERATORS or name == "Filter", f"unknown filter element {name}"
        low, high = OGC_OPERATORS.get(name, (1, 1))
        assert len(element) >= low and (high is None or len(element) <= high), f"{name}: {len(element)} operands"
    else:
        assert ns == SLD[1:-1], f"{name} in namespace {ns}"
        order = SLD_ORDER.get(name)
        if order is not None:
            kinds = ["Symbolizer" if etree.QName(c).localname in SYMBOLIZERS else etree.QName(c).localname
                     for c in element]
            assert all(k in order for k in kinds), f"{name} may not hold {set(kinds) - set(order)}"
            positions = [order.index(k) for k in kinds]
            assert positions == sorted(positions), f"{name}'s children out of order: {kinds}"
        if name == "CssParameter":
            assert element.get("name") in CSS_PARAMETERS and element.text
        if name == "Rule":
            assert element.find(f"{SLD}Name") is not None and any(
                etree.QName(c).localname in SYMBOLIZERS for c in element), "a rule draws something"
    for child in element:
        _check_sld_structure(child)


def test_qml_and_sld_are_well_formed_and_the_sld_follows_sld_1_0(client, collections):
    collection, query = collection_for(collections, "lsoa2011", "employment_deprived",
                                       "population2019_lsoa11.working_age_population")
    sld_text = style(client, collection, query, "blackburn", "sld").text
    root = etree.fromstring(sld_text.encode())
    assert root.tag == f"{SLD}StyledLayerDescriptor" and root.get("version") == "1.0.0"
    assert "StyledLayerDescriptor.xsd" in root.get("{http://www.w3.org/2001/XMLSchema-instance}schemaLocation")
    _check_sld_structure(root)
    assert root.findtext(f"{SLD}NamedLayer/{SLD}Name") == collection
    assert OGL_ATTRIBUTION in root.findtext(f".//{SLD}UserStyle/{SLD}Abstract")
    # every number a filter compares with is a number
    for literal in root.iter(f"{OGC}Literal"):
        assert literal.text in ("true",) or math.isfinite(float(literal.text))

    qml_text = style(client, collection, query, "blackburn", "qml").text
    assert qml_text.startswith("<!DOCTYPE qgis")
    qml_root = etree.fromstring(qml_text.split("\n", 1)[1].encode())
    assert qml_root.tag == "qgis" and qml_root.find("renderer-v2") is not None
    assert OGL_ATTRIBUTION in qml_root.findtext("resourceMetadata/rights")


# -- the MapLibre style's source ---------------------------------------------------------------

def test_maplibre_style_source_is_the_layers_tilejson_and_answers(client, collections):
    collection, query = collection_for(collections, "lsoa2011", "employment_deprived",
                                       "population2019_lsoa11.working_age_population")
    ml = style(client, collection, query, "blackburn", "mapbox").json()
    assert ml["version"] == 8 and ml["sources"]["geo-cs"]["attribution"] == OGL_ATTRIBUTION
    source = ml["sources"]["geo-cs"]["url"]
    assert "/tiles/lsoa2011/tilejson.json?" in source and "denominator=" in source and "period=" in source
    tilejson = client.get(source)
    assert tilejson.status_code == 200, tilejson.text
    body = tilejson.json()
    assert ml["layers"][0]["source-layer"] == body["vector_layers"][0]["id"]
    assert "value" in body["vector_layers"][0]["fields"]
    # the partnership's outline source answers too
    assert client.get(ml["sources"]["partnership"]["data"]).status_code == 200
    # outside the partnership: the page's neutral grey; suppressed and invalid rates: no data
    fill = json.dumps(ml["layers"][0]["paint"]["fill-color"])
    assert styles.OUTSIDE in fill and NO_DATA in fill and '"suppressed"' in fill and '"value_low"' in fill


# -- the lists, content negotiation and errors --------------------------------------------------

def test_style_lists_link_every_map_collection_and_the_projects(client, collections):
    body = client.get("/styles").json()
    measures = {c.id for c in collections.values() if c.kind == "measure"}
    assert {s["id"] for s in body["styles"]} == measures
    one = body["styles"][0]
    assert {link["type"] for link in one["links"] if link["rel"] == "stylesheet"} == set(styles.FORMATS.values())
    assert any(p["id"] == "blackburn" and p["links"][0]["href"].endswith("/styles/projects/blackburn.qgs")
               for p in body["projects"])
    listed = client.get(f"/collections/{one['id']}/styles").json()
    assert listed["default"] == styles.STYLE_ID and [s["id"] for s in listed["styles"]] == [styles.STYLE_ID]
    for link in listed["styles"][0]["links"]:
        answer = client.get(link["href"])
        assert answer.status_code == 200 and answer.headers["content-type"].startswith(link["type"].split(";")[0])
    # a boundary set has styles with indicator= only; the partnerships' outlines have none
    assert client.get("/collections/lsoa2011/styles").json()["styles"] == []
    assert client.get("/collections/lsoa2011/styles", params={"indicator": "imd_rank"}).json()["styles"]
    assert client.get("/collections/partnerships/styles").json()["styles"] == []


def test_format_by_accept_header(client, collections):
    collection, query = collection_for(collections, "wpc2010", "claimants", None)
    for media_type, start in ((styles.QML_TYPE, "<!DOCTYPE qgis"), (styles.SLD_TYPE, "<?xml"),
                              (styles.MAPLIBRE_TYPE, "{")):
        response = style(client, collection, query, None, "", accept=media_type)
        assert response.text.startswith(start) and "Accept" in response.headers["vary"].split(", ")
        assert response.headers["content-type"].startswith(media_type.split(";")[0])


@pytest.mark.parametrize(("path", "params", "status", "named"), [
    ("/collections/nope/styles/web-map", {}, 404, "collection 'nope'"),
    ("/collections/{c}/styles/nope", {}, 404, "styleId"),
    ("/collections/{c}/styles/web-map", {"f": "png"}, 400, "f='png'"),
    ("/collections/{c}/styles/web-map", {"partnership": "nowhere"}, 404, "partnership nowhere"),
    ("/collections/{c}/styles/web-map", {"period": "1999"}, 404, "period '1999'"),
    ("/collections/{c}/styles/web-map", {"indicator": "imd_rank"}, 400, "indicator"),
    ("/collections/lsoa2011/styles/web-map", {}, 400, "indicator"),
    ("/collections/lsoa2011/styles/web-map", {"indicator": "nope"}, 404, "indicator 'nope'"),
    ("/collections/partnerships/styles/web-map", {}, 404, "no styles"),
    ("/styles/projects/nowhere.qgs", {}, 404, "nowhere"),
    ("/styles/projects/blackburn.qgs", {"geography": "lsoa2011", "indicator": "nope"}, 404, "nope"),
])
def test_unknown_values_are_problems_naming_the_parameter(client, collections, path, params, status, named):
    collection, _ = collection_for(collections, "lsoa2011", "employment_rank", None)
    response = client.get(path.format(c=collection), params=params)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert named in response.json()["detail"]


def test_the_project_file_names_its_layers_and_attribution(client):
    response = client.get("/styles/projects/blackburn.qgs")
    assert response.status_code == 200 and "blackburn" in response.headers["content-disposition"]
    root = etree.fromstring(response.text.split("\n", 1)[1].encode())
    sources = {layer.findtext("provider"): layer.findtext("datasource") for layer in root.iter("maplayer")}
    assert set(sources) == {"OAPIF", "vectortile", "ogr"}
    oapif = sources["OAPIF"]
    assert "partnership=blackburn" in oapif and "pageSize='1000'" in oapif and "maxNumFeatures" not in oapif
    assert "indicator%3Demployment_deprived" in sources["vectortile"]
    assert OGL_ATTRIBUTION in root.findtext("projectMetadata/abstract")
    assert root.findtext("projectCrs/spatialrefsys/authid") == "EPSG:27700"


# -- QGIS 3.22 itself ---------------------------------------------------------------------------

QGIS_SCRIPT = r'''
import json, os, sys
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
from qgis.core import (QgsApplication, QgsCoordinateReferenceSystem, QgsCoordinateTransform, QgsMapRendererParallelJob,
                       QgsMapSettings, QgsProject, QgsRectangle, QgsVectorLayer)
from qgis.PyQt.QtCore import QSize
from qgis.PyQt.QtGui import QColor

base, collection, partnership, qml, sld, project, out = sys.argv[1:8]
app = QgsApplication([], False)
app.initQgis()
seen = {}

def areas():
    # as the README tells: the connection URL with the partnership, a page size, no maximum
    return QgsVectorLayer(f"url='{base}/?partnership={partnership}' typename='{collection}' "
                          "pagingEnabled='true' pageSize='1000' restrictToRequestBBOX='0'", "areas", "OAPIF")

def render(layer, path):
    box = QgsRectangle()
    box.setMinimal()
    for feature in layer.getFeatures():
        box.combineExtentWith(feature.geometry().boundingBox())
    box.scale(1.05)
    settings = QgsMapSettings()
    settings.setLayers([layer])
    settings.setDestinationCrs(QgsCoordinateReferenceSystem("EPSG:27700"))
    settings.setExtent(QgsCoordinateTransform(layer.crs(), settings.destinationCrs(), QgsProject.instance())
                       .transformBoundingBox(box))
    settings.setOutputSize(QSize(900, 900))
    settings.setBackgroundColor(QColor("white"))
    job = QgsMapRendererParallelJob(settings)
    job.start()
    job.waitForFinished()
    job.renderedImage().save(path)
    return [e.message for e in job.errors()]

layer = areas()
seen["valid"], seen["features"] = layer.isValid(), layer.featureCount()
message, ok = layer.loadNamedStyle(qml)
renderer = layer.renderer()
seen["qml"] = {"ok": ok, "message": message, "type": renderer.type(),
               "ranges": [[r.lowerValue(), r.upperValue(), r.label(), r.symbol().color().name()] for r in renderer.ranges()]}
seen["qml_errors"] = render(layer, out)

styled = areas()
message, ok = styled.loadSldStyle(sld)
seen["sld"] = {"ok": ok, "type": styled.renderer().type(),
               "rules": [[r.label(), r.symbol().color().name() if r.symbol() else None]
                         for r in styled.renderer().rootRule().children()]}
seen["sld_errors"] = render(styled, out.replace(".png", "-sld.png"))

p = QgsProject.instance()
seen["project_read"] = p.read(project)
seen["project_crs"] = p.crs().authid()
seen["project_abstract"] = p.metadata().abstract()
seen["layers"] = []
for lay in p.mapLayers().values():
    entry = {"name": lay.name(), "valid": lay.isValid(), "provider": lay.providerType(),
             "rights": lay.metadata().rights()}
    r = lay.renderer()
    if r is not None and r.type() == "graduatedSymbol":
        entry["ranges"] = [[g.lowerValue(), g.upperValue(), g.label(), g.symbol().color().name()] for g in r.ranges()]
        entry["features"] = lay.featureCount()
    elif r is not None and hasattr(r, "styles"):
        entry["styles"] = [[s.styleName(), s.symbol().color().name()] for s in r.styles()]
    entry["renderer"] = r.type() if r is not None and hasattr(r, "type") else None
    seen["layers"].append(entry)
print(json.dumps(seen), flush=True)
os._exit(0)   # PyQGIS 3.22 can crash in its own teardown
'''


@pytest.fixture(scope="module")
def server(demo_db, tmp_path_factory):
    log = tmp_path_factory.mktemp("styles") / "uvicorn.log"
    with running_service({"GEO_CS_DB": str(demo_db), "GEO_CS_WARM_MAPS": "0"}, log) as base:
        yield base


def _colours(png: Path) -> Counter:
    from PIL import Image

    image = Image.open(png).convert("RGB")
    return Counter("#{:02x}{:02x}{:02x}".format(*p) for p in image.get_flattened_data())


@needs_pyqgis
@pytest.mark.slow  # a server and a QGIS session rendering twice: ~30 s; .ci/run runs it
def test_qgis_loads_the_qml_and_sld_onto_the_layer_renders_them_and_opens_the_project(server, collections, tmp_path):
    import httpx

    partnership = "blackburn"
    collection, query = collection_for(collections, "lsoa2011", "employment_deprived",
                                       "population2019_lsoa11.working_age_population")
    assert not query, "a map collection"
    files = {}
    for f in ("qml", "sld"):
        response = httpx.get(f"{server}/collections/{collection}/styles/{styles.STYLE_ID}",
                             params={"f": f, "partnership": partnership}, timeout=60)
        assert response.status_code == 200, response.text
        files[f] = tmp_path / f"style.{f}"
        files[f].write_bytes(response.content)
    project = httpx.get(f"{server}/styles/projects/{partnership}.qgs", timeout=60)
    assert project.status_code == 200, project.text
    files["qgs"] = tmp_path / "map.qgs"
    files["qgs"].write_bytes(project.content)
    cfg = read_page_config(httpx.get(f"{server}/maps/{partnership}", timeout=60,
                                     params={"geography": "lsoa2011", "indicator": "employment_deprived",
                                             "denominator": "population2019_lsoa11.working_age_population"}).text)
    script = tmp_path / "qgis_styles.py"
    script.write_text(QGIS_SCRIPT)
    png = tmp_path / "render.png"
    result = subprocess.run([DEBIAN_PYTHON, str(script), server, collection, partnership, str(files["qml"]),
                             str(files["sld"]), str(files["qgs"]), str(png)],
                            capture_output=True, text=True, timeout=600,
                            env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout.strip().splitlines()[-1])

    assert seen["valid"] and seen["features"] == len(cfg["areas"]["code"])
    qml = seen["qml"]
    assert qml["ok"] and qml["type"] == "graduatedSymbol"
    assert [r[1] for r in qml["ranges"][:-2]] == cfg["breaks"][:-1]
    assert [r[3] for r in qml["ranges"][:-1]] == cfg["colours"] and qml["ranges"][-1][3] == NO_DATA
    assert [r[2] for r in qml["ranges"][:-1]] == cfg["classLabels"]
    assert seen["qml_errors"] == []
    # the render holds every class's colour (the web map's), over a good share of the picture
    drawn = _colours(png)
    for colour in cfg["colours"]:
        assert drawn[colour] > 500, f"{colour} hardly drawn: {drawn.most_common(12)}"
    assert sum(drawn[c] for c in cfg["colours"]) > 0.25 * sum(drawn.values())
    # the worst-performing outline: the dark line of map.js
    assert drawn[styles.WORST_LINE] > 50 if cfg["hasWorst"] else True
    # the SLD through QGIS's own import: its rules, the same colours drawn, no data not on top
    sld = seen["sld"]
    assert sld["ok"] and sld["type"] == "RuleRenderer"
    assert [r[1] for r in sld["rules"][:len(cfg["colours"])]] == cfg["colours"]
    drawn_sld = _colours(tmp_path / "render-sld.png")
    assert all(drawn_sld[c] > 500 for c in cfg["colours"]) and drawn_sld[NO_DATA] < 0.05 * sum(drawn_sld.values())
    # the project: British National Grid, every layer valid, the areas styled as the QML says
    assert seen["project_read"] and seen["project_crs"] == "EPSG:27700"
    assert OGL_ATTRIBUTION in seen["project_abstract"]
    by_provider = {layer["provider"]: layer for layer in seen["layers"]}
    assert set(by_provider) == {"OAPIF", "vectortile", "ogr"} and all(layer["valid"] for layer in seen["layers"])
    areas = by_provider["OAPIF"]
    assert areas["renderer"] == "graduatedSymbol" and areas["ranges"] == qml["ranges"]
    assert areas["features"] == len(cfg["areas"]["code"]) and OGL_ATTRIBUTION in areas["rights"]
    tile_colours = [s[1] for s in by_provider["vectortile"]["styles"]]
    assert tile_colours[1:1 + len(cfg["colours"])] == cfg["colours"] and styles.OUTSIDE in tile_colours
    if os.environ.get("GEO_CS_WRITE_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(png, SCREENSHOTS / "qgis-styled-layer.png")

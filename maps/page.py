"""The partnership map page, built with folium over the project's own vector tiles.

One page per partnership and measure: a choropleth of every small area (VectorGrid drawing
``/tiles/{set}/{z}/{x}/{y}.mvt``), classes pooled across periods so the legend stays put as the
period slider moves, the worst-performing neighbourhoods outlined, areas estimated through a
boundary change hatched, the partnership's outline, and beside the map the gap chart (figure 4.7
for this partnership), the period's figures and links to the GeoJSON and CSV of what is shown.

:func:`render_map_page` only formats: the caller passes the values, codes, outline and gap table
(the API takes them from its caches; a script can take them from :mod:`geo_cs.layers`).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import urlencode

import folium
import jinja2
import pandas as pd
from branca.element import Element, MacroElement
from folium.plugins import VectorGridProtobuf
from folium.template import Template

from geo_cs import features, layers, tiles
from geo_cs.demo import OGL_ATTRIBUTION
from geo_cs.disclosure import DisclosureControl
from geo_cs.errors import NotFoundError
from geo_cs.layers import AreaValues, class_breaks
from geo_cs.partnerships import get_partnerships, resolve
from geo_cs.store import Store
from maps import STATIC_URL, vendor_url

TEMPLATES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).resolve().parent / "templates"),
    autoescape=jinja2.select_autoescape(["html"]),
)

#: ColorBrewer YlOrRd, 9 classes; k classes take an even spread of it.
PALETTE = ["#ffffcc", "#ffeda0", "#fed976", "#feb24c", "#fd8d3c", "#fc4e2a", "#e31a1c", "#bd0026",
           "#800026"]
NO_DATA = "#d9d9d9"

#: Folium's default assets, by folium's own names: served from the vendored npm packages, or
#: dropped (jQuery, Bootstrap and the marker fonts are for folium features this page does not use).
_ASSETS = {
    "leaflet": ("leaflet", "dist/leaflet.js"),
    "leaflet_css": ("leaflet", "dist/leaflet.css"),
    "vectorGrid": ("leaflet.vectorgrid", "dist/Leaflet.VectorGrid.bundled.min.js"),
}
_DROPPED = {"jquery", "bootstrap", "awesome_markers", "bootstrap_css", "glyphicons_css",
            "awesome_markers_font_css", "awesome_markers_css", "awesome_rotate_css"}


@dataclass(frozen=True)
class MapRequest:
    """What a staff member asked to see (the page's query parameters)."""

    partnership: str
    geography: str | None = None
    indicator: str | None = None
    denominator: str | None = None
    period: str | None = None
    scheme: str = "quantiles"
    k: int = 5
    breaks: tuple[float, ...] | None = None
    baseline: tuple[str, ...] | None = None
    threshold: float = 25.0

    def measure_query(self, period: str | None = None) -> dict[str, str]:
        out = {"indicator": self.indicator, "denominator": self.denominator,
               "baseline": ",".join(self.baseline) if self.baseline else None,
               "threshold": f"{self.threshold:g}" if self.threshold != 25.0 else None,
               "period": period}
        return {k: v for k, v in out.items() if v}


@dataclass(frozen=True)
class PageUrls:
    """Where a page finds its tiles, downloads, chart and assets: the service's routes."""

    static: str = STATIC_URL
    standalone: bool = False      # a static site: no server to choose another measure from

    def tiles(self, set_id: str, period: str, query: dict[str, str]) -> str:
        return f"/tiles/{set_id}/{{z}}/{{x}}/{{y}}.mvt?{urlencode(query)}"

    def items(self, set_id: str, period: str, selection: dict, fmt: str) -> str:
        query = {**selection, "f": "csv"} if fmt == "csv" else selection
        return f"/collections/{set_id}/items?{urlencode(query)}"

    def chart(self, partnership: str, query: dict[str, str]) -> str:
        return f"/maps/{partnership}/gap.svg?{urlencode(query)}"


@dataclass(frozen=True)
class StaticSiteUrls(PageUrls):
    """The files of a static site (``geo-cs export site``): a PMTiles archive per period read in
    the browser, GeoJSON and CSV per period, the chart as SVG, assets beside the page."""

    static: str = "static"
    standalone: bool = True

    def tiles(self, set_id: str, period: str, query: dict[str, str]) -> str:
        return f"pmtiles://tiles/{period}.pmtiles/{{z}}/{{x}}/{{y}}"

    def items(self, set_id: str, period: str, selection: dict, fmt: str) -> str:
        return f"data/{period}.{'csv' if fmt == 'csv' else 'geojson'}"

    def chart(self, partnership: str, query: dict[str, str]) -> str:
        return "gap.svg"


def _palette(k: int) -> list[str]:
    if k <= 1:
        return [PALETTE[-3]]
    return [PALETTE[round(i * (len(PALETTE) - 1) / (k - 1))] for i in range(k)]


def _number(value: object) -> float | None:
    if value is None or value is pd.NA:
        return None
    value = float(value)
    return round(value, 3) if math.isfinite(value) else None


def _period_summaries(values: AreaValues, codes: list[str], gap: pd.DataFrame | None) -> dict:
    """Per period: the partnership's rate and its cohort's figures (for the panel and tooltips)."""
    mine = values.frame[values.frame["code"].isin(codes)]
    out: dict[str, dict] = {}
    for period in values.period_ids:
        rows = mine[mine["period_id"] == period]
        ok = rows["count"].notna() & (rows["denominator"] > 0)
        den = rows.loc[ok, "denominator"].sum()
        summary = {"partnership_value": _number(100 * rows.loc[ok, "count"].sum() / den) if den else None}
        if gap is not None and not gap.empty:
            hit = gap[gap["period_id"] == period]
            if not hit.empty:
                g = hit.iloc[0]
                summary.update({k: _number(g[k]) for k in (
                    "cohort_rate", "rest_rate", "gap", "gap_low", "gap_high", "cohort_share")})
                summary["n_cohort"] = int(g["n_cohort"])
                summary["n_rest"] = int(g["n_rest"])
        out[period] = summary
    return out


def page_config(req: MapRequest, values: AreaValues, codes: list[str], outline: dict,
                gap: pd.DataFrame | None, partnership_name: str, urls: PageUrls | None = None) -> dict:
    """Everything the page's script needs, as JSON-able data."""
    urls = urls or PageUrls()
    mine = values.frame[values.frame["code"].isin(codes)]
    breaks = class_breaks(mine["value"], req.scheme, req.k, list(req.breaks) if req.breaks else None)
    period = values.check_period(req.period)
    summaries = _period_summaries(values, codes, gap)
    set_id = values.measure.set_id
    periods = []
    for row in values.periods.itertuples():
        q = req.measure_query(row.period_id)
        selection = {**q, "partnership": req.partnership, "limit": 10000}
        periods.append({
            "id": row.period_id, "label": row.period_label,
            "tiles": urls.tiles(set_id, row.period_id, q),
            "geojson": urls.items(set_id, row.period_id, selection, "geojson"),
            "csv": urls.items(set_id, row.period_id, selection, "csv"),
            "summary": summaries[row.period_id],
            "estimated": bool((mine.loc[mine["period_id"] == row.period_id, "estimated_share"] > 0).any()),
        })
    chart_query = {"geography": set_id, **req.measure_query()}
    return {
        "layer": set_id, "partnership": req.partnership, "partnershipName": partnership_name,
        "measure": values.measure.label, "unit": values.unit, "isRate": values.measure.is_rate,
        "breaks": breaks, "colours": _palette(len(breaks)), "noData": NO_DATA,
        "periods": periods, "start": values.period_ids.index(period),
        "codes": sorted(codes), "bounds": outline.get("bbox"),
        "baseline": list(values.baseline), "threshold": values.threshold,
        "chart": urls.chart(req.partnership, chart_query) if gap is not None else None,
        "standalone": urls.standalone,
        "attribution": OGL_ATTRIBUTION,
        "disclosure": values.disclosure.note if values.disclosure else None,
        "minCount": values.disclosure.min_count if values.disclosure else None,
    }


def _localise_assets(element, static: str = STATIC_URL) -> None:
    """Point every folium asset at the app's vendored copy; refuse any this page cannot serve."""
    for child in [element, *element._children.values()]:
        for attr, kind in (("default_js", "js"), ("default_css", "css")):
            assets = getattr(child, attr, None)
            if not assets:
                continue
            local = []
            for name, _url in assets:
                if name in _DROPPED:
                    continue
                if name not in _ASSETS:
                    raise RuntimeError(f"folium asset {name!r} ({kind}) is not vendored")
                local.append((name, vendor_url(*_ASSETS[name], static)))
            setattr(child, attr, local)
        if child is not element:
            _localise_assets(child, static)


class _PageScript(MacroElement):
    """Starts the page's script once the map and both tile layers exist."""

    _template = Template("""
        {% macro script(this, kwargs) %}
        geoCs.init({{ this.map.get_name() }}, {{ this.choropleth.get_name() }},
                   {{ this.hatch.get_name() }}, {{ this.outline.get_name() }});
        {% endmacro %}
    """)

    def __init__(self, map_: folium.Map, choropleth, hatch, outline) -> None:
        super().__init__()
        self.map, self.choropleth, self.hatch, self.outline = map_, choropleth, hatch, outline


class MapSources:
    """Where a page's data comes from: straight from the store (static sites, scripts); the web
    service subclasses it to answer from its caches (``api.deps.CachedMapSources``)."""

    def __init__(self, store: Store, disclosure: DisclosureControl | None = None) -> None:
        self.store = store
        self.disclosure = disclosure

    def codes(self, partnership: str, set_id: str) -> list[str]:
        return resolve(self.store, get_partnerships([partnership])[0], set_id).codes

    def values(self, set_id: str, indicator: str, denominator: str | None,
               baseline: tuple[str, ...] | None, threshold: float) -> AreaValues:
        measure = layers.resolve_measure(self.store, set_id, indicator, denominator)
        return layers.area_values(self.store, measure, baseline=baseline, threshold=threshold,
                                  disclosure=self.disclosure)

    def outline(self, partnership: str) -> dict:
        return features.partnership_outline(self.store, partnership)

    def gap(self, values: AreaValues, partnership: str) -> pd.DataFrame:
        return layers.partnership_gap(self.store, values.measure, partnership, baseline=values.baseline,
                                      threshold=values.threshold, disclosure=self.disclosure)

    def view(self, req: MapRequest) -> MapRequest:
        geography, indicator, denominator = layers.store_view(
            self.store, req.partnership, req.geography, req.indicator, req.denominator)
        return replace(req, geography=geography, indicator=indicator, denominator=denominator)


@dataclass
class MapData:
    """Everything one partnership map shows."""

    req: MapRequest
    values: AreaValues
    codes: list[str]
    outline: dict
    gap: pd.DataFrame | None
    name: str
    measures: list[str]
    min_zoom: int


def gather_map(sources: MapSources, req: MapRequest) -> MapData:
    """The data of ``req``'s map: the view completed from the defaults, the measure's values,
    the partnership's areas and outline, and its gap table when the measure is a rate."""
    name = get_partnerships([req.partnership])[0].phase_at(None).name
    req = sources.view(req)
    values = sources.values(req.geography, req.indicator, req.denominator, req.baseline, req.threshold)
    codes = sources.codes(req.partnership, req.geography)
    gap = None
    # a gap needs a rate, and values for the partnership's areas (IMD covers England only)
    if values.measure.is_rate and values.unit == "%" and values.frame["code"].isin(codes).any():
        gap = sources.gap(values, req.partnership)
    store = sources.store
    measures = sorted(set(layers.available_measures(store, req.geography)["measure"]))
    sets = tiles.tile_sets(store)
    row = sets[sets["set_id"] == req.geography]
    if row.empty:
        raise NotFoundError(f"no {req.geography} boundaries to map; sets with boundaries: "
                            f"{', '.join(sets['set_id'])}")
    min_zoom = int(row["minzoom"].iloc[0])
    return MapData(req, values, codes, sources.outline(req.partnership), gap, name, measures, min_zoom)


def render_map_page(req: MapRequest, values: AreaValues, codes: list[str], outline: dict,
                    gap: pd.DataFrame | None, partnership_name: str, measures: list[str],
                    min_zoom: int = 0, urls: PageUrls | None = None) -> str:
    """The whole HTML page (folium figure, side panel, config) for one partnership map.

    ``min_zoom``: the layer's TileJSON minzoom (small areas are not drawn below it).
    """
    urls = urls or PageUrls()
    config = page_config(req, values, codes, outline, gap, partnership_name, urls)
    west, south, east, north = config["bounds"] or (-8.0, 49.9, 1.8, 60.9)
    fmap = folium.Map(location=[(south + north) / 2, (west + east) / 2], zoom_start=10, tiles=None,
                      control_scale=True, width="100%", height="100%", min_zoom=min_zoom)
    fmap.fit_bounds([[south, west], [north, east]])
    layer = config["layer"]
    common = (f'"maxNativeZoom": 14, "attribution": {json.dumps(OGL_ATTRIBUTION)}, '
              f'"getFeatureId": function (f) {{ return f.properties.code; }}')
    start_tiles = config["periods"][config["start"]]["tiles"]
    choropleth = VectorGridProtobuf(
        start_tiles, name=values.measure.label,
        options=f'{{"vectorTileLayerStyles": {{{json.dumps(layer)}: geoCs.choroplethStyle}}, '
                f'"interactive": true, "rendererFactory": L.canvas.tile, {common}}}')
    choropleth.add_to(fmap)
    hatch = VectorGridProtobuf(
        start_tiles, name="Estimated through a boundary change (hatched)",
        options=f'{{"vectorTileLayerStyles": {{{json.dumps(layer)}: geoCs.hatchStyle}}, '
                f'"interactive": false, "className": "geo-cs-hatch", "rendererFactory": L.svg.tile, '
                f'{common}}}')
    hatch.add_to(fmap)
    outline_layer = folium.GeoJson(
        outline, name=f"{partnership_name} (outline)",
        style_function=lambda _f: {"color": "#1f3a93", "weight": 3, "fill": False, "dashArray": "6 4"},
        interactive=False)
    outline_layer.add_to(fmap)
    folium.LayerControl(collapsed=True).add_to(fmap)

    root = fmap.get_root()
    # a static site reads its tiles from PMTiles archives: the reader, vendored like Leaflet
    pmtiles_reader = (f'<script src="{vendor_url("pmtiles", "dist/pmtiles.js", urls.static)}"></script>'
                      if urls.standalone else "")
    root.header.add_child(Element(
        # no favicon request to 404 on (a static host has none; the service neither)
        '<link rel="icon" href="data:,"/>'
        f'<link rel="stylesheet" href="{urls.static}/geo-cs/map.css"/>'
        f'<script>window.geoCsConfig = {json.dumps(config)};</script>{pmtiles_reader}'
        f'<script src="{urls.static}/geo-cs/map.js"></script>'), name="geo_cs_head")
    root.html.add_child(Element(TEMPLATES.get_template("panel.html").render(
        config=config, req=req, measures=measures, schemes=("quantiles", "fisher_jenks",
                                                            "equal_interval", "own"))),
        name="geo_cs_panel")
    fmap.add_child(_PageScript(fmap, choropleth, hatch, outline_layer))
    _localise_assets(root, urls.static)
    return root.render()


def render_index(partnerships: list[dict]) -> str:
    """The list of partnerships, each linking to its map."""
    return TEMPLATES.get_template("index.html").render(partnerships=partnerships,
                                                        attribution=OGL_ATTRIBUTION)

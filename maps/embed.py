"""A partnership's map to embed in another site's page (``/maps/{partnership}/embed``): the map,
its legend, the answer in words, the source and a link to the full page, for an iframe on a
council intranet page.

It is the full page's map (:func:`geo_cs.maps.page.page_config`, the same data block and the
same ``static/geo-cs/map.js``) with ``embed`` set in its data: the script then leaves out
everything of the side panel (search, the period slider, the figures, the areas ranked, the
settings) and every map control but zoom, so that the map reads at an iframe's size (600×450,
or 320×400 on a phone). What the visitor can change is the full page's: the link opens it on
the same view.

Which sites may frame it is the service's setting (``GEO_CS_FRAME_ANCESTORS``): its
Content-Security-Policy is made by :mod:`geo_cs.api.headers`, not here.
"""

from __future__ import annotations

from urllib.parse import quote, urlencode

from geo_cs.maps import STATIC_URL, asset_url, vendor_url
from geo_cs.maps.page import TEMPLATES, MapData, MapRequest, PageUrls, json_for_html, page_config


def full_map_url(req: MapRequest) -> str:
    """The full page of the view ``req`` asks for (as asked: a default left out stays out, so a
    bare embed links to the bare page, which the service draws ahead of its first visitor).

    Built from the request, not from the address it came with: the embed page is cached under
    the request, and another visitor's extra parameters must not end up in its link. The page's
    script puts the address's own query on the link (zoom, centre, a selected area).

    >>> full_map_url(MapRequest("glasgow", period="simd2016", threshold=20.0, breaks=(10.0, 22.5)))
    '/maps/glasgow?period=simd2016&breaks=10%2C22.5&threshold=20'
    """
    query = {
        "geography": req.geography,
        "indicator": req.indicator,
        "denominator": req.denominator,
        "period": req.period,
        # own breaks alone stand for the "own" scheme (api.routers.maps.map_request)
        "scheme": req.scheme if req.scheme not in ("quantiles", "own") else None,
        "k": str(req.k) if req.k != 5 else None,
        "breaks": ",".join(f"{b:.15g}" for b in req.breaks) if req.breaks else None,
        "baseline": ",".join(req.baseline) if req.baseline else None,
        "threshold": f"{req.threshold:g}" if req.threshold != 25.0 else None,
    }
    shown = urlencode({k: v for k, v in query.items() if v})
    return f"/maps/{quote(req.partnership, safe='')}" + (f"?{shown}" if shown else "")


def render_embed_page(data: MapData, asked: MapRequest | None = None, urls: PageUrls | None = None) -> str:
    """The embed page of a map: ``data`` as the full page gathers it, ``asked`` the request as
    it came (for the link to the full page; default: ``data.req``). The service's routes only:
    a static site has no embed view."""
    urls = urls or PageUrls()
    config = {**page_config(data, urls), "embed": True}
    assets = {
        "leaflet": vendor_url("leaflet", "dist/leaflet.js", STATIC_URL),
        "leaflet_css": vendor_url("leaflet", "dist/leaflet.css", STATIC_URL),
        "vectorgrid": vendor_url("leaflet.vectorgrid", "dist/Leaflet.VectorGrid.bundled.min.js", STATIC_URL),
        "map_js": asset_url("geo-cs/map.js", STATIC_URL),
        "map_css": asset_url("geo-cs/map.css", STATIC_URL),
    }
    period = config["periods"][config["start"]]
    return TEMPLATES.get_template("embed.html").render(
        config=config,
        config_json=json_for_html(config),
        assets=assets,
        period=period,
        full_url=full_map_url(asked or data.req),
    )

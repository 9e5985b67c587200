/* geo-cs web map: the map, choropleth styling, tooltips, the period slider, legend and figures.
 *
 * The page (maps/templates/map.html) holds no script: its data are JSON in the data block
 * #geo-cs-config, read here. Everything that comes from data (area, partnership and measure
 * names, labels) is written into the page as text (textContent, text nodes), never as HTML, so
 * a name such as "<img src=x onerror=...>" shows as those characters.
 */
(function () {
  "use strict";
  var cfg = JSON.parse(document.getElementById("geo-cs-config").textContent);
  var inPartnership = new Set(cfg.codes);
  var current = cfg.start;

  // Leaflet.VectorGrid 1.3.0 calls L.DomEvent.fakeStop on every click; Leaflet 1.8 removed it.
  // Its Leaflet 1.7 meaning: mark the DOM event handled, so the map does not treat the click as
  // its own (Leaflet 1.9 still honours the mark, see Map._handleDOMEvent / _isClickDisabled).
  if (window.L && L.DomEvent && !L.DomEvent.fakeStop) {
    L.DomEvent.fakeStop = function (e) { e._stopped = true; };
  }

  function fmt(value, digits) {
    if (value === null || value === undefined || Number.isNaN(value)) { return "n/a"; }
    return Number(value).toFixed(digits === undefined ? 1 : digits);
  }

  function signed(value) {
    if (value === null || value === undefined) { return "n/a"; }
    return (value > 0 ? "+" : "") + fmt(value);
  }

  // A rate that cannot be right: over 100% (more claimants than people) or outside its own
  // interval. It is flagged and explained, never coloured or shown as a figure.
  function invalidRate(p) {
    if (cfg.unit !== "%" || p.value === null || p.value === undefined) { return false; }
    if (p.value > 100) { return true; }
    var hasInterval = p.value_low !== undefined && p.value_low !== null;
    return hasInterval && (p.value < p.value_low - 1e-9 || p.value > p.value_high + 1e-9);
  }

  function classOf(value) {
    if (value === null || value === undefined) { return -1; }
    for (var i = 0; i < cfg.breaks.length; i++) {
      if (value <= cfg.breaks[i]) { return i; }
    }
    return cfg.breaks.length - 1;
  }

  function colour(p) {
    var k = invalidRate(p) ? -1 : classOf(p.value);
    return k < 0 ? cfg.noData : cfg.colours[k];
  }

  // -- building DOM from data, as text --------------------------------------------------------

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (name) {
      if (name === "className") { node.className = attrs[name]; } else { node.setAttribute(name, attrs[name]); }
    });
    (children || []).forEach(function (child) {
      if (child === null || child === undefined) { return; }
      node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
    });
    return node;
  }

  function replaceChildren(node, children) {
    while (node.firstChild) { node.removeChild(node.firstChild); }
    children.forEach(function (child) { node.appendChild(child); });
  }

  var geoCs = {
    colour: colour,
    invalidRate: invalidRate,
    // Areas of the partnership in full colour, the rest faded; the cohort outlined in black.
    choroplethStyle: function (p) {
      var mine = inPartnership.has(p.code);
      return {
        fill: true, fillColor: colour(p), fillOpacity: mine ? 0.85 : 0.35,
        stroke: true, color: p.worst && mine ? "#111111" : "#ffffff",
        weight: p.worst && mine ? 2.4 : 0.4, opacity: mine ? 1 : 0.5
      };
    },
    // Only areas with a share estimated through a boundary change are drawn, hatched.
    hatchStyle: function (p) {
      // no style at all (not an invisible one): VectorGrid then makes no SVG path for the area
      if (!(p.estimated_share > 0)) { return []; }
      return { fill: true, fillColor: "url(#geo-cs-hatch)", fillOpacity: Math.min(1, 0.35 + p.estimated_share),
               stroke: false, weight: 0 };
    }
  };

  function unitText() {
    return cfg.unit === "%" ? "%" : (cfg.unit ? " " + cfg.unit : "");
  }

  function tooltipContent(p) {
    var period = cfg.periods[current];
    var unit = unitText();
    var lines = [[el("strong", {}, [p.name || p.code]), " ", el("span", {}, [p.code])]];
    var shown;
    if (p.suppressed) {
      // a value withheld by disclosure control is not missing data: say which it is
      shown = "withheld (fewer than " + (cfg.minCount || 10) + " people)";
    } else if (invalidRate(p)) {
      shown = "not a valid rate (" + fmt(p.value) + "%: the denominator does not fit the count)";
    } else {
      shown = fmt(p.value) + unit;
    }
    lines.push([cfg.measure + ", " + period.label + ": ", el("b", {}, [shown])]);
    var valid = !p.suppressed && !invalidRate(p);
    if (valid && p.value_low !== undefined && p.value_low !== null) {
      lines.push(["95% interval " + fmt(p.value_low) + "–" + fmt(p.value_high) + unit]);
    }
    var whole = period.summary.partnership_value;
    if (valid && cfg.isRate && whole !== null && whole !== undefined && p.value !== undefined && p.value !== null) {
      lines.push(["Gap with " + cfg.partnershipName + " (" + fmt(whole) + "%): " + signed(p.value - whole) + " points"]);
    }
    if (p.worst) { lines.push(["Worst-performing neighbourhood (baseline above " + cfg.threshold + "%)"]); }
    if (p.estimated_share > 0) {
      lines.push(["Estimated: " + fmt(100 * p.estimated_share, 0) + "% of this value came through a boundary change"]);
    }
    if (!inPartnership.has(p.code)) { lines.push([el("i", {}, ["Outside " + cfg.partnershipName])]); }
    var box = el("div", { className: "geo-cs-tip" });
    lines.forEach(function (parts) { box.appendChild(el("div", {}, parts)); });
    return box;
  }

  function legendNodes() {
    var unit = cfg.unit === "%" ? "%" : "";
    var nodes = [el("h2", {}, ["Legend"]),
                 el("p", {}, ["Classes pooled over all periods, so colours compare across time."])];
    var low = null;
    function row(swatch, label) { return el("div", { className: "row" }, [swatch, label]); }
    for (var i = 0; i < cfg.breaks.length; i++) {
      var swatch = el("span", { className: "swatch" });
      swatch.style.background = cfg.colours[i];
      nodes.push(row(swatch, (low === null ? "up to " : fmt(low) + " – ") + fmt(cfg.breaks[i]) + unit));
      low = cfg.breaks[i];
    }
    var none = el("span", { className: "swatch" });
    none.style.background = cfg.noData;
    nodes.push(row(none, cfg.disclosure ? "No data, withheld or not a valid rate" : "No data or not a valid rate"));
    nodes.push(row(el("span", { className: "swatch worst" }), "Worst-performing neighbourhood"));
    nodes.push(row(el("span", { className: "swatch hatch" }), "Estimated through a boundary change"));
    return nodes;
  }

  function summaryNodes() {
    var period = cfg.periods[current];
    var s = period.summary;
    if (s.invalid) {
      return [el("h2", {}, [period.label]),
              el("p", { className: "geo-cs-note" }, [
                "No valid figures: the partnership's rate comes out over 100%, so the denominator " +
                "does not fit this indicator's count. Choose the indicator again to take its own denominator."])];
    }
    var rows = [["Partnership", fmt(s.partnership_value)]];
    if (s.cohort_rate !== undefined) {
      rows.push(["Worst-performing neighbourhoods (" + s.n_cohort + ")", fmt(s.cohort_rate)]);
      rows.push(["Rest of the partnership (" + s.n_rest + ")", fmt(s.rest_rate)]);
      rows.push(["Gap, points (95% interval)", signed(s.gap) + " (" + fmt(s.gap_low) + " to " + fmt(s.gap_high) + ")"]);
      rows.push(["Cohort's share of working-age people", fmt(100 * s.cohort_share) + "%"]);
    }
    var table = el("table", {}, rows.map(function (r) {
      return el("tr", {}, [el("td", {}, [r[0]]), el("td", { className: "num" }, [r[1]])]);
    }));
    return [el("h2", {}, [period.label]), table];
  }

  // The address says what is shown: a shared link opens the same period (the rest of the view
  // is already in the address, from the form that chose it).
  function writeAddress(period) {
    if (!window.history || !window.history.replaceState) { return; }
    var url = new URL(window.location.href);
    url.searchParams.set("period", period.id);
    window.history.replaceState(null, "", url.toString());
    var field = document.getElementById("geo-cs-period-field");
    if (field) { field.value = period.id; }
  }

  function showPeriod(index, layers, fromUser) {
    current = index;
    var period = cfg.periods[index];
    // VectorGrid's setUrl redraws even when the URL is the same: every tile would be fetched,
    // decoded and drawn twice on opening
    if (layers.choropleth._url !== period.tiles) { layers.choropleth.setUrl(period.tiles); }
    if (layers.hatch._url !== period.tiles) { layers.hatch.setUrl(period.tiles); }
    document.getElementById("geo-cs-period-label").textContent = period.label;
    document.getElementById("geo-cs-period").setAttribute("aria-valuetext", period.label);
    replaceChildren(document.getElementById("geo-cs-summary"), summaryNodes());
    document.getElementById("geo-cs-geojson").href = period.geojson;
    document.getElementById("geo-cs-csv").href = period.csv;
    var chart = document.getElementById("geo-cs-chart-img");
    if (chart && cfg.chart) {
      chart.src = cfg.chart + (cfg.chart.indexOf("?") < 0 ? "?" : "&") + "highlight=" + encodeURIComponent(period.id);
    }
    if (fromUser) { writeAddress(period); }
    document.body.dataset.period = period.id;
  }

  // The form's selects apply at once; the breaks field with its button. A new indicator takes
  // its own denominator: the previous indicator's one is dropped from the form.
  function wireForm() {
    var form = document.getElementById("geo-cs-choose");
    if (!form) { return; }
    Array.prototype.forEach.call(form.querySelectorAll("[data-submit]"), function (field) {
      field.addEventListener("change", function () {
        if (field.id === "geo-cs-indicator") {
          var denominator = document.getElementById("geo-cs-denominator");
          if (denominator) { denominator.parentNode.removeChild(denominator); }
        }
        form.submit();
      });
    });
  }

  function startIndex() {
    // a static site has no server to read ?period=: the page does
    var asked = new URL(window.location.href).searchParams.get("period");
    for (var i = 0; asked && i < cfg.periods.length; i++) {
      if (cfg.periods[i].id === asked) { return i; }
    }
    return cfg.start;
  }

  // Both tile layers (colours on canvas, hatching on SVG) draw the same tiles, and the slider
  // returns to periods already drawn: each tile is fetched and decoded once per view and shared.
  // VectorGrid only reads a decoded tile (its symbolizers copy the points), so sharing is safe.
  // The most recently used TILE_MEMORY tiles are kept (a view is some 25 tiles a period).
  var TILE_MEMORY = 256;
  var decodedTiles = new Map();
  function shareDecodedTiles(layer) {
    var fetchAndDecode = layer._getVectorTilePromise;
    layer._getVectorTilePromise = function (coords, tile) {
      var key = this._url + " " + coords.z + "/" + coords.x + "/" + coords.y;
      var found = decodedTiles.get(key);
      if (found) {
        decodedTiles.delete(key);     // re-inserted below: the Map's order is the use order
      } else {
        found = fetchAndDecode.call(this, coords, tile);
        found.catch(function () { decodedTiles.delete(key); });
      }
      decodedTiles.set(key, found);
      if (decodedTiles.size > TILE_MEMORY) { decodedTiles.delete(decodedTiles.keys().next().value); }
      return found;
    };
    return layer;
  }

  function init() {
    var bounds = cfg.bounds || [-8.0, 49.9, 1.8, 60.9];
    var map = L.map("geo-cs-map", { minZoom: cfg.minZoom, maxZoom: cfg.maxNativeZoom + 2 });
    map.fitBounds([[bounds[1], bounds[0]], [bounds[3], bounds[2]]]);
    L.control.scale({ imperial: false }).addTo(map);
    var styles = {};
    var hatchStyles = {};
    styles[cfg.layer] = geoCs.choroplethStyle;
    hatchStyles[cfg.layer] = geoCs.hatchStyle;
    var start = cfg.periods[current].tiles;
    var common = { maxNativeZoom: cfg.maxNativeZoom, getFeatureId: function (f) { return f.properties.code; } };
    var choropleth = shareDecodedTiles(L.vectorGrid.protobuf(start, L.extend({
      vectorTileLayerStyles: styles, interactive: true, rendererFactory: L.canvas.tile,
      attribution: cfg.attribution
    }, common))).addTo(map);
    var hatch = shareDecodedTiles(L.vectorGrid.protobuf(start, L.extend({
      vectorTileLayerStyles: hatchStyles, interactive: false, className: "geo-cs-hatch",
      rendererFactory: L.svg.tile
    }, common))).addTo(map);
    var outline = L.geoJSON(cfg.outline, {
      style: function () { return { color: "#1f3a93", weight: 3, fill: false, dashArray: "6 4" }; },
      interactive: false
    }).addTo(map);
    var overlays = {};
    overlays[cfg.measure] = choropleth;
    overlays["Estimated through a boundary change (hatched)"] = hatch;
    overlays[cfg.partnershipName + " (outline)"] = outline;
    // the control writes its labels as HTML: give it text that is already escaped
    var escaped = {};
    Object.keys(overlays).forEach(function (name) {
      var holder = document.createElement("span");
      holder.textContent = name;
      escaped[holder.innerHTML] = overlays[name];
    });
    L.control.layers(null, escaped, { collapsed: true }).addTo(map);

    var layers = { choropleth: choropleth, hatch: hatch };
    var tip = L.tooltip({ sticky: true, className: "geo-cs-tooltip", direction: "top", offset: [0, -8] });
    choropleth.on("mouseover", function (e) {
      tip.setLatLng(e.latlng).setContent(tooltipContent(e.layer.properties));
      map.openTooltip(tip);
    });
    choropleth.on("mouseout", function () { map.closeTooltip(tip); });
    // tests and users can tell when the period's tiles have been drawn
    choropleth.on("loading", function () { document.body.dataset.tiles = "loading"; });
    choropleth.on("load", function () { document.body.dataset.tiles = "loaded"; });
    outline.bringToFront();
    replaceChildren(document.getElementById("geo-cs-legend"), legendNodes());
    var slider = document.getElementById("geo-cs-period");
    slider.addEventListener("input", function () { showPeriod(Number(slider.value), layers, true); });
    current = startIndex();
    slider.value = String(current);
    showPeriod(current, layers, false);
    wireForm();
    geoCs.map = map;
    geoCs.layers = layers;
  }

  // A static site's tiles are in PMTiles archives ("pmtiles://ARCHIVE/{z}/{x}/{y}"): VectorGrid
  // fetches tile URLs, so such fetches are answered from the archive with the vendored reader.
  if (window.pmtiles && cfg.periods.some(function (p) { return p.tiles.indexOf("pmtiles://") === 0; })) {
    var archives = {};
    var plainFetch = window.fetch.bind(window);
    window.fetch = function (input, init) {
      var url = typeof input === "string" ? input : input.url;
      var match = /^pmtiles:\/\/(.+)\/(\d+)\/(\d+)\/(\d+)$/.exec(url);
      if (!match) { return plainFetch(input, init); }
      var archive = archives[match[1]] || (archives[match[1]] = new pmtiles.PMTiles(match[1]));
      return archive.getZxy(Number(match[2]), Number(match[3]), Number(match[4])).then(function (tile) {
        return tile ? new Response(tile.data, { status: 200 }) : new Response(null, { status: 204 });
      });
    };
  }

  window.geoCs = geoCs;
  init();
}());

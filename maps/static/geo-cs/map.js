/* geo-cs web map: choropleth styling, tooltips, the period slider, legend and figures.
 *
 * The page sets window.geoCsConfig (built by maps/page.py) before this file loads. Nothing here
 * touches Leaflet until geoCs.init runs, so the load order of scripts does not matter.
 */
(function () {
  "use strict";
  var cfg = window.geoCsConfig;
  var inPartnership = new Set(cfg.codes);
  var current = cfg.start;

  function fmt(value, digits) {
    if (value === null || value === undefined || Number.isNaN(value)) { return "n/a"; }
    return Number(value).toFixed(digits === undefined ? 1 : digits);
  }

  function signed(value) {
    if (value === null || value === undefined) { return "n/a"; }
    return (value > 0 ? "+" : "") + fmt(value);
  }

  function classOf(value) {
    if (value === null || value === undefined) { return -1; }
    for (var i = 0; i < cfg.breaks.length; i++) {
      if (value <= cfg.breaks[i]) { return i; }
    }
    return cfg.breaks.length - 1;
  }

  function colour(value) {
    var k = classOf(value);
    return k < 0 ? cfg.noData : cfg.colours[k];
  }

  var geoCs = {
    colour: colour,
    // Areas of the partnership in full colour, the rest faded; the cohort outlined in black.
    choroplethStyle: function (p) {
      var mine = inPartnership.has(p.code);
      return {
        fill: true, fillColor: colour(p.value), fillOpacity: mine ? 0.85 : 0.35,
        stroke: true, color: p.worst && mine ? "#111111" : "#ffffff",
        weight: p.worst && mine ? 2.4 : 0.4, opacity: mine ? 1 : 0.5
      };
    },
    // Only areas with a share estimated through a boundary change are drawn, hatched.
    hatchStyle: function (p) {
      if (!(p.estimated_share > 0)) { return { fill: false, stroke: false, weight: 0 }; }
      return { fill: true, fillColor: "url(#geo-cs-hatch)", fillOpacity: Math.min(1, 0.35 + p.estimated_share),
               stroke: false, weight: 0 };
    }
  };

  function tooltipHtml(p) {
    var period = cfg.periods[current];
    var unit = cfg.unit === "%" ? "%" : (cfg.unit ? " " + cfg.unit : "");
    // a value withheld by disclosure control is not missing data: say which it is
    var shown = p.suppressed ? "withheld (fewer than " + (cfg.minCount || 10) + " people)"
                             : fmt(p.value) + unit;
    var lines = ["<strong>" + (p.name || p.code) + "</strong> <span>" + p.code + "</span>",
                 cfg.measure + ", " + period.label + ": <b>" + shown + "</b>"];
    if (p.value_low !== undefined && p.value_low !== null) {
      lines.push("95% interval " + fmt(p.value_low) + "–" + fmt(p.value_high) + unit);
    }
    var whole = period.summary.partnership_value;
    if (cfg.isRate && whole !== null && whole !== undefined && p.value !== undefined && p.value !== null) {
      lines.push("Gap with " + cfg.partnershipName + " (" + fmt(whole) + "%): " + signed(p.value - whole) + " points");
    }
    if (p.worst) { lines.push("Worst-performing neighbourhood (baseline above " + cfg.threshold + "%)"); }
    if (p.estimated_share > 0) {
      lines.push("Estimated: " + fmt(100 * p.estimated_share, 0) + "% of this value came through a boundary change");
    }
    if (!inPartnership.has(p.code)) { lines.push("<i>Outside " + cfg.partnershipName + "</i>"); }
    return lines.join("<br>");
  }

  function legendHtml() {
    var unit = cfg.unit === "%" ? "%" : "";
    var rows = [];
    var low = null;
    for (var i = 0; i < cfg.breaks.length; i++) {
      var label = (low === null ? "up to " : fmt(low) + " – ") + fmt(cfg.breaks[i]) + unit;
      rows.push('<div class="row"><span class="swatch" style="background:' + cfg.colours[i] + '"></span>' + label + "</div>");
      low = cfg.breaks[i];
    }
    rows.push('<div class="row"><span class="swatch" style="background:' + cfg.noData + '"></span>' +
              (cfg.disclosure ? "No data or withheld" : "No data") + '</div>');
    rows.push('<div class="row"><span class="swatch worst"></span>Worst-performing neighbourhood</div>');
    rows.push('<div class="row"><span class="swatch hatch"></span>Estimated through a boundary change</div>');
    return "<h2>Legend</h2><p>Classes pooled over all periods, so colours compare across time.</p>" + rows.join("");
  }

  function summaryHtml() {
    var period = cfg.periods[current];
    var s = period.summary;
    var rows = [["Partnership", fmt(s.partnership_value)]];
    if (s.cohort_rate !== undefined) {
      rows.push(["Worst-performing neighbourhoods (" + s.n_cohort + ")", fmt(s.cohort_rate)]);
      rows.push(["Rest of the partnership (" + s.n_rest + ")", fmt(s.rest_rate)]);
      rows.push(["Gap, points (95% interval)", signed(s.gap) + " (" + fmt(s.gap_low) + " to " + fmt(s.gap_high) + ")"]);
      rows.push(["Cohort's share of working-age people", fmt(100 * s.cohort_share) + "%"]);
    }
    return "<h2>" + period.label + "</h2><table>" + rows.map(function (r) {
      return "<tr><td>" + r[0] + '</td><td class="num">' + r[1] + "</td></tr>";
    }).join("") + "</table>";
  }

  function showPeriod(index, layers) {
    current = index;
    var period = cfg.periods[index];
    layers.choropleth.setUrl(period.tiles);
    layers.hatch.setUrl(period.tiles);
    document.getElementById("geo-cs-period-label").textContent = period.label;
    document.getElementById("geo-cs-period").setAttribute("aria-valuetext", period.label);
    document.getElementById("geo-cs-summary").innerHTML = summaryHtml();
    document.getElementById("geo-cs-geojson").href = period.geojson;
    document.getElementById("geo-cs-csv").href = period.csv;
    var chart = document.getElementById("geo-cs-chart-img");
    if (chart && cfg.chart) {
      chart.src = cfg.chart + (cfg.chart.indexOf("?") < 0 ? "?" : "&") + "highlight=" + encodeURIComponent(period.id);
    }
    document.body.dataset.period = period.id;
  }

  geoCs.init = function (map, choropleth, hatch, outline) {
    var layers = { choropleth: choropleth, hatch: hatch };
    var tip = L.tooltip({ sticky: true, className: "geo-cs-tooltip", direction: "top", offset: [0, -8] });
    choropleth.on("mouseover", function (e) {
      tip.setLatLng(e.latlng).setContent(tooltipHtml(e.layer.properties));
      map.openTooltip(tip);
    });
    choropleth.on("mouseout", function () { map.closeTooltip(tip); });
    // tests and users can tell when the period's tiles have been drawn
    choropleth.on("loading", function () { document.body.dataset.tiles = "loading"; });
    choropleth.on("load", function () { document.body.dataset.tiles = "loaded"; });
    outline.bringToFront();
    document.getElementById("geo-cs-legend").innerHTML = legendHtml();
    var slider = document.getElementById("geo-cs-period");
    slider.addEventListener("input", function () { showPeriod(Number(slider.value), layers); });
    showPeriod(current, layers);
    geoCs.map = map;
    geoCs.layers = layers;
  };

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
}());

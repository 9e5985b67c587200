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
    (period.benchmarks || []).forEach(function (b) {
      rows.push([b.group + " (" + b.areas.toLocaleString("en-GB") + " areas held)", fmt(b.rate)]);
    });
    var table = el("table", {}, rows.map(function (r) {
      return el("tr", {}, [el("th", { scope: "row" }, [r[0]]), el("td", { className: "num" }, [r[1]])]);
    }));
    return [el("h2", {}, [period.label + (cfg.unit === "%" ? " (%)" : "")]), table];
  }

  // The address says what is shown: a shared link opens the same period (the rest of the view
  // is already in the address, from the form that chose it).
  var formFields = { period: "geo-cs-period-field", threshold: "geo-cs-threshold-field",
                     baseline: "geo-cs-baseline-field" };

  // ``changes``: parameter -> value (null drops it). The form carries them too, so the next
  // choice of classes keeps the period, threshold and baseline the visitor set.
  function writeAddress(changes) {
    var url = new URL(window.location.href);
    var form = document.getElementById("geo-cs-choose");
    Object.keys(changes).forEach(function (name) {
      var value = changes[name];
      if (value === null) { url.searchParams.delete(name); } else { url.searchParams.set(name, value); }
      if (!form) { return; }
      var field = document.getElementById(formFields[name]);
      if (value === null) {
        if (field) { field.parentNode.removeChild(field); }
      } else {
        if (!field) {
          field = el("input", { type: "hidden", id: formFields[name], name: name });
          form.appendChild(field);
        }
        field.value = value;
      }
    });
    if (window.history && window.history.replaceState) { window.history.replaceState(null, "", url.toString()); }
  }

  function showPeriod(index, layers, fromUser) {
    current = index;
    var period = cfg.periods[index];
    layers.show(period.tiles);
    document.getElementById("geo-cs-period-label").textContent = period.label;
    document.getElementById("geo-cs-period").setAttribute("aria-valuetext", period.label);
    replaceChildren(document.getElementById("geo-cs-summary"), summaryNodes());
    setDownload("geo-cs-geojson", period.geojson, downloadName(period, "geojson"));
    setDownload("geo-cs-csv", period.csv, downloadName(period, "csv"));
    var png = document.getElementById("geo-cs-png");
    if (png) { png.href = pngUrl(period); }
    renderAreas();
    if (profileIndex !== null) { showProfile(profileIndex); }
    var chart = document.getElementById("geo-cs-chart-img");
    if (chart && cfg.chart) {
      chart.src = cfg.chart + (cfg.chart.indexOf("?") < 0 ? "?" : "&") + "highlight=" + encodeURIComponent(period.id);
    }
    if (fromUser) { writeAddress({ period: period.id }); }
    document.body.dataset.period = period.id;
  }

  // The form's selects apply at once; the breaks field with its button. A new indicator takes
  // its own denominator: the previous indicator's one is dropped from the form.
  function wireForm() {
    var form = document.getElementById("geo-cs-choose");
    if (!form) { return; }
    Array.prototype.forEach.call(form.querySelectorAll("[data-submit]"), function (field) {
      field.addEventListener("change", function () { form.submit(); });
    });
    // another map: its geography, measure and own denominator (or none); periods and baselines
    // are the new measure's own, so the old ones are dropped
    var view = document.getElementById("geo-cs-view");
    view.addEventListener("change", function () {
      var option = view.options[view.selectedIndex];
      document.getElementById("geo-cs-geography").value = option.dataset.geography;
      document.getElementById("geo-cs-indicator-field").value = option.dataset.indicator;
      var denominator = document.getElementById("geo-cs-denominator");
      if (option.dataset.denominator) {
        if (!denominator) {
          denominator = el("input", { type: "hidden", id: "geo-cs-denominator", name: "denominator" });
          form.appendChild(denominator);
        }
        denominator.value = option.dataset.denominator;
      } else if (denominator) {
        denominator.parentNode.removeChild(denominator);
      }
      ["geo-cs-period-field", "geo-cs-baseline-field"].forEach(function (id) {
        var field = document.getElementById(id);
        if (field) { field.parentNode.removeChild(field); }
      });
      form.submit();
    });
  }

  // -- downloads named for what they hold -------------------------------------------------------

  function slug(text) { return String(text || "").replace(/[^A-Za-z0-9_]+/g, "-").replace(/^-|-$/g, ""); }

  function downloadName(period, extension, what) {
    var measure = new URL(window.location.href).searchParams.get("indicator") || cfg.indicator || cfg.layer;
    return [cfg.partnership, period.id, measure, what].filter(Boolean).map(slug).join("_") + "." + extension;
  }

  function setDownload(id, href, name) {
    var link = document.getElementById(id);
    if (!link) { return; }
    link.href = href;
    link.setAttribute("download", name);
  }

  function pageQuery(extra) {
    var params = new URL(window.location.href).searchParams;
    Object.keys(extra || {}).forEach(function (k) {
      if (extra[k] === null) { params.delete(k); } else { params.set(k, extra[k]); }
    });
    return params.toString();
  }

  function pngUrl(period) {
    return "/maps/" + encodeURIComponent(cfg.partnership) + "/map.png?" + pageQuery({ period: period.id });
  }

  // A CSV a spreadsheet cannot run: text starting like a formula gets an apostrophe (as the
  // server's CSVs do: geo_cs.spreadsheet).
  function csvCell(value) {
    if (value === null || value === undefined) { return ""; }
    var text = String(value);
    if (typeof value === "string" && /^[=+\-@\t\r]/.test(text) && isNaN(Number(text))) { text = "'" + text; }
    return /[",\n\r]/.test(text) ? '"' + text.replace(/"/g, '""') + '"' : text;
  }

  // -- the answer in words, the notes, the chart's caption ----------------------------------------

  function renderFigures(layers) {
    var sentence = document.getElementById("geo-cs-sentence");
    sentence.textContent = cfg.sentence || "";
    sentence.hidden = !cfg.sentence;
    var hint = document.getElementById("geo-cs-hint");
    replaceChildren(hint, []);
    if (cfg.thresholdHint && document.getElementById("geo-cs-threshold")) {
      var use = el("button", { type: "button", id: "geo-cs-use-hint" },
                   ["Use a threshold of " + cfg.thresholdHint.threshold + "%"]);
      use.addEventListener("click", function () {
        document.getElementById("geo-cs-threshold").value = String(cfg.thresholdHint.threshold);
        refreshCohort(layers);
      });
      hint.appendChild(use);
    }
    replaceChildren(document.getElementById("geo-cs-notes"), (cfg.notes || []).map(function (note) {
      return el("p", { className: "geo-cs-note", role: "note" }, [note]);
    }));
    var caption = document.getElementById("geo-cs-chart-caption");
    if (caption) {
      caption.textContent = "Worst-performing neighbourhoods (baseline " + cfg.baselineLabels.join(", ") +
        ", rate above " + cfg.threshold + "%) against the rest of the partnership, with 95% intervals.";
    }
  }

  // -- baseline and threshold, recomputed by the server without reloading the page ------------------

  function baselineIds() {
    var from = document.getElementById("geo-cs-baseline-from").selectedIndex;
    var to = document.getElementById("geo-cs-baseline-to").selectedIndex;
    var ids = [];
    for (var i = Math.min(from, to); i <= Math.max(from, to); i++) { ids.push(cfg.periods[i].id); }
    return ids;
  }

  var pending = null;

  function refreshCohort(layers) {
    var threshold = document.getElementById("geo-cs-threshold").value;
    var baseline = baselineIds().join(",");
    var changes = { threshold: Number(threshold) === 25 ? null : threshold,
                    baseline: baseline === cfg.defaultBaseline ? null : baseline };
    var query = pageQuery(changes);
    if (pending) { pending.abort(); }
    pending = new AbortController();
    document.body.dataset.figures = "loading";
    fetch("/maps/" + encodeURIComponent(cfg.partnership) + "/figures.json?" + query,
          { signal: pending.signal, headers: { Accept: "application/json" } })
      .then(function (response) {
        return response.json().then(function (body) { return { ok: response.ok, body: body }; });
      })
      .then(function (answer) {
        if (!answer.ok) {
          replaceChildren(document.getElementById("geo-cs-notes"),
                          [el("p", { className: "geo-cs-note", role: "alert" }, [answer.body.detail || "Not possible"])]);
          document.body.dataset.figures = "refused";
          return;
        }
        Object.keys(answer.body).forEach(function (key) {
          if (key !== "start") { cfg[key] = answer.body[key]; }
        });
        writeAddress(changes);
        renderFigures(layers);
        showPeriod(current, layers, false);
        document.body.dataset.figures = "loaded";
      })
      .catch(function (error) { if (error.name !== "AbortError") { throw error; } });
  }

  function wireCohort(layers) {
    var threshold = document.getElementById("geo-cs-threshold");
    if (!threshold) { return; }
    cfg.defaultBaseline = cfg.baseline.join(",");
    var timer = null;
    threshold.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(function () { refreshCohort(layers); }, 250);
    });
    ["geo-cs-baseline-from", "geo-cs-baseline-to"].forEach(function (id) {
      document.getElementById(id).addEventListener("change", function () { refreshCohort(layers); });
    });
  }

  // -- areas ranked, the area profile, zoom and highlight ------------------------------------------

  var profileIndex = null;
  var sortKey = "value";
  var sortDescending = true;
  var highlighted = null;

  function areaValue(i, periodIndex) {
    var value = cfg.areas.values[i][periodIndex === undefined ? current : periodIndex];
    return cfg.areas.invalid[i] ? null : value;
  }

  function ranks(periodIndex) {
    // rank 1 = the highest value of the partnership's areas in that period (ties share a rank)
    var order = cfg.areas.code.map(function (_c, i) { return i; })
      .filter(function (i) { return areaValue(i, periodIndex) !== null; })
      .sort(function (a, b) { return areaValue(b, periodIndex) - areaValue(a, periodIndex); });
    var out = {};
    var previous = null;
    var rank = 0;
    order.forEach(function (i, position) {
      var v = areaValue(i, periodIndex);
      if (v !== previous) { rank = position + 1; previous = v; }
      out[i] = rank;
    });
    return { rank: out, of: order.length };
  }

  function areaLabel(i) { return cfg.areas.name[i] || cfg.areas.code[i]; }

  function listedAreas() {
    var which = document.querySelector("input[name=geo-cs-list]:checked");
    var all = !which || which.value === "all";
    var r = ranks();
    var rows = cfg.areas.code.map(function (_c, i) { return i; })
      .filter(function (i) { return all || cfg.areas.worst[i]; });
    rows.sort(function (a, b) {
      var x, y;
      if (sortKey === "name") { x = areaLabel(a).toLowerCase(); y = areaLabel(b).toLowerCase(); }
      else if (sortKey === "code") { x = cfg.areas.code[a]; y = cfg.areas.code[b]; }
      else { x = areaValue(a); y = areaValue(b); x = x === null ? -Infinity : x; y = y === null ? -Infinity : y; }
      var order = x < y ? -1 : x > y ? 1 : 0;
      return sortDescending ? -order : order;
    });
    return { rows: rows, ranks: r };
  }

  function renderAreas() {
    var table = document.getElementById("geo-cs-area-table");
    if (!table || !cfg.areas) { return; }
    var listed = listedAreas();
    var unit = cfg.unit === "%" ? " (%)" : "";
    var headers = [["rank", "Rank"], ["name", "Area"], ["code", "Code"], ["value", cfg.periods[current].label + unit]];
    var head = el("tr", {}, headers.map(function (h) {
      var key = h[0] === "rank" ? "value" : h[0];
      var sorted = sortKey === key && h[0] !== "rank";
      var button = el("button", { type: "button", className: "geo-cs-sort", "data-sort": key }, [h[1]]);
      button.addEventListener("click", function () {
        sortDescending = sortKey === key ? !sortDescending : key === "value";
        sortKey = key;
        renderAreas();
      });
      return el("th", { scope: "col", "aria-sort": sorted ? (sortDescending ? "descending" : "ascending") : "none" }, [button]);
    }));
    var body = listed.rows.map(function (i) {
      var open = el("button", { type: "button", className: "geo-cs-area-link", "data-code": cfg.areas.code[i] }, [areaLabel(i)]);
      open.addEventListener("click", function () { zoomTo(i); showProfile(i); });
      var flags = [];
      if (cfg.areas.worst[i]) { flags.push("worst"); }
      if (cfg.areas.estimated[i] > 0) { flags.push("estimated"); }
      var value = cfg.areas.invalid[i] ? "not valid" : fmt(areaValue(i));
      return el("tr", { className: flags.join(" ") }, [
        el("td", { className: "num" }, [listed.ranks.rank[i] ? String(listed.ranks.rank[i]) : "–"]),
        el("td", {}, [open]), el("td", {}, [cfg.areas.code[i]]), el("td", { className: "num" }, [value])]);
    });
    if (!listed.rows.length) {
      body = [el("tr", {}, [el("td", { colspan: "4" }, [
        "No worst-performing neighbourhoods at this threshold: choose All areas, or a lower threshold."])])];
    }
    replaceChildren(table, [el("thead", {}, [head]), el("tbody", {}, body)]);
    // the table as shown, as CSV
    var lines = [["rank", "code", "name", cfg.periods[current].id, "worst_performing", "estimated_share"].join(",")];
    listed.rows.forEach(function (i) {
      lines.push([listed.ranks.rank[i] || "", cfg.areas.code[i], cfg.areas.name[i], areaValue(i),
                  cfg.areas.worst[i], cfg.areas.estimated[i]].map(csvCell).join(","));
    });
    var link = document.getElementById("geo-cs-table-csv");
    if (link) {
      if (link.href && link.href.indexOf("blob:") === 0) { URL.revokeObjectURL(link.href); }
      link.href = URL.createObjectURL(new Blob([lines.join("\r\n") + "\r\n"], { type: "text/csv" }));
      link.setAttribute("download", downloadName(cfg.periods[current], "csv", "areas"));
    }
  }

  var HIGHLIGHT = { fill: true, fillOpacity: 0.9, stroke: true, color: "#005ea5", weight: 4, opacity: 1 };

  // ``codes``: one area's code, the codes of several (a postcode district's areas), or null
  function highlight(codes) {
    var layer = geoCs.layers && geoCs.layers.choropleth;
    if (!layer) { return; }
    (highlighted || []).forEach(function (code) { layer.resetFeatureStyle(code); });
    highlighted = codes ? [].concat(codes) : null;
    (highlighted || []).forEach(function (code) { layer.setFeatureStyle(code, L.extend({}, HIGHLIGHT)); });
    document.body.dataset.highlighted = highlighted ? String(highlighted.length) : "0";
  }
  geoCs.rehighlight = function (previous) {
    if (!highlighted) { return; }
    if (previous) { highlighted.forEach(function (code) { previous.resetFeatureStyle(code); }); }
    highlight(highlighted);
  };

  function zoomTo(i) {
    var b = cfg.areas.bounds[i];
    if (geoCs.map && b && b[0] !== null) {
      geoCs.map.fitBounds([[b[1], b[0]], [b[3], b[2]]], { maxZoom: 14, padding: [30, 30] });
    }
    highlight(cfg.areas.code[i]);
  }

  function showProfile(i) {
    profileIndex = i;
    var box = document.getElementById("geo-cs-profile");
    var rows = cfg.periods.map(function (period, p) {
      var r = ranks(p);
      var v = areaValue(i, p);
      var whole = period.summary.partnership_value;
      var gap = v !== null && whole !== null && whole !== undefined && cfg.isRate ? signed(v - whole) : "n/a";
      return el("tr", {}, [el("th", { scope: "row" }, [period.label]),
                           el("td", { className: "num" }, [cfg.areas.invalid[i] ? "not valid" : fmt(v)]),
                           el("td", { className: "num" }, [r.rank[i] ? r.rank[i] + " of " + r.of : "–"]),
                           el("td", { className: "num" }, [gap])]);
    });
    var close = el("button", { type: "button", className: "geo-cs-close" }, ["Close"]);
    close.addEventListener("click", function () { box.hidden = true; profileIndex = null; highlight(null); });
    var facts = [];
    facts.push(cfg.areas.worst[i] ? "A worst-performing neighbourhood (baseline above " + cfg.threshold + "%)."
                                   : "Not among the worst-performing neighbourhoods.");
    if (cfg.areas.estimated[i] > 0) {
      facts.push("Estimated: up to " + fmt(100 * cfg.areas.estimated[i], 0) + "% of a value came through a boundary change.");
    }
    if (cfg.areas.invalid[i]) { facts.push("Its rate is not valid: the denominator does not fit the count."); }
    replaceChildren(box, [
      el("h2", {}, [areaLabel(i)]), el("p", { className: "geo-cs-meta" }, [cfg.areas.code[i] + " · " + cfg.measure]),
      el("p", {}, [facts.join(" ")]),
      el("table", {}, [el("thead", {}, [el("tr", {}, ["Period", "Value" + (cfg.unit === "%" ? " (%)" : ""),
                                                      "Rank in partnership", "Gap with partnership"].map(function (h) {
        return el("th", { scope: "col" }, [h]);
      }))]), el("tbody", {}, rows)]),
      close]);
    box.hidden = false;
  }

  // -- search: the partnership's areas at once, then every ward, district and area the store holds --

  function wireSearch() {
    var input = document.getElementById("geo-cs-search");
    if (!input) { return; }
    var results = document.getElementById("geo-cs-search-results");
    function run() {
      var q = input.value.trim();
      if (q.length < 2) { replaceChildren(results, []); return; }
      fetch("/maps/" + encodeURIComponent(cfg.partnership) + "/search?q=" + encodeURIComponent(q),
            { headers: { Accept: "application/json" } })
        .then(function (response) { return response.json().then(function (body) { return { ok: response.ok, body: body }; }); })
        .then(function (answer) {
          if (!answer.ok) {
            replaceChildren(results, [el("li", { role: "status" }, [answer.body.detail || "Nothing found"])]);
            return;
          }
          var items = answer.body.results.map(function (hit) {
            var button = el("button", { type: "button", className: "geo-cs-hit" },
                            [(hit.name || hit.code) + " ", el("span", { className: "geo-cs-meta" }, [hit.code + ", " + hit.set_label])]);
            button.addEventListener("click", function () {
              var mine = cfg.areas.code.indexOf(hit.code);
              if (mine >= 0) { zoomTo(mine); showProfile(mine); return; }
              geoCs.map.fitBounds([[hit.south, hit.west], [hit.north, hit.east]], { maxZoom: 14, padding: [30, 30] });
              // a postcode district: the areas its postcodes are in, where this map shows them
              highlight(hit.codes && hit.codes.length ? hit.codes : null);
              outlineHit(hit);
            });
            return el("li", {}, [button]);
          });
          replaceChildren(results, items.length ? items
                                            : [el("li", { role: "status" }, [answer.body.note || "Nothing found for " + q])]);
          document.body.dataset.search = "done";
        });
    }
    document.getElementById("geo-cs-search-go").addEventListener("click", run);
    input.addEventListener("keydown", function (e) { if (e.key === "Enter") { e.preventDefault(); run(); } });
  }

  var hitBox = null;
  function outlineHit(hit) {
    if (hitBox) { geoCs.map.removeLayer(hitBox); }
    hitBox = L.rectangle([[hit.south, hit.west], [hit.north, hit.east]],
                         { color: "#005ea5", weight: 3, fill: false, dashArray: "4 3", interactive: false }).addTo(geoCs.map);
  }

  // -- the light reference layer: district and ward lines and names, from the store -----------------

  function addReference(map) {
    var lines = (cfg.reference && cfg.reference.lines) || [];
    lines.forEach(function (line) {
      var styles = {};
      var district = line.layer.indexOf("lad") === 0;
      styles[line.layer] = { fill: false, stroke: true, color: district ? "#555555" : "#888888",
                             weight: district ? 1.6 : 0.8, opacity: 0.9 };
      L.vectorGrid.protobuf(line.tiles, { vectorTileLayerStyles: styles, interactive: false,
        rendererFactory: L.canvas.tile, maxNativeZoom: cfg.maxNativeZoom, minZoom: line.minZoom,
        pane: "overlayPane", className: "geo-cs-reference" }).addTo(map);
    });
    var labels = L.layerGroup();
    ((cfg.reference && cfg.reference.labels) || []).forEach(function (label) {
      if (label.lon === null || label.lat === null) { return; }
      var text = el("span", { className: "geo-cs-label geo-cs-label-" + label.kind }, [label.name]);
      var marker = L.marker([label.lat, label.lon], {
        icon: L.divIcon({ className: "geo-cs-label-icon", html: text, iconSize: null }),
        interactive: false, keyboard: false });
      marker.minZoom = label.minZoom;
      labels.addLayer(marker);
    });
    function showLabels() {
      var zoom = map.getZoom();
      labels.eachLayer(function (marker) {
        var el2 = marker.getElement && marker.getElement();
        if (el2) { el2.style.display = zoom >= marker.minZoom ? "" : "none"; }
      });
    }
    labels.addTo(map);
    map.on("zoomend", showLabels);
    showLabels();
    return labels;
  }

  // -- the panel folds away on a small screen -------------------------------------------------------

  function wirePanelToggle(map) {
    var toggle = document.getElementById("geo-cs-panel-toggle");
    var body = document.getElementById("geo-cs-panel-body");
    function set(open) {
      body.hidden = !open;
      toggle.setAttribute("aria-expanded", String(open));
      toggle.textContent = open ? "Hide panel" : "Show panel";
      document.body.classList.toggle("geo-cs-panel-closed", !open);
      setTimeout(function () { map.invalidateSize(); }, 50);
    }
    toggle.addEventListener("click", function () { set(body.hidden); });
    if (window.matchMedia && window.matchMedia("(max-width: 600px)").matches) { set(false); }
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

  // The slider's periods, each drawn once per view. Each period is a pair of tile layers (the
  // colours on canvas, the hatching on SVG) kept on the map once drawn; a step back to a period
  // this view has drawn only swaps which pair is displayed (no tile is decoded or painted
  // again). A new period's pair is drawn over the one shown, which is hidden once the new one
  // has loaded, so the map never flashes blank. Pairs other than the one shown are dropped when
  // the view moves (they would redraw at every pan) and beyond what KEPT_PIXELS_BYTES of canvas
  // holds (a desktop window keeps some 25 periods, a phone at 3 device pixels a pixel fewer).
  // ``geoCs.layers.choropleth`` / ``.hatch`` are always the pair shown.
  var KEPT_PIXELS_BYTES = 160 * 1024 * 1024;
  function keptPeriodsFor(map) {
    var size = map.getSize();
    var tiles = (Math.ceil(size.x / 256) + 1) * (Math.ceil(size.y / 256) + 1);
    var side = 256 * (window.devicePixelRatio || 1);
    return Math.max(2, Math.floor(KEPT_PIXELS_BYTES / (tiles * side * side * 4)));
  }
  function keptPeriods(map, choroplethGroup, hatchGroup, makePair) {
    var kept = new Map();   // tile URL -> { choropleth, hatch, loaded }, in the order of use
    var layers = { choropleth: null, hatch: null, url: null };

    function display(pair, on) {
      [pair.choropleth, pair.hatch].forEach(function (layer) {
        var box = layer.getContainer && layer.getContainer();
        if (box) { box.style.display = on ? "" : "none"; }
      });
    }
    function drop(url) {
      var pair = kept.get(url);
      kept.delete(url);
      choroplethGroup.removeLayer(pair.choropleth);
      hatchGroup.removeLayer(pair.hatch);
    }
    function dropHidden() {
      Array.from(kept.keys()).forEach(function (url) { if (url !== layers.url) { drop(url); } });
    }
    function announce(pair) {
      if (layers.url !== pair.url) { return; }
      var complete = pair.loaded.choropleth && pair.loaded.hatch;
      document.body.dataset.tiles = complete ? "loaded" : "loading";
      if (complete) {
        // hide the pair this one was drawn over, now that it is complete
        kept.forEach(function (other) { if (other !== pair) { display(other, false); } });
        document.dispatchEvent(new CustomEvent("geo-cs:drawn", { detail: { tiles: pair.url } }));
      }
    }

    layers.show = function (url) {
      if (layers.url === url) { return; }
      var previous = layers.choropleth;
      var pair = kept.get(url);
      if (pair) {
        kept.delete(url);
      } else {
        pair = makePair(url);
        pair.url = url;
        pair.loaded = { choropleth: false, hatch: false };
        ["choropleth", "hatch"].forEach(function (name) {
          pair[name].on("loading", function () { pair.loaded[name] = false; announce(pair); });
          pair[name].on("load", function () { pair.loaded[name] = true; announce(pair); });
        });
        choroplethGroup.addLayer(pair.choropleth);
        hatchGroup.addLayer(pair.hatch);
      }
      kept.set(url, pair);
      layers.url = url;
      layers.choropleth = pair.choropleth;
      layers.hatch = pair.hatch;
      display(pair, true);
      // the cohort's threshold or baseline changed: other URLs are of figures no longer shown
      var wanted = new Set(cfg.periods.map(function (p) { return p.tiles; }));
      Array.from(kept.keys()).forEach(function (other) {
        if (other !== url && (!wanted.has(other) || kept.size > keptPeriodsFor(map))) { drop(other); }
      });
      geoCs.rehighlight(previous);
      announce(pair);
    };
    map.on("movestart zoomstart", dropHidden);
    map.on("overlayremove", dropHidden);
    return layers;
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
    var common = { maxNativeZoom: cfg.maxNativeZoom, getFeatureId: function (f) { return f.properties.code; } };
    var tip = L.tooltip({ sticky: true, className: "geo-cs-tooltip", direction: "top", offset: [0, -8] });
    var choroplethGroup = L.layerGroup().addTo(map);
    var hatchGroup = L.layerGroup().addTo(map);
    var layers = keptPeriods(map, choroplethGroup, hatchGroup, function (url) {
      var choropleth = shareDecodedTiles(L.vectorGrid.protobuf(url, L.extend({
        vectorTileLayerStyles: styles, interactive: true, rendererFactory: L.canvas.tile,
        attribution: cfg.attribution
      }, common)));
      choropleth.on("mouseover", function (e) {
        tip.setLatLng(e.latlng).setContent(tooltipContent(e.layer.properties));
        map.openTooltip(tip);
      });
      choropleth.on("mouseout", function () { map.closeTooltip(tip); });
      var hatch = shareDecodedTiles(L.vectorGrid.protobuf(url, L.extend({
        vectorTileLayerStyles: hatchStyles, interactive: false, className: "geo-cs-hatch",
        rendererFactory: L.svg.tile
      }, common)));
      return { choropleth: choropleth, hatch: hatch };
    });
    var outline = L.geoJSON(cfg.outline, {
      style: function () { return { color: "#1f3a93", weight: 3, fill: false, dashArray: "6 4" }; },
      interactive: false
    }).addTo(map);
    var overlays = {};
    overlays[cfg.measure] = choroplethGroup;
    overlays["Estimated through a boundary change (hatched)"] = hatchGroup;
    overlays[cfg.partnershipName + " (outline)"] = outline;
    // the control writes its labels as HTML: give it text that is already escaped
    var escaped = {};
    Object.keys(overlays).forEach(function (name) {
      var holder = document.createElement("span");
      holder.textContent = name;
      escaped[holder.innerHTML] = overlays[name];
    });
    L.control.layers(null, escaped, { collapsed: true }).addTo(map);

    outline.bringToFront();
    replaceChildren(document.getElementById("geo-cs-legend"), legendNodes());
    var slider = document.getElementById("geo-cs-period");
    slider.addEventListener("input", function () { showPeriod(Number(slider.value), layers, true); });
    geoCs.map = map;
    geoCs.layers = layers;
    geoCs.labels = addReference(map);
    outline.bringToFront();
    current = startIndex();
    slider.value = String(current);
    renderFigures(layers);
    showPeriod(current, layers, false);
    wireForm();
    wireCohort(layers);
    wireSearch();
    wirePanelToggle(map);
    Array.prototype.forEach.call(document.querySelectorAll("input[name=geo-cs-list]"), function (radio) {
      radio.addEventListener("change", renderAreas);
    });
    // no worst areas: the list starts on all of them
    if (!cfg.areas.worst.some(Boolean)) {
      var all = document.querySelector("input[name=geo-cs-list][value=all]");
      if (all) { all.checked = true; renderAreas(); }
    }
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
      // A byte range read can fail on a busy host or a flaky network ("Failed to fetch"): it is
      // tried twice more before the tile counts as failed.
      function read(attempt) {
        return archive.getZxy(Number(match[2]), Number(match[3]), Number(match[4])).then(function (tile) {
          return tile ? new Response(tile.data, { status: 200 }) : new Response(null, { status: 204 });
        }, function (error) {
          if (attempt >= 2) { throw error; }
          return new Promise(function (resolve) { setTimeout(resolve, 200 * (attempt + 1)); })
            .then(function () { return read(attempt + 1); });
        });
      }
      return read(0);
    };
  }

  window.geoCs = geoCs;
  init();
}());

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
    // ranks, deciles and counts are whole numbers: written as such (12,345, not 12345.0)
    if (digits === undefined && cfg.unit !== "%" && Number.isInteger(Number(value))) {
      return Number(value).toLocaleString("en-GB");
    }
    return Number(value).toFixed(digits === undefined ? 1 : digits);
  }

  function signed(value) {
    if (value === null || value === undefined) { return "n/a"; }
    return (value > 0 ? "+" : "") + fmt(value);
  }

  // -- survey rates (the Annual Population Survey): published intervals, real differences ---------
  // BEGIN survey-difference. geo_cs.stats.survey_difference, mirrored exactly (tests run both on
  // the same numbers): the difference rounded to 6 decimals, the half-width of two independent
  // samples' difference, √(a² + b²), to 3, and real only when the difference is larger than it;
  // no verdict (null) when either has no published interval.
  function hasNumber(value) { return typeof value === "number" && isFinite(value); }

  // Python's round(x, digits): the nearest decimal of x's exact binary value, a tie to the even
  // digit (toFixed gives the nearest too, but a tie away from zero).
  function roundHalfEven(x, digits) {
    if (!hasNumber(x) || Math.abs(x) >= 1e21) { return x; }
    var size = Math.abs(x);
    var exact = size.toFixed(100);          // every digit of the double (a tie ends in 5 then 0s)
    var cut = exact.indexOf(".") + 1 + digits;
    var rest = exact.slice(cut);
    var rounded = Number(size.toFixed(digits));
    if (rest.charAt(0) === "5" && /^0*$/.test(rest.slice(1))) {
      var kept = exact.slice(0, digits > 0 ? cut : cut - 1);
      if (Number(kept.charAt(kept.length - 1)) % 2 === 0) { rounded = Number(kept); }
    }
    return x < 0 ? -rounded : rounded;
  }

  function surveyDifference(rateA, halfWidthA, rateB, halfWidthB) {
    var diff = roundHalfEven(rateA - rateB, 6);
    if (!hasNumber(halfWidthA) || !hasNumber(halfWidthB)) { return { diff: diff, halfWidth: null, real: null }; }
    var halfWidth = roundHalfEven(Math.hypot(halfWidthA, halfWidthB), 3);
    return { diff: diff, halfWidth: halfWidth, real: Math.abs(diff) > halfWidth };
  }
  // END survey-difference

  // A number to one decimal as Python's f"{x:.1f}" writes it (the narrative's sentences).
  function oneDecimal(x) {
    var text = Math.abs(roundHalfEven(x, 1)).toFixed(1);
    return (x < 0 || Object.is(x, -0) ? "-" : "") + text;
  }

  function percentWords(rate) { return oneDecimal(rate) + "%"; }

  // "72.7% (95% interval 71.7% to 73.7%)", or none published (geo_cs.narrative.interval_words)
  function intervalWords(rate, halfWidth) {
    if (!hasNumber(halfWidth)) { return percentWords(rate) + " (no interval published)"; }
    return percentWords(rate) + " (95% interval " + percentWords(rate - halfWidth) + " to " +
      percentWords(rate + halfWidth) + ")";
  }

  // Whether a difference is real, in words (geo_cs.narrative.difference_verdict).
  function differenceVerdict(diff, halfWidth, real, subject) {
    if (real === null || real === undefined || !hasNumber(halfWidth)) { return cfg.survey.cannotSay; }
    var size = Math.abs(diff);
    var span = "its interval, " + oneDecimal(size - halfWidth) + " to " + oneDecimal(size + halfWidth) + " points,";
    return real ? subject + " is real: " + span + " does not include 0"
                : subject + " is not shown to be real: " + span + " includes 0";
  }

  // "Against Great Britain (75.8%): 6.9 points lower; the difference is real: ..." (``brief``:
  // the verdict in a word or two, for a tooltip)
  function againstWords(who, otherRate, d, brief) {
    var size = Math.abs(d.diff);
    var moved = roundHalfEven(size, 1) === 0 ? "level" : oneDecimal(size) + " points " + (d.diff < 0 ? "lower" : "higher");
    // a place keeps its capital; the file's own benchmark ("All 72 districts of ...") runs on
    var head = "Against " + who.replace(/^All /, "all ") + " (" + percentWords(otherRate) + "): " + moved;
    if (brief) {
      return head + ", " + (d.real === true ? "a real difference" : d.real === false ? "not shown to be real"
                                                                                    : "cannot say if real: no interval published");
    }
    return head + "; " + differenceVerdict(d.diff, d.halfWidth, d.real, "the difference") + ".";
  }

  // A district's figure in a period: its rate and half-width, or the marker that replaces them.
  function districtFigure(i, periodIndex) {
    var k = periodIndex === undefined ? current : periodIndex;
    var s = cfg.areas.survey;
    var marker = s.marker[i][k];
    return { rate: marker ? null : cfg.areas.values[i][k], halfWidth: s.halfWidth[i][k], marker: marker };
  }

  // An area of a tile (perhaps outside the partnership): its figure in the period shown. The
  // tiles carry the interval to 2 decimals; the half-width is read back to that.
  function tileFigure(p) {
    var here = cfg.areas.code.indexOf(p.code);
    if (here >= 0) { return districtFigure(here); }
    var marker = ((cfg.periods[current].survey || {}).marked || {})[p.code] || (p.suppressed ? "suppressed" : null);
    var halfWidth = hasNumber(p.value_low) && hasNumber(p.value_high) ? roundHalfEven((p.value_high - p.value_low) / 2, 2) : null;
    return { rate: marker || !hasNumber(p.value) ? null : p.value, halfWidth: halfWidth, marker: marker };
  }

  function figureWords(f) {
    if (f.marker) { return cfg.survey.markers[f.marker] || f.marker; }
    if (!hasNumber(f.rate)) { return "no figure"; }
    return intervalWords(f.rate, f.halfWidth);
  }

  // [difference, half-width, real] from the page's data as an object (null: none)
  function fromTriple(t) { return t ? { diff: t[0], halfWidth: t[1], real: t[2] } : null; }

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
    var k = invalidRate(p) || surveyMarker(p) ? -1 : classOf(p.value);
    return k < 0 ? cfg.noData : cfg.colours[k];
  }

  // A district marked in a survey file (unreliable, missing, withheld): never a coloured figure.
  function surveyMarker(p) {
    if (!cfg.survey) { return null; }
    return ((cfg.periods[current].survey || {}).marked || {})[p.code] || null;
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

  // Areas outside the partnership: one neutral grey, in the legend as such (never a faded class
  // colour, which the legend cannot explain).
  var OUTSIDE = "#f2f2f2";
  // The worst-performing areas' outline: a dark line over a light halo, visible on every fill.
  var WORST_LINE = "#111111";
  var WORST_HALO = "#ffffff";

  // Whether low values are the worse ones (ranks and deciles, 1 = most deprived): from the page's
  // data, else from its colours, since the worst class is always the darkest.
  function luminance(hex) {
    var n = parseInt(String(hex).replace("#", ""), 16);
    return 0.2126 * ((n >> 16) & 255) + 0.7152 * ((n >> 8) & 255) + 0.0722 * (n & 255);
  }
  var lowIsWorse = cfg.lowIsWorse !== undefined ? Boolean(cfg.lowIsWorse)
    : cfg.colours.length > 1 && luminance(cfg.colours[0]) < luminance(cfg.colours[cfg.colours.length - 1]);

  // The areas in words: "neighbourhood(s)", "constituency/constituencies"...
  function areaWord(plural) {
    var words = cfg.areaWords || {};
    return plural ? words.many || "neighbourhoods" : words.one || "neighbourhood";
  }

  // Whether the map draws worst-performing areas (a measure with no gap has none).
  function drawsWorst() { return cfg.hasGap !== false && cfg.hasWorst !== false; }

  var geoCs = {
    colour: colour,
    invalidRate: invalidRate,
    OUTSIDE: OUTSIDE,
    // Areas of the partnership in their class colour, the rest neutral grey.
    choroplethStyle: function (p) {
      var mine = inPartnership.has(p.code);
      return {
        fill: true, fillColor: mine ? colour(p) : OUTSIDE, fillOpacity: mine ? 0.9 : 1,
        stroke: true, color: "#ffffff", weight: mine ? 0.4 : 0.6, opacity: 1
      };
    },
    // Drawn over the colours (SVG): the worst-performing areas outlined, a light halo under a
    // dark line, and areas with a share estimated through a boundary change hatched with thin,
    // sparse lines that leave the colour readable. Only the partnership's areas.
    hatchStyle: function (p) {
      // no style at all (not an invisible one): VectorGrid then makes no SVG path for the area
      if (!inPartnership.has(p.code)) { return []; }
      var estimated = p.estimated_share > 0;
      var hatch = { fill: true, fillColor: "url(#geo-cs-hatch)", fillOpacity: 0.85 };
      if (p.worst && drawsWorst()) {
        return [{ fill: false, stroke: true, color: WORST_HALO, weight: 5, opacity: 0.95 },
                L.extend(estimated ? hatch : { fill: false },
                         { stroke: true, color: WORST_LINE, weight: 2, opacity: 1 })];
      }
      return estimated ? L.extend(hatch, { stroke: false, weight: 0 }) : [];
    }
  };

  function unitText() {
    return cfg.unit === "%" ? "%" : (cfg.unit ? " " + cfg.unit : "");
  }

  // Whether a point [lon, lat] lies within the partnership's outline (the dashed line): an area
  // of another partnership may reach inside it where the outline follows other boundaries.
  function insideOutline(lon, lat) {
    var geometry = cfg.outline && (cfg.outline.geometry || cfg.outline);
    if (!geometry || !geometry.coordinates) { return false; }
    var polygons = geometry.type === "Polygon" ? [geometry.coordinates] : geometry.coordinates;
    function inRing(ring) {
      var inside = false;
      for (var i = 0, j = ring.length - 1; i < ring.length; j = i++) {
        var xi = ring[i][0], yi = ring[i][1], xj = ring[j][0], yj = ring[j][1];
        if ((yi > lat) !== (yj > lat) && lon < (xj - xi) * (lat - yi) / (yj - yi) + xi) { inside = !inside; }
      }
      return inside;
    }
    return polygons.some(function (rings) {
      return inRing(rings[0]) && !rings.slice(1).some(inRing);
    });
  }

  // Where an area is, in words that agree with what the map draws: the partnership's areas are
  // coloured, the rest grey; an area the dashed outline cuts through says so.
  function outsideWords(p, latlng) {
    if (latlng && insideOutline(latlng.lng, latlng.lat)) {
      return "Not one of " + cfg.partnershipName + "'s areas on this map (grey), though the dashed outline " +
        "of its own boundary crosses it";
    }
    return "Outside " + cfg.partnershipName + " (grey: not in its figures)";
  }

  function valueWords(p) {
    if (cfg.survey) { return figureWords(tileFigure(p)); }
    if (p.suppressed) {
      // a value withheld by disclosure control is not missing data: say which it is
      return "withheld (fewer than " + (cfg.minCount || 10) + " people)";
    }
    if (invalidRate(p)) { return "not a valid rate (" + fmt(p.value) + "%: the population it is divided by does not fit the count)"; }
    return fmt(p.value) + unitText();
  }

  // A survey rate's tooltip: the district's rate with its 95% interval (or its marker in
  // words), against the benchmark and the partnership, and against the district selected.
  function surveyTooltip(p, latlng) {
    var period = cfg.periods[current];
    var here = cfg.areas.code.indexOf(p.code);
    var f = tileFigure(p);
    var lines = [[el("strong", {}, [p.name || p.code]), " ", el("span", {}, [p.code])]];
    lines.push([cfg.measure + ", " + period.label + ": ", el("b", {}, [figureWords(f)])]);
    var s = period.survey || {};
    if (here >= 0 && hasNumber(f.rate)) {
      var bench = fromTriple(cfg.areas.survey.vsBenchmark[here][current]);
      if (s.benchmark && hasNumber(s.benchmark.rate)) {
        lines.push([againstWords(s.benchmark.name, s.benchmark.rate,
                                 bench || { diff: f.rate - s.benchmark.rate, halfWidth: null, real: null }, true)]);
      }
      var whole = fromTriple(cfg.areas.survey.vsPartnership[here][current]);
      if (s.partnership && hasNumber(s.partnership.rate)) {
        lines.push([againstWords(cfg.partnershipName, s.partnership.rate,
                                 whole || { diff: f.rate - s.partnership.rate, halfWidth: null, real: null }, true)]);
      }
    }
    if (profileIndex !== null && cfg.areas.code[profileIndex] !== p.code && hasNumber(f.rate)) {
      var chosen = districtFigure(profileIndex);
      if (hasNumber(chosen.rate)) {
        lines.push([againstWords(areaLabel(profileIndex) + ", selected", chosen.rate,
                                 surveyDifference(f.rate, f.halfWidth, chosen.rate, chosen.halfWidth), true)]);
      }
    }
    if (here < 0) { lines.push([el("i", {}, [outsideWords(p, latlng)])]); }
    var box = el("div", { className: "geo-cs-tip" });
    lines.forEach(function (parts) { box.appendChild(el("div", {}, parts)); });
    return box;
  }

  function tooltipContent(p, latlng) {
    if (cfg.survey) { return surveyTooltip(p, latlng); }
    var period = cfg.periods[current];
    var unit = unitText();
    var mine = inPartnership.has(p.code);
    var lines = [[el("strong", {}, [p.name || p.code]), " ", el("span", {}, [p.code])]];
    lines.push([cfg.measure + ", " + period.label + ": ", el("b", {}, [valueWords(p)])]);
    var valid = !p.suppressed && !invalidRate(p);
    if (valid && p.value_low !== undefined && p.value_low !== null) {
      lines.push(["95% interval " + fmt(p.value_low) + "–" + fmt(p.value_high) + unit]);
    }
    var whole = period.summary.partnership_value;
    if (mine && valid && cfg.isRate && whole !== null && whole !== undefined && p.value !== undefined && p.value !== null) {
      lines.push(["Gap with " + cfg.partnershipName + " (" + fmt(whole) + "%): " + signed(p.value - whole) + " points"]);
    }
    if (mine && p.worst && drawsWorst()) {
      lines.push(["Worst-performing " + areaWord(false) + " (baseline above " + cfg.threshold + "%)"]);
    }
    if (mine && p.estimated_share > 0) {
      lines.push(["Estimated: " + fmt(100 * p.estimated_share, 0) + "% of this value came through a boundary change"]);
    }
    if (!mine) { lines.push([el("i", {}, [outsideWords(p, latlng)])]); }
    var box = el("div", { className: "geo-cs-tip" });
    lines.forEach(function (parts) { box.appendChild(el("div", {}, parts)); });
    return box;
  }

  // The legend lists what the map draws, and only that.
  function legendNodes() {
    var unit = cfg.unit === "%" ? "%" : "";
    var nodes = [el("h2", {}, ["Legend"])];
    if (cfg.legendTitle) { nodes.push(el("p", { className: "geo-cs-legend-title" }, [cfg.legendTitle])); }
    var note = cfg.legendNote !== undefined ? cfg.legendNote
      : "The colours mean the same values in every period, so periods can be compared.";
    if (note && !cfg.embed) { nodes.push(el("p", {}, [note])); }   // the embed view shows one period
    var low = null;
    function row(swatch, label, extra) {
      return el("div", { className: "row" + (extra ? " " + extra : "") }, [swatch, label]);
    }
    for (var i = 0; i < cfg.breaks.length; i++) {
      var swatch = el("span", { className: "swatch" });
      swatch.style.background = cfg.colours[i];
      var label = cfg.classLabels && cfg.classLabels[i] !== undefined ? cfg.classLabels[i]
        : (low === null ? "up to " : fmt(low) + " – ") + fmt(cfg.breaks[i]) + unit;
      nodes.push(row(swatch, label, "geo-cs-class"));
      low = cfg.breaks[i];
    }
    var none = el("span", { className: "swatch" });
    none.style.background = cfg.noData;
    nodes.push(row(none, cfg.survey ? "No figure: unreliable, missing or withheld"
                                    : cfg.disclosure ? "No data, withheld or not a valid rate" : "No data or not a valid rate"));
    var outside = el("span", { className: "swatch" });
    outside.style.background = OUTSIDE;
    nodes.push(row(outside, "Outside " + cfg.partnershipName, "geo-cs-outside"));
    var outline = el("span", { className: "swatch outline" });
    nodes.push(row(outline, cfg.partnershipName + "'s boundary"));
    if (drawsWorst() && cfg.areas && cfg.areas.worst.some(Boolean)) {
      var worst = el("span", { className: "swatch worst" });
      worst.style.background = cfg.colours[cfg.colours.length - 1];
      nodes.push(row(worst, "Worst-performing " + areaWord(false) + " (outlined)", "geo-cs-worst"));
    }
    if (cfg.hasEstimates !== false) {
      var hatch = el("span", { className: "swatch hatch" });
      hatch.style.backgroundColor = cfg.colours[Math.floor(cfg.colours.length / 2)];
      nodes.push(row(hatch, "Estimated through a boundary change (hatched)"));
    }
    return nodes;
  }

  // A survey rate's key figures: the partnership, the benchmark, the gap and whether it is real,
  // the nations, each with its 95% interval.
  function surveySummaryNodes() {
    var period = cfg.periods[current];
    var s = period.survey || {};
    function figure(rate, halfWidth) {
      if (!hasNumber(rate)) { return "n/a"; }
      return oneDecimal(rate) + (hasNumber(halfWidth) ? " (" + oneDecimal(rate - halfWidth) + " to " +
                                                        oneDecimal(rate + halfWidth) + ")" : " (no interval)");
    }
    var rows = [[cfg.partnershipName, s.partnership ? figure(s.partnership.rate, s.partnership.halfWidth) : "n/a"]];
    (period.benchmarks || []).forEach(function (b, n) {
      rows.push([b.label || b.group, figure(b.rate, b.halfWidth)]);
      if (n === 0 && s.gap && s.benchmark) {
        var g = s.gap;
        var verdict = g.real === true ? "real" : g.real === false ? "not shown to be real" : "cannot say if real";
        rows.push(["Gap with " + s.benchmark.name.replace(/^All /, "all ") + ", points",
                   (g.diff > 0 ? "+" : "") + oneDecimal(g.diff) +
                   (hasNumber(g.halfWidth) ? " (" + oneDecimal(g.diff - g.halfWidth) + " to " + oneDecimal(g.diff + g.halfWidth) + ")" : "") +
                   ", " + verdict]);
      }
    });
    var table = el("table", {}, rows.map(function (r) {
      return el("tr", {}, [el("th", { scope: "row" }, [r[0]]), el("td", { className: "num" }, [r[1]])]);
    }));
    var intervals = s.partnership && hasNumber(s.partnership.halfWidth);
    return [el("h2", {}, ["Key figures, " + period.label + (intervals ? " (%, with 95% intervals)" : " (%)")]), table];
  }

  function summaryNodes() {
    if (cfg.survey) { return surveySummaryNodes(); }
    var period = cfg.periods[current];
    var s = period.summary;
    if (s.invalid) {
      return [el("h2", {}, [period.label]),
              el("p", { className: "geo-cs-note" }, [
                "No valid figures: the partnership's rate comes out over 100%, so the population it is " +
                "divided by does not fit this measure. Choose the measure again under \u201cMap of\u201d."])];
    }
    // a custom area names itself, or the partnership it is compared with (page.figure_words)
    var words = cfg.figureWords || { whole: "Partnership", rest: "Rest of the partnership",
                                     share: "Their share of the partnership's working-age people" };
    var rows = [[words.whole, fmt(s.partnership_value)]];
    if (s.cohort_rate !== undefined) {
      rows.push(["Worst-performing " + areaWord(true) + " (" + s.n_cohort + ")", fmt(s.cohort_rate)]);
      rows.push([words.rest + " (" + s.n_rest + ")", fmt(s.rest_rate)]);
      rows.push(["Gap, points (95% interval)", signed(s.gap) + " (" + fmt(s.gap_low) + " to " + fmt(s.gap_high) + ")"]);
      rows.push([words.share, fmt(100 * s.cohort_share) + "%"]);
    }
    (period.benchmarks || []).forEach(function (b) {
      rows.push([b.label || b.group + " (the " + b.areas.toLocaleString("en-GB") + " areas with data here)", fmt(b.rate)]);
    });
    var table = el("table", {}, rows.map(function (r) {
      return el("tr", {}, [el("th", { scope: "row" }, [r[0]]), el("td", { className: "num" }, [r[1]])]);
    }));
    return [el("h2", {}, ["Key figures, " + period.label + (cfg.unit === "%" ? " (%)" : "")]), table];
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
    if (!cfg.embed) {   // the embed view has no slider and no key figures
      document.getElementById("geo-cs-period").setAttribute("aria-valuetext", period.label);
      replaceChildren(document.getElementById("geo-cs-summary"), summaryNodes());
    }
    if (cfg.survey) { renderPeriodWords(period); }
    setDownload("geo-cs-geojson", period.geojson, period.geojsonName || downloadName(period, "geojson"));
    setDownload("geo-cs-csv", period.csv, period.csvName || downloadName(period, "csv"));
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

  // A survey rate's answer is of the period shown: its sentence and its notes on marked districts.
  function renderPeriodWords(period) {
    var sentence = document.getElementById("geo-cs-sentence");
    if (period.sentence) { sentence.textContent = period.sentence; sentence.hidden = false; }
    if (cfg.embed) { return; }   // the embed view: the sentence, no notes
    replaceChildren(document.getElementById("geo-cs-notes"), (cfg.notes || []).concat(period.notes || []).map(function (note) {
      return el("p", { className: "geo-cs-note", role: "note" }, [note]);
    }));
  }

  // The form's selects apply at once; the breaks field with its button. A new indicator takes
  // its own denominator: the previous indicator's one is dropped from the form.
  function wireForm() {
    var form = document.getElementById("geo-cs-choose");
    if (!form) { return; }
    // the class settings sit apart from the form, under "Map style" (form="geo-cs-choose")
    Array.prototype.forEach.call(document.querySelectorAll("[data-submit]"), function (field) {
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
    if (!cfg.embed) { replaceChildren(hint, []); }   // the embed view has no hint, notes or settings
    if (!cfg.embed && cfg.thresholdHint && document.getElementById("geo-cs-threshold")) {
      var use = el("button", { type: "button", id: "geo-cs-use-hint" },
                   ["Use a threshold of " + cfg.thresholdHint.threshold + "%"]);
      use.addEventListener("click", function () {
        document.getElementById("geo-cs-threshold").value = String(cfg.thresholdHint.threshold);
        refreshCohort(layers);
      });
      hint.appendChild(use);
    }
    if (!cfg.embed) {
      replaceChildren(document.getElementById("geo-cs-notes"), (cfg.notes || []).map(function (note) {
        return el("p", { className: "geo-cs-note", role: "note" }, [note]);
      }));
    }
    replaceChildren(document.getElementById("geo-cs-legend"), legendNodes());
    updateViewButtons();
    markStale(false);
    var links = document.getElementById("geo-cs-chart-links");
    if (links) {
      // the chart for a report: a picture in either form, and its figures
      var kinds = [["png", "PNG"], ["svg", "SVG"], ["csv", "its figures (CSV)"]].filter(function (k) {
        return cfg.chartDownloads && cfg.chartDownloads[k[0]];
      });
      var parts = ["Download the chart: "];
      kinds.forEach(function (k, n) {
        if (n) { parts.push(" · "); }
        var file = cfg.chartDownloads[k[0]];
        parts.push(el("a", { href: file.url, download: file.name, id: "geo-cs-chart-" + k[0] }, [k[1]]));
      });
      replaceChildren(links, kinds.length ? parts.map(function (p) {
        return typeof p === "string" ? document.createTextNode(p) : p;
      }) : []);
      links.hidden = !kinds.length;
    }
    var caption = document.getElementById("geo-cs-chart-caption");
    if (caption) {
      caption.textContent = "Worst-performing " + areaWord(true) + " (baseline " + cfg.baselineLabels.join(", ") +
        ", rate above " + cfg.threshold + "%) against the rest of the partnership, with 95% intervals.";
    }
  }

  // -- a request that fails: a sentence about the task, next to the control used --------------------

  // The words for a failed request of the page: for the figures, the problem+json's ``message``
  // (a sentence the service writes for a person about them); else by its status and the
  // parameter it names (its ``errors``, or its detail's first word). Never the detail itself,
  // which is for programs and logs. ``task``: "figures" or "search".
  function problemWords(task, status, body) {
    if (task === "figures" && body && typeof body.message === "string" && body.message) { return body.message; }
    var named = ((body && body.errors) || []).map(function (e) { return e.parameter; });
    var first = /^([a-z_]+)\b/.exec((body && body.detail) || "");
    if (first) { named.push(first[1]); }
    function names(word) { return named.indexOf(word) >= 0; }
    if (status === 0) {
      return task === "search" ? "Search did not reach the server: check the connection and try again."
        : "The figures could not be updated: check the connection and try again.";
    }
    if (status === 503 || status === 429) { return "The service is busy just now: try again in a minute."; }
    if (status === 410) { return "The data have been updated since this page opened: reload the page."; }
    if (status === 404) {
      return "This map is no longer available at this address: reload the page, or choose the partnership again.";
    }
    if (status === 400 || status === 422 || status === 414) {
      if (task === "search") { return "Type at least 2 letters of a place name, or a code such as S01010206."; }
      if (names("threshold")) { return "Enter the baseline rate as a number from 0 to 100, such as 25."; }
      if (names("baseline")) { return "Choose baseline periods from the lists: the first no later than the last."; }
      if (names("period")) { return "That period is not one of this map's: choose one on the slider."; }
      return "These settings cannot be used on this map: choose another threshold or baseline.";
    }
    return task === "search" ? "Search is not working just now: try again later."
      : "The figures could not be updated just now: try again later.";
  }

  function showProblem(id, text) {
    var box = document.getElementById(id);
    if (!box) { return; }
    box.textContent = text || "";
    box.hidden = !text;
  }

  // The answer and figures shown no longer match the settings: marked as such until new ones come.
  function markStale(stale) {
    ["geo-cs-answer", "geo-cs-summary"].forEach(function (id) {
      var node = document.getElementById(id);
      if (node) { node.classList.toggle("geo-cs-stale", stale); }
    });
    var note = document.getElementById("geo-cs-stale-note");
    if (stale && !note) {
      note = el("p", { id: "geo-cs-stale-note", className: "geo-cs-stale-note" },
                ["Not updated: these figures are for the settings before your change (threshold " +
                 cfg.threshold + "%, baseline " + cfg.baselineLabels.join(", ") + ")."]);
      var answer = document.getElementById("geo-cs-answer");
      answer.insertBefore(note, answer.firstChild);
    } else if (!stale && note) {
      note.parentNode.removeChild(note);
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

  function cohortRefused(words) {
    if (pending) { pending.abort(); pending = null; }
    showProblem("geo-cs-cohort-problem", words);
    markStale(true);
    document.body.dataset.figures = "refused";
  }

  function refreshCohort(layers) {
    var field = document.getElementById("geo-cs-threshold");
    var threshold = field.value.trim();
    // a number type field reads "" when what is typed is not a number
    if (threshold === "" || !isFinite(Number(threshold)) || Number(threshold) < 0 || Number(threshold) > 100) {
      cohortRefused(problemWords("figures", 400, { errors: [{ parameter: "threshold" }] }));
      return;
    }
    var baseline = baselineIds().join(",");
    var changes = { threshold: Number(threshold) === 25 ? null : threshold,
                    baseline: baseline === cfg.defaultBaseline ? null : baseline };
    var query = pageQuery(changes);
    if (pending) { pending.abort(); }
    var mine = pending = new AbortController();
    document.body.dataset.figures = "loading";
    fetch("/maps/" + encodeURIComponent(cfg.partnership) + "/figures.json?" + query,
          { signal: mine.signal, headers: { Accept: "application/json" } })
      .then(function (response) {
        return response.json().then(function (body) { return { ok: response.ok, status: response.status, body: body }; },
                                    function () { return { ok: false, status: response.status, body: null }; });
      }, function (error) {
        if (error.name === "AbortError") { throw error; }
        return { ok: false, status: 0, body: null };
      })
      .then(function (answer) {
        if (pending !== mine) { return; }
        pending = null;
        if (!answer.ok) {
          cohortRefused(problemWords("figures", answer.status, answer.body));
          return;
        }
        showProblem("geo-cs-cohort-problem", null);
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

  // Whether an area is worst-performing (none are on a map without a gap).
  function isWorst(i) { return drawsWorst() && Boolean(cfg.areas.worst[i]); }

  // Ranks of ``among`` (area indices; default all the partnership's areas) in a period: 1 = the
  // worst (the highest value; the lowest where 1 is the most deprived), with no gaps but where
  // areas tie, which share a rank marked "=" (1, 2=, 2=, 4).
  function ranks(periodIndex, among) {
    var sign = lowIsWorse ? 1 : -1;
    var order = (among || cfg.areas.code.map(function (_c, i) { return i; }))
      .filter(function (i) { return areaValue(i, periodIndex) !== null; })
      .sort(function (a, b) { return sign * (areaValue(a, periodIndex) - areaValue(b, periodIndex)); });
    var out = {};
    var tied = {};
    var previous = null;
    var rank = 0;
    order.forEach(function (i, position) {
      var v = areaValue(i, periodIndex);
      if (v !== previous) { rank = position + 1; previous = v; } else { tied[rank] = true; }
      out[i] = rank;
    });
    var label = {};
    Object.keys(out).forEach(function (i) { label[i] = out[i] + (tied[out[i]] ? "=" : ""); });
    return { rank: out, label: label, of: order.length };
  }

  function areaLabel(i) { return cfg.areas.name[i] || cfg.areas.code[i]; }

  function listedAreas() {
    var which = document.querySelector("input[name=geo-cs-list]:checked");
    var all = !which || which.value === "all" || !drawsWorst();
    var rows = cfg.areas.code.map(function (_c, i) { return i; })
      .filter(function (i) { return all || isWorst(i); });
    // the ranks are of the areas listed: a list of 14 reads 1 to 14
    var r = ranks(undefined, rows);
    var sign = lowIsWorse ? -1 : 1;
    rows.sort(function (a, b) {
      var x, y;
      if (sortKey === "name") { x = areaLabel(a).toLowerCase(); y = areaLabel(b).toLowerCase(); }
      else if (sortKey === "code") { x = cfg.areas.code[a]; y = cfg.areas.code[b]; }
      else if (sortKey === "baseline") { x = baselineOf(a); y = baselineOf(b); }
      else { x = areaValue(a); y = areaValue(b); x = x === null ? null : sign * x; y = y === null ? null : sign * y; }
      if (x === null || y === null) { return x === y ? 0 : x === null ? 1 : -1; }   // no value: last
      var order = x < y ? -1 : x > y ? 1 : 0;
      return sortDescending ? -order : order;
    });
    return { rows: rows, ranks: r };
  }

  // An area's baseline value, where the page carries it (``areas.baseline``).
  function baselineOf(i) {
    var b = cfg.areas.baseline;
    return b && b[i] !== undefined ? b[i] : null;
  }

  function renderAreas() {
    var table = document.getElementById("geo-cs-area-table");
    if (!table || !cfg.areas) { return; }
    var listed = listedAreas();
    var unit = cfg.unit === "%" ? " (%)" : "";
    var headers = [["rank", "Rank"], ["name", "Area"], ["code", "Code"],
                   ["value", cfg.periods[current].label + (cfg.survey ? " (%, 95% interval)" : unit)]];
    var withBaseline = Boolean(cfg.areas.baseline) && drawsWorst();
    if (withBaseline) { headers.push(["baseline", "Baseline (" + cfg.baselineLabels.join(", ") + ")" + unit]); }
    var head = el("tr", {}, headers.map(function (h) {
      var key = h[0] === "rank" ? "value" : h[0];
      var sorted = sortKey === key && h[0] !== "rank";
      var button = el("button", { type: "button", className: "geo-cs-sort", "data-sort": key }, [h[1]]);
      button.addEventListener("click", function () {
        sortDescending = sortKey === key ? !sortDescending : key === "value" || key === "baseline";
        sortKey = key;
        renderAreas();
      });
      return el("th", { scope: "col", "aria-sort": sorted ? (sortDescending ? "descending" : "ascending") : "none" }, [button]);
    }));
    var body = listed.rows.map(function (i) {
      var open = el("button", { type: "button", className: "geo-cs-area-link", "data-code": cfg.areas.code[i] }, [areaLabel(i)]);
      open.addEventListener("click", function () { zoomTo(i); showProfile(i, open); });
      var flags = [];
      if (isWorst(i)) { flags.push("worst"); }
      if (cfg.areas.estimated[i] > 0) { flags.push("estimated"); }
      var value = cfg.survey ? surveyCell(i) : cfg.areas.invalid[i] ? "not valid" : fmt(areaValue(i));
      var cells = [el("td", { className: "num" }, [listed.ranks.label[i] || "–"]),
                   el("td", {}, [open]), el("td", {}, [cfg.areas.code[i]]), el("td", { className: "num" }, [value])];
      if (withBaseline) { cells.push(el("td", { className: "num" }, [fmt(baselineOf(i))])); }
      return el("tr", { className: flags.join(" ") }, cells);
    });
    if (!listed.rows.length) {
      body = [el("tr", {}, [el("td", { colspan: String(headers.length) }, [
        "No worst-performing " + areaWord(true) + " at this threshold: choose All areas, or a lower threshold."])])];
    }
    replaceChildren(table, [el("thead", {}, [head]), el("tbody", {}, body)]);
    // the table as shown, as CSV
    var columns = ["rank", "code", "name", cfg.periods[current].id, "worst_performing", "estimated_share"];
    if (cfg.survey) { columns = ["rank", "code", "name", cfg.periods[current].id, "interval_low", "interval_high", "note"]; }
    if (withBaseline) { columns.push("baseline"); }
    var lines = [columns.join(",")];
    listed.rows.forEach(function (i) {
      var cells = [listed.ranks.label[i] || "", cfg.areas.code[i], cfg.areas.name[i], areaValue(i),
                   isWorst(i) ? "true" : "false", cfg.areas.estimated[i]];
      if (cfg.survey) {
        var f = districtFigure(i);
        var known = hasNumber(f.rate) && hasNumber(f.halfWidth);
        cells = [listed.ranks.label[i] || "", cfg.areas.code[i], cfg.areas.name[i], f.rate,
                 known ? roundHalfEven(f.rate - f.halfWidth, 3) : null, known ? roundHalfEven(f.rate + f.halfWidth, 3) : null,
                 f.marker ? cfg.survey.markers[f.marker] : (hasNumber(f.rate) && !known ? "no interval published" : "")];
      }
      if (withBaseline) { cells.push(baselineOf(i)); }
      lines.push(cells.map(csvCell).join(","));
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
    (highlighted || []).forEach(function (code) {
      // the area keeps its own colour (grey outside the partnership), outlined in blue
      layer.setFeatureStyle(code, function (p) {
        var own = geoCs.choroplethStyle(p);
        return L.extend({}, HIGHLIGHT, { fillColor: own.fillColor });
      });
    });
    document.body.dataset.highlighted = highlighted ? String(highlighted.length) : "0";
  }
  geoCs.rehighlight = function (previous) {
    if (!highlighted) { return; }
    if (previous) { highlighted.forEach(function (code) { previous.resetFeatureStyle(code); }); }
    highlight(highlighted);
  };

  function fitLonLat(boxes, options) {
    var found = boxes.filter(function (b) { return b && b[0] !== null; });
    if (!geoCs.map || !found.length) { return; }
    var bounds = L.latLngBounds([[found[0][1], found[0][0]], [found[0][3], found[0][2]]]);
    found.forEach(function (b) { bounds.extend([[b[1], b[0]], [b[3], b[2]]]); });
    geoCs.map.fitBounds(bounds, L.extend({ maxZoom: 14, padding: [30, 30] }, options || {}));
  }

  function zoomTo(i) {
    fitLonLat([cfg.areas.bounds[i]]);
    highlight(cfg.areas.code[i]);
  }

  // All the worst-performing neighbourhoods in view, as large as they fit (a few small ones are
  // specks at the partnership's zoom).
  function zoomToWorst() {
    fitLonLat(cfg.areas.bounds.filter(function (_b, i) { return isWorst(i); }), { padding: [20, 20] });
  }

  function fitPartnership(animate) {
    var b = cfg.bounds || [-8.0, 49.9, 1.8, 60.9];
    geoCs.map.fitBounds([[b[1], b[0]], [b[3], b[2]]], { padding: [8, 8], animate: Boolean(animate) });
  }

  // The profile shown, and where focus goes back to when it closes.
  var profileReturn = null;

  function closeProfile() {
    var box = document.getElementById("geo-cs-profile");
    if (box.hidden) { return; }
    box.hidden = true;
    profileIndex = null;
    highlight(null);
    document.body.dataset.selected = "";
    var back = profileReturn;
    profileReturn = null;
    if (back && document.body.contains(back) && back.offsetParent !== null) { back.focus(); }
    else if (geoCs.map) { geoCs.map.getContainer().focus(); }
  }

  // The profile in view, focus on its heading (a screen reader reads it; Escape closes it).
  function revealProfile(box, returnTo, moveFocus) {
    openPanel(true);
    if (returnTo !== undefined) { profileReturn = returnTo; }
    var heading = box.querySelector("h2");
    if (moveFocus !== false && heading) {
      heading.focus({ preventScroll: true });
    }
    box.scrollIntoView({ block: "nearest" });
  }

  // ``list``: the facts one to a line (a survey district's comparisons), else one paragraph
  function profileFrame(title, meta, facts, table, list) {
    var box = document.getElementById("geo-cs-profile");
    var close = el("button", { type: "button", className: "geo-cs-close", "aria-label": "Close the profile of " + title },
                   ["Close"]);
    close.addEventListener("click", closeProfile);
    var said = list ? el("ul", { className: "geo-cs-facts" }, facts.map(function (f) { return el("li", {}, [f]); }))
                    : el("p", {}, [facts.join(" ")]);
    replaceChildren(box, [
      el("div", { className: "geo-cs-profile-head" }, [el("h2", { tabindex: "-1" }, [title]), close]),
      el("p", { className: "geo-cs-meta" }, [meta]), said, table]);
    box.hidden = false;
    return box;
  }

  // The district whose profile was shown before the one shown now (compared with it).
  var lastProfile = null;
  var previousProfile = null;

  // A district's cell: "68.9 (65.8 to 72.0)", or its marker in a word.
  function surveyCell(i, periodIndex) {
    var f = districtFigure(i, periodIndex);
    if (f.marker) { return (cfg.survey.markers[f.marker] || f.marker).split(" (")[0]; }
    if (!hasNumber(f.rate)) { return "–"; }
    return oneDecimal(f.rate) + (hasNumber(f.halfWidth) ? " (" + oneDecimal(f.rate - f.halfWidth) + " to " +
                                                          oneDecimal(f.rate + f.halfWidth) + ")" : " (no interval)");
  }

  // A survey district's profile: its rate with its interval in each period, and in the period
  // shown against the benchmark, the partnership, the district selected before and its own
  // figure a year before, each called real only when the intervals say so.
  function showSurveyProfile(i, returnTo) {
    var period = cfg.periods[current];
    var s = period.survey || {};
    var f = districtFigure(i);
    var facts = [cfg.measure + ", " + period.label + ": " + figureWords(f) + "."];
    if (f.marker) {
      facts.push("No figure is shown for it, and no difference with it can be called real.");
    } else if (hasNumber(f.rate)) {
      var bench = fromTriple(cfg.areas.survey.vsBenchmark[i][current]);
      if (s.benchmark && hasNumber(s.benchmark.rate)) {
        facts.push(againstWords(s.benchmark.name, s.benchmark.rate,
                                bench || { diff: f.rate - s.benchmark.rate, halfWidth: null, real: null }));
      }
      var whole = fromTriple(cfg.areas.survey.vsPartnership[i][current]);
      if (s.partnership && hasNumber(s.partnership.rate)) {
        facts.push(againstWords(cfg.partnershipName, s.partnership.rate,
                                whole || { diff: f.rate - s.partnership.rate, halfWidth: null, real: null }));
      }
      if (previousProfile !== null && previousProfile !== i) {
        var other = districtFigure(previousProfile);
        if (hasNumber(other.rate)) {
          facts.push(againstWords(areaLabel(previousProfile) + ", the district you selected before", other.rate,
                                  surveyDifference(f.rate, f.halfWidth, other.rate, other.halfWidth)));
        }
      }
      var before = s.yearBefore;
      if (before !== null && before !== undefined) {
        var then = districtFigure(i, before);
        if (hasNumber(then.rate)) {
          facts.push(againstWords("its own figure in " + cfg.periods[before].label, then.rate,
                                  surveyDifference(f.rate, f.halfWidth, then.rate, then.halfWidth)));
        }
      }
    }
    var rows = cfg.periods.map(function (p, k) {
      var r = ranks(k);
      var vs = fromTriple(cfg.areas.survey.vsPartnership[i][k]);
      var v = districtFigure(i, k);
      var gap = "–";
      if (hasNumber(v.rate) && p.survey && p.survey.partnership && hasNumber(p.survey.partnership.rate)) {
        var d = vs ? vs.diff : v.rate - p.survey.partnership.rate;
        gap = (d > 0 ? "+" : "") + oneDecimal(d) + (vs ? (vs.real ? ", real" : ", not shown to be real") : ", cannot say");
      }
      return el("tr", k === current ? { className: "geo-cs-current" } : {}, [
        el("th", { scope: "row" }, [p.label]),
        el("td", { className: "num" }, [surveyCell(i, k)]),
        el("td", { className: "num" }, [r.rank[i] ? r.label[i] + " of " + r.of : "–"]),
        el("td", { className: "num" }, [gap])]);
    });
    var table = el("table", {}, [el("thead", {}, [el("tr", {}, [
      "Period", "Rate, % (95% interval)", "Rank in partnership", "Against " + cfg.partnershipName + ", points"
    ].map(function (h) { return el("th", { scope: "col" }, [h]); }))]), el("tbody", {}, rows)]);
    var box = profileFrame(areaLabel(i), cfg.areas.code[i] + " · " + cfg.measure, facts, table, true);
    document.body.dataset.selected = cfg.areas.code[i];
    if (returnTo !== undefined) { revealProfile(box, returnTo); }
  }

  // ``returnTo``: where focus goes when the profile closes (null: the map), or undefined to keep
  // the profile where it is (a period changed), focus included.
  function showProfile(i, returnTo) {
    // the embed view has no profile: the area is outlined on the map
    if (cfg.embed) { highlight(cfg.areas.code[i]); document.body.dataset.selected = cfg.areas.code[i]; return; }
    if (lastProfile !== null && lastProfile !== i) { previousProfile = lastProfile; }
    lastProfile = i;
    profileIndex = i;
    if (cfg.survey) { showSurveyProfile(i, returnTo); return; }
    var rows = cfg.periods.map(function (period, p) {
      var r = ranks(p);
      var v = areaValue(i, p);
      var whole = period.summary.partnership_value;
      var gap = v !== null && whole !== null && whole !== undefined && cfg.isRate ? signed(v - whole) : "n/a";
      return el("tr", p === current ? { className: "geo-cs-current" } : {}, [
        el("th", { scope: "row" }, [period.label]),
        el("td", { className: "num" }, [cfg.areas.invalid[i] ? "not valid" : fmt(v)]),
        el("td", { className: "num" }, [r.rank[i] ? r.label[i] + " of " + r.of : "–"]),
        el("td", { className: "num" }, [gap])]);
    });
    var facts = [];
    if (drawsWorst()) {
      facts.push(isWorst(i) ? "A worst-performing " + areaWord(false) + " (baseline above " + cfg.threshold + "%)."
                            : "Not among the worst-performing " + areaWord(true) + ".");
    }
    if (cfg.areas.estimated[i] > 0) {
      facts.push("Estimated: up to " + fmt(100 * cfg.areas.estimated[i], 0) + "% of a value came through a boundary change.");
    }
    if (cfg.areas.invalid[i]) { facts.push("Its rate is not valid: the population it is divided by does not fit the count."); }
    var table = el("table", {}, [el("thead", {}, [el("tr", {}, ["Period", "Value" + (cfg.unit === "%" ? " (%)" : ""),
                                                                "Rank in partnership", "Gap with partnership"].map(function (h) {
      return el("th", { scope: "col" }, [h]);
    }))]), el("tbody", {}, rows)]);
    var box = profileFrame(areaLabel(i), cfg.areas.code[i] + " · " + cfg.measure, facts, table);
    document.body.dataset.selected = cfg.areas.code[i];
    if (returnTo !== undefined) { revealProfile(box, returnTo); }
  }

  // An area outside the partnership, tapped on the map: what its tile says about it.
  function showOutsideProfile(p, latlng) {
    profileIndex = null;
    if (cfg.embed) { document.body.dataset.selected = p.code; return; }   // no profile in the embed view
    var table = el("table", {}, [el("tbody", {}, [el("tr", {}, [
      el("th", { scope: "row" }, [cfg.periods[current].label]), el("td", { className: "num" }, [valueWords(p)])])])]);
    var box = profileFrame(p.name || p.code, p.code + " · " + cfg.measure, [outsideWords(p, latlng) + "."], table);
    document.body.dataset.selected = p.code;
    revealProfile(box, null);
  }

  // A click or tap on an area selects it: outlined, its profile in view, focus on the profile.
  function selectArea(p, latlng) {
    var i = cfg.areas.code.indexOf(p.code);
    if (i >= 0) { showProfile(i, null); } else { showOutsideProfile(p, latlng); }
    highlight(p.code);
  }

  document.addEventListener("keydown", function (e) {
    if (e.key === "Escape" || e.key === "Esc") {
      var box = document.getElementById("geo-cs-profile");
      if (box && !box.hidden) { e.preventDefault(); closeProfile(); }
    }
  });

  // -- search: the partnership's areas at once, then every ward, district and area the store holds --

  // A postcode or a postcode district (G51, G51 4TP): the store may hold no postcodes.
  var POSTCODE = /^[A-Z]{1,2}[0-9][A-Z0-9]?( ?[0-9][A-Z]{2})?$/i;

  function wireSearch() {
    var input = document.getElementById("geo-cs-search");
    if (!input) { return; }
    var results = document.getElementById("geo-cs-search-results");
    var asked = null;
    function refused(words) {
      replaceChildren(results, []);
      showProblem("geo-cs-search-problem", words);
      input.setAttribute("aria-invalid", "true");
      document.body.dataset.search = "refused";
    }
    function run() {
      var q = input.value.trim();
      showProblem("geo-cs-search-problem", null);
      input.removeAttribute("aria-invalid");
      if (q.length < 2) {
        if (q.length) { refused(problemWords("search", 400, null)); } else { replaceChildren(results, []); }
        return;
      }
      if (asked) { asked.abort(); }
      var mine = asked = new AbortController();
      document.body.dataset.search = "loading";
      fetch("/maps/" + encodeURIComponent(cfg.partnership) + "/search?q=" + encodeURIComponent(q),
            { signal: mine.signal, headers: { Accept: "application/json" } })
        .then(function (response) {
          return response.json().then(function (body) { return { ok: response.ok, status: response.status, body: body }; },
                                      function () { return { ok: false, status: response.status, body: null }; });
        }, function (error) {
          if (error.name === "AbortError") { throw error; }
          return { ok: false, status: 0, body: null };
        })
        .then(function (answer) {
          if (asked !== mine) { return; }
          asked = null;
          if (!answer.ok || !answer.body || !answer.body.results) {
            refused(problemWords("search", answer.status, answer.body));
            return;
          }
          var items = answer.body.results.map(function (hit) {
            var button = el("button", { type: "button", className: "geo-cs-hit" },
                            [(hit.name || hit.code) + " ", el("span", { className: "geo-cs-meta" }, [hit.code + ", " + hit.set_label])]);
            button.addEventListener("click", function () {
              var here = cfg.areas.code.indexOf(hit.code);
              if (here >= 0) { zoomTo(here); showProfile(here, button); return; }
              geoCs.map.fitBounds([[hit.south, hit.west], [hit.north, hit.east]], { maxZoom: 14, padding: [30, 30] });
              // a postcode district: the areas its postcodes are in, where this map shows them
              highlight(hit.codes && hit.codes.length ? hit.codes : null);
              outlineHit(hit);
            });
            return el("li", {}, [button]);
          });
          if (!items.length) {
            // in words of the task, not the server's note (which names its commands)
            items = [el("li", { role: "status" }, [POSTCODE.test(q)
              ? "No place found for " + q + ". A postcode is found only where this service holds a postcode " +
                "list: try the name or code of an area, ward or district instead."
              : "Nothing found for " + q + ": try part of a name, or a full code."])];
          }
          replaceChildren(results, items);
          document.body.dataset.search = "done";
        })
        .catch(function (error) { if (error.name !== "AbortError") { throw error; } });
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
    // Names shown at their zoom, and none over another: districts first, then wards, those of
    // the partnership before its neighbours'; a name whose box meets one already placed waits
    // for a closer zoom.
    var order = [];
    labels.eachLayer(function (marker) { order.push(marker); });
    order.forEach(function (marker) {
      var at = marker.getLatLng();
      marker.rank = (marker.options.icon.options.html.className.indexOf("district") >= 0 ? 0 : 2) +
        (insideOutline(at.lng, at.lat) ? 0 : 1);
    });
    order.sort(function (a, b) { return a.rank - b.rank; });
    function showLabels() {
      // at quarter zoom steps a name shows from half a step before its zoom; collisions still hide it
      var zoom = map.getZoom() + 0.5;
      var shown = order.filter(function (marker) {
        var el2 = marker.getElement && marker.getElement();
        if (!el2) { return false; }
        el2.style.display = zoom >= marker.minZoom ? "" : "none";
        delete el2.dataset.collides;
        return zoom >= marker.minZoom;
      });
      var boxes = shown.map(function (marker) {
        var text = marker.getElement().firstChild;
        text.style.top = "";
        return text.getBoundingClientRect();
      });
      // each name at its place, else just above or below it, else hidden until a closer zoom or
      // another view: never over another name, over the map's buttons and credits, or cut by its edge
      var frame = map.getContainer().getBoundingClientRect();
      var placed = Array.prototype.map.call(map.getContainer().querySelectorAll(".leaflet-control"), function (c) {
        return c.getBoundingClientRect();
      }).filter(function (r) { return r.width > 0 && r.height > 0; });
      var gap = 3;
      function meets(b) {
        if (b.left < frame.left || b.right > frame.right || b.top < frame.top || b.bottom > frame.bottom) { return true; }
        return placed.some(function (p) {
          return b.left < p.right + gap && p.left < b.right + gap && b.top < p.bottom + gap && p.top < b.bottom + gap;
        });
      }
      shown.forEach(function (marker, k) {
        var b = boxes[k];
        var h = b.bottom - b.top;
        var shifts = [0, -(h + gap), h + gap];
        for (var j = 0; j < shifts.length; j++) {
          var moved = { left: b.left, right: b.right, top: b.top + shifts[j], bottom: b.bottom + shifts[j] };
          if (!meets(moved)) {
            placed.push(moved);
            if (shifts[j]) { marker.getElement().firstChild.style.top = shifts[j] + "px"; }
            return;
          }
        }
        marker.getElement().style.display = "none";
        marker.getElement().dataset.collides = "1";
      });
    }
    labels.addTo(map);
    map.on("zoomend moveend resize", showLabels);
    showLabels();
    geoCs.placeLabels = showLabels;
    return labels;
  }

  // -- the period slider's ticks: as many names as fit, none over another ----------------------------

  function layoutTicks() {
    var box = document.getElementById("geo-cs-ticks");
    var slider = document.getElementById("geo-cs-period");
    if (!box || !slider || !box.offsetWidth) { return; }
    var ticks = Array.prototype.slice.call(box.children);
    var n = ticks.length;
    box.classList.add("geo-cs-ticks-placed");
    var width = box.clientWidth;
    var gap = 8;
    // the thumb's centre runs from half a thumb in from each end
    var thumb = 16;
    var spacing = n > 1 ? (width - thumb) / (n - 1) : width;
    // a name may take two lines ("November / 2010") when the ticks are close: as wide as lets a
    // name sit between two others (the first and last are held inside the slider's ends)
    var widest = Math.max(56, Math.min(140, (spacing + thumb / 2 - gap) * 2 / 3));
    var tallest = 0;
    var boxes = ticks.map(function (tick) {
      tick.hidden = false;
      tick.style.left = "0px";
      tick.style.width = "";
      tick.style.maxWidth = widest + "px";
      // as wide as its longest line, not its limit
      var range = document.createRange();
      range.selectNodeContents(tick);
      var lineWidth = 0;
      Array.prototype.forEach.call(range.getClientRects(), function (r) { lineWidth = Math.max(lineWidth, r.width); });
      tick.style.width = Math.ceil(lineWidth || tick.getBoundingClientRect().width) + "px";
      tallest = Math.max(tallest, tick.offsetHeight);
      return null;
    }).map(function (_b, i) {
      var w = ticks[i].offsetWidth;
      var centre = n > 1 ? thumb / 2 + i * spacing : width / 2;
      var left = Math.max(0, Math.min(width - w, centre - w / 2));
      ticks[i].style.left = left + "px";
      return { left: left, right: left + w };
    });
    box.style.height = tallest + "px";
    // the first and the last always; between them each that leaves room on both sides
    var kept = [0];
    var last = n - 1;
    for (var i = 1; i < last; i++) {
      var prev = boxes[kept[kept.length - 1]];
      if (boxes[i].left >= prev.right + gap && boxes[i].right + gap <= boxes[last].left) { kept.push(i); }
    }
    if (last > 0) {
      // the last name has no room beside the first: the first shown alone
      if (boxes[last].left >= boxes[0].right + gap) { kept.push(last); }
    }
    ticks.forEach(function (tick, i) { tick.hidden = kept.indexOf(i) < 0; });
  }

  // -- the panel: beside the map, or a sheet over its lower half on a phone ---------------------------

  var setPanel = function () {};
  function openPanel(open) { setPanel(open); }

  function wirePanelToggle(map) {
    var toggle = document.getElementById("geo-cs-panel-toggle");
    var body = document.getElementById("geo-cs-panel-body");
    setPanel = function (open) {
      if (body.hidden === !open) { return; }
      body.hidden = !open;
      toggle.setAttribute("aria-expanded", String(open));
      toggle.textContent = open ? "Hide panel" : "Show panel";
      document.body.classList.toggle("geo-cs-panel-closed", !open);
      map.invalidateSize({ pan: false });
      if (open) { layoutTicks(); }
    };
    toggle.addEventListener("click", function () { setPanel(body.hidden); });
    // the skip link opens a folded panel before focus lands in it
    var skip = document.querySelector(".geo-cs-skip");
    if (skip) { skip.addEventListener("click", function () { setPanel(true); }); }
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

  // Buttons on the map: the worst-performing neighbourhoods as large as they fit, and back to
  // the whole partnership.
  function addViewButtons(map) {
    var Buttons = L.Control.extend({
      options: { position: "topleft" },
      onAdd: function () {
        var worst = el("button", { type: "button", id: "geo-cs-zoom-worst", className: "geo-cs-map-button" },
                       ["Zoom to worst"]);
        worst.addEventListener("click", zoomToWorst);
        var whole = el("button", { type: "button", id: "geo-cs-zoom-whole", className: "geo-cs-map-button" },
                       ["Whole area"]);
        whole.setAttribute("aria-label", "Show the whole of " + cfg.partnershipName);
        whole.addEventListener("click", function () { fitPartnership(true); });
        var box = el("div", { className: "leaflet-bar geo-cs-view-buttons" }, [worst, whole]);
        L.DomEvent.disableClickPropagation(box);
        return box;
      }
    });
    new Buttons().addTo(map);
    updateViewButtons();
  }

  function updateViewButtons() {
    var worst = document.getElementById("geo-cs-zoom-worst");
    if (worst) {
      worst.hidden = !(drawsWorst() && cfg.areas && cfg.areas.worst.some(Boolean));
      worst.setAttribute("aria-label", "Zoom to the worst-performing " + areaWord(true));
    }
  }

  // On paper the map has a fixed size (map.css, @media print): it is drawn at that size to fit
  // the partnership before printing, and put back as it was after. The size is set on the
  // element itself too, since a browser prints what is laid out before the page takes print's
  // styles.
  var PRINT_MAP_MM = [180, 95];
  function wirePrint(map) {
    var before = null;
    var container = map.getContainer();
    function toPaper() {
      if (before) { return; }
      before = { center: map.getCenter(), zoom: map.getZoom() };
      container.style.width = Math.round(PRINT_MAP_MM[0] * 96 / 25.4) + "px";
      container.style.height = Math.round(PRINT_MAP_MM[1] * 96 / 25.4) + "px";
      map.invalidateSize({ pan: false });
      fitPartnership(false);
      document.body.dataset.print = "fitted";
    }
    function back() {
      if (!before) { return; }
      container.style.width = "";
      container.style.height = "";
      map.invalidateSize({ pan: false });
      map.setView(before.center, before.zoom, { animate: false });
      before = null;
      document.body.dataset.print = "";
    }
    window.addEventListener("beforeprint", toPaper);
    window.addEventListener("afterprint", back);
    if (window.matchMedia) {
      var paper = window.matchMedia("print");
      var follow = function (e) { if (e.matches) { toPaper(); } else { back(); } };
      if (paper.addEventListener) { paper.addEventListener("change", follow); } else if (paper.addListener) { paper.addListener(follow); }
    }
  }

  // The area under a point of the map, from the drawn tiles of the period shown. VectorGrid's own
  // hit test compares map pixels with tile pixels, which differ at fractional zooms and beyond
  // the tiles' own zoom: there it found nothing, and clicks and tooltips were lost.
  function areaAt(latlng) {
    var layer = geoCs.layers && geoCs.layers.choropleth;
    if (!layer || !layer._map || layer._tileZoom === undefined || !layer._vectorTiles) { return null; }
    var size = layer.getTileSize();
    var point = geoCs.map.project(latlng, layer._tileZoom);
    var coords = point.unscaleBy(size).floor();
    coords.z = layer._tileZoom;
    var tile = layer._vectorTiles[layer._tileCoordsToKey(coords)];
    if (!tile || !tile._features) { return null; }
    var local = point.subtract(coords.scaleBy(size));
    var found = null;
    Object.keys(tile._features).some(function (id) {
      var feature = tile._features[id].feature;
      if (!feature._parts || !feature._parts.length) { return false; }
      if (!feature._pxBounds) { feature._pxBounds = feature._getPixelBounds(); }
      if (feature._pxBounds.contains(local) && feature._containsPoint(local)) { found = feature; }
      return found !== null;
    });
    return found && found.properties;
  }

  // A mouse over an area shows its tooltip; a click or a tap selects it. A finger has no hover:
  // a tap shows the profile, with no tooltip.
  function followPointer(map, tip) {
    var container = map.getContainer();
    var touching = false;
    container.addEventListener("pointerdown", function (e) { touching = e.pointerType === "touch"; });
    container.addEventListener("pointermove", function (e) { if (e.pointerType === "mouse") { touching = false; } });
    // Leaflet centres the tooltip over the pointer: near the map's side, on a phone's narrow
    // screen, part of it fell off the screen. It is slid along, to stay on the map.
    var place = tip._setPosition;
    tip._setPosition = function (pos) {
      place.call(this, pos);
      var box = this._container;
      var at = L.DomUtil.getPosition(box);
      var left = this._map.layerPointToContainerPoint(at).x;
      var room = Math.max(this._map.getSize().x - box.offsetWidth - 4, 4);
      var shift = Math.min(Math.max(left, 4), room) - left;
      if (shift) { L.DomUtil.setPosition(box, at.add([shift, 0])); }
    };
    var shown = null;
    var waiting = null;
    function hide() {
      shown = null;
      map.closeTooltip(tip);
      container.classList.remove("geo-cs-over-area");
    }
    function hover(latlng) {
      var p = touching ? null : areaAt(latlng);
      if (!p) { hide(); return; }
      var key = p.code + " " + current + " " + (geoCs.layers && geoCs.layers.url);
      tip.setLatLng(latlng);
      if (key !== shown) {
        shown = key;
        tip.setContent(tooltipContent(p, latlng));
      }
      if (!map.hasLayer(tip)) { map.openTooltip(tip); }
      container.classList.add("geo-cs-over-area");
    }
    map.on("mousemove", function (e) {
      // once a frame, at the pointer's latest place
      if (waiting === null) {
        requestAnimationFrame(function () { var at = waiting; waiting = null; hover(at); });
      }
      waiting = e.latlng;
    });
    map.on("mouseout movestart zoomstart", hide);
    map.on("click", function (e) {
      // picking areas or drawing a shape (custom.js) takes the click instead of the profile
      if (geoCs.takesClick && geoCs.takesClick(e)) { hide(); return; }
      var p = areaAt(e.latlng);
      if (!p) { return; }
      // the embed view has no profile: a click or a tap shows the area's tooltip
      if (cfg.embed) { touching = false; hover(e.latlng); return; }
      hide();
      selectArea(p, e.latlng);
    });
  }

  // -- embedding: the embed view's link to the full map, and the full page's snippet for it ----------

  function attributeText(text) {
    return String(text).replace(/&/g, "&amp;").replace(/"/g, "&quot;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
  }

  // The view shown, as an address: the page's own, whose query follows the view (period,
  // threshold, baseline, zoom, centre, selected area), read when it is needed.
  function embedSnippet() {
    var path = window.location.pathname.replace(/\/+$/, "");
    var src = window.location.origin + path + "/embed" + window.location.search;
    return '<iframe src="' + attributeText(src) + '" width="600" height="450" title="' +
      attributeText("Map of " + cfg.partnershipName + ": " + cfg.measure) + '" loading="lazy"></iframe>';
  }

  function wireEmbedding() {
    var full = document.getElementById("geo-cs-full");
    if (cfg.embed && full) {
      // the full page of the same view: the embed's own address less "/embed" (what the service
      // wrote is the view asked for; the address may say more, such as a selected area)
      var follow = function () { full.href = window.location.pathname.replace(/\/embed\/?$/, "") + window.location.search; };
      follow();
      ["pointerdown", "focus", "click"].forEach(function (name) { full.addEventListener(name, follow); });
      // the view the address holds, in the names the full page writes (custom.js: z, lat, lon,
      // select), which loads no custom.js here: the code copied from a moved map shows its view
      var params = new URL(window.location.href).searchParams;
      var z = Number(params.get("z")), lat = Number(params.get("lat")), lon = Number(params.get("lon"));
      if (params.get("z") && params.get("lat") && params.get("lon") && isFinite(z) && isFinite(lat) && isFinite(lon) &&
          Math.abs(lat) <= 90 && Math.abs(lon) <= 180) {
        geoCs.map.setView([lat, lon], Math.min(Math.max(z, geoCs.map.getMinZoom()), geoCs.map.getMaxZoom()),
                          { animate: false });
      }
      var select = params.get("select");
      if (select) { highlight(select); document.body.dataset.selected = select; }
      return;
    }
    var box = document.getElementById("geo-cs-embed");
    if (!box) { return; }
    var code = document.getElementById("geo-cs-embed-code");
    var status = document.getElementById("geo-cs-embed-status");
    function fill() { code.value = embedSnippet(); }
    box.addEventListener("toggle", function () { if (box.open) { fill(); status.textContent = ""; } });
    code.addEventListener("focus", function () { fill(); code.select(); });
    document.getElementById("geo-cs-embed-copy").addEventListener("click", function () {
      fill();
      function said(words) { status.textContent = words; document.body.dataset.embedCopied = words === "Copied" ? "1" : "0"; }
      // the selected text, copied the old way, where the clipboard API is refused (an http page)
      function selectAndCopy() {
        code.focus();
        code.select();
        var copied = false;
        try { copied = document.execCommand("copy"); } catch (e) { copied = false; }
        said(copied ? "Copied" : "Selected: press Ctrl+C (\u2318C on a Mac) to copy it");
      }
      if (navigator.clipboard && navigator.clipboard.writeText) {
        navigator.clipboard.writeText(code.value).then(function () { said("Copied"); }, selectAndCopy);
      } else {
        selectAndCopy();
      }
    });
    if (box.open) { fill(); }
  }

  function init() {
    // quarter zoom steps: the partnership fills the map, whatever the screen
    var map = L.map("geo-cs-map", { minZoom: cfg.minZoom, maxZoom: cfg.maxNativeZoom + 2, zoomSnap: 0.25 });
    geoCs.map = map;
    fitPartnership(false);
    // the embed view: no control but zoom (and the one-line credits), the map is small
    if (!cfg.embed) { L.control.scale({ imperial: false }).addTo(map); }
    var styles = {};
    var hatchStyles = {};
    styles[cfg.layer] = geoCs.choroplethStyle;
    hatchStyles[cfg.layer] = geoCs.hatchStyle;
    var common = { maxNativeZoom: cfg.maxNativeZoom, getFeatureId: function (f) { return f.properties.code; } };
    var tip = L.tooltip({ sticky: true, className: "geo-cs-tooltip", direction: "top", offset: [0, -8] });
    var choroplethGroup = L.layerGroup().addTo(map);
    var hatchGroup = L.layerGroup().addTo(map);
    var layers = keptPeriods(map, choroplethGroup, hatchGroup, function (url) {
      // the pointer is followed by the page's own hit test (areaAt), not VectorGrid's
      var choropleth = shareDecodedTiles(L.vectorGrid.protobuf(url, L.extend({
        vectorTileLayerStyles: styles, interactive: false, rendererFactory: L.canvas.tile,
        attribution: cfg.attribution
      }, common)));
      var hatch = shareDecodedTiles(L.vectorGrid.protobuf(url, L.extend({
        vectorTileLayerStyles: hatchStyles, interactive: false, className: "geo-cs-hatch",
        rendererFactory: L.svg.tile
      }, common)));
      return { choropleth: choropleth, hatch: hatch };
    });
    followPointer(map, tip);
    var outline = L.geoJSON(cfg.outline, {
      style: function () { return { color: "#1f3a93", weight: 3, fill: false, dashArray: "6 4" }; },
      interactive: false
    }).addTo(map);
    var overlays = {};
    overlays[cfg.measure] = choroplethGroup;
    if (!cfg.survey) { overlays["Worst-performing outlines, boundary-change hatching"] = hatchGroup; }
    overlays[cfg.partnershipName + " (outline)"] = outline;
    // the control writes its labels as HTML: give it text that is already escaped
    var escaped = {};
    Object.keys(overlays).forEach(function (name) {
      var holder = document.createElement("span");
      holder.textContent = name;
      escaped[holder.innerHTML] = overlays[name];
    });
    if (!cfg.embed) {
      L.control.layers(null, escaped, { collapsed: true }).addTo(map);
      addViewButtons(map);
    }

    outline.bringToFront();
    var slider = document.getElementById("geo-cs-period");   // none in the embed view
    if (!cfg.embed) { slider.addEventListener("input", function () { showPeriod(Number(slider.value), layers, true); }); }
    geoCs.layers = layers;
    geoCs.labels = addReference(map);
    outline.bringToFront();
    current = startIndex();
    if (!cfg.embed) { slider.value = String(current); }
    renderFigures(layers);
    showPeriod(current, layers, false);
    geoCs.placeLabels();   // again, clear of the credits the layers have just added
    wireForm();
    wireCohort(layers);
    wireSearch();
    if (!cfg.embed) { wirePanelToggle(map); }
    wireEmbedding();
    wirePrint(map);
    layoutTicks();
    window.addEventListener("resize", layoutTicks);
    Array.prototype.forEach.call(document.querySelectorAll("input[name=geo-cs-list]"), function (radio) {
      radio.addEventListener("change", renderAreas);
    });
    // no worst areas: the list starts on all of them
    if (!drawsWorst() || !cfg.areas.worst.some(Boolean)) {
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

  geoCs.surveyDifference = surveyDifference;
  geoCs.roundHalfEven = roundHalfEven;
  geoCs.differenceVerdict = differenceVerdict;
  geoCs.areaAt = areaAt;
  geoCs.config = cfg;
  // the profile of an area by its code, as a click on it shows (a shared link's selected area)
  geoCs.selectCode = function (code) {
    var i = cfg.areas.code.indexOf(code);
    if (i >= 0) { showProfile(i, null); highlight(code); }
    return i >= 0;
  };
  geoCs.insideOutline = insideOutline;
  window.geoCs = geoCs;
  init();
}());

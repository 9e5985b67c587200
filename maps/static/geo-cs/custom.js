/* geo-cs web map: making your own area, and sharing a view.
 *
 * Your own area: pick small areas on the map (a click adds or removes one), draw a shape round
 * them (the areas whose inside point it holds), or paste or upload their codes; "Show my area"
 * opens the page of the area, whose id holds it all (geo_cs/custom_areas.py: encodeArea below
 * writes the same id, byte for byte). Nothing is kept on the server.
 *
 * Sharing: the address keeps the map's zoom and centre, the selected area and the list shown,
 * beside the period, threshold and baseline map.js writes; "Copy link to this view" copies it.
 * A link opened shows what its sender saw.
 *
 * Runs after map.js, through window.geoCs; like map.js it writes data as text, never as HTML.
 */
(function () {
  "use strict";
  var geoCs = window.geoCs;
  if (!geoCs || !geoCs.map || !geoCs.config) { return; }
  var cfg = geoCs.config;
  var map = geoCs.map;
  var VIEW_PARAMS = ["z", "lat", "lon", "select", "list"];
  var MAX_ID_LENGTH = 3000;   // geo_cs.custom_areas.MAX_ID_LENGTH: a link stays within the URL limit

  function byId(id) { return document.getElementById(id); }
  function say(id, text) { var node = byId(id); if (node) { node.textContent = text; } }
  function problem(text) {
    var node = byId("geo-cs-make-problem");
    if (!node) { return; }
    node.textContent = text || "";
    node.hidden = !text;
  }
  function areaWords(n) {
    var words = cfg.areaWords || { one: "area", many: "areas" };
    return n.toLocaleString("en-GB") + " " + (n === 1 ? words.one : words.many);
  }

  // -- a shared view: what the address holds ------------------------------------------------------

  var restoring = true;
  // The zoom and centre go into the address once the visitor has moved the map (or opened a
  // link that holds them): until then the page fits the partnership to whatever screen opens
  // the link, a phone's or a desktop's, which a fixed zoom would not.
  var moved = new URL(window.location.href).searchParams.has("z");

  function writeView() {
    if (restoring) { return; }
    var url = new URL(window.location.href);
    var centre = map.getCenter();
    if (moved) {
      url.searchParams.set("z", String(Math.round(map.getZoom() * 100) / 100));
      url.searchParams.set("lat", centre.lat.toFixed(5));
      url.searchParams.set("lon", centre.lng.toFixed(5));
    }
    var selected = document.body.dataset.selected;
    if (selected) { url.searchParams.set("select", selected); } else { url.searchParams.delete("select"); }
    var list = document.querySelector("input[name=geo-cs-list]:checked");
    if (list && list.value !== "worst") { url.searchParams.set("list", list.value); } else { url.searchParams.delete("list"); }
    if (url.toString() !== window.location.href) { window.history.replaceState(null, "", url.toString()); }
  }

  function restoreView() {
    var params = new URL(window.location.href).searchParams;
    var z = Number(params.get("z")), lat = Number(params.get("lat")), lon = Number(params.get("lon"));
    if (params.has("z") && params.has("lat") && params.has("lon") && isFinite(z) && isFinite(lat) && isFinite(lon)
        && Math.abs(lat) <= 90 && Math.abs(lon) <= 180) {
      map.setView([lat, lon], Math.min(Math.max(z, map.getMinZoom()), map.getMaxZoom()), { animate: false });
    }
    var list = params.get("list");
    var radio = list && document.querySelector("input[name=geo-cs-list][value=" + (list === "all" ? "all" : "worst") + "]");
    if (radio && !radio.checked) {
      radio.checked = true;
      radio.dispatchEvent(new Event("change", { bubbles: true }));
    }
    var select = params.get("select");
    // the profile, without moving the map: the view is the one the link holds
    if (select) { geoCs.selectCode(select); }
  }

  function wireShare() {
    // a move the visitor made: one that starts just after their gesture on the map (a drag, a
    // wheel, a key, a zoom button) or a click in the panel that moves it (an area in the list,
    // a search result). A click that only selects an area moves nothing, and adds no zoom.
    var gesture = -Infinity;
    function touched() { gesture = Date.now(); }
    var container = map.getContainer();
    ["pointerdown", "wheel", "keydown"].forEach(function (type) { container.addEventListener(type, touched, true); });
    document.addEventListener("click", function (e) {
      if (e.target.closest && e.target.closest(".geo-cs-area-link, .geo-cs-hit, #geo-cs-profile button")) { touched(); }
    }, true);
    map.on("movestart", function () { if (Date.now() - gesture < 1500) { moved = true; } });
    map.on("moveend", writeView);
    new MutationObserver(writeView).observe(document.body, { attributes: true, attributeFilter: ["data-selected", "data-period"] });
    Array.prototype.forEach.call(document.querySelectorAll("input[name=geo-cs-list]"), function (radio) {
      radio.addEventListener("change", writeView);
    });
    var button = byId("geo-cs-copy-link");
    if (!button) { return; }
    button.addEventListener("click", function () {
      restoring = false;
      moved = true;          // the link holds the view on the sender's screen
      writeView();
      var link = window.location.href;
      function shown() {
        // no clipboard (an older browser, a page not served over HTTPS): the link to copy by hand
        var field = byId("geo-cs-link-text");
        if (!field) {
          field = document.createElement("input");
          field.type = "text";
          field.id = "geo-cs-link-text";
          field.readOnly = true;
          field.setAttribute("aria-label", "Link to this view");
          button.parentNode.appendChild(field);
        }
        field.value = link;
        field.select();
        say("geo-cs-copy-status", "Copy the link above (Ctrl+C).");
      }
      if (navigator.clipboard && navigator.clipboard.writeText) {
        navigator.clipboard.writeText(link).then(function () {
          say("geo-cs-copy-status", "Link copied: whoever opens it sees this view.");
        }, shown);
      } else {
        shown();
      }
    });
  }

  // -- your own area -----------------------------------------------------------------------------

  var make = cfg.makeArea;
  var picked = new Set(make ? make.codes : []);
  var mode = null;               // "pick", "draw" or null
  var vertices = [];
  var sketch = null;             // the shape being drawn
  var markers = L.layerGroup();  // a dot on each picked area
  var pointOf = {};
  (cfg.areas.code || []).forEach(function (code, i) {
    var point = cfg.areas.point && cfg.areas.point[i];
    if (point && point[0] !== null) { pointOf[code] = point; }
  });
  // the kinds of code this map's areas have (S01, E01, W01): a pasted list's district or ward
  // codes are not its areas
  var prefixes = new Set((cfg.areas.code || []).concat(make ? make.codes : []).map(function (c) { return c.slice(0, 3); }));

  function varint(n, out) {
    for (;;) {
      var low = n % 128;
      n = Math.floor(n / 128);
      out.push(n ? low | 128 : low);
      if (!n) { return; }
    }
  }
  function text(value, out) {
    var raw = new TextEncoder().encode(value);
    varint(raw.length, out);
    raw.forEach(function (b) { out.push(b); });
  }

  // geo_cs.custom_areas.area_id, in the browser: the same bytes, the same id
  function encodeArea(setId, codes, name, within, againstWithin) {
    var sorted = Array.from(new Set(codes.map(function (c) { return String(c).trim().toUpperCase(); })))
      .filter(Boolean).sort();
    var out = [1, againstWithin ? 1 : 0];
    text(setId, out);
    text(String(name || "").replace(/[\u0000-\u001f\u007f]/g, " ").trim(), out);
    text(within || "", out);
    var groups = [];
    sorted.forEach(function (code) {
      var prefix = code.slice(0, 3), n = Number(code.slice(3));
      var group = groups.length && groups[groups.length - 1].prefix === prefix ? groups[groups.length - 1] : null;
      if (!group) { group = { prefix: prefix, runs: [] }; groups.push(group); }
      var last = group.runs[group.runs.length - 1];
      if (last && n === last[0] + last[1]) { last[1] += 1; } else { group.runs.push([n, 1]); }
    });
    varint(groups.length, out);
    groups.forEach(function (group) {
      for (var i = 0; i < 3; i++) { out.push(group.prefix.charCodeAt(i)); }
      varint(group.runs.length, out);
      var end = 0;
      group.runs.forEach(function (run) {
        varint(run[0] - end, out);
        varint(run[1] - 1, out);
        end = run[0] + run[1];
      });
    });
    var binary = "";
    for (var j = 0; j < out.length; j += 4096) { binary += String.fromCharCode.apply(null, out.slice(j, j + 4096)); }
    return "area-" + btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function drawMarkers() {
    markers.clearLayers();
    picked.forEach(function (code) {
      var point = pointOf[code];
      if (point) {
        L.circleMarker([point[1], point[0]], { radius: 5, color: "#ffffff", weight: 2, fillColor: "#6f2dbd",
                                                fillOpacity: 1, interactive: false }).addTo(markers);
      }
    });
    say("geo-cs-make-count", picked.size ? areaWords(picked.size) + " picked." : "No areas picked yet.");
    say("geo-cs-pick-status-words", areaWords(picked.size) + " picked");
    document.body.dataset.picked = String(picked.size);
  }

  // while picking or drawing, the map itself says how many are picked and ends the mode: on a
  // phone the panel's count and buttons are out of sight below the map
  var status = L.control({ position: "topright" });
  status.onAdd = function () {
    var box = L.DomUtil.create("div", "geo-cs-pick-status leaflet-bar");
    var words = L.DomUtil.create("span", "", box);
    words.id = "geo-cs-pick-status-words";
    words.setAttribute("aria-live", "polite");
    var done = L.DomUtil.create("button", "geo-cs-map-button", box);
    done.type = "button";
    done.id = "geo-cs-pick-done";
    done.textContent = "Done";
    L.DomEvent.disableClickPropagation(box);
    L.DomEvent.on(done, "click", function () { if (mode === "draw") { finishShape(); } else { setMode(null); } });
    return box;
  };

  function setMode(next) {
    if (mode === "draw" && next !== "draw") { clearSketch(); }
    // two quick clicks or taps are two corners or two areas, not a zoom
    if (next !== null && mode === null) { status.addTo(map); map.doubleClickZoom.disable(); }
    if (next === null && mode !== null) { status.remove(); map.doubleClickZoom.enable(); }
    mode = next;
    var pick = byId("geo-cs-pick"), draw = byId("geo-cs-draw");
    pick.setAttribute("aria-pressed", String(mode === "pick"));
    draw.setAttribute("aria-pressed", String(mode === "draw"));
    draw.textContent = mode === "draw" ? "Finish the shape" : "Draw a shape";
    map.getContainer().classList.toggle("geo-cs-picking", mode !== null);
    if (mode !== null) { say("geo-cs-pick-status-words", areaWords(picked.size) + " picked"); }
    say("geo-cs-make-mode", mode === "pick" ? "Click or tap areas to add them; again to take one out."
      : mode === "draw" ? "Click or tap the corners of your shape, then press “Finish the shape”. Escape cancels."
      : "");
  }

  function clearSketch() {
    vertices = [];
    if (sketch) { map.removeLayer(sketch); sketch = null; }
  }

  // ray casting in lon/lat: a neighbourhood is a few hundred metres, where that is exact enough
  function inside(point, ring) {
    var hit = false;
    for (var i = 0, j = ring.length - 1; i < ring.length; j = i++) {
      var a = ring[i], b = ring[j];
      if ((a.lat > point[1]) !== (b.lat > point[1])
          && point[0] < (b.lng - a.lng) * (point[1] - a.lat) / (b.lat - a.lat) + a.lng) { hit = !hit; }
    }
    return hit;
  }

  function finishShape() {
    if (vertices.length < 3) {
      problem("Click at least three corners on the map to make a shape.");
      return;
    }
    var added = 0;
    Object.keys(pointOf).forEach(function (code) {
      if (!picked.has(code) && inside(pointOf[code], vertices)) { picked.add(code); added += 1; }
    });
    problem(added ? "" : "No area's centre lies inside that shape: draw round the areas you want.");
    setMode(null);
    drawMarkers();
  }

  function takesClick(e) {
    if (mode === "pick") {
      var p = geoCs.areaAt(e.latlng);
      if (p && p.code) {
        if (picked.has(p.code)) { picked.delete(p.code); } else { picked.add(p.code); }
        if (!pointOf[p.code]) { pointOf[p.code] = [e.latlng.lng, e.latlng.lat]; }
        problem("");
        drawMarkers();
      }
      return true;
    }
    if (mode === "draw") {
      vertices.push(e.latlng);
      if (sketch) { map.removeLayer(sketch); }
      sketch = (vertices.length > 2 ? L.polygon(vertices) : L.polyline(vertices)).setStyle({
        color: "#6f2dbd", weight: 2, dashArray: "4 3", fillOpacity: 0.1, interactive: false }).addTo(map);
      return true;
    }
    return false;
  }

  function addCodes(textValue) {
    var found = (String(textValue).match(/\b[EWSN]\d{8}\b/gi) || []).map(function (c) { return c.toUpperCase(); });
    var mine = found.filter(function (c) { return prefixes.has(c.slice(0, 3)); });
    var other = found.length - mine.length;
    if (!found.length) {
      problem("No area codes found there: codes are a letter and 8 digits, such as " + (cfg.areas.code[0] || "S01010206") + ".");
      return;
    }
    if (!mine.length) {
      problem("None of those codes is one of this map's " + (cfg.areaWords || {}).many + " (they start " +
              Array.from(prefixes).join(", ") + "); choose the map of the areas your list holds under “Map of”.");
      return;
    }
    mine.forEach(function (c) { picked.add(c); });
    problem(other ? other + " codes of other kinds of area (such as districts) were left out." : "");
    drawMarkers();
  }

  function showArea() {
    if (!picked.size) { problem("Pick at least one area first."); return; }
    var name = byId("geo-cs-area-name").value;
    var id = encodeArea(make.set, Array.from(picked), name, make.within || "", false);
    if (id.length > MAX_ID_LENGTH) {
      problem("That many scattered areas make too long a link. Pick fewer, or give their codes to the " +
              "command line (geo-cs analyse ni153 --area-file codes.csv).");
      return;
    }
    var here = new URL(window.location.href).searchParams;
    var query = new URLSearchParams();
    here.forEach(function (value, key) { if (VIEW_PARAMS.indexOf(key) < 0 && key !== "period") { query.set(key, value); } });
    query.set("geography", make.set);
    window.location.assign("/maps/" + id + "?" + query.toString());
  }

  function wireMake() {
    var box = byId("geo-cs-make");
    if (!make || !box) { return; }
    byId("geo-cs-area-name").value = make.name || "";
    byId("geo-cs-pick").addEventListener("click", function () { setMode(mode === "pick" ? null : "pick"); });
    byId("geo-cs-draw").addEventListener("click", function () {
      if (mode === "draw") { finishShape(); } else { clearSketch(); setMode("draw"); }
    });
    byId("geo-cs-codes-add").addEventListener("click", function () { addCodes(byId("geo-cs-codes").value); });
    byId("geo-cs-codes-file").addEventListener("change", function (e) {
      var file = e.target.files && e.target.files[0];
      if (!file) { return; }
      file.text().then(addCodes, function () { problem("That file could not be read: give a CSV or a text file."); });
    });
    byId("geo-cs-make-show").addEventListener("click", showArea);
    byId("geo-cs-make-clear").addEventListener("click", function () {
      picked.clear();
      clearSketch();
      problem("");
      drawMarkers();
    });
    // the dots show while the tools are open: a custom area's own page is outlined already
    box.addEventListener("toggle", function () {
      if (box.open) { markers.addTo(map); } else { setMode(null); map.removeLayer(markers); }
    });
    document.addEventListener("keydown", function (e) {
      if ((e.key === "Escape" || e.key === "Esc") && mode !== null) { setMode(null); }
    });
    geoCs.takesClick = takesClick;
    drawMarkers();
  }

  geoCs.encodeArea = encodeArea;
  wireMake();
  restoreView();
  // the view restored (or the partnership fitted) is the starting point: what the visitor
  // changes from here goes into the address
  setTimeout(function () { restoring = false; }, 0);
  wireShare();
}());

/* Maps of the console: Leaflet with GeoJSON shapes as the base layer (no tiles needed). */
(function () {
  "use strict";
  var el = document.getElementById("map");
  if (!el || typeof L === "undefined") { return; }
  var status = document.getElementById("map-status");
  var map = L.map(el, { preferCanvas: true, keyboard: true });
  map.setView([52.1, 5.3], 7);
  if (el.dataset.tileUrl) {
    L.tileLayer(el.dataset.tileUrl, { attribution: el.dataset.tileAttribution || "" }).addTo(map);
  }
  function say(text) { if (status) { status.textContent = text; } }
  function get(url) {
    return fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { if (!r.ok) { throw new Error(url + ": " + r.status); } return r.json(); });
  }
  var STYLE = {
    ready: { radius: 6, color: "#14532d", fillColor: "#16a34a", fillOpacity: 0.9, weight: 1 },
    unverified: { radius: 6, color: "#92400e", fillColor: "#fbbf24", fillOpacity: 0.5, weight: 2, dashArray: "3 3" },
    not_ready: { radius: 6, color: "#991b1b", fillColor: "#ffffff", fillOpacity: 0.9, weight: 4 },
    unknown: { radius: 4, color: "#4b5563", fillColor: "#9ca3af", fillOpacity: 0.8, weight: 1 }
  };
  var WORDS = { ready: "Ready", unverified: "Unverified", not_ready: "Not ready", unknown: "Not evaluated yet" };
  function text(value) { var span = document.createElement("span"); span.textContent = value; return span.innerHTML; }

  function outlines(url) {
    return get(url).then(function (doc) {
      var layer = L.geoJSON(doc, { style: { color: "#374151", weight: 1, fillColor: "#f3f4f6", fillOpacity: 0.6 },
        onEachFeature: function (f, l) { l.bindTooltip(text(f.properties.name)); } }).addTo(map);
      layer.bringToBack();
      el.dataset.outlines = String(layer.getLayers().length);
      return layer;
    });
  }

  if (el.dataset.points) {
    Promise.all([outlines(el.dataset.boundaries), get(el.dataset.points)]).then(function (found) {
      var doc = found[1], counts = {};
      var points = L.geoJSON(doc, {
        pointToLayer: function (f, latlng) {
          var s = f.properties.state; counts[s] = (counts[s] || 0) + 1;
          return L.circleMarker(latlng, STYLE[s] || STYLE.unknown);
        },
        onEachFeature: function (f, l) {
          var p = f.properties, html = (p.id ? "<strong>" + text(p.id) + "</strong><br>" : "") + (WORDS[p.state] || WORDS.unknown);
          if (p.detail) { html += '<br><a href="' + el.dataset.detail.replace("AED_ID", encodeURIComponent(p.id)) + '">Open</a>'; }
          l.bindPopup(html);
        }
      }).addTo(map);
      if (doc.features.length) { map.fitBounds(points.getBounds(), { maxZoom: 14 }); }
      else if (found[0].getLayers().length) { map.fitBounds(found[0].getBounds()); }
      say(doc.features.length + " AEDs: " + Object.keys(WORDS).map(function (k) { return (counts[k] || 0) + " " + WORDS[k].toLowerCase(); }).join(", ") + ".");
    }).catch(function (e) { say("The map could not be loaded: " + e.message); });
  }

  var SHARES = ["#b91c1c", "#f97316", "#facc15", "#15803d"];
  function shade(pct) { return SHARES[pct < 50 ? 0 : pct < 80 ? 1 : pct < 95 ? 2 : 3]; }
  if (el.dataset.coverage) {
    // The shapes come with the page (the server analysed the municipality once for both).
    Promise.resolve(JSON.parse(document.getElementById(el.dataset.coverage).textContent)).then(function (doc) {
      var areas = L.geoJSON(doc, {
        filter: function (f) { return f.properties.kind === "postcode"; },
        style: function (f) { return { color: "#1f2937", weight: 1, fillColor: shade(f.properties.covered_pct), fillOpacity: 0.55 }; },
        onEachFeature: function (f, l) {
          var p = f.properties;
          l.bindTooltip(text(p.postcode) + ": " + p.covered_pct + " % covered (" + p.population + " inhabitants)");
        }
      }).addTo(map);
      L.geoJSON(doc, {
        filter: function (f) { return f.properties.kind === "proposed_aed" || f.properties.kind === "critical_aed"; },
        pointToLayer: function (f, latlng) {
          var advice = f.properties.kind === "proposed_aed";
          var icon = L.divIcon({ className: advice ? "pin advice" : "pin critical",
            html: advice ? String(f.properties.rank) : "!", iconSize: [22, 22] });
          return L.marker(latlng, { icon: icon, keyboard: true,
            title: advice ? "Advised site " + f.properties.rank : "Critical AED " + f.properties.aed_id });
        }
      }).addTo(map);
      if (areas.getLayers().length) { map.fitBounds(areas.getBounds()); }
      say(areas.getLayers().length + " postcode areas shaded by the share of inhabitants covered.");
    }).catch(function (e) { say("The map could not be loaded: " + e.message); });
  }

  if (el.dataset.incident) {
    var layer = L.layerGroup().addTo(map), first = true;
    var draw = function () {
      var data = JSON.parse(document.getElementById("incident-data").textContent);
      layer.clearLayers();
      var victim = L.marker([data.victim.lat, data.victim.lon], { title: "Victim",
        icon: L.divIcon({ className: "pin victim", html: "✚", iconSize: [26, 26] }) }).addTo(layer);
      data.aeds.forEach(function (a) {
        L.marker([a.lat, a.lon], { title: "AED " + a.id, icon: L.divIcon({ className: "pin aed" + (a.picked_up ? " picked" : ""),
          html: "AED", iconSize: [34, 20] }) }).bindTooltip("AED " + text(a.id) + (a.picked_up ? " (picked up)" : "")).addTo(layer);
      });
      data.responders.forEach(function (r) {
        L.circleMarker([r.lat, r.lon], { radius: 6, color: "#1e3a8a", fillColor: r.role === "cpr" ? "#3b82f6" : "#a855f7", fillOpacity: 0.9 })
          .bindTooltip("Responder " + text(r.id) + " (" + text(r.role) + ")").addTo(layer);
      });
      if (first) { map.setView(victim.getLatLng(), 15); first = false; }
    };
    draw();
    window.aedfleetRedraw = draw;
    if (el.dataset.boundaries) {
      outlines(el.dataset.boundaries).catch(function (e) { say("Outlines not loaded: " + e.message); });
    }
    say("Victim, chosen AEDs and accepted responders on their way.");
  }
})();

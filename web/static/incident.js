/* Keeps an incident's live part current: fetched again every few seconds while the page is open. */
(function () {
  "use strict";
  var live = document.getElementById("live");
  if (!live) { return; }
  var url = live.dataset.source;
  function refresh() {
    fetch(url, { credentials: "same-origin" }).then(function (r) {
      // Anything but the live part (the log-in page after the session ran out) is not shown.
      if (r.ok && r.headers.get("X-Aedfleet-Part") === "live") { return r.text(); }
      if (r.redirected || r.status === 401 || r.status === 403) {
        clearInterval(timer);
        var note = document.getElementById("map-status");
        if (note) { note.textContent = "Your session has ended: reload the page to log in again."; }
      }
      return null;
    }).then(function (html) {
        if (html === null) { return; }
        live.innerHTML = html;
        if (window.aedfleetRedraw) { window.aedfleetRedraw(); }
      }).catch(function () { /* the next round tries again */ });
  }
  var timer = setInterval(refresh, 3000);
})();

/* Keeps an incident's live part current: fetched again every few seconds while the page is open. */
(function () {
  "use strict";
  var live = document.getElementById("live");
  if (!live) { return; }
  var url = live.dataset.source;
  function refresh() {
    fetch(url, { credentials: "same-origin" }).then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (html === null) { return; }
        live.innerHTML = html;
        if (window.aedfleetRedraw) { window.aedfleetRedraw(); }
      }).catch(function () { /* the next round tries again */ });
  }
  setInterval(refresh, 3000);
})();

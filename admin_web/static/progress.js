// Live broadcast progress: every <progress data-progress="…/progress.json"> is refreshed
// every 2 seconds while its broadcast is sending. Without JavaScript the page still
// shows the value it was rendered with and a link to load it again.
(function () {
  "use strict";
  var INTERVAL = 2000;

  function update(bar, data) {
    bar.max = data.total || 1;
    bar.value = data.settled;
    bar.textContent = data.percent + "%";
    // the counters beside the bar: the same cell, or the card the bar sits in
    var scope = bar.closest("[data-broadcast]") || bar.parentElement;
    scope.querySelectorAll("[data-field]").forEach(function (el) {
      var key = el.getAttribute("data-field");
      if (Object.prototype.hasOwnProperty.call(data, key)) {
        el.textContent = data[key];
      }
    });
  }

  function watch(bar) {
    var url = bar.getAttribute("data-progress");
    function poll() {
      fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (resp) {
          if (!resp.ok || (resp.headers.get("Content-Type") || "").indexOf("json") < 0) {
            throw new Error("no progress");
          }
          return resp.json();
        })
        .then(function (data) {
          update(bar, data);
          if (data.live) {
            window.setTimeout(poll, INTERVAL);
          }
        })
        .catch(function () {
          // logged out or offline: keep the last value; the refresh link still works
        });
    }
    window.setTimeout(poll, INTERVAL);
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("progress[data-progress]").forEach(watch);
  });
})();

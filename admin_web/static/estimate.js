// The compose form's live estimate: when the trip or the segment changes, ask
// /admin/broadcasts/estimate.json and show recipients, free, paid and cost. Without
// JavaScript the confirm step shows the same figures before anything is sent.
(function () {
  "use strict";

  function fill(template, data) {
    return template.replace(/\{(\w+)\}/g, function (whole, key) {
      return Object.prototype.hasOwnProperty.call(data, key) ? String(data[key]) : whole;
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var out = document.querySelector("[data-estimate]");
    if (!out) {
      return;
    }
    var form = out.closest("form");
    var trip = form.querySelector("[name=trip]");
    var segment = form.querySelector("[name=segment]");
    var asked = 0;

    function refresh() {
      var mine = ++asked;
      var query = "?trip=" + encodeURIComponent(trip.value) +
        "&segment=" + encodeURIComponent(segment.value);
      fetch(out.getAttribute("data-estimate") + query, {
        credentials: "same-origin",
        headers: { Accept: "application/json" }
      })
        .then(function (resp) {
          return resp.json();
        })
        .then(function (data) {
          if (mine !== asked) {
            return; // a newer choice is on its way
          }
          out.textContent = data.error ||
            fill(out.getAttribute("data-template"), {
              n: data.recipients, free: data.free, paid: data.paid, cost: data.cost
            });
        })
        .catch(function () {
          out.textContent = "";
        });
    }

    trip.addEventListener("change", refresh);
    segment.addEventListener("change", refresh);
    refresh();
  });
})();

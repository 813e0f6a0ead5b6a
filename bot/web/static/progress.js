/* Live progress of a broadcast: while messages remain, ask the JSON endpoint named by each
   [data-progress] box for the counts and write them in place. The page works without it
   (the counts are right as of loading); nothing else here. */
(function () {
  "use strict";
  var PERIOD = 2000; // ms between two looks
  var format = new Intl.NumberFormat(document.documentElement.lang || "vi");

  function follow(box) {
    var url = box.getAttribute("data-progress");

    function show(counts) {
      box.querySelectorAll("[data-count]").forEach(function (cell) {
        var name = cell.getAttribute("data-count");
        if (typeof counts[name] === "number") {
          cell.textContent = format.format(counts[name]);
        }
      });
      var bar = box.querySelector("progress");
      if (bar) {
        bar.max = counts.total;
        bar.value = counts.done;
      }
      var state = document.querySelector("[data-state]");
      if (state && counts.state_words) {
        state.textContent = counts.state_words;
      }
      if (counts.remaining > 0) {
        window.setTimeout(look, PERIOD);
      } else {
        box.setAttribute("data-finished", "");
      }
    }

    function look() {
      fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (response) {
          if (response.status === 401 || response.status === 404) {
            return null; // signed out, or no longer ours: stop
          }
          if (!response.ok) {
            throw new Error(String(response.status));
          }
          return response.json();
        })
        .then(function (counts) {
          if (counts) {
            show(counts);
          }
        })
        .catch(function () {
          window.setTimeout(look, PERIOD * 5); // the server may be restarting
        });
    }

    window.setTimeout(look, PERIOD);
  }

  document.querySelectorAll("[data-progress]").forEach(follow);
})();

// Deskbase's own small script, beside htmx: what a page does between requests.
// - A running stopwatch ticks every second from the time the server counted.
// - A form marked data-keep-query sends the page's current query in its `query` field.
// - A form marked data-confirm asks its question first (a transition's `confirm:`).
(function () {
  "use strict";

  function clock(seconds) {
    var h = Math.floor(seconds / 3600), m = Math.floor(seconds % 3600 / 60), s = seconds % 60;
    return h + ":" + (m < 10 ? "0" : "") + m + ":" + (s < 10 ? "0" : "") + s;
  }

  function tick(root) {
    (root || document).querySelectorAll(".stopwatch.running output[data-seconds]").forEach(function (output) {
      if (output.dataset.ticking) { return; }
      output.dataset.ticking = "1";
      var started = Date.now() - Number(output.dataset.seconds) * 1000;
      var show = function () {
        if (!document.body.contains(output) || !output.closest(".stopwatch.running")) { return; }   // stopped
        output.textContent = clock(Math.floor((Date.now() - started) / 1000));
        window.setTimeout(show, 1000);
      };
      show();
    });
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form.matches && form.matches("form[data-confirm]") && !window.confirm(form.dataset.confirm)) {
      event.preventDefault();                      // an action that cannot be undone, not confirmed
      return;
    }
    if (form.matches && form.matches("form[data-keep-query]") && form.elements.query) {
      form.elements.query.value = window.location.search.slice(1);
    }
  }, true);
  document.addEventListener("DOMContentLoaded", function () { tick(document); });
  document.addEventListener("htmx:afterSettle", function () { tick(document); });
}());

// Deskbase's own small script, beside htmx: what a page does between requests.
// - A running stopwatch ticks every second from the time the server counted.
// - A form marked data-keep-query sends the page's current query in its `query` field.
// - A form marked data-confirm asks its question first (a transition's `confirm:`).
// - Times (<time datetime>) read in the reader's own zone when it is not the application's
//   (the page's data-zone), the zone named on hover; "5 min ago" (data-relative) stays
//   true while the page stays open.
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

  var lang = document.documentElement.lang || "en";
  var own = (window.Intl && Intl.DateTimeFormat().resolvedOptions().timeZone) || "";
  var elsewhere = own && document.documentElement.dataset.zone && own !== document.documentElement.dataset.zone;

  function exact(date) {
    return date.toLocaleString(lang, {year: "numeric", month: "short", day: "numeric", hour: "2-digit",
                                      minute: "2-digit", timeZoneName: "short"});
  }

  function localTimes(root) {
    if (!elsewhere) { return; }
    (root || document).querySelectorAll("time[datetime]:not([data-local])").forEach(function (time) {
      var date = new Date(time.getAttribute("datetime"));
      if (isNaN(date.getTime())) { return; }
      time.dataset.local = "1";
      time.title = exact(date);
      if (!time.hasAttribute("data-relative")) { time.textContent = exact(date); }
    });
  }

  var STEPS = [[60, "second"], [3600, "minute"], [86400, "hour"], [7 * 86400, "day"]];

  function relative() {
    if (!window.Intl || !Intl.RelativeTimeFormat) { return; }
    var words = new Intl.RelativeTimeFormat(lang, {numeric: "auto", style: "short"});
    document.querySelectorAll("time[datetime][data-relative]").forEach(function (time) {
      var seconds = (Date.now() - new Date(time.getAttribute("datetime")).getTime()) / 1000;
      if (isNaN(seconds) || seconds < 60 || seconds >= 7 * 86400) { return; }   // "just now", or a date already
      for (var i = 1; i < STEPS.length; i++) {
        if (seconds < STEPS[i][0]) {
          time.textContent = words.format(-Math.floor(seconds / STEPS[i - 1][0]), STEPS[i][1]);
          return;
        }
      }
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
  document.addEventListener("DOMContentLoaded", function () {
    tick(document);
    localTimes(document);
    window.setInterval(relative, 60 * 1000);
  });
  document.addEventListener("htmx:afterSettle", function () { tick(document); localTimes(document); });
}());

// Only on a server started with `deskbase serve --reload`: the page asks every second
// whether the definitions changed (or their errors did) since it was drawn, and draws
// itself again when they have, unless someone is typing in it.
(function () {
  "use strict";
  var mark = document.getElementById("reload");
  if (!mark) { return; }
  var drawn = mark.dataset.generation + "|" + mark.dataset.problems;
  function typing() {
    var active = document.activeElement;
    return active && /^(INPUT|TEXTAREA|SELECT)$/.test(active.tagName) && active.form && active.form.dataset.changed;
  }
  document.addEventListener("input", function (event) {
    if (event.target.form) { event.target.form.dataset.changed = "1"; }
  });
  function ask() {
    fetch("/_reload", {cache: "no-store", credentials: "same-origin"}).then(function (answer) {
      return answer.ok ? answer.json() : null;
    }).then(function (status) {
      if (status && status.generation + "|" + status.problems.join("\n") !== drawn && !typing()) {
        window.location.reload();
        return;
      }
      window.setTimeout(ask, 1000);
    }).catch(function () { window.setTimeout(ask, 2000); });   // the server restarting
  }
  window.setTimeout(ask, 1000);
})();

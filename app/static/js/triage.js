// Refresh the triage counts every 20 s without reloading; show a hint when new work arrived.
(function () {
  "use strict";
  var box = document.getElementById("live-counts");
  if (!box || !window.fetch) { return; }
  var url = box.getAttribute("data-url");
  function value(name) {
    var el = box.querySelector('[data-count="' + name + '"]');
    return el ? parseInt(el.textContent, 10) : 0;
  }
  function set(name, n) {
    var el = box.querySelector('[data-count="' + name + '"]');
    if (el) { el.textContent = String(n); }
  }
  function refresh() {
    fetch(url, {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) {
        if (!data) { return; }
        var before = value("red") + value("orange") + value("yellow") + value("tasks");
        ["red", "orange", "yellow"].forEach(function (s) { set(s, data.alerts[s] || 0); });
        set("overdue", data.overdue); set("tasks", data.tasks);
        var after = value("red") + value("orange") + value("yellow") + value("tasks");
        if (after > before) { box.querySelector("[data-stale]").hidden = false; }
        box.setAttribute("data-updated", data.at);
      })
      .catch(function () { /* offline: keep the last numbers */ });
  }
  window.setInterval(refresh, parseInt(box.getAttribute("data-interval") || "20000", 10));
})();

// Adherence: the plot over time per source (patient page) and the days of supply computed
// while a pharmacist types a dispensing. Data comes from <script type="application/json">.
(function () {
  "use strict";

  function drawPlot() {
    var holder = document.getElementById("adherence-plot");
    var source = document.getElementById("adherence-data");
    if (!holder || !source || !window.uPlot || holder.getAttribute("data-rendered")) { return; }
    var data = JSON.parse(source.textContent);
    var colours = {pdc: "#1c3f8b", self_report: "#12b76a", professional: "#b42318"};
    var xs = data.days.map(function (d) { return Date.parse(d + "T12:00:00Z") / 1000; });
    var series = [{}];
    var columns = [xs];
    data.series.forEach(function (s) {
      var colour = colours[s.code] || "#667085";
      series.push({label: s.label, stroke: colour, width: s.points_only ? 0 : 2, spanGaps: true,
                   points: {show: true, size: s.points_only ? 9 : 5, fill: colour}});
      columns.push(s.values);
    });
    var width = Math.max(280, Math.min(holder.clientWidth || 600, 900));
    new window.uPlot({
      width: width, height: 240, series: series,
      scales: {y: {range: [0, 105]}},
      axes: [{}, {size: 56, values: function (u, ticks) { return ticks.map(function (t) { return t + " %"; }); }}]
    }, columns, holder);
    holder.setAttribute("data-rendered", "true");
  }

  function massInMg(text) {
    var m = /^\s*(\d+(?:[.,]\d+)?)\s*(mg|g|µg|μg|mcg|ug)\s*$/i.exec(text || "");
    if (!m) { return null; }
    var value = parseFloat(m[1].replace(",", "."));
    var unit = m[2].toLowerCase();
    var factor = unit === "g" ? 1000 : (unit === "mg" ? 1 : 0.001);
    return value > 0 ? value * factor : null;
  }

  function dispensingForm() {
    var form = document.getElementById("dispensing-form");
    var source = document.getElementById("dispensing-regimens");
    if (!form || !source) { return; }
    var data = JSON.parse(source.textContent);
    var drug = document.getElementById("drug_id");
    var strength = document.getElementById("strength");
    var quantity = document.getElementById("quantity");
    var days = document.getElementById("days_supply");
    var out = document.getElementById("days-supply-computed");
    // Once the pharmacist types a number of days, it is theirs: the script stops filling it.
    var edited = days.value !== "";
    days.addEventListener("input", function () { edited = days.value !== ""; });

    function compute() {
      var regimen = data.regimens[drug.value];
      var q = parseInt(quantity.value, 10);
      if (!regimen || !(q > 0)) { out.textContent = ""; return; }
      var dose = regimen.dose_mg, unit = massInMg(strength.value);
      var perIntake = dose && unit ? dose / unit : 1;
      var perDay = regimen.frequency * perIntake;
      var n = perDay > 0 ? Math.floor(q / perDay + 1e-9) : 0;
      if (n < 1) { out.textContent = data.labels.unknown; return; }
      n = Math.min(n, 366);
      var text = data.labels.days.replace("{n}", n);
      if (regimen.days_off && n % regimen.days_on === 0) {
        var cycles = n / regimen.days_on;
        text += " · " + (cycles === 1 ? data.labels.cycle : data.labels.cycles.replace("{n}", cycles))
          .replace("{on}", regimen.days_on);
      }
      out.textContent = text;
      if (!edited) { days.value = n; }
    }

    drug.addEventListener("change", function () {
      var known = data.strengths[drug.value];
      if (known) { strength.value = known; }
      compute();
    });
    [strength, quantity].forEach(function (el) { el.addEventListener("input", compute); });
    compute();
  }

  drawPlot();
  dispensingForm();
})();

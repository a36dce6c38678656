// Pre-consultation summary: symptom grades over time (uPlot), and the print button.
(function () {
  "use strict";
  var printButton = document.querySelector("[data-print]");
  if (printButton) { printButton.addEventListener("click", function () { window.print(); }); }
  var holder = document.getElementById("grade-plot");
  var source = document.getElementById("grade-data");
  if (!holder || !source || !window.uPlot) { return; }
  var data = JSON.parse(source.textContent);
  var colours = ["#b42318", "#1c3f8b", "#f79009", "#12b76a", "#7a5af8", "#667085"];
  var xs = data.days.map(function (d) { return Date.parse(d + "T12:00:00Z") / 1000; });
  var series = [{}];
  var columns = [xs];
  data.series.forEach(function (s, i) {
    series.push({label: s.label, stroke: colours[i % colours.length], width: 2, spanGaps: true,
                 points: {size: 7}});
    columns.push(s.values);
  });
  var width = Math.max(280, Math.min(holder.clientWidth || 600, 900));
  new window.uPlot({
    width: width, height: 260, series: series,
    scales: {y: {range: [0, 3.2]}},
    axes: [{}, {values: function (u, ticks) { return ticks.map(function (t) { return Number.isInteger(t) ? t : ""; }); }}]
  }, columns, holder);
  holder.setAttribute("data-rendered", "true");
})();

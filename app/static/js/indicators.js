// Indicators page: weekly check-in completion (uPlot), from the JSON block beside the plot.
(function () {
  "use strict";
  var holder = document.getElementById("completion-plot");
  var source = document.getElementById("completion-data");
  if (!holder || !source || !window.uPlot) { return; }
  var data = JSON.parse(source.textContent);
  var xs = data.weeks.map(function (d) { return Date.parse(d + "T00:00:00Z") / 1000; });
  var width = Math.max(280, Math.min(holder.clientWidth || 600, 900));
  new window.uPlot({
    width: width, height: 240,
    series: [{}, {label: "%", stroke: "#1c3f8b", width: 2, spanGaps: false, points: {size: 7}}],
    scales: {y: {range: [0, 100]}}
  }, [xs, data.rates], holder);
  holder.setAttribute("data-rendered", "true");
})();

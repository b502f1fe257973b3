/* Accord dashboard: charts from data-chart attributes, review keyboard shortcuts. No inline script anywhere. */
(function () {
  "use strict";
  var PALETTE = ["#3867d6", "#20bf6b", "#f7b731", "#eb3b5a", "#8854d0", "#0fb9b1", "#fa8231", "#4b6584"];

  function config(spec) {
    if (spec.type === "waterfall") {
      // Floating bars from the running total before a comparison to after it; the last bar is the total.
      var n = spec.bars.length;
      return {
        type: "bar",
        data: {
          labels: spec.labels,
          datasets: [{
            label: "match weight",
            data: spec.bars,
            backgroundColor: spec.bars.map(function (b, i) {
              if (i === n - 1) { return "#4b6584"; }
              return b[1] >= b[0] ? "#20bf6b" : "#eb3b5a";
            })
          }]
        },
        options: {
          animation: false, responsive: true, plugins: {
            legend: { display: false },
            tooltip: { callbacks: { label: function (ctx) { return "weight " + spec.weights[ctx.dataIndex]; } } }
          },
          scales: { y: { title: { display: true, text: "match weight (log2)" } } }
        }
      };
    }
    if (spec.type === "sparkline") {
      return {
        type: "line",
        data: { labels: spec.labels, datasets: [{ data: spec.data, borderColor: PALETTE[0], borderWidth: 1.5, pointRadius: 0, fill: false }] },
        options: { animation: false, responsive: false, plugins: { legend: { display: false }, tooltip: { enabled: true } },
                   scales: { x: { display: false }, y: { display: false } } }
      };
    }
    var datasets = spec.datasets.map(function (d, i) {
      return Object.assign({ backgroundColor: PALETTE[i % PALETTE.length], borderColor: PALETTE[i % PALETTE.length] }, d);
    });
    var valueAxis = spec.indexAxis === "y" ? "x" : "y";
    var scales = {};
    scales[valueAxis] = { beginAtZero: true };
    if (spec.percent) {
      scales[valueAxis].max = 1;
      scales[valueAxis].ticks = { callback: function (v) { return Math.round(v * 100) + "%"; } };
    }
    return {
      type: spec.type, data: { labels: spec.labels, datasets: datasets },
      options: { animation: false, responsive: true, indexAxis: spec.indexAxis || "x", scales: scales,
                 plugins: { legend: { display: datasets.length > 1 } } }
    };
  }

  function drawCharts(root) {
    if (typeof Chart === "undefined") { return; }
    root.querySelectorAll("canvas[data-chart]").forEach(function (canvas) {
      if (canvas.dataset.drawn) { return; }
      canvas.dataset.drawn = "1";
      var spec = JSON.parse(canvas.dataset.chart);
      var cfg = config(spec);
      if (spec.type !== "sparkline") {
        // Chart.js sizes a responsive chart from a dedicated, relatively positioned container.
        var box = document.createElement("div");
        box.className = "chart";
        canvas.parentNode.insertBefore(box, canvas);
        box.appendChild(canvas);
        cfg.options.maintainAspectRatio = false;
      }
      new Chart(canvas, cfg);
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    drawCharts(document);
    if (window.htmx) { htmx.onLoad(drawCharts); }
  });

  // Review queue: s = same, d = different, k = skip (not while typing in a field).
  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey) { return; }
    var target = event.target;
    if (target && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName))) { return; }
    var button = document.querySelector('form.decide button[data-key="' + event.key.toLowerCase() + '"]');
    if (button && !button.disabled) {
      event.preventDefault();
      button.click();
    }
  });
})();

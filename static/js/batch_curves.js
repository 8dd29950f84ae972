// Overlays a batch's first-cycle voltage-vs-capacity curves (Chart.js, vendored): one line per
// cell, the failed cells in red and the held ones in amber drawn over the others; the legend
// names each kind once and a point's tooltip names its cell. Data from #batch-curve-data.
(function () {
  "use strict";
  // The page's language (Django's JavaScript catalog, /i18n/js/), English without it.
  const gettext = window.gettext || function (text) { return text; };
  const interpolate = window.interpolate || function (text, values) {
    return text.replace(/%\((\w+)\)s/g, function (_, name) { return values[name]; });
  };
  const STYLE = {
    failed: { label: gettext("failed"), color: "#cf222e", width: 2 },
    held: { label: gettext("on hold"), color: "#d97706", width: 2 },
    other: { label: gettext("others"), color: "rgba(31,111,235,.35)", width: 1 },
  };
  function draw() {
    const source = document.getElementById("batch-curve-data");
    const canvas = document.querySelector("canvas[data-batch-curves]");
    if (!source || !canvas || typeof Chart === "undefined") return;
    const curves = JSON.parse(source.textContent);
    const seen = new Set();
    const datasets = curves.map(function (curve) {
      const style = STYLE[curve.state] || STYLE.other;
      const first = !seen.has(curve.state);
      seen.add(curve.state);
      return {
        label: curve.cell,
        kind: style.label,
        legend: first,
        data: curve.points,
        borderColor: style.color,
        backgroundColor: style.color,
        borderWidth: style.width,
        pointRadius: 0,
        fill: false,
        tension: 0,
      };
    });
    new Chart(canvas, {
      type: "line",
      data: { datasets: datasets },
      options: {
        animation: false,
        maintainAspectRatio: false,
        parsing: false,
        normalized: true,
        interaction: { mode: "nearest", intersect: false },
        plugins: {
          legend: {
            labels: {
              filter: function (item, data) {
                return data.datasets[item.datasetIndex].legend;
              },
              generateLabels: function (chart) {
                return Chart.defaults.plugins.legend.labels.generateLabels(chart).map(function (item) {
                  item.text = chart.data.datasets[item.datasetIndex].kind;
                  return item;
                });
              },
            },
            onClick: null,
          },
          tooltip: {
            callbacks: {
              label: function (context) {
                const point = context.parsed;
                return context.dataset.label + " (" + context.dataset.kind + "): " +
                  interpolate(gettext("%(volts)s V at %(ah)s Ah"), { volts: point.y.toFixed(3), ah: point.x.toFixed(3) }, true);
              },
            },
          },
        },
        scales: {
          x: { type: "linear", title: { display: true, text: gettext("capacity (Ah)") } },
          y: { title: { display: true, text: gettext("voltage (V)") } },
        },
      },
    });
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", draw);
  } else {
    draw();
  }
})();

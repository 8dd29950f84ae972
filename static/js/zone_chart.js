// Draws a dry-room zone's readings with Chart.js (vendored): one chart per quantity, a line per
// sensor, its limits dashed and its excursions shaded (red once longer than tolerated).
(function () {
  "use strict";
  // The page's language (Django's JavaScript catalog, /i18n/js/), English without it.
  const gettext = window.gettext || function (text) { return text; };
  const BOUND_LABELS = { min: gettext("min"), max: gettext("max") };
  const COLORS = ["#1f6feb", "#8250df", "#1a7f37", "#bc4c00", "#0550ae"];

  // Shades [from, to] of each excursion of the chart's quantity behind the lines.
  const shading = {
    id: "excursionShading",
    beforeDatasetsDraw(chart, _args, options) {
      const { ctx, chartArea, scales } = chart;
      for (const excursion of options.excursions || []) {
        const left = Math.max(scales.x.getPixelForValue(excursion.from), chartArea.left);
        const right = Math.min(scales.x.getPixelForValue(excursion.to), chartArea.right);
        if (right <= left) continue;
        ctx.save();
        ctx.fillStyle = excursion.counted ? "rgba(207,34,46,.18)" : "rgba(154,103,0,.12)";
        ctx.fillRect(left, chartArea.top, right - left, chartArea.bottom - chartArea.top);
        ctx.restore();
      }
    },
  };

  function clock(ms) {
    const d = new Date(ms);
    return d.toLocaleString([], { month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit" });
  }

  function draw() {
    const source = document.getElementById("zone-chart");
    if (!source || typeof Chart === "undefined") return;
    const chart = JSON.parse(source.textContent);
    for (const quantity of chart.quantities) {
      const canvas = document.querySelector('canvas[data-quantity="' + quantity.key + '"]');
      if (!canvas) continue;
      const datasets = Object.entries(quantity.series).map(([sensor, points], i) => ({
        label: sensor,
        data: points.map(([x, y]) => ({ x, y })),
        borderColor: COLORS[i % COLORS.length],
        borderWidth: 1.5,
        pointRadius: 0,
        tension: 0,
      }));
      for (const limit of quantity.limits) {
        datasets.push({
          label: BOUND_LABELS[limit.bound] + " " + limit.value + " " + quantity.unit,
          data: [{ x: chart.since, y: limit.value }, { x: chart.until, y: limit.value }],
          borderColor: "#cf222e",
          borderDash: [6, 4],
          borderWidth: 1,
          pointRadius: 0,
        });
      }
      new Chart(canvas, {
        type: "line",
        data: { datasets },
        options: {
          animation: false,
          maintainAspectRatio: false,
          parsing: false,
          normalized: true,
          plugins: {
            legend: { display: true, position: "right" },
            excursionShading: {
              excursions: chart.excursions.filter((e) => e.quantity === quantity.key),
            },
          },
          scales: {
            x: { type: "linear", min: chart.since, max: chart.until, ticks: { callback: clock } },
            y: { title: { display: true, text: quantity.unit } },
          },
        },
        plugins: [shading],
      });
    }
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", draw);
  } else {
    draw();
  }
})();

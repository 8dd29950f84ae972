// Draws the quality pages' charts with Chart.js (vendored) from the JSON the page carries:
// first-pass yield per step, batch, day or line as bars; the defect Pareto as bars of counts
// with the cumulative share as a line on a second axis (0-100 %).
(function () {
  "use strict";
  // The page's language (Django's JavaScript catalog, /i18n/js/), English without it.
  const gettext = window.gettext || function (text) { return text; };
  function data(id) {
    const source = document.getElementById(id);
    return source ? JSON.parse(source.textContent) : null;
  }
  function drawYield() {
    const canvas = document.getElementById("yield-chart");
    const chart = data("yield-data");
    if (!canvas || !chart) return;
    new Chart(canvas, {
      type: "bar",
      data: {
        labels: chart.labels,
        datasets: [{ label: gettext("First-pass yield (%)"), data: chart.fpy, backgroundColor: "#1f6feb" }],
      },
      options: {
        animation: false,
        maintainAspectRatio: false,
        plugins: { legend: { display: false } },
        scales: { y: { min: 0, max: 100, title: { display: true, text: gettext("FPY (%)") } } },
      },
    });
  }
  function drawPareto() {
    const canvas = document.getElementById("pareto-chart");
    const chart = data("pareto-data");
    if (!canvas || !chart) return;
    new Chart(canvas, {
      type: "bar",
      data: {
        labels: chart.labels,
        datasets: [
          {
            type: "line",
            label: gettext("Cumulative share (%)"),
            data: chart.cumulative,
            yAxisID: "share",
            borderColor: "#cf222e",
            backgroundColor: "#cf222e",
            pointRadius: 3,
            tension: 0,
          },
          {
            type: "bar",
            label: gettext("Occurrences"),
            data: chart.counts,
            yAxisID: "count",
            backgroundColor: "#1f6feb",
          },
        ],
      },
      options: {
        animation: false,
        maintainAspectRatio: false,
        scales: {
          count: { type: "linear", position: "left", beginAtZero: true, title: { display: true, text: gettext("occurrences") } },
          share: { type: "linear", position: "right", min: 0, max: 100, grid: { drawOnChartArea: false }, title: { display: true, text: gettext("cumulative %") } },
        },
      },
    });
  }
  function draw() {
    if (typeof Chart === "undefined") return;
    drawYield();
    drawPareto();
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", draw);
  } else {
    draw();
  }
})();

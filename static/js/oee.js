// The line's OEE page: a Gantt-like timeline of each station's states over the day (horizontal
// floating bars, hours from local midnight) and the week's downtime Pareto, with Chart.js
// (vendored). The data comes from the page's JSON script element: the CSP forbids inline script.
(function () {
  "use strict";
  // The page's language (Django's JavaScript catalog, /i18n/js/), English without it.
  const gettext = window.gettext || function (text) { return text; };
  const COLOURS = {
    running: "#1a7f37",
    idle: "#8c959f",
    down: "#cf222e",
    maintenance: "#8250df",
  };

  const STATE_LABELS = {
    running: gettext("running"),
    idle: gettext("idle"),
    down: gettext("down"),
    maintenance: gettext("maintenance"),
  };

  function hhmm(hours) {
    const minutes = Math.round(hours * 60);
    return String(Math.floor(minutes / 60)).padStart(2, "0") + ":" + String(minutes % 60).padStart(2, "0");
  }

  function timeline(data) {
    const canvas = document.getElementById("oee-timeline");
    if (!canvas) return;
    canvas.parentElement.style.height = (60 + 34 * data.stations.length) + "px";
    const datasets = Object.keys(COLOURS).map(function (state) {
      return {
        label: STATE_LABELS[state],
        backgroundColor: COLOURS[state],
        borderSkipped: false,
        barPercentage: 0.8,
        categoryPercentage: 1,
        grouped: false,
        data: data.segments
          .filter(function (s) { return s.state === state; })
          .map(function (s) { return { x: [s.from, s.to], y: s.station, reason: s.reason }; }),
      };
    });
    new Chart(canvas, {
      type: "bar",
      data: { labels: data.stations, datasets: datasets },
      options: {
        indexAxis: "y",
        animation: false,
        maintainAspectRatio: false,
        scales: {
          x: { type: "linear", min: 0, max: 24, ticks: { stepSize: 2, callback: hhmm } },
          y: { stacked: true },
        },
        plugins: {
          tooltip: {
            callbacks: {
              label: function (item) {
                const raw = item.raw;
                return item.dataset.label + " " + hhmm(raw.x[0]) + "–" + hhmm(raw.x[1]) +
                  (raw.reason ? " (" + raw.reason + ")" : "");
              },
            },
          },
        },
      },
    });
  }

  function paretoChart(data) {
    const canvas = document.getElementById("oee-pareto");
    if (!canvas || !data.pareto.length) return;
    new Chart(canvas, {
      type: "bar",
      data: {
        labels: data.pareto.map(function (d) { return d.reason; }),
        datasets: [{ label: gettext("minutes down"), data: data.pareto.map(function (d) { return d.minutes; }), backgroundColor: "#cf222e" }],
      },
      options: { animation: false, maintainAspectRatio: false, plugins: { legend: { display: false } } },
    });
  }

  function draw() {
    const source = document.getElementById("oee-data");
    if (!source || typeof Chart === "undefined") return;
    const data = JSON.parse(source.textContent);
    timeline(data);
    paretoChart(data);
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", draw);
  } else {
    draw();
  }
})();

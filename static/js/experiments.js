// Draws an experiment's charts with Chart.js (vendored) from the JSON the page carries.
// Chart.js has no box plot: each arm's box is a floating bar from Q1 to Q3, the median, the
// whiskers (min to max) and the mean's 95 % confidence interval are drawn as line segments on
// top by a small plugin, and the mean as a point. Main effects and the interaction are lines of
// means per level.
(function () {
  "use strict";
  // The page's language (Django's JavaScript catalog, /i18n/js/), English without it.
  const gettext = window.gettext || function (text) { return text; };
  const COLOURS = ["#1f6feb", "#cf222e", "#1a7f37", "#9a6700", "#8250df", "#bf3989"];

  function data(id) {
    const source = document.getElementById(id);
    return source ? JSON.parse(source.textContent) : null;
  }

  // Whiskers, median and CI per arm, in the chart's own pixel space.
  const boxLines = {
    id: "boxLines",
    afterDatasetsDraw(chart, _args, options) {
      const arms = options.arms || [];
      const x = chart.scales.x;
      const y = chart.scales.y;
      const ctx = chart.ctx;
      ctx.save();
      arms.forEach(function (arm, i) {
        const cx = x.getPixelForValue(i);
        const half = (x.width / Math.max(arms.length, 1)) * 0.18;
        const [min, q1, median, q3, max] = arm.box;
        ctx.strokeStyle = "#24292f";
        ctx.lineWidth = 1;
        [[min, q1], [q3, max]].forEach(function (segment) {
          ctx.beginPath();
          ctx.moveTo(cx, y.getPixelForValue(segment[0]));
          ctx.lineTo(cx, y.getPixelForValue(segment[1]));
          ctx.stroke();
        });
        [min, max].forEach(function (v) {
          ctx.beginPath();
          ctx.moveTo(cx - half / 2, y.getPixelForValue(v));
          ctx.lineTo(cx + half / 2, y.getPixelForValue(v));
          ctx.stroke();
        });
        ctx.lineWidth = 2;
        ctx.beginPath();
        ctx.moveTo(cx - half, y.getPixelForValue(median));
        ctx.lineTo(cx + half, y.getPixelForValue(median));
        ctx.stroke();
        if (arm.ci[0] !== null) {
          ctx.strokeStyle = "#cf222e";
          ctx.beginPath();
          ctx.moveTo(cx + half * 1.6, y.getPixelForValue(arm.ci[0]));
          ctx.lineTo(cx + half * 1.6, y.getPixelForValue(arm.ci[1]));
          ctx.stroke();
        }
      });
      ctx.restore();
    },
  };

  function drawBoxes(chart) {
    const canvas = document.getElementById("arm-boxes");
    if (!canvas || !chart.arms.length) return;
    const all = chart.arms.flatMap(function (a) { return a.box.concat(a.ci); }).filter(function (v) { return v !== null; });
    const pad = (Math.max.apply(null, all) - Math.min.apply(null, all)) * 0.08 || 1;
    new Chart(canvas, {
      type: "bar",
      data: {
        labels: chart.arms.map(function (a) { return a.arm; }),
        datasets: [
          { type: "bar", label: gettext("Q1 to Q3"), data: chart.arms.map(function (a) { return [a.box[1], a.box[3]]; }), backgroundColor: "rgba(31,111,235,0.35)", borderColor: "#1f6feb", borderWidth: 1, barPercentage: 0.4 },
          { type: "line", label: gettext("Mean (red bar: 95 % CI)"), data: chart.arms.map(function (a) { return a.mean; }), showLine: false, pointRadius: 4, borderColor: "#cf222e", backgroundColor: "#cf222e" },
        ],
      },
      options: {
        animation: false,
        maintainAspectRatio: false,
        scales: { y: { min: Math.min.apply(null, all) - pad, max: Math.max.apply(null, all) + pad } },
        plugins: { boxLines: { arms: chart.arms } },
      },
      plugins: [boxLines],
    });
  }

  function drawMainEffects(chart) {
    const canvas = document.getElementById("main-effects");
    const factors = Object.keys(chart.main_effects || {});
    if (!canvas || !factors.length) return;
    // Each factor on its own category axis position: low level to high level, side by side.
    const labels = [];
    const datasets = factors.map(function (name, i) {
      const points = new Array(labels.length).fill(null);
      chart.main_effects[name].levels.forEach(function (level, j) {
        labels.push(name + "=" + level);
        points.push(chart.main_effects[name].means[j]);
      });
      return { label: name, data: points, borderColor: COLOURS[i % COLOURS.length], backgroundColor: COLOURS[i % COLOURS.length], spanGaps: false };
    });
    datasets.forEach(function (d) { while (d.data.length < labels.length) d.data.push(null); });
    new Chart(canvas, {
      type: "line",
      data: { labels: labels, datasets: datasets },
      options: { animation: false, maintainAspectRatio: false, plugins: { title: { display: true, text: gettext("Main effects (mean per level)") } } },
    });
  }

  function drawInteraction(chart) {
    const canvas = document.getElementById("interaction");
    const inter = chart.interaction;
    if (!canvas || !inter) return;
    new Chart(canvas, {
      type: "line",
      data: {
        labels: inter.x_levels.map(String),
        datasets: inter.rows.map(function (row, i) {
          return { label: inter.lines + "=" + row.level, data: row.means, borderColor: COLOURS[i % COLOURS.length], backgroundColor: COLOURS[i % COLOURS.length] };
        }),
      },
      options: {
        animation: false,
        maintainAspectRatio: false,
        plugins: { title: { display: true, text: gettext("Interaction:") + " " + inter.x + " (x) × " + inter.lines } },
      },
    });
  }

  function draw() {
    const chart = data("experiment-data");
    if (typeof Chart === "undefined" || !chart) return;
    drawBoxes(chart);
    drawMainEffects(chart);
    drawInteraction(chart);
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", draw);
  else draw();
})();

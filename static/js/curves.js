// Draws the cell page's curves with Chart.js (vendored): one chart per panel (batches.selectors.
// curve_panels), a series per curve in it (a formation file's cycles, dQ/dV of charge and
// discharge), its x axis in the curves' own unit.
(function () {
  "use strict";
  const COLOURS = ["#1f6feb", "#d1242f", "#1a7f37", "#9a6700", "#8250df", "#0a7f8f", "#bc4c00",
    "#57606a", "#cf222e", "#116329"];
  function draw() {
    const source = document.getElementById("curve-data");
    if (!source || typeof Chart === "undefined") return;
    const panels = JSON.parse(source.textContent);
    for (const panel of panels) {
      const canvas = document.querySelector('canvas[data-curve="' + panel.id + '"]');
      if (!canvas) continue;
      const single = panel.series.length === 1;
      new Chart(canvas, {
        type: "line",
        data: {
          datasets: panel.series.map(function (series, i) {
            const colour = COLOURS[i % COLOURS.length];
            return {
              label: series.label,
              data: series.points,
              borderColor: colour,
              backgroundColor: single ? "rgba(31,111,235,.08)" : colour,
              borderWidth: 1.5,
              pointRadius: series.points.length < 40 ? 2 : 0,
              fill: single,
              tension: 0,
            };
          }),
        },
        options: {
          animation: false,
          maintainAspectRatio: false,
          parsing: false,
          normalized: true,
          plugins: { legend: { display: !single, labels: { boxWidth: 12 } } },
          scales: {
            x: { type: "linear", title: { display: true, text: panel.x_label } },
            y: { title: { display: true, text: panel.unit || panel.title } },
          },
        },
      });
    }
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", draw);
  } else {
    draw();
  }
})();

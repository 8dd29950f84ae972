// Draws every curve of the cell page with Chart.js (vendored): one line chart per Curve row,
// its x axis in the curve's own unit (time for pressing, capacity for formation once parsed).
(function () {
  "use strict";
  function draw() {
    const source = document.getElementById("curve-data");
    if (!source || typeof Chart === "undefined") return;
    const curves = JSON.parse(source.textContent);
    for (const curve of curves) {
      const canvas = document.querySelector('canvas[data-curve="' + curve.id + '"]');
      if (!canvas) continue;
      new Chart(canvas, {
        type: "line",
        data: {
          datasets: [{
            label: curve.name + (curve.unit ? " (" + curve.unit + ")" : ""),
            data: curve.points,
            borderColor: "#1f6feb",
            backgroundColor: "rgba(31,111,235,.08)",
            borderWidth: 1.5,
            pointRadius: 0,
            fill: true,
            tension: 0,
          }],
        },
        options: {
          animation: false,
          maintainAspectRatio: false,
          parsing: false,
          normalized: true,
          plugins: { legend: { display: false } },
          scales: {
            x: { type: "linear", title: { display: true, text: curve.x_label } },
            y: { title: { display: true, text: curve.unit || curve.name } },
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

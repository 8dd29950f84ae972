// Draws the SPC page's control chart and its range chart with Chart.js (vendored) from the
// JSON the page embeds (the CSP allows no inline script): points red where they complete a
// pattern of Nelson's rules, center, control and specification limits as lines; hovering a
// point names its cell (or subgroup) and clicking it opens the cell.
(function () {
  "use strict";
  // The page's language (Django's JavaScript catalog, /i18n/js/), English without it.
  const gettext = window.gettext || function (text) { return text; };
  const OK = "#1f6feb", SIGNAL = "#cf222e", LIMIT = "#9a6700", SPEC = "#8250df", CENTER = "#57606a";

  function flat(y, count, color, label, dash) {
    if (y === null || y === undefined || count === 0) return null;
    return {
      label: label, data: [{ x: 0, y: y }, { x: count - 1, y: y }], borderColor: color,
      borderWidth: 1, borderDash: dash || [], pointRadius: 0, showLine: true, fill: false,
    };
  }

  function stepped(values, color, label) {
    return {
      label: label, data: values.map(function (y, i) { return { x: i, y: y }; }),
      borderColor: color, borderWidth: 1, borderDash: [4, 3], pointRadius: 0, showLine: true,
      stepped: "middle", fill: false,
    };
  }

  function options(onClick, tooltip) {
    return {
      animation: false, maintainAspectRatio: false, parsing: false, normalized: true,
      onClick: onClick,
      plugins: { legend: { display: true, labels: { boxWidth: 10 } }, tooltip: tooltip },
      scales: { x: { type: "linear", title: { display: true, text: gettext("point") } } },
    };
  }

  function draw() {
    const source = document.getElementById("spc-data");
    if (!source || typeof Chart === "undefined") return;
    const spc = JSON.parse(source.textContent);
    const points = spc.points, count = points.length;
    const colors = points.map(function (p) { return p.signals.length ? SIGNAL : OK; });
    const main = [{
      label: spc.parameter, data: points.map(function (p, i) { return { x: i, y: p.value }; }),
      borderColor: "rgba(31,111,235,.35)", borderWidth: 1, showLine: true,
      pointBackgroundColor: colors, pointBorderColor: colors,
      pointRadius: count > 2000 ? 1.5 : 3, pointHoverRadius: 5,
    }];
    const perPoint = points.length && points[0].ucl !== undefined;
    [
      flat(spc.center, count, CENTER, gettext("center")),
      perPoint ? stepped(points.map(function (p) { return p.ucl; }), LIMIT, "UCL")
               : flat(spc.ucl, count, LIMIT, "UCL", [4, 3]),
      perPoint ? stepped(points.map(function (p) { return p.lcl; }), LIMIT, "LCL")
               : flat(spc.lcl, count, LIMIT, "LCL", [4, 3]),
      flat(spc.usl, count, SPEC, "USL", [8, 4]),
      flat(spc.lsl, count, SPEC, "LSL", [8, 4]),
    ].forEach(function (d) { if (d) main.push(d); });

    function cellOf(index) {
      const p = points[index];
      return p.cell || (p.cells && p.cells[0]);
    }
    new Chart(document.getElementById("spc-main"), {
      type: "scatter",
      data: { datasets: main },
      options: options(
        function (_event, elements) {
          const hit = elements.find(function (e) { return e.datasetIndex === 0; });
          if (hit) window.location.href = spc.cell_url.replace("SERIAL", encodeURIComponent(cellOf(hit.index)));
        },
        {
          filter: function (item) { return item.datasetIndex === 0; },
          callbacks: {
            label: function (item) {
              const p = points[item.dataIndex];
              const who = p.cell ? gettext("cell") + " " + p.cell
                : gettext("subgroup") + " " + p.subgroup + " (" + p.n + " " + gettext("cells") + ")";
              const rules = p.signals.length ? " · " + gettext("rules") + " " + p.signals.join(", ") : "";
              return who + ": " + p.value + (spc.unit ? " " + spc.unit : "") + " · " + p.at.slice(0, 19) + rules;
            },
          },
        }
      ),
    });

    const spread = spc.range;
    // A moving range belongs to the second of its two points: it starts at point 1.
    const offset = spc.chart === "imr" ? 1 : 0;
    const ranges = [{
      label: spc.chart === "imr" ? gettext("moving range") : spc.chart === "xbar_r" ? gettext("range") : gettext("std dev"),
      data: spread.points.map(function (y, i) { return { x: i + offset, y: y }; }),
      borderColor: "rgba(31,111,235,.35)", borderWidth: 1, showLine: true,
      pointRadius: count > 2000 ? 1 : 2, pointBackgroundColor: OK,
    }];
    if (spread.point_ucls) {
      ranges.push(stepped(spread.point_ucls, LIMIT, "UCL"));
      ranges.push(stepped(spread.point_centers, CENTER, gettext("center")));
    } else {
      [flat(spread.center, count, CENTER, gettext("center")), flat(spread.ucl, count, LIMIT, "UCL", [4, 3]),
       flat(spread.lcl, count, LIMIT, "LCL", [4, 3])].forEach(function (d) { if (d) ranges.push(d); });
    }
    new Chart(document.getElementById("spc-range"), {
      type: "scatter", data: { datasets: ranges }, options: options(null, {}),
    });
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", draw);
  } else {
    draw();
  }
})();

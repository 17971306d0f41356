// Draws the dashboard's charts from the JSON the server renders, and redraws them when the
// five-second refresh swaps in new figures. The charts live outside the swapped block, so they
// update in place instead of flickering.
(function () {
  "use strict";
  const PALETTE = ["#2457c5", "#d0542b", "#2e8b57", "#8a3ffc", "#b8860b", "#0f7b8a", "#c71f6b", "#555555"];
  // One look per label on the pool map: twelve colours told apart (Tableau's 10 and two more), then
  // the same colours again with another marker, so a ten-label project (the digits demo) never
  // shows two labels alike (QA: labels 1 and 9 shared a blue).
  const LABEL_COLOURS = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7",
                         "#9c755f", "#bcbd22", "#17becf", "#9467bd"];
  const LABEL_MARKERS = ["circle", "triangle", "rect", "rectRot", "star", "crossRot"];
  function labelLook(i) {
    return {backgroundColor: LABEL_COLOURS[i % LABEL_COLOURS.length], borderColor: LABEL_COLOURS[i % LABEL_COLOURS.length],
            pointStyle: LABEL_MARKERS[Math.floor(i / LABEL_COLOURS.length) % LABEL_MARKERS.length]};
  }
  const charts = {};
  window.labelloopCharts = charts;

  function data() {
    const node = document.getElementById("dashboard-data");
    return node ? JSON.parse(node.textContent) : null;
  }

  // An empty chart reads as a broken one: say what it waits for instead (`empty`: null when it has data).
  function upsert(id, config, empty) {
    const canvas = document.getElementById(id);
    if (!canvas) return;
    const note = document.getElementById(id + "-empty");
    if (note) {
      note.hidden = !empty;
      note.textContent = empty || "";
    }
    if (charts[id]) {
      charts[id].data = config.data;
      charts[id].update("none");
    } else {
      charts[id] = new Chart(canvas, Object.assign({options: {}}, config));
    }
    canvas.dataset.points = String(config.data.datasets[0] ? config.data.datasets[0].data.length : 0);
  }

  function render() {
    const s = data();
    if (!s || typeof Chart === "undefined") return;
    const curve = s.learning_curve.filter(p => p.accuracy !== null && p.accuracy !== undefined);
    // each point carries its own holdout size: the holdout grows as it is labelled, so two points
    // may be measured on different items (the tooltip says on how many)
    const xy = key => curve.map(p => ({x: p.n_labels, y: p[key], n: p.holdout_n, version: p.version}));
    upsert("chart-curve", {
      type: "line",
      data: {datasets: [
        {label: "holdout accuracy", data: xy("accuracy"), borderColor: PALETTE[0], backgroundColor: PALETTE[0], tension: 0.1,
         clip: 8},
        // the interval's edges are marked at each point too: a band has no width with one point alone
        {label: "95% interval", data: xy("accuracy_low"), borderWidth: 0, fill: "+1", pointStyle: "line",
         pointRadius: 7, pointBorderWidth: 2, pointBorderColor: "rgba(36,87,197,0.6)",
         backgroundColor: "rgba(36,87,197,0.15)", clip: 8},
        {label: "95% interval (upper edge)", data: xy("accuracy_high"), borderWidth: 0, fill: false, pointStyle: "line",
         pointRadius: 7, pointBorderWidth: 2, pointBorderColor: "rgba(36,87,197,0.6)", clip: 8},
        {label: "macro-F1", data: xy("macro_f1"), borderColor: PALETTE[1], backgroundColor: PALETTE[1],
         borderDash: [4, 3], tension: 0.1},
      ]},
      options: {animation: false, maintainAspectRatio: false, parsing: true,
                scales: {x: {type: "linear", title: {display: true, text: "training labels"}},
                         y: {min: 0, max: 1, title: {display: true, text: "holdout score"}}},
                plugins: {legend: {labels: {filter: item => item.text !== "95% interval (upper edge)"}},
                          tooltip: {callbacks: {afterLabel: ctx => ctx.datasetIndex === 0
                            ? `model v${ctx.raw.version}, on the ${ctx.raw.n} holdout items labelled when it was trained` : ""}}}},
    }, curve.length ? null : (s.model ? "The curve starts with the first model measured on labelled holdout items."
                                      : "The curve starts with the first model."));

    const labels = s.project.labels;
    upsert("chart-balance", {
      type: "bar",
      data: {labels: labels, datasets: [
        {label: "training", data: labels.map(l => s.label_distribution.training[l] || 0), backgroundColor: PALETTE[0]},
        {label: "holdout", data: labels.map(l => s.label_distribution.holdout[l] || 0), backgroundColor: PALETTE[2]},
      ]},
      options: {animation: false, maintainAspectRatio: false,
                scales: {x: {stacked: true}, y: {stacked: true, title: {display: true, text: "items"}}}},
    }, (s.counts.training_labels + s.counts.holdout_labels) ? null
       : (s.counts.items_total ? "No labels yet." : "No items yet: an admin uploads a pool on the project's page."));

    const hist = (s.diagnostics && s.diagnostics.uncertainty_histogram) || {edges: [], counts: []};
    upsert("chart-uncertainty", {
      type: "bar",
      data: {labels: hist.counts.map((_, i) => hist.edges[i].toFixed(2)),
             datasets: [{label: "unlabelled items", data: hist.counts, backgroundColor: PALETTE[3]}]},
      options: {animation: false, maintainAspectRatio: false,
                scales: {x: {title: {display: true, text: "uncertainty (0 = sure, 1 = a coin toss)"}},
                         y: {title: {display: true, text: "items"}}}},
    }, s.model ? null : "Drawn from each model's probabilities, once there is a model.");

    const points = ((s.diagnostics && s.diagnostics.pool_map) || {points: []}).points;
    const datasets = labels.map((label, i) => ({
      label: label, data: points.filter(p => p[2] === label).map(p => ({x: p[0], y: p[1]})),
      ...labelLook(i), pointRadius: 3,
    }));
    const unlabelled = points.filter(p => p[2] === null);
    datasets.unshift({
      label: "unlabelled", data: unlabelled.map(p => ({x: p[0], y: p[1]})), pointRadius: 2,
      backgroundColor: unlabelled.map(p => `rgba(60,60,60,${(0.08 + 0.6 * (p[3] || 0)).toFixed(2)})`),
    });
    upsert("chart-map", {type: "scatter", data: {datasets: datasets},
                         options: {animation: false, maintainAspectRatio: false}},
           points.length ? null : "Drawn with each model, once there is a model.");
  }

  document.addEventListener("DOMContentLoaded", render);
  window.addEventListener("load", render);
  document.addEventListener("htmx:afterSwap", function (event) {
    if (event.detail.target && event.detail.target.id === "live") render();
  });
})();

// The Hermes dashboard: one EventSource, redraws of the latest snapshot at
// most once per animation frame, charts as plain SVG.
"use strict";
const token = new URLSearchParams(location.search).get("token");
const q = token ? "?token=" + encodeURIComponent(token) : "";
const $ = (id) => document.getElementById(id);
const colors = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"];
let latest = null, drawing = false;

function fmt(v, d) { return v === undefined || v === null ? "–" : Number(v).toFixed(d); }
function mb(b) { return (b / 1e6).toFixed(1); }

function el(tag, attrs, text) {
  const e = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const k in attrs) e.setAttribute(k, attrs[k]);
  if (text !== undefined) e.textContent = text;
  return e;
}

// plot draws series [{points: [[x, y]], color}] in svg with axes labels.
function plot(svg, series, yLabel) {
  svg.replaceChildren();
  const W = 400, H = 160, L = 34, B = 16, T = 6, R = 6;
  const all = series.flatMap((s) => s.points);
  if (all.length === 0) { svg.append(el("text", {x: L, y: H / 2}, "waiting for data")); return; }
  const xs = all.map((p) => p[0]), ys = all.map((p) => p[1]);
  const x0 = Math.min(...xs), x1 = Math.max(...xs, x0 + 1e-9);
  const y0 = Math.min(0, ...ys), y1 = Math.max(...ys, y0 + 1e-9);
  const X = (x) => L + (x - x0) / (x1 - x0) * (W - L - R);
  const Y = (y) => H - B - (y - y0) / (y1 - y0) * (H - B - T);
  svg.append(el("line", {x1: L, y1: H - B, x2: W - R, y2: H - B, stroke: "#bbc"}));
  svg.append(el("line", {x1: L, y1: T, x2: L, y2: H - B, stroke: "#bbc"}));
  svg.append(el("text", {x: 2, y: T + 8}, fmt(y1, y1 < 10 ? 2 : 0)));
  svg.append(el("text", {x: 2, y: H - B}, fmt(y0, y0 < 10 ? 2 : 0)));
  svg.append(el("text", {x: W - R - 40, y: H - 3}, fmt(x1, 1) + " s"));
  svg.append(el("text", {x: L + 4, y: T + 8}, yLabel));
  for (const s of series) {
    if (s.points.length === 0) continue;
    const d = s.points.map((p) => X(p[0]).toFixed(1) + "," + Y(p[1]).toFixed(1)).join(" ");
    svg.append(el("polyline", {points: d, fill: "none", stroke: s.color, "stroke-width": 1.5}));
  }
}

function draw() {
  drawing = false;
  const s = latest;
  $("policy").textContent = (s.policy || "") + (s.target ? " · target " + s.target : "");
  $("status").textContent = s.stopped ? "stopped: " + s.stopped : "live";
  $("accuracy").textContent = fmt(s.accuracy, 4);
  $("valloss").textContent = fmt(s.val_loss, 4);
  $("version").textContent = s.version;
  $("bytes").textContent = mb(s.bytes_in) + " / " + mb(s.bytes_out) + " MB";
  const workers = s.workers || [];
  $("workers").textContent = workers.filter((w) => w.up).length + " / " + workers.length;
  const pts = s.points || [];
  plot($("acc"), [
    {points: pts.map((p) => [p.t, p.accuracy]), color: colors[0]},
    {points: pts.map((p) => [p.t, p.val_loss]), color: colors[1]},
  ], "accuracy (blue), val loss (red)");
  plot($("bytesplot"), [
    {points: pts.map((p) => [p.t, (p.bytes_in + p.bytes_out) / 1e6]), color: colors[2]},
  ], "MB");
  // At most 8 workers' lines: a fleet's would be noise.
  plot($("chunks"), workers.slice(0, 8).map((w, i) => ({points: w.chunks || [], color: colors[i % colors.length]})), "samples");
  const body = $("workertable").tBodies[0];
  body.replaceChildren(...workers.map((w, n) => {
    const tr = document.createElement("tr");
    tr.dataset.worker = w.name;
    const cells = [w.name, w.up ? "up" : "lost", w.chunk, w.mini_batch, w.major, w.minor,
      fmt(w.last_loss, 4), fmt(w.samples_per_second, 0), fmt(w.last_seen, 1) + " s"];
    cells.forEach((c, i) => {
      const td = document.createElement("td");
      td.textContent = c;
      if (i === 1) td.className = w.up ? "up" : "lost";
      if (i === 0 && n < 8) td.style.borderLeft = "4px solid " + colors[n % colors.length]; // its chunk line
      tr.append(td);
    });
    return tr;
  }));
  $("events").replaceChildren(...(s.events || []).slice().reverse().map((e) => {
    const li = document.createElement("li");
    li.textContent = fmt(e.t, 1) + " s  " + e.kind + (e.worker ? " " + e.worker : "") + ": " + e.text;
    return li;
  }));
  $("rejected").replaceChildren(...Object.entries(s.rejected || {}).map(([k, v]) => {
    const li = document.createElement("li");
    li.textContent = k + ": " + v;
    return li;
  }));
}

const source = new EventSource("events" + q);
source.onmessage = (m) => {
  latest = JSON.parse(m.data);
  if (!drawing) { drawing = true; requestAnimationFrame(draw); }
};
source.onerror = () => { $("status").textContent = latest && latest.stopped ? "stopped: " + latest.stopped : "reconnecting…"; };

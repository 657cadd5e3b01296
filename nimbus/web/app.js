// Squall's web page: polls the REST API every 2 s and draws boards, the topology graph,
// the traffic heat map and two time series with plain SVG. No framework, no build step.
"use strict";

const API = "api/v1/";
const REFRESH_MS = 2000;
const PALETTE = ["#1f77b4", "#e8710a", "#2ca02c", "#9334e6", "#d01884", "#12a4af", "#8c564b", "#7f7f7f"];
const SVGNS = "http://www.w3.org/2000/svg";
const $ = (id) => document.getElementById(id);
let nodeColours = {};
let selected = new URLSearchParams(location.search).get("topology") || "";

async function get(path) {
  const r = await fetch(API + path, { cache: "no-store" });
  const body = await r.json();
  if (!r.ok) throw new Error(body.errorMessage || r.statusText);
  return body;
}

function el(tag, attrs, parent, text) {
  const e = tag.startsWith("svg:") ? document.createElementNS(SVGNS, tag.slice(4)) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) if (v !== undefined && v !== null) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  if (parent) parent.appendChild(e);
  return e;
}

function fmt(x, digits) {
  if (x === null || x === undefined || isNaN(x)) return "–";
  const a = Math.abs(x);
  if (a >= 1e9) return (x / 1e9).toFixed(1) + "G";
  if (a >= 1e6) return (x / 1e6).toFixed(1) + "M";
  if (a >= 1e4) return (x / 1e3).toFixed(1) + "k";
  return x.toFixed(digits === undefined ? (a < 10 ? 2 : 0) : digits);
}

function colourOf(node) { return nodeColours[node] || "#bbb"; }

// -- boards --------------------------------------------------------------------------------

function drawBoards(sups) {
  nodeColours = {};
  sups.forEach((s, i) => { nodeColours[s.id] = PALETTE[i % PALETTE.length]; });
  const box = $("boards");
  box.textContent = "";
  for (const s of sups) {
    const card = el("div", { class: "board" + (s.alive ? "" : " dead"), "data-node": s.id,
      "data-load-hz": Math.round(s.loadHz), "data-capacity-hz": Math.round(s.capacityHz),
      style: "--c:" + colourOf(s.id) }, box);
    el("h3", {}, card, s.id + (s.alive ? "" : " (down)"));
    el("div", { class: "meta" }, card, `${s.host} · ${s.cores} cores · ${fmt(s.clockHz / 1e9, 2)} GHz · ${fmt(s.totalMem, 0)} MB`);
    const slots = el("div", { class: "slots" }, card);
    for (const slot of s.slots) {
      el("span", { class: "slot " + slot.state, "data-port": slot.port, "data-topology": slot.topology || "",
        title: slot.topology ? `${slot.topology} (${slot.state}, pid ${slot.pid || "?"})` : "free" },
        slots, slot.port + (slot.topology ? " " + slot.topology : ""));
    }
    const share = s.capacityHz ? s.loadHz / s.capacityHz : 0;
    const bar = el("div", { class: "bar" + (share > 1 ? " over" : ""), title: "load / capacity" }, card);
    el("div", { style: `width:${Math.min(100, share * 100).toFixed(1)}%` }, bar);
    el("div", { class: "meta" }, card, `load ${fmt(s.loadHz / 1e9, 2)} / ${fmt(s.capacityHz / 1e9, 2)} Gcycles/s (${fmt(share * 100, 0)}%)`);
  }
}

// -- topology graph ------------------------------------------------------------------------

function drawGraph(placement) {
  const svg = $("graph");
  svg.textContent = "";
  // Columns are the topological layers Nimbus serves (sources first; a cycle's members share
  // one), the same order the engine drains bolts in.
  const byId = Object.fromEntries(placement.components.map((c) => [c.id, c]));
  const columns = Object.fromEntries(placement.layers.map((names, d) => [d, names.map((n) => byId[n])]));
  const execsOf = {};
  for (const e of placement.executors) (execsOf[e.component] = execsOf[e.component] || []).push(e);
  const nCols = Object.keys(columns).length || 1;
  const W = 560, colW = W / nCols, boxW = Math.min(150, colW - 56), R = 7;
  const rows = Math.max(...Object.values(columns).map((c) => c.length), 1);
  const H = Math.max(160, rows * 90 + 20);
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  const pos = {};
  for (const [d, comps] of Object.entries(columns)) {
    comps.forEach((c, i) => {
      const n = (execsOf[c.id] || []).length;
      const perRow = Math.max(1, Math.floor((boxW - 10) / (2 * R + 4)));
      const h = 30 + Math.ceil(n / perRow) * (2 * R + 4);
      pos[c.id] = { x: d * colW + (colW - boxW) / 2, y: (i + 0.5) * (H / comps.length) - h / 2, h, perRow, layer: d };
    });
  }
  for (const e of placement.edges) {
    const a = pos[e.from], b = pos[e.to];
    if (!a || !b) continue;
    const x1 = a.x + boxW, y1 = a.y + a.h / 2, x2 = b.x, y2 = b.y + b.h / 2;
    el("svg:path", { d: `M${x1},${y1} C${x1 + 30},${y1} ${x2 - 30},${y2} ${x2},${y2}`, fill: "none",
      stroke: "#9aa3af", "stroke-width": 1.5, "marker-end": "url(#arrow)" }, svg);
    el("svg:text", { x: (x1 + x2) / 2, y: (y1 + y2) / 2 - 4, "text-anchor": "middle", fill: "#6b7380" }, svg, e.grouping);
  }
  const defs = el("svg:defs", {}, svg);
  const marker = el("svg:marker", { id: "arrow", viewBox: "0 0 10 10", refX: 10, refY: 5, markerWidth: 6, markerHeight: 6,
    orient: "auto" }, defs);
  el("svg:path", { d: "M0,0 L10,5 L0,10 z", fill: "#9aa3af" }, marker);
  for (const c of placement.components) {
    const p = pos[c.id];
    const g = el("svg:g", { "data-component": c.id, "data-layer": p.layer }, svg);
    el("svg:rect", { x: p.x, y: p.y, width: boxW, height: p.h, rx: 6, fill: "#fff", stroke: "#9aa3af" }, g);
    el("svg:text", { x: p.x + 6, y: p.y + 14, "font-weight": "bold" }, g, `${c.id} (${c.type}, ×${c.parallelism})`);
    (execsOf[c.id] || []).forEach((e, k) => {
      const cx = p.x + 6 + R + (k % p.perRow) * (2 * R + 4), cy = p.y + 22 + R + Math.floor(k / p.perRow) * (2 * R + 4);
      const dot = el("svg:circle", { cx, cy, r: R, fill: colourOf(e.node), "data-executor": e.id, "data-node": e.node || "" }, g);
      el("svg:title", {}, dot, `executor ${e.id} tasks ${e.tasks.join("-")} on ${e.worker || "unassigned"}, ${fmt(e.loadHz / 1e6, 1)} Mcycles/s`);
      el("svg:text", { x: cx, y: cy + 3, "text-anchor": "middle", fill: "#fff", "font-size": 8 }, g, e.id);
    });
  }
}

// -- traffic heat map ----------------------------------------------------------------------

function drawHeat(traffic) {
  const svg = $("heat");
  svg.textContent = "";
  // System executors (ackers) with no measured traffic are left out to keep the map small.
  const keep = traffic.executors.map((e, i) => !e.component.startsWith("__") ||
    traffic.matrix[i].some((v) => v > 0) || traffic.matrix.some((row) => row[i] > 0));
  const ex = traffic.executors.filter((_, i) => keep[i]);
  const matrix = traffic.matrix.filter((_, i) => keep[i]).map((row) => row.filter((_, j) => keep[j]));
  const n = ex.length;
  const pad = 70, cell = Math.max(6, Math.min(30, Math.floor(440 / Math.max(n, 1))));
  const W = pad + n * cell + 10, H = pad + n * cell + 6;
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  let max = 0;
  for (const row of matrix) for (const v of row) max = Math.max(max, v);
  const scale = (v) => (v > 0 && max > 0 ? Math.log1p(v) / Math.log1p(max) : 0);
  ex.forEach((e, i) => {
    const label = `${e.id} ${e.component.slice(0, 8)}`;
    el("svg:text", { x: pad - 10, y: pad + i * cell + cell / 2 + 3, "text-anchor": "end" }, svg, label);
    el("svg:text", { x: 0, y: 0, transform: `translate(${pad + i * cell + cell / 2 + 3},${pad - 10}) rotate(-60)` }, svg, label);
    el("svg:rect", { x: pad - 7, y: pad + i * cell, width: 5, height: cell - 1, fill: colourOf(e.node) }, svg);
    el("svg:rect", { x: pad + i * cell, y: pad - 7, width: cell - 1, height: 5, fill: colourOf(e.node) }, svg);
  });
  matrix.forEach((row, i) => row.forEach((v, j) => {
    const s = scale(v);
    const fill = v > 0 ? `rgb(${Math.round(255 - 40 * s)},${Math.round(245 - 190 * s)},${Math.round(230 - 200 * s)})` : "#f1f2f5";
    const cross = ex[i].node !== ex[j].node;
    const r = el("svg:rect", { class: "cell", x: pad + j * cell, y: pad + i * cell, width: cell - 1, height: cell - 1, fill,
      stroke: v > 0 && cross ? "#1d2430" : "none", "stroke-width": 0.8,
      "data-src": ex[i].id, "data-dst": ex[j].id, "data-rate": v.toFixed(1) }, svg);
    el("svg:title", {}, r, `${ex[i].id} → ${ex[j].id}: ${fmt(v, 1)} tuples/s${cross ? " (crosses boards)" : ""}`);
  }));
  $("heat-total").textContent = `total ${fmt(traffic.total, 0)}/s · inter-worker ${fmt(traffic.interWorker, 0)}/s · ` +
    `inter-node ${fmt(traffic.interNode, 0)}/s · outlined cells cross boards`;
}

// -- time series ---------------------------------------------------------------------------

function drawChart(id, samples, key, marks) {
  const svg = $(id);
  svg.textContent = "";
  const W = 520, H = 170, L = 48, B = 20, T = 8;
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  const pts = samples.filter((s) => s[key] !== null && s[key] !== undefined);
  el("svg:line", { class: "axis", x1: L, y1: H - B, x2: W - 4, y2: H - B }, svg);
  el("svg:line", { class: "axis", x1: L, y1: T, x2: L, y2: H - B }, svg);
  if (samples.length < 2) {
    el("svg:text", { x: L + 10, y: H / 2 }, svg, "collecting samples…");
    return;
  }
  const t0 = samples[0].t, t1 = samples[samples.length - 1].t;
  const ymax = Math.max(1e-9, ...pts.map((s) => s[key])) * 1.1;
  const x = (t) => L + ((t - t0) / Math.max(t1 - t0, 1e-9)) * (W - L - 6);
  const y = (v) => H - B - (v / ymax) * (H - B - T);
  for (const frac of [0, 0.5, 1]) {
    el("svg:text", { x: L - 4, y: y(ymax * frac) + 3, "text-anchor": "end" }, svg, fmt(ymax * frac));
  }
  el("svg:text", { x: L, y: H - 5 }, svg, `-${Math.round(t1 - t0)} s`);
  el("svg:text", { x: W - 4, y: H - 5, "text-anchor": "end" }, svg, "now");
  for (const m of marks) {
    if (m.t < t0 || m.t > t1) continue;
    const line = el("svg:line", { class: "mark", x1: x(m.t), y1: T, x2: x(m.t), y2: H - B, "data-mark": m.kind }, svg);
    el("svg:title", {}, line, m.label);
  }
  if (pts.length) {
    el("svg:polyline", { points: pts.map((s) => `${x(s.t).toFixed(1)},${y(s[key]).toFixed(1)}`).join(" "),
      fill: "none", stroke: "#1f77b4", "stroke-width": 1.8 }, svg);
  }
}

function eventTime(e) { return e.t ?? e.at ?? e.time ?? e.ts ?? null; }

function marksOf(history, events) {
  const marks = history.placementChanges.map((m) => ({ t: m.t, kind: "placement", label: `assignment v${m.version} (${m.status})` }));
  for (const e of events.events) {
    const t = eventTime(e);
    if (typeof t === "number") marks.push({ t, kind: "event", label: e.kind || e.type || e.reason || "rebalance" });
  }
  return marks;
}

// -- tables --------------------------------------------------------------------------------

function drawComponents(topo) {
  const body = $("components").querySelector("tbody");
  body.textContent = "";
  const rows = [...topo.spouts.map((s) => ({ id: s.spoutId, ...s })), ...topo.bolts.map((b) => ({ id: b.boltId, ...b }))];
  for (const r of rows) {
    const tr = el("tr", { "data-component": r.id }, body);
    for (const v of [r.id, r.executors, r.emitted, r.transferred, r.acked, r.failed,
      r.completeLatency ?? "", r.capacity ?? "", r.executeLatency ?? ""]) el("td", {}, tr, String(v));
  }
}

function drawEvents(history, events) {
  const ul = $("events");
  ul.textContent = "";
  for (const m of marksOf(history, events).slice(-8)) {
    el("li", {}, ul, `${new Date(m.t * 1000).toLocaleTimeString()} — ${m.label}`);
  }
  if (events.source !== "store") el("li", {}, ul, "(Nimbus keeps no rebalance event store yet: only assignment changes seen here are listed)");
}

// -- refresh -------------------------------------------------------------------------------

function pickTopology(list) {
  const select = $("topology");
  const names = list.map((t) => t.id);
  if (!names.includes(selected)) selected = names[0] || "";
  if (select.dataset.names !== names.join("\n")) {
    select.textContent = "";
    for (const n of names) el("option", { value: n }, select, n);
    select.dataset.names = names.join("\n");
  }
  select.value = selected;
}

async function refresh() {
  try {
    const [cluster, sups, topos] = await Promise.all([get("cluster/summary"), get("supervisor/summary"), get("topology/summary")]);
    $("summary").textContent = `${cluster.supervisors} boards · ${cluster.slotsUsed}/${cluster.slotsTotal} slots used · ` +
      `${cluster.topologies} topologies · ${cluster.executorsTotal} executors · up ${cluster.nimbusUptime}`;
    drawBoards(sups.supervisors);
    pickTopology(topos.topologies);
    if (selected) {
      const id = encodeURIComponent(selected);
      const [topo, placement, traffic, history, events] = await Promise.all([get(`topology/${id}`),
        get(`topology/${id}/placement`), get(`topology/${id}/traffic`), get(`topology/${id}/history`), get(`topology/${id}/events`)]);
      $("topo-info").textContent = `${topo.status} · ${topo.workersTotal} workers · scheduler ${topo.scheduler} · ` +
        `assignment v${topo.assignmentVersion}` + (topo.waitingReason ? ` · waiting: ${topo.waitingReason}` : "") +
        (placement.cycles.length ? ` · cycles: ${placement.cycles.map((c) => [...c, c[0]].join(" → ")).join("; ")}` : "");
      drawGraph(placement);
      drawHeat(traffic);
      const marks = marksOf(history, events);
      drawChart("latency", history.samples, "completeLatencyMs", marks);
      drawChart("internode", history.samples, "interNode", marks);
      drawComponents(topo);
      drawEvents(history, events);
    }
    $("status").textContent = "updated " + new Date().toLocaleTimeString();
    $("status").className = "status";
  } catch (err) {
    $("status").textContent = "Nimbus unreachable or refused: " + err.message;
    $("status").className = "status bad";
  }
  document.body.dataset.refreshed = String(Number(document.body.dataset.refreshed || 0) + 1);
}

$("topology").addEventListener("change", (e) => { selected = e.target.value; refresh(); });
refresh();
setInterval(refresh, REFRESH_MS);

/* UniROSS dashboard: WebSocket stream into strip charts, REST polling for mode / faults / health, and the
 * engineer's mode request form. Same origin only; nothing is fetched from the internet. */
"use strict";

const API = "/api/v1";
const $ = (id) => document.getElementById(id);
/* service times are epoch seconds (the service clock is wall-clock time.time()): show local time of day */
const timeOfDay = (t) => {
  const d = new Date(t * 1000);
  const hms = d.toLocaleTimeString("en-GB", { hour12: false });
  return `${hms}.${String(Math.floor(d.getMilliseconds() / 100))}`;
};
const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);

const charts = [
  new StripChart($("plot-suction"), [
    { key: "serial.suction_pressure.raw", label: "serial raw", color: "rgba(63,167,255,0.35)", width: 1 },
    { key: "serial.suction_pressure", label: "serial filtered", color: "#3fa7ff", width: 2 },
    { key: "SSC_Suction.SuctionPressure", label: "CAN", color: "#f39c12", width: 1.5, dash: [5, 3] },
  ], { unit: "Pa" }),
  new StripChart($("plot-fan"), [
    { key: "serial.fan_speed.raw", label: "serial raw", color: "rgba(46,204,113,0.35)", width: 1 },
    { key: "serial.fan_speed", label: "serial filtered", color: "#2ecc71", width: 2 },
    { key: "SSC_Suction.SuctionFanSpeed", label: "CAN", color: "#f39c12", width: 1.5, dash: [5, 3] },
  ], { unit: "rpm" }),
  new StripChart($("plot-speed"), [
    { key: "CCVS1.WheelBasedVehicleSpeed", label: "wheel-based speed", color: "#c39bd3", width: 2 },
  ], { unit: "km/h" }),
];
const chartByKey = new Map();
for (const c of charts) for (const k of c.keys()) chartByKey.set(k, c);

function token() { return $("token").value.trim() || sessionStorage.getItem("uniross-token") || ""; }
function authHeaders() { const t = token(); return t ? { Authorization: `Bearer ${t}` } : {}; }

/* ---- stream ---------------------------------------------------------------------------------------- */
let backoff = 500;
function connect() {
  const proto = location.protocol === "https:" ? "wss" : "ws";
  const t = token();
  const ws = new WebSocket(`${proto}://${location.host}${API}/stream${t ? "?token=" + encodeURIComponent(t) : ""}`);
  ws.onopen = () => {
    backoff = 500;
    $("conn").textContent = "stream live"; $("conn").className = "conn conn-up";
    ws.send(JSON.stringify({ subscribe: [...chartByKey.keys()], rate_hz: 20 }));
  };
  ws.onmessage = (ev) => {
    const msg = JSON.parse(ev.data);
    if (msg.type !== "update") return;
    const touched = new Set();
    for (const [key, [t, v]] of Object.entries(msg.updates)) {
      const chart = chartByKey.get(key);
      if (chart) { chart.push(key, t, v); touched.add(chart); }
    }
    for (const chart of charts) chart.commit(msg.t);  // keep the time axis moving even without new data
    $("clock").textContent = timeOfDay(msg.t);
    if (msg.dropped) console.warn(`stream: ${msg.dropped} messages dropped`);
  };
  ws.onclose = () => {
    $("conn").textContent = "stream offline"; $("conn").className = "conn conn-down";
    setTimeout(connect, backoff); backoff = Math.min(backoff * 2, 5000);
  };
}

/* ---- REST polling ---------------------------------------------------------------------------------- */
async function getJson(path) {
  const r = await fetch(API + path, { headers: authHeaders() });
  if (!r.ok) throw new Error(`${path}: HTTP ${r.status}`);
  return r.json();
}

function renderMode(m) {
  const badge = $("mode-state");
  badge.textContent = m.state; badge.dataset.state = m.state;
  $("cab-selector").textContent = m.cab_selector;
  $("mode-step").textContent = m.transition_step ? `step: ${m.transition_step}` : "";
  renderInterlocks(m.interlocks);
}

/* Interlocks come as "<TARGET>.<name>" per target mode (shared ones once per target) and "SAFE.<cause>": one row
 * per interlock with a light in the column of each target it applies to; live SAFE causes listed apart. */
const TARGETS = ["SWEEPER", "SNOW"];
const rowOrder = new Map();  // interlock name -> row index, fixed when first seen: rows never jump between polls
function renderInterlocks(interlocks) {
  const rows = new Map();  // name -> {text, SWEEPER: ok, SNOW: ok}
  const causes = [];
  for (const i of interlocks) {
    const dot = i.name.indexOf(".");
    const target = i.name.slice(0, dot), name = i.name.slice(dot + 1);
    if (target === "SAFE") { causes.push(i); continue; }
    if (!TARGETS.includes(target)) continue;
    if (!rowOrder.has(name)) rowOrder.set(name, rowOrder.size);
    if (!rows.has(name)) rows.set(name, { text: i.text });
    const row = rows.get(name);
    row[target] = row[target] === undefined ? i.ok : row[target] && i.ok;  // a failing evaluation wins
  }
  const light = (target, name, ok) => ok === undefined
    ? `<td class="na" title="not an interlock of ${target}">–</td>`
    : `<td><span class="lamp ${ok ? "ok" : "bad"}" data-interlock="${esc(target + "." + name)}" `
      + `title="${esc(target)}: ${ok ? "ok" : "blocking"}"></span></td>`;
  const sorted = [...rows].sort(([a], [b]) => rowOrder.get(a) - rowOrder.get(b));
  $("interlocks").tBodies[0].innerHTML = sorted.map(([name, row]) =>
    `<tr data-name="${esc(name)}"><td title="${esc(name)}">${esc(row.text)}</td>`
    + TARGETS.map((t) => light(t, name, row[t])).join("") + "</tr>").join("");
  for (const target of TARGETS) {  // column heads: ready, or how many interlocks block that target
    const blocking = [...rows.values()].filter((r) => r[target] === false).length;
    const th = $("interlocks").tHead.querySelector(`th[data-target="${target}"]`);
    th.className = blocking ? "bad" : "ok";
    th.innerHTML = `${target}<small>${blocking ? `${blocking} blocking` : "ready"}</small>`;
  }
  $("safe-causes").innerHTML = causes.length
    ? causes.map((c) => `<li class="bad" data-cause="${esc(c.name.slice(5))}">${esc(c.text)}</li>`).join("")
    : `<li class="ok none">none</li>`;
}

function renderFaults(f) {
  const rows = f.active.map((x) => `<tr><td class="sev-${esc(x.severity)}">${esc(x.severity)}</td><td>${esc(x.name)}</td>`
    + `<td>${esc(x.text)}</td><td>${x.acknowledged ? "ack" : "—"}</td></tr>`).join("");
  const dtcs = f.dtcs.map((d) => `<tr><td>0x${d.source_address.toString(16).padStart(2, "0").toUpperCase()}</td>`
    + `<td>${d.spn}</td><td>${d.fmi}</td><td>${d.occurrence_count}</td>`
    + `<td>${Object.entries(d.lamps).filter(([, v]) => v).map(([k]) => esc(k)).join(", ") || "—"}</td></tr>`).join("");
  $("faults").innerHTML =
    (rows ? `<table><tr><th>severity</th><th>fault</th><th>text</th><th></th></tr>${rows}</table>` : `<p class="muted">no active faults</p>`)
    + (dtcs ? `<table id="dtcs"><tr><th>SA</th><th>SPN</th><th>FMI</th><th>OC</th><th>lamps</th></tr>${dtcs}</table>` : `<p class="muted">no active DTCs</p>`);
}

function renderHealth(h) {
  const sum = (o) => Object.values(o).reduce((a, b) => a + b, 0);
  const items = [
    ["bus", h.bus.alive ? "alive" : "silent"],
    ["frames/s", (h.bus.frames_per_s ?? 0).toFixed(0)],
    ["bus load", `${(h.bus.bus_load_pct ?? 0).toFixed(1)} %`],
    ["frames total", h.bus.frames_total.toLocaleString("en-US")],
    ["bus errors", sum(h.bus.errors)],
    ["decoder rejects", sum(h.bus.decoder_rejects)],
    ["serial link", h.serial.connected ? "connected" : "down"],
    ["loop p50 / p99", `${((h.loop.cycle_p50_s ?? 0) * 1e3).toFixed(2)} / ${((h.loop.cycle_p99_s ?? 0) * 1e3).toFixed(2)} ms`],
    ["deadline misses", h.loop.deadline_misses],
  ];
  $("bus-health").innerHTML = items.map(([k, v]) => `<dt>${esc(k)}</dt><dd>${esc(v)}</dd>`).join("");
}

function renderEvents(e) {
  $("mode-events").innerHTML = e.events.map((x) =>
    `<li data-kind="${esc(x.kind)}"><span class="muted">${timeOfDay(x.timestamp)}</span> `
    + `<b class="kind-${esc(x.kind)}">${esc(x.kind)}</b>${x.target ? " " + esc(x.target) : ""} `
    + `<span class="muted">(${esc(x.source)}${x.user ? ", " + esc(x.user) : ""})</span> `
    + `${x.text === x.kind ? "" : esc(x.text) + " "}<span class="muted">→ ${esc(x.state)}</span></li>`).join("");
}

async function poll() {
  const jobs = [["/mode", renderMode], ["/faults", renderFaults], ["/health", renderHealth], ["/mode/events?limit=12", renderEvents]];
  await Promise.all(jobs.map(([path, render]) => getJson(path).then(render).catch((err) => console.warn(err.message))));
}

/* ---- mode request ---------------------------------------------------------------------------------- */
async function requestMode(target) {
  const out = $("mode-request-result");
  const t = $("token").value.trim();
  if (t) sessionStorage.setItem("uniross-token", t);
  document.querySelectorAll(".buttons button").forEach((b) => { b.disabled = true; });
  try {
    const r = await fetch(`${API}/mode`, {
      method: "POST",
      headers: { "Content-Type": "application/json", ...authHeaders() },
      body: JSON.stringify({ target, acknowledge: $("ack").checked }),
    });
    const body = await r.json();
    if (r.ok) {
      out.className = "result ok";
      out.innerHTML = `${esc(target)} accepted — state ${esc(body.state)}`;
    } else if (r.status === 409) {
      out.className = "result refused";
      out.innerHTML = `${esc(target)} refused (state ${esc(body.state)}):<ul>`
        + body.reasons.map((x) => `<li data-reason="${esc(x.name)}">${esc(x.text)}</li>`).join("") + "</ul>";
    } else {
      out.className = "result error";
      out.textContent = `HTTP ${r.status}: ${body.message || JSON.stringify(body)}`;
    }
  } catch (err) {
    out.className = "result error"; out.textContent = String(err);
  } finally {
    document.querySelectorAll(".buttons button").forEach((b) => { b.disabled = false; });
    poll();
  }
}

/* backfill the plots with the last minute from the REST history before the stream takes over */
async function backfill() {
  await Promise.all([...chartByKey.entries()].map(([key, chart]) =>
    getJson(`/signals/${encodeURIComponent(key)}/history?max_points=600`)
      .then((h) => { h.t.forEach((t, i) => chart.push(key, t, h.v[i])); chart.commit(h.t1); })
      .catch(() => {})));
}

document.querySelectorAll(".buttons button").forEach((b) => b.addEventListener("click", () => requestMode(b.dataset.target)));
$("token").value = sessionStorage.getItem("uniross-token") || "";
backfill().finally(connect);
poll();
setInterval(poll, 1000);

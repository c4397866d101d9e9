/* StripChart: a dependency-free canvas time-series plot (rolling window, several series, legend).
 * Series: {key, label, color, width, dash}. push(key, t, v) appends a point; the chart redraws once per
 * animation frame, counts updates in the container's data-updates attribute and keeps the latest value of every
 * series (what the legend shows) as JSON {key: value} in data-latest. */
"use strict";

class StripChart {
  constructor(container, series, { windowS = 60, unit = "" } = {}) {
    this.container = container;
    this.canvas = container.querySelector("canvas");
    this.ctx = this.canvas.getContext("2d");
    this.series = series.map((s) => ({ ...s, t: [], v: [] }));
    this.byKey = new Map(this.series.map((s) => [s.key, s]));
    this.windowS = windowS;
    this.unit = unit;
    this.now = 0;
    this.updates = 0;
    this.dirty = true;
    new ResizeObserver(() => { this.dirty = true; }).observe(container);
    const loop = () => { if (this.dirty) this.draw(); requestAnimationFrame(loop); };
    requestAnimationFrame(loop);
  }

  keys() { return this.series.map((s) => s.key); }

  push(key, t, v) {
    const s = this.byKey.get(key);
    if (!s || v === null || typeof v !== "number") return;
    if (s.t.length && t <= s.t[s.t.length - 1]) return;
    s.t.push(t); s.v.push(v);
    const cut = t - this.windowS * 1.2;
    let drop = 0;
    while (drop < s.t.length && s.t[drop] < cut) drop++;
    if (drop) { s.t.splice(0, drop); s.v.splice(0, drop); }
  }

  commit(now) {
    this.now = Math.max(this.now, now);
    this.updates += 1;
    this.container.dataset.updates = String(this.updates);
    this.container.dataset.latest = JSON.stringify(Object.fromEntries(
      this.series.filter((s) => s.v.length).map((s) => [s.key, s.v[s.v.length - 1]])));
    this.dirty = true;
  }

  static niceStep(span, target) {
    const raw = span / target;
    const mag = Math.pow(10, Math.floor(Math.log10(raw)));
    const n = raw / mag;
    return mag * (n < 1.5 ? 1 : n < 3 ? 2 : n < 7 ? 5 : 10);
  }

  draw() {
    this.dirty = false;
    const dpr = window.devicePixelRatio || 1;
    const w = this.container.clientWidth, h = this.container.clientHeight;
    if (this.canvas.width !== Math.round(w * dpr) || this.canvas.height !== Math.round(h * dpr)) {
      this.canvas.width = Math.round(w * dpr); this.canvas.height = Math.round(h * dpr);
    }
    const ctx = this.ctx;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, w, h);
    const pad = { l: 58, r: 12, t: 24, b: 22 };
    const pw = w - pad.l - pad.r, ph = h - pad.t - pad.b;
    const t1 = this.now, t0 = t1 - this.windowS;
    let lo = Infinity, hi = -Infinity;
    for (const s of this.series) {
      for (let i = 0; i < s.t.length; i++) {
        if (s.t[i] >= t0) { lo = Math.min(lo, s.v[i]); hi = Math.max(hi, s.v[i]); }
      }
    }
    if (!isFinite(lo)) { lo = 0; hi = 1; }
    if (hi - lo < 1e-9) { lo -= 1; hi += 1; }
    const margin = (hi - lo) * 0.08; lo -= margin; hi += margin;
    const x = (t) => pad.l + ((t - t0) / this.windowS) * pw;
    const y = (v) => pad.t + (1 - (v - lo) / (hi - lo)) * ph;

    ctx.font = "11px system-ui, sans-serif";
    ctx.strokeStyle = "#2a3541"; ctx.fillStyle = "#8796a5"; ctx.lineWidth = 1;
    const ys = StripChart.niceStep(hi - lo, 5);
    ctx.textAlign = "right"; ctx.textBaseline = "middle";
    for (let v = Math.ceil(lo / ys) * ys; v <= hi; v += ys) {
      ctx.beginPath(); ctx.moveTo(pad.l, y(v)); ctx.lineTo(pad.l + pw, y(v)); ctx.stroke();
      ctx.fillText(Number(v.toPrecision(6)).toLocaleString("en-US"), pad.l - 6, y(v));
    }
    ctx.textAlign = "center"; ctx.textBaseline = "top";
    for (let s = 0; s <= this.windowS; s += 10) {
      const tx = x(t1 - s);
      ctx.beginPath(); ctx.moveTo(tx, pad.t); ctx.lineTo(tx, pad.t + ph); ctx.stroke();
      ctx.fillText(s === 0 ? "now" : `-${s} s`, tx, pad.t + ph + 5);
    }

    ctx.save();
    ctx.beginPath(); ctx.rect(pad.l, pad.t, pw, ph); ctx.clip();
    for (const s of this.series) {
      if (!s.t.length) continue;
      ctx.strokeStyle = s.color; ctx.lineWidth = s.width || 1.5; ctx.setLineDash(s.dash || []);
      ctx.beginPath();
      for (let i = 0; i < s.t.length; i++) {
        const px = x(s.t[i]), py = y(s.v[i]);
        if (i === 0) ctx.moveTo(px, py); else ctx.lineTo(px, py);
      }
      ctx.stroke();
    }
    ctx.restore();
    ctx.setLineDash([]);

    let lx = pad.l;
    ctx.textAlign = "left"; ctx.textBaseline = "middle";
    for (const s of this.series) {
      const last = s.v.length ? s.v[s.v.length - 1] : null;
      const label = `${s.label}${last === null ? "" : ": " + last.toFixed(Math.abs(last) < 100 ? 1 : 0)}`;
      ctx.fillStyle = s.color; ctx.fillRect(lx, 8, 14, 3);
      ctx.fillStyle = "#dce3ea"; ctx.fillText(label, lx + 19, 10);
      lx += ctx.measureText(label).width + 40;
    }
  }
}

window.StripChart = StripChart;

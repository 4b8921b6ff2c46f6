// Quality over time of one call: per-second MOS, loss and jitter of each party, as three small
// SVG charts, so a dip at 0:42 shows at 0:42. Data from /api/calls/quality (the sensor's
// `active_call_info` "quality": each stream's last seconds, one point a second). Plain DOM,
// no framework; each point is a <circle> (data-party, data-metric, data-t), so tests and
// assistive tools can read the values too.

const SVG = "http://www.w3.org/2000/svg";
const POLL_MS = 2000;
const W = 600;
const H = 70;
const PAD = 30;
// [metric, label, value of a point, fixed top or null (scaled to the data), bottom]
const METRICS = [
  ["mos", "MOS", (p) => p[3], 4.5, 1],
  ["loss", "loss %", (p) => (p[0] + Math.max(p[1], 0) > 0 ? (100 * Math.max(p[1], 0)) / (p[0] + Math.max(p[1], 0)) : 0), null],
  ["jitter", "jitter ms", (p) => p[2], null],
];
const PARTIES = ["caller", "called"];

function el(name, attrs = {}) {
  const e = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  return e;
}

// The main stream of each party: the one with most points (a call may hold more).
function byParty(streams) {
  const out = {};
  for (const s of streams || []) {
    const p = s.party || "caller";
    if (!out[p] || (s.points || []).length > (out[p].points || []).length) out[p] = s;
  }
  return out;
}

export class QualityChart {
  constructor(root) {
    this.root = root;
    this.call = null;
    this.timer = 0;
    this.generation = 0;
  }

  // Shows (and keeps refreshing) the quality of call `callref` on sensor `sensorId`.
  show(sensorId, callref) {
    this.call = { sensorId, callref };
    this.generation++;
    clearTimeout(this.timer);
    this.root.hidden = false;
    this.poll(this.generation);
  }

  stop() {
    this.generation++;
    clearTimeout(this.timer);
  }

  async poll(gen) {
    if (gen !== this.generation || !this.call) return;
    const { sensorId, callref } = this.call;
    const q = new URLSearchParams({ callref });
    if (sensorId !== null && sensorId !== undefined && sensorId !== "") q.set("sensor_id", String(sensorId));
    try {
      const r = await fetch(`/api/calls/quality?${q}`, { credentials: "same-origin" });
      if (gen !== this.generation) return;
      if (r.ok) this.render((await r.json()).quality, callref);
      else if (r.status === 404) this.message("The call is no longer on the sensor.");
    } catch {
      // A failed poll leaves the last chart; the next one tries again.
    }
    if (gen === this.generation) this.timer = setTimeout(() => this.poll(gen), POLL_MS);
  }

  message(text) {
    this.root.replaceChildren();
    const p = document.createElement("p");
    p.className = "quality-note";
    p.textContent = text;
    this.root.append(p);
  }

  render(quality, callref) {
    const parties = byParty(quality?.streams);
    const starts = Object.values(parties).map((s) => s.start).filter((v) => Number.isFinite(v));
    if (!starts.length) {
      this.message("No per-second quality for this call yet.");
      return;
    }
    const t0 = Math.min(...starts);
    const end = Math.max(...Object.values(parties).map((s) => (s.start ?? t0) + (s.points || []).length));
    const span = Math.max(end - t0, 1);
    const title = document.createElement("p");
    title.className = "quality-note";
    title.textContent = `Quality per second of call ${callref} (caller solid, called dashed; red: the sensor dropped packets then)`;
    const charts = METRICS.map(([metric, label, value, top, bottom]) => this.chart(parties, t0, span, metric, label, value, top, bottom ?? 0));
    this.root.replaceChildren(title, ...charts);
    this.root.dataset.seconds = String(span);
  }

  chart(parties, t0, span, metric, label, value, fixedTop, bottom) {
    let top = fixedTop;
    if (top === null) {
      const all = PARTIES.flatMap((p) => (parties[p]?.points || []).map(value)).filter(Number.isFinite);
      top = Math.max(1, ...all) * 1.1;
    }
    const x = (t) => PAD + ((W - PAD - 4) * t) / span;
    const y = (v) => H - 12 - ((H - 20) * (Math.min(Math.max(v, bottom), top) - bottom)) / (top - bottom);
    const svg = el("svg", { viewBox: `0 0 ${W} ${H}`, class: `quality-chart-${metric}`, role: "img", "aria-label": `${label} per second` });
    svg.append(el("line", { x1: PAD, y1: H - 12, x2: W - 4, y2: H - 12, class: "axis" }));
    const name = el("text", { x: 2, y: 12, class: "label" });
    name.textContent = label;
    const topText = el("text", { x: 2, y: 24, class: "tick" });
    topText.textContent = top >= 10 ? top.toFixed(0) : top.toFixed(1);
    const spanText = el("text", { x: W - 4, y: H - 1, class: "tick", "text-anchor": "end" });
    spanText.textContent = `${Math.floor(span / 60)}:${String(span % 60).padStart(2, "0")}`;
    svg.append(name, topText, spanText);
    for (const party of PARTIES) {
      const s = parties[party];
      if (!s) continue;
      const pts = [];
      (s.points || []).forEach((p, i) => {
        const t = (s.start ?? t0) - t0 + i;
        const v = value(p);
        const c = el("circle", { cx: x(t), cy: y(Number.isFinite(v) ? v : bottom), r: 1.8, class: `pt ${party}${p[4] ? " gap" : ""}` });
        c.dataset.party = party;
        c.dataset.metric = metric;
        c.dataset.t = String(t);
        if (!Number.isFinite(v)) c.classList.add("none");
        else pts.push(`${x(t).toFixed(1)},${y(v).toFixed(1)}`);
        const tip = el("title");
        tip.textContent = `${party} ${Math.floor(t / 60)}:${String(t % 60).padStart(2, "0")}: ${Number.isFinite(v) ? v.toFixed(metric === "mos" ? 2 : 1) : "–"} ${label}`;
        c.append(tip);
        svg.append(c);
      });
      svg.insertBefore(el("polyline", { points: pts.join(" "), class: `line ${party}` }), svg.firstChild);
    }
    return svg;
  }
}

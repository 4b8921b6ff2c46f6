// The SIP ladder of a call, as sngrep and Homer draw it: one column per signalling address
// (ip:port, in the order the messages first name them), one arrow per message in capture
// order with its method or status and its time since the first message (a retransmission
// dashed, as sngrep marks it). Clicking an arrow
// (or Enter on it) shows the message's text below. The ladder comes from /api/ladder (the
// sensor's active_call_info); message text is only ever set as textContent, never as markup.

const SVG = "http://www.w3.org/2000/svg";
const COL = 190; // px between two columns
const LEFT = 96; // px of the time axis, left of the first column
const TOP = 46; // px of the address headers
const ROW = 30; // px per arrow

function svg(name, attrs = {}) {
  const el = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  return el;
}

function el(name, props = {}, ...children) {
  const e = document.createElement(name);
  Object.assign(e, props);
  e.append(...children);
  return e;
}

// sngrep's colours: requests, provisional, success, failure.
function kind(a) {
  if (a.status === null || a.status === undefined) return "request";
  if (a.status < 200) return "provisional";
  if (a.status < 300) return "success";
  return "failure";
}

const seconds = (ms) => `+${(ms / 1000).toFixed(3)} s`;

// Shows the ladder of call `c` ({sensor_id, callreference, caller, called}) in `section`,
// fetched with the page's `api(path)`. Returns the reply's body (or null on an error).
export async function showLadder(section, c, api) {
  section.hidden = false;
  const title = el("h2", { id: "ladder-title" }, "SIP ladder ");
  title.append(el("span", { className: "muted", textContent: `${c.caller ?? "?"} → ${c.called ?? "?"}` }));
  const close = el("button", { type: "button", className: "ladder-close", textContent: "close" });
  close.addEventListener("click", () => {
    section.hidden = true;
    section.replaceChildren();
  });
  // A live call goes on: "refresh" reads its messages again.
  const refresh = el("button", { type: "button", className: "ladder-refresh", textContent: "refresh" });
  refresh.addEventListener("click", () => showLadder(section, c, api));
  const status = el("p", { className: "muted ladder-status", textContent: "loading the call's SIP messages…" });
  section.setAttribute("aria-labelledby", "ladder-title");
  section.replaceChildren(el("div", { className: "ladder-head" }, title, el("span", {}, refresh, " ", close)), status);
  const q = new URLSearchParams({ callref: String(c.callreference) });
  if (c.sensor_id !== null && c.sensor_id !== undefined) q.set("sensor_id", String(c.sensor_id));
  const r = await api(`/api/ladder?${q}`, { timeout: 8000 });
  if (!r.ok || !r.body) {
    status.className = "error ladder-status";
    status.textContent = (r.body && r.body.error) || `cannot read the call's SIP messages (HTTP ${r.status})`;
    return null;
  }
  drawLadder(section, r.body, status);
  return r.body;
}

// Draws a /api/ladder reply into `section`, below its heading.
export function drawLadder(section, d, status) {
  const columns = Array.isArray(d.columns) ? d.columns : [];
  const arrows = Array.isArray(d.arrows) ? d.arrows : [];
  const n = arrows.length;
  const more = Number(d.left_out) || 0;
  status.textContent = n
    ? `Call-ID ${d.callid ?? "?"} · ${n} SIP message${n === 1 ? "" : "s"}${more ? ` (${more} more left out)` : ""} · click an arrow for its text`
    : "The sensor keeps no SIP messages for this call (its sip_log_messages setting may be 0).";
  const width = LEFT + Math.max(1, columns.length) * COL;
  const height = TOP + n * ROW + 16;
  const box = svg("svg", { width, height, viewBox: `0 0 ${width} ${height}`, role: "group", "aria-label": "SIP ladder: one arrow per message" });
  box.classList.add("ladder");
  const defs = svg("defs");
  for (const k of ["request", "provisional", "success", "failure"]) {
    const m = svg("marker", { id: `ladder-head-${k}`, viewBox: "0 0 10 10", refX: 10, refY: 5, markerWidth: 8, markerHeight: 8, orient: "auto-start-reverse" });
    m.append(svg("path", { d: "M0,0 L10,5 L0,10 z", class: `head ${k}` }));
    defs.append(m);
  }
  box.append(defs);
  const x = (i) => LEFT + i * COL + COL / 2;
  columns.forEach((addr, i) => {
    const t = svg("text", { x: x(i), y: 18, "text-anchor": "middle", class: "column" });
    t.textContent = addr;
    box.append(t, svg("line", { x1: x(i), y1: 28, x2: x(i), y2: height - 4, class: "lifeline" }));
  });
  const detail = el("pre", { className: "ladder-message", tabIndex: 0 });
  detail.setAttribute("aria-label", "the selected SIP message");
  const caption = el("p", { className: "ladder-caption muted" });
  const groups = arrows.map((a, i) => arrowGroup(a, i, x, columns));
  const select = (i) => {
    groups.forEach((g, j) => g.classList.toggle("selected", j === i));
    const a = arrows[i];
    const notes = [a.transport ? `over ${a.transport}` : "", a.retransmission ? "retransmission" : "", a.truncated ? "cut: the sensor kept only the start of it" : ""];
    caption.textContent = [`[${i + 1}] ${seconds(a.offset_ms)}`, `${columns[a.from] ?? "?"} → ${columns[a.to] ?? "?"}`, a.label, ...notes.filter(Boolean)].join(" · ");
    detail.textContent = String(a.text ?? "");
  };
  groups.forEach((g, i) => {
    g.addEventListener("click", () => select(i));
    g.addEventListener("keydown", (ev) => {
      if (ev.key === "Enter" || ev.key === " ") {
        ev.preventDefault();
        select(i);
      }
    });
    box.append(g);
  });
  const scroll = el("div", { className: "ladder-scroll" }, box);
  section.append(scroll, caption, detail);
  if (n) select(0);
}

function arrowGroup(a, i, x, columns) {
  const y = TOP + i * ROW + ROW / 2;
  const k = kind(a);
  const g = svg("g", { class: `arrow ${k}${a.retransmission ? " retransmission" : ""}`, tabindex: 0, role: "button", "data-index": i });
  g.dataset.label = a.label;
  g.setAttribute("aria-label", `${i + 1}: ${a.label}, ${columns[a.from] ?? "?"} to ${columns[a.to] ?? "?"}, ${seconds(a.offset_ms)}${a.retransmission ? ", retransmission" : ""}`);
  const time = svg("text", { x: 6, y: y + 4, class: "time" });
  time.textContent = seconds(a.offset_ms);
  const label = svg("text", { class: "label", "text-anchor": "middle" });
  label.textContent = a.label;
  const x1 = x(a.from);
  const x2 = x(a.to);
  // A wide, invisible hit area: the line itself is too thin to click.
  const left = Math.min(x1, x2);
  const hitWidth = x1 === x2 ? COL * 0.8 : Math.abs(x2 - x1);
  g.append(svg("rect", { x: left, y: y - ROW / 2, width: hitWidth, height: ROW, class: "hit" }), time);
  if (x1 === x2) {
    g.append(svg("path", { d: `M${x1},${y - 6} h30 v12 h-30`, class: "line", "marker-end": `url(#ladder-head-${k})` }));
    label.setAttribute("x", x1 + 36);
    label.setAttribute("y", y + 4);
    label.setAttribute("text-anchor", "start");
  } else {
    g.append(svg("line", { x1, y1: y + 5, x2, y2: y + 5, class: "line", "marker-end": `url(#ladder-head-${k})` }));
    label.setAttribute("x", (x1 + x2) / 2);
    label.setAttribute("y", y);
  }
  g.append(label);
  return g;
}

// earshot player page: login, the ChunkPlayer form, the live call list and the player panel.
// The panel is the <earshot-player> web component (earshot-player.js), the same code a
// developer embeds in their own page.
import { fmtDuration } from "/earshot-player.js";
import { showLadder } from "/ladder.js";
import { bLegsOf, groupKey, groupLegs, isA, isB, isCollapsed, legNote, toggle } from "/legs.js";
import { QualityChart } from "/quality-chart.js";

const $ = (id) => document.getElementById(id);
const player = $("player");
// The second player: a group's B-leg, heard with its A-leg ("both legs").
const playerB = $("player-b");
const status = $("status");
let me = null; // {name, role, csrf}
let pollTimer = 0;
let pollGeneration = 0;
let sensorNames = new Map();
let sensorsFetched = 0;
const rows = new Map(); // "sensor|callref" -> <tr>
let lastCalls = [];
// The call list comes from the player's stream (/api/calls/stream): the window of calls
// around what is on screen, filtered by the player, then only its changes. Browsers without
// EventSource poll /api/calls instead.
const WINDOW = 150;
let stream = null;
let streamRetry = 0;
let streamed = false; // the list shows a stream's window
const win = { offset: 0, total: 0, order: [] };
const byKey = new Map(); // the stream's "sensor:ref" -> call
let rowH = 33; // a row's height, measured once rows exist

// ---- test hooks (read by tests/browser/player.test.mjs) ----
window.earshotTest = {
  get session() { return player.session; },
  get analyserL() { return player.session && player.session.analyserL; },
  get analyserR() { return player.session && player.session.analyserR; },
  get samplesPlayed() { return player.session ? player.session.samplesPlayed : 0; },
  get sampleRate() { return player.session ? player.session.sampleRate : 0; },
  get state() { return player.session ? player.session.state : "idle"; },
  get stats() { return player.session ? player.session.stats : {}; },
  get calls() { return lastCalls; },
  get streamed() { return streamed; },
  get samplesPlayedB() { return playerB.session ? playerB.session.samplesPlayed : 0; },
  get analyserBL() { return playerB.session && playerB.session.analyserL; },
  get analyserBR() { return playerB.session && playerB.session.analyserR; },
};

function say(text, level = "info") {
  status.textContent = text;
  status.dataset.level = level;
}

async function api(path, options = {}) {
  const headers = { ...(options.headers || {}) };
  if (options.body !== undefined) headers["Content-Type"] = "application/json";
  if (options.method && options.method !== "GET" && me) headers["X-CSRF-Token"] = me.csrf;
  const ctrl = new AbortController();
  const timer = setTimeout(() => ctrl.abort(), options.timeout || 8000);
  try {
    const r = await fetch(path, {
      method: options.method || "GET",
      headers,
      body: options.body === undefined ? undefined : JSON.stringify(options.body),
      credentials: "same-origin",
      signal: ctrl.signal,
    });
    let body = null;
    try {
      body = await r.json();
    } catch {
      body = null;
    }
    return { ok: r.ok, status: r.status, body };
  } catch (e) {
    return { ok: false, status: 0, body: { error: e.name === "AbortError" ? "the player did not answer in time" : `cannot reach the player: ${e.message}` } };
  } finally {
    clearTimeout(timer);
  }
}

// ---- login ----

function showLogin(message = "") {
  me = null;
  stopPolling();
  player.stop();
  $("app").hidden = true;
  $("who").hidden = true;
  $("login-section").hidden = false;
  $("login-error").textContent = message;
  $("login").elements.name.focus();
}

function showApp(user) {
  me = user;
  $("login-section").hidden = true;
  $("app").hidden = false;
  $("who").hidden = false;
  $("who-name").textContent = `${user.name} (${user.role})`;
  say("");
  startPolling();
  $("admin-section").hidden = user.role !== "admin";
  if (user.role === "admin") refreshAdmin();
}

$("login").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const f = new FormData(ev.target);
  $("login-error").textContent = "";
  const r = await api("/api/login", { method: "POST", body: { name: f.get("name"), password: f.get("password") } });
  if (!r.ok) {
    $("login-error").textContent = (r.body && r.body.error) || `login failed (HTTP ${r.status})`;
    return;
  }
  ev.target.reset();
  showApp(r.body);
  $("filter").focus();
});

$("logout").addEventListener("click", async () => {
  await api("/api/logout", { method: "POST" });
  showLogin("Logged out.");
});

// ---- start from ----

function startFrom() {
  const v = document.querySelector("input[name=from]:checked").value;
  if (v === "ago") {
    const n = Math.max(1, Math.round(Number($("from-seconds").value) || 30));
    return String(n); // <earshot-player start="30"> = 30 seconds ago
  }
  return v;
}
$("from-seconds").addEventListener("focus", () => {
  document.querySelector("input[name=from][value=ago]").checked = true;
});

// ---- the ChunkPlayer form ----

// `from`: where to start, else the "Start from" choice.
const qualityChart = new QualityChart($("quality-chart"));

function listen(callref, sensorId, from = null) {
  qualityChart.show(sensorId, callref);
  player.setAttribute("callref", callref);
  if (sensorId === null || sensorId === undefined || sensorId === "") player.removeAttribute("sensor");
  else player.setAttribute("sensor", String(sensorId));
  player.setAttribute("start", from ?? startFrom());
  say("");
  player.play(); // synchronously in the click/submit: the AudioContext may start
  stopB();
  markListening();
}

// Both legs of a call: the A-leg in the main player, its B-leg in the second one; the
// browser mixes the two (each stereo: caller left, called right). Through a B2BUA the legs
// carry the same conversation, so what the second adds is what one leg has and the other
// lacks (media the SBC plays or drops on one side).
function listenBoth(a, b, from = null) {
  listen(a.callreference, a.sensor_id, from);
  playerB.setAttribute("callref", b.callreference);
  if (b.sensor_id === null || b.sensor_id === undefined) playerB.removeAttribute("sensor");
  else playerB.setAttribute("sensor", String(b.sensor_id));
  playerB.setAttribute("start", from ?? startFrom());
  playerB.hidden = false;
  playerB.play();
  say(`Listening to both legs: ${a.callid ?? a.callreference} and ${b.callid ?? b.callreference}.`);
}

function stopB() {
  if (playerB.session) playerB.stop();
  playerB.hidden = true;
}

$("chunkplayer").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const f = new FormData(ev.target);
  listen(String(f.get("callref")).trim(), String(f.get("sensor_id") || "").trim());
});
$("stop").addEventListener("click", () => {
  player.stop();
  stopB();
  markListening();
});

// VoIPmonitor's ChunkPlayer links pass the call in the query string.
{
  const q = new URLSearchParams(location.search);
  const ref = q.get("callref") || q.get("callreference");
  const sid = q.get("sensor_id") || q.get("sensorid") || q.get("id_sensor");
  if (ref) $("callref").value = ref;
  if (sid) $("sensor_id").value = sid;
}

player.addEventListener("earshot-state", (e) => {
  if (e.detail.state === "ended") say("Call ended.");
  if (e.detail.state === "stopped") markListening();
});

// ---- the call list ----

function stopPolling() {
  pollGeneration++;
  clearTimeout(pollTimer);
  clearTimeout(streamRetry);
  if (stream) stream.close();
  stream = null;
}

function startPolling() {
  stopPolling();
  if (window.EventSource) return openStream(0);
  const gen = pollGeneration;
  const tick = async () => {
    if (gen !== pollGeneration) return;
    const t0 = performance.now();
    await refreshCalls();
    if (gen !== pollGeneration) return;
    // Every second, never two requests at once.
    pollTimer = setTimeout(tick, Math.max(200, 1000 - (performance.now() - t0)));
  };
  tick();
}

// Opens the stream of the window that starts at `offset`, with the filter box's text.
function openStream(offset) {
  if (stream) stream.close();
  clearTimeout(streamRetry);
  if (!sensorsFetched) refreshSensors();
  const q = $("filter").value.trim();
  const es = new EventSource(`/api/calls/stream?q=${encodeURIComponent(q)}&offset=${offset}&limit=${WINDOW}`);
  stream = es;
  byKey.clear();
  es.addEventListener("window", (ev) => {
    if (stream === es) applyWindow(JSON.parse(ev.data));
  });
  es.onerror = async () => {
    // While CONNECTING the browser tries again by itself; CLOSED means it gave up (e.g. 401).
    if (stream !== es || es.readyState !== EventSource.CLOSED) return;
    stream = null;
    const r = await api("/api/me");
    if (r.status === 401) return showLogin((r.body && r.body.error) || "Log in again.");
    renderErrors([{ sensor_id: null, error: "the call list was cut off: reconnecting" }]);
    streamRetry = setTimeout(() => me && openStream(win.offset), 2000);
  };
}

function applyWindow(d) {
  for (const k of d.remove || []) byKey.delete(k);
  for (const c of d.upsert || []) byKey.set(c.key, c);
  win.offset = Number(d.offset) || 0;
  win.total = Number(d.total) || 0;
  win.order = Array.isArray(d.order) ? d.order : [];
  streamed = true;
  lastCalls = win.order.map((k) => byKey.get(k)).filter(Boolean);
  renderErrors(Array.isArray(d.errors) ? d.errors : []);
  renderCalls(lastCalls);
  $("calls-updated").textContent = `updated ${new Date().toLocaleTimeString()}`;
  if (Date.now() - sensorsFetched > 30000) refreshSensors();
}

async function refreshSensors() {
  const r = await api("/api/sensors", { timeout: 5000 });
  if (r.ok && Array.isArray(r.body)) {
    sensorNames = new Map(r.body.map((s) => [String(s.id_sensor), s.name]));
    sensorsFetched = Date.now();
    // The stream's first window may have come first: its errors said "sensor 1", not the name.
    renderErrors(lastErrors);
  } else {
    sensorsFetched = Date.now() - 25000; // try again in 5 s
  }
}

async function refreshCalls() {
  // Sensor names: waited for the first time, refreshed in the background every 30 s.
  if (!sensorsFetched) await refreshSensors();
  else if (Date.now() - sensorsFetched > 30000) refreshSensors();
  const r = await api("/api/calls", { timeout: 6000 });
  if (r.status === 401) return showLogin((r.body && r.body.error) || "Log in again.");
  if (!r.ok) {
    renderErrors([{ sensor_id: null, error: (r.body && r.body.error) || `HTTP ${r.status}` }]);
    return;
  }
  lastCalls = Array.isArray(r.body.calls) ? r.body.calls : [];
  renderErrors(Array.isArray(r.body.errors) ? r.body.errors : []);
  renderCalls(lastCalls);
  $("calls-updated").textContent = `updated ${new Date().toLocaleTimeString()}`;
}

// The errors last shown, to label them again once the sensors' names arrive.
let lastErrors = [];

function renderErrors(errors) {
  lastErrors = errors;
  const ul = $("sensor-errors");
  ul.replaceChildren(
    ...errors.map((e) => {
      const li = document.createElement("li");
      const name = e.sensor_id === null || e.sensor_id === undefined ? "player" : `sensor ${sensorLabel(e.sensor_id)}`;
      li.textContent = `${name}: ${e.error}`;
      return li;
    }),
  );
}

function sensorLabel(id) {
  const name = sensorNames.get(String(id));
  return name ? `${name} (${id})` : String(id);
}

// The player describes each call's state ("calling", "no answer", "on hold (by caller)"), so
// the words shown are the words its filter finds.
function callState(c) {
  return c.state_text ?? "";
}

// Why a party's MOS (and maybe jitter) is unknown, from an earshot sensor's
// quality_unknown_caller/_called; shown as "–" with this as the cell's tooltip.
function unknownWhy(c, party) {
  const why = c[`quality_unknown_${party}`];
  const codec = c[`codec_${party}`];
  switch (why) {
    case null:
    case undefined:
      return "";
    case "no_media":
      return isOver(c) ? "no media" : "no media yet";
    case "undecodable":
      return `${codec || "its codec"} cannot be decoded`;
    case "mode_dependent":
      return `${codec || "its codec"}: no MOS, its impairment depends on the mode`;
    case "clock_unknown":
      return "clock rate unknown (no rtpmap for its payload type)";
    case "events_only":
      return "telephone-events only";
    case "video":
      return "video";
    default:
      return String(why);
  }
}

// The tooltip of the MOS or jitter cell: why each party's value that is missing is missing.
function unknownTitle(c, field) {
  const missing = (v) => v === null || v === undefined;
  const parts = ["caller", "called"]
    .filter((p) => missing(c[`${field}_${p}`]))
    .map((p) => [p, unknownWhy(c, p)])
    .filter(([, w]) => w);
  return parts.map(([p, w]) => `${p}: ${w}`).join("; ");
}

// "cannot decode AMR" beside the state when a party sends a codec the sensor cannot decode.
function undecodable(c) {
  const codecs = ["caller", "called"]
    .filter((p) => c[`quality_unknown_${p}`] === "undecodable")
    .map((p) => c[`codec_${p}`] || "its codec");
  return codecs.length ? `cannot decode ${[...new Set(codecs)].join(", ")}` : "";
}

const num = (v, d) => (v === null || v === undefined || v === "" || !Number.isFinite(Number(v)) ? "–" : Number(v).toFixed(d));
const pair = (a, b, d) => `${num(a, d)} / ${num(b, d)}`;

const CAPTURE_LOSS_TITLE = "packets the sensor missed that the call did not lose (the receiver's RTCP, or the sensor's own drops): not the call's fault";

// [label, text, tooltip]
function cellsOf(c) {
  const state = [callState(c), undecodable(c), legNote(c, lastCalls)].filter(Boolean).join(" · ");
  return [
    ["Caller", c.caller ?? "–"],
    ["Called", c.called ?? "–"],
    ["Sensor", sensorLabel(c.sensor_id)],
    ["Duration", fmtDuration(c.duration)],
    ["State", state],
    ["Codecs", Array.isArray(c.codecs) && c.codecs.length ? [...new Set(c.codecs)].join(", ") : "–"],
    ["MOS", pair(c.mos_caller, c.mos_called, 1), unknownTitle(c, "mos")],
    ["Capture loss", pair(c.capture_loss_caller, c.capture_loss_called, 0), CAPTURE_LOSS_TITLE],
    ["Loss %", pair(c.loss_caller, c.loss_called, 1)],
    ["Jitter ms", pair(c.jitter_caller, c.jitter_called, 1), unknownTitle(c, "jitter")],
  ];
}

function keyOf(c) {
  return `${c.sensor_id}|${String(c.callreference).toLowerCase()}`;
}

function matches(c, filter) {
  if (!filter) return true;
  const hay = [c.caller, c.called, c.callid, c.callreference, sensorLabel(c.sensor_id), callState(c), ...(c.codecs || [])]
    .filter((v) => v !== null && v !== undefined)
    .join(" ")
    .toLowerCase();
  return filter
    .toLowerCase()
    .split(/\s+/)
    .filter(Boolean)
    .every((w) => hay.includes(w));
}

// Calls still going, before those that are over (ended, failed, unanswered: they linger a few
// seconds); otherwise the sensors' order.
const OVER = new Set(["ended", "failed", "cancelled", "unanswered"]);
const isOver = (c) => OVER.has(String(c.state));

function renderCalls(unsorted) {
  // B-legs right under their A-leg (legs.js), even when one of them is over.
  const calls = groupLegs([...unsorted.filter((c) => !isOver(c)), ...unsorted.filter(isOver)]);
  const tbody = document.querySelector("#calls tbody");
  const filter = $("filter").value.trim();
  const seen = new Set();
  const aLegsHere = new Set(calls.filter(isA).map(groupKey));
  let shown = 0;
  let prev = null;
  for (const c of calls) {
    const key = keyOf(c);
    seen.add(key);
    let tr = rows.get(key);
    if (!tr) {
      tr = newRow(c);
      rows.set(key, tr);
    }
    // Update in place: a keyboard user's focus on a listen button survives the refresh.
    const cells = cellsOf(c);
    cells.forEach(([, text, title = ""], i) => {
      if (tr.cells[i].textContent !== text) tr.cells[i].textContent = text;
      if (tr.cells[i].title !== title) tr.cells[i].title = title;
    });
    tr.title = `Call-ID ${c.callid ?? "?"} · ref ${c.callreference}`;
    tr.classList.toggle("on-hold", c.on_hold === true);
    tr.classList.toggle("over", isOver(c));
    const button = tr.querySelector("button.listen");
    button.textContent = isOver(c) ? "replay" : "listen";
    button.title = isOver(c) ? "the call is over: plays what the sensor kept of it, from its start" : "";
    tr.classList.toggle("a-leg", isA(c));
    tr.classList.toggle("b-leg", isB(c));
    const bs = bLegsOf(calls, c);
    const fold = tr.querySelector("button.fold");
    fold.hidden = bs.length === 0;
    fold.textContent = isCollapsed(c) ? "▸" : "▾";
    fold.title = isCollapsed(c) ? "show the B-legs" : "fold the B-legs";
    fold.setAttribute("aria-expanded", String(!isCollapsed(c)));
    tr.querySelector("button.both").hidden = bs.length === 0;
    // A stream's window was filtered by the player already; folded B-legs are hidden.
    tr.hidden = (!streamed && !matches(c, filter)) || (isB(c) && isCollapsed(c) && aLegsHere.has(groupKey(c)));
    if (!tr.hidden) shown++;
    // Keep the sensors' order, without moving rows that are already in place.
    const want = prev ? prev.nextSibling : $("spacer-top").nextSibling;
    if (want !== tr) tbody.insertBefore(tr, want);
    prev = tr;
  }
  for (const [key, tr] of rows) {
    if (!seen.has(key)) {
      if (tr.contains(document.activeElement)) $("filter").focus();
      tr.remove();
      rows.delete(key);
    }
  }
  if (streamed) {
    $("calls-count").textContent = `(${win.total})`;
    $("calls-empty").hidden = win.total > 0;
    $("calls-empty").textContent = filter ? "No call matches the filter." : "No active calls.";
    const n = calls.length;
    $("calls-window").textContent = n && n < win.total ? `rows ${win.offset + 1}–${win.offset + n} of ${win.total} here; scroll for the others` : "";
    sizeSpacers(n);
  } else {
    $("calls-count").textContent = `(${shown}${shown !== calls.length ? ` of ${calls.length}` : ""})`;
    $("calls-empty").hidden = shown > 0;
    $("calls-empty").textContent = calls.length ? "No call matches the filter." : "No active calls.";
  }
  markListening();
}

// The spacers stand for the rows before and after the window, so the scroll bar is the whole
// list's.
function sizeSpacers(n) {
  const row = document.querySelector("#calls tbody tr:not(.spacer)");
  if (row) rowH = row.getBoundingClientRect().height || rowH;
  $("spacer-top").firstElementChild.style.height = `${win.offset * rowH}px`;
  $("spacer-bottom").firstElementChild.style.height = `${Math.max(0, win.total - win.offset - n) * rowH}px`;
}

// Scrolled past what the window holds: the stream moves to the rows now on screen.
let scrollPending = false;
let scrollTimer = 0;
$("calls-scroll").addEventListener("scroll", () => {
  if (!streamed || scrollPending) return;
  scrollPending = true;
  requestAnimationFrame(() => {
    scrollPending = false;
    const box = $("calls-scroll");
    const head = document.querySelector("#calls thead").getBoundingClientRect().height;
    const first = Math.floor(Math.max(0, box.scrollTop - head) / rowH);
    const visible = Math.ceil(box.clientHeight / rowH);
    const end = win.offset + win.order.length;
    if ((first < win.offset && win.offset > 0) || (first + visible > end && end < win.total)) {
      const offset = Math.max(0, first - Math.floor((WINDOW - visible) / 2));
      clearTimeout(scrollTimer);
      scrollTimer = setTimeout(() => openStream(offset), 120);
    }
  });
});

function newRow(c) {
  const tr = document.createElement("tr");
  tr.dataset.callref = c.callreference;
  tr.dataset.sensor = c.sensor_id;
  // Any listed call's quality over time, without listening: click its row.
  tr.addEventListener("click", (e) => {
    if (!e.target.closest("button")) qualityChart.show(c.sensor_id, c.callreference);
  });
  for (const [label] of cellsOf(c)) {
    const td = document.createElement("td");
    td.dataset.label = label;
    tr.append(td);
  }
  const td = document.createElement("td");
  td.className = "actions";
  const b = document.createElement("button");
  b.type = "button";
  b.className = "listen";
  b.textContent = "listen";
  b.setAttribute("aria-label", `listen to ${c.caller ?? "?"} → ${c.called ?? "?"}`);
  b.addEventListener("click", () => {
    $("callref").value = c.callreference;
    $("sensor_id").value = c.sensor_id ?? "";
    // A call that is over has nothing "from now": it plays what the sensor kept, from its start.
    listen(c.callreference, c.sensor_id, tr.classList.contains("over") ? "start" : null);
  });
  td.append(b);
  // The SIP ladder needs a listener's role, as listening does (the API checks it).
  if (me && me.role !== "viewer") {
    const sip = document.createElement("button");
    sip.type = "button";
    sip.className = "ladder";
    sip.textContent = "SIP";
    sip.title = "SIP ladder: the call's messages";
    sip.setAttribute("aria-label", `SIP ladder of ${c.caller ?? "?"} → ${c.called ?? "?"}`);
    sip.addEventListener("click", () => showLadder($("ladder-section"), c, api));
    td.append(" ", sip);
  }
  // An A-leg's: hear it with its B-leg, and fold its B-legs away (shown when it has some).
  const both = document.createElement("button");
  both.type = "button";
  both.className = "both";
  both.textContent = "both legs";
  both.hidden = true;
  both.title = "plays this A-leg and its B-leg together, each in a player of its own";
  both.addEventListener("click", () => {
    const a = lastCalls.find((x) => keyOf(x) === keyOf(c)) || c;
    const [b0] = bLegsOf(lastCalls, a);
    if (b0) listenBoth(a, b0, tr.classList.contains("over") ? "start" : null);
  });
  const fold = document.createElement("button");
  fold.type = "button";
  fold.className = "fold";
  fold.hidden = true;
  fold.setAttribute("aria-label", `B-legs of ${c.caller ?? "?"} → ${c.called ?? "?"}`);
  fold.addEventListener("click", () => {
    // The call as listed now: the row may predate its grouping.
    toggle(lastCalls.find((x) => keyOf(x) === keyOf(c)) || c);
    renderCalls(lastCalls);
  });
  td.append(both, fold);
  tr.append(td);
  return tr;
}

function markListening() {
  const s = player.session;
  const active = s && !s.stopped ? `${s.sensorId}|${s.callref.toLowerCase()}` : null;
  const sb = playerB.session; // a B-leg heard with its A-leg
  const activeB = sb && !sb.stopped ? `${sb.sensorId}|${sb.callref.toLowerCase()}` : null;
  for (const [key, tr] of rows) {
    const on = key === active || key === activeB;
    tr.classList.toggle("listening", on);
    if (on) tr.setAttribute("aria-current", "true");
    else tr.removeAttribute("aria-current");
  }
}

// The player filters a stream (every call of every sensor, not only those on screen).
let filterTimer = 0;
$("filter").addEventListener("input", () => {
  if (!streamed) return renderCalls(lastCalls);
  clearTimeout(filterTimer);
  filterTimer = setTimeout(() => {
    $("calls-scroll").scrollTop = 0;
    openStream(0);
  }, 80);
});

// ---- administration (admins only; the API enforces it, this only hides what would fail) ----

const when = (secs) => (secs ? new Date(secs * 1000).toLocaleString() : "–");
const text = (v) => (v === null || v === undefined || v === "" ? "–" : String(v));

function cellRow(values) {
  const tr = document.createElement("tr");
  for (const v of values) {
    const td = document.createElement("td");
    td.textContent = v;
    tr.append(td);
  }
  return tr;
}

async function refreshAdmin() {
  await Promise.all([refreshSensorTable(), refreshKeys(), refreshAudit()]);
}

async function refreshSensorTable() {
  const r = await api("/api/sensors", { timeout: 5000 });
  if (!r.ok || !Array.isArray(r.body)) {
    $("admin-error").textContent = (r.body && r.body.error) || `cannot list sensors (HTTP ${r.status})`;
    return;
  }
  const tbody = document.querySelector("#sensors tbody");
  tbody.replaceChildren(
    ...r.body.map((s) => {
      const tr = cellRow([s.id_sensor, s.name, s.kind, s.host ? `${s.host}:${s.port}` : "–", s.tls ? "yes" : "no", s.token ? "set" : "–", s.online ? "yes" : "no"]);
      tr.dataset.sensor = s.id_sensor;
      const td = document.createElement("td");
      td.className = "actions";
      if (s.registered) {
        const b = document.createElement("button");
        b.type = "button";
        b.className = "remove";
        b.textContent = "remove";
        b.setAttribute("aria-label", `remove sensor ${s.name} (${s.id_sensor})`);
        b.addEventListener("click", () => removeSensor(s));
        td.append(b);
      } else {
        td.textContent = "configured";
        td.title = "the player's default sensor ([manager] / --manager); change it in the configuration";
      }
      tr.append(td);
      return tr;
    }),
  );
}

async function removeSensor(s) {
  if (!confirm(`Remove sensor ${s.name} (${s.id_sensor})? Its calls disappear from the list.`)) return;
  const r = await api(`/api/sensors/${encodeURIComponent(s.id_sensor)}`, { method: "DELETE" });
  $("admin-error").textContent = r.ok ? "" : (r.body && r.body.error) || `HTTP ${r.status}`;
  sensorsFetched = 0;
  refreshSensorTable();
}

$("add-sensor").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const f = new FormData(ev.target);
  const body = {
    id_sensor: Number(f.get("id_sensor")),
    name: String(f.get("name")).trim(),
    host: String(f.get("host")).trim(),
    port: Number(f.get("port")),
    token: String(f.get("token") || "") || null,
    tls: f.get("tls") === "on",
    kind: String(f.get("kind")),
  };
  const r = await api("/api/sensors", { method: "POST", body });
  if (!r.ok) {
    $("admin-error").textContent = (r.body && r.body.error) || `HTTP ${r.status}`;
    return;
  }
  $("admin-error").textContent = "";
  ev.target.reset();
  sensorsFetched = 0;
  refreshSensorTable();
});

async function refreshKeys() {
  const r = await api("/api/keys", { timeout: 5000 });
  if (!r.ok || !Array.isArray(r.body)) {
    $("admin-error").textContent = (r.body && r.body.error) || `cannot list the API keys (HTTP ${r.status})`;
    return;
  }
  const tbody = document.querySelector("#keys tbody");
  tbody.replaceChildren(
    ...r.body.map((k) => {
      const tr = cellRow([k.name, k.role, k.sensors ? k.sensors.join(", ") : "all", when(k.created), k.expires ? when(k.expires) : "never"]);
      tr.dataset.key = k.name;
      const td = document.createElement("td");
      td.className = "actions";
      const b = document.createElement("button");
      b.type = "button";
      b.className = "remove";
      b.textContent = "revoke";
      b.setAttribute("aria-label", `revoke the API key ${k.name}`);
      b.addEventListener("click", () => revokeKey(k));
      td.append(b);
      tr.append(td);
      return tr;
    }),
  );
}

async function revokeKey(k) {
  if (!confirm(`Revoke the API key ${k.name}? Its backend is refused at once, and its listen tokens too.`)) return;
  const r = await api(`/api/keys/${encodeURIComponent(k.name)}`, { method: "DELETE" });
  $("admin-error").textContent = r.ok ? "" : (r.body && r.body.error) || `HTTP ${r.status}`;
  refreshKeys();
}

$("add-key").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const f = new FormData(ev.target);
  const sensors = String(f.get("sensors") || "").trim();
  const days = String(f.get("expires_days") || "").trim();
  const body = {
    name: String(f.get("name")).trim(),
    role: String(f.get("role")),
    sensors: sensors && sensors !== "all" ? sensors.split(",").map((v) => Number(v.trim())) : null,
    expires_days: days ? Number(days) : null,
  };
  const r = await api("/api/keys", { method: "POST", body });
  if (!r.ok) {
    $("admin-error").textContent = (r.body && r.body.error) || `HTTP ${r.status}`;
    return;
  }
  $("admin-error").textContent = "";
  ev.target.reset();
  $("new-key-value").textContent = r.body.key;
  $("new-key").hidden = false;
  refreshKeys();
});

async function refreshAudit() {
  const r = await api("/api/audit?limit=200", { timeout: 5000 });
  if (!r.ok || !Array.isArray(r.body)) {
    $("admin-error").textContent = (r.body && r.body.error) || `cannot read the audit log (HTTP ${r.status})`;
    return;
  }
  const tbody = document.querySelector("#audit tbody");
  tbody.replaceChildren(
    ...r.body.map((a) => {
      const tr = cellRow([when(a.started), a.stopped ? when(a.stopped) : "listening", a.user_name, text(a.source_ip), text(a.id_sensor), a.callreference, text(a.caller), text(a.called), text(a.callid), text(a.api_key)]);
      tr.dataset.callref = a.callreference;
      return tr;
    }),
  );
  $("audit-updated").textContent = `updated ${new Date().toLocaleTimeString()}`;
}
$("audit-refresh").addEventListener("click", refreshAudit);
// While an admin has the page open, the audit log follows new sessions by itself.
setInterval(() => {
  if (me && me.role === "admin" && !document.hidden) refreshAudit();
}, 10000);

// ---- start ----

(async () => {
  const r = await api("/api/me");
  if (r.ok) showApp(r.body);
  else if (r.status === 401) showLogin();
  else {
    showLogin();
    say((r.body && r.body.error) || `the player answered HTTP ${r.status}`, "error");
  }
})();

// Live listening embedded in another site's dashboard (issue 17), with two origins: the player
// on one port, the dashboard (a small node http server playing the dashboard's part: its
// backend mints listen tokens with an API key, its page embeds <earshot-player token=…>) on
// another, and a third origin the player does not allow.
//
//   EARSHOT_BIN=target/debug/earshot node --test tests/browser/embed.test.mjs
//
// What it checks: the dashboard's page plays the tones test (400 Hz left, 1 kHz right) with a
// token; the same token is then refused (used), a token is refused for another call, after it
// expired, and from the non-allowed origin; that origin cannot frame the player while the
// dashboard can. Screenshot: target/screenshots/embed-dashboard.png (docs/images/ has a copy).

import { test } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import { join } from "node:path";
import { writeFileSync } from "node:fs";
import { SHOTS, freePort, until, run, inBrowser, sleep } from "./lib.mjs";

const CALLER_HZ = 400;
const CALLED_HZ = 1000;
/** [embed] token_seconds: short, so that the expiry can be waited for. */
const TOKEN_SECONDS = 8;

/** The dashboard's page: it loads the element from the player and asks its own server for tokens. */
function dashboardPage(player) {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Acme support dashboard</title>
<script type="module" src="${player}/earshot-player.js"></script>
<style>body{font-family:system-ui,sans-serif;max-width:44rem;margin:2rem auto}</style></head>
<body>
<h1>Acme support dashboard</h1>
<p>Agent: <b>Ann Agent</b>. Live call from the queue, heard through earshot.</p>
<div id="slot"></div>
<script type="module">
  // What the dashboard's own page does: ask its backend for a token, embed the element.
  window.embedPlay = async (callref, { attrCallref } = {}) => {
    const r = await fetch("/token?callref=" + encodeURIComponent(callref));
    const { token } = await r.json();
    return window.embedWithToken(token, attrCallref);
  };
  window.embedWithToken = async (token, attrCallref) => {
    await customElements.whenDefined("earshot-player");
    const slot = document.getElementById("slot");
    slot.replaceChildren();
    const el = document.createElement("earshot-player");
    el.setAttribute("token", token);
    el.setAttribute("src-origin", ${JSON.stringify(player)});
    if (attrCallref) el.setAttribute("callref", attrCallref);
    slot.append(el);
    window.player = el;
    window.lastToken = token;
    el.play();
    return token;
  };
  // The outcome of a session: "playing" once audio plays, else the error shown.
  window.outcome = () => {
    const s = window.player && window.player.session;
    if (!s) return null;
    if (s.state === "error") return "error: " + (s.lastMessage ? s.lastMessage.text : "");
    return s.samplesPlayed && s.sampleRate ? "played " + (s.samplesPlayed / s.sampleRate).toFixed(1) : s.state;
  };
</script>
</body></html>`;
}

/** A page that frames the player's own page. */
const framingPage = (player) =>
  `<!doctype html><html><head><meta charset="utf-8"><title>framing</title></head><body><iframe id="f" src="${player}/" width="800" height="400"></iframe></body></html>`;

/** A tiny web server: `routes` maps a path to a handler(url) → {type, body}. */
async function webServer(routes) {
  const port = await freePort();
  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url, `http://127.0.0.1:${port}`);
    const route = routes[url.pathname];
    if (!route) {
      res.writeHead(404).end("not found");
      return;
    }
    try {
      const { type, body, status = 200 } = await route(url);
      res.writeHead(status, { "content-type": type }).end(body);
    } catch (e) {
      res.writeHead(500, { "content-type": "text/plain" }).end(String(e));
    }
  });
  await new Promise((r) => server.listen(port, "127.0.0.1", r));
  return { origin: `http://127.0.0.1:${port}`, close: () => server.close() };
}

/** Peak frequency of each of the element's analysers (the session's, after mute/solo). */
function peaks(page) {
  return page.evaluate(() => {
    const s = window.player.session;
    const peak = (a) => {
      const bins = new Float32Array(a.frequencyBinCount);
      a.getFloatFrequencyData(bins);
      let best = 1;
      for (let i = 1; i < bins.length; i++) if (bins[i] > bins[best]) best = i;
      return { hz: (best * a.context.sampleRate) / a.fftSize, binHz: a.context.sampleRate / a.fftSize };
    };
    return { l: peak(s.analyserL), r: peak(s.analyserR) };
  });
}

test("a dashboard on another origin embeds live listening with a listen token", { timeout: 240000 }, async (t) => {
  await inBrowser(t, "embed", async ({ dir, procs, open }) => {
    const pcap = join(dir, "call.pcap");
    const db = `sqlite://${join(dir, "p.db")}?mode=rwc`;
    const [sensorPort, webPort] = [await freePort(), await freePort()];
    const player = `http://127.0.0.1:${webPort}`;
    run(["synth", "--calls", "1", "--seconds", "40", "--codec", "pcma", "--out", pcap]);
    run(["sensors", "add", "--id", "1", "--name", "s1", "--host", "127.0.0.1", "--port", String(sensorPort), "--database", db]);
    const key = run(["keys", "add", "acme-dashboard", "--role", "listener", "--sensors", "1", "--database", db]).stdout.trim();

    // The dashboard's backend: it holds the API key and mints a token per end user and call.
    let dashOrigin = "";
    const mint = async (callref) => {
      const r = await fetch(player + "/api/v1/listen-tokens", {
        method: "POST",
        headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
        body: JSON.stringify({ sensor_id: 1, callref, user: "Ann Agent", origin: dashOrigin }),
      });
      const body = await r.json();
      if (r.status !== 201) throw new Error(`minting failed (${r.status}): ${body.error}`);
      return body;
    };
    const dashboard = await webServer({
      "/": async () => ({ type: "text/html", body: dashboardPage(player) }),
      "/frame": async () => ({ type: "text/html", body: framingPage(player) }),
      "/token": async (url) => ({ type: "application/json", body: JSON.stringify(await mint(url.searchParams.get("callref"))) }),
    });
    dashOrigin = dashboard.origin;
    // A site the player does not list: the same pages.
    const stranger = await webServer({
      "/": async () => ({ type: "text/html", body: dashboardPage(player) }),
      "/frame": async () => ({ type: "text/html", body: framingPage(player) }),
    });
    t.after(() => {
      dashboard.close();
      stranger.close();
    });

    const config = join(dir, "player.toml");
    writeFileSync(config, `listen = "127.0.0.1:${webPort}"\n[database]\nurl = "${db}"\n[embed]\nallowed_origins = ["${dashOrigin}"]\ntoken_seconds = ${TOKEN_SECONDS}\n`);
    procs.start("sensor", ["sensor", "--pcap", pcap, "--speed", "1", "--loop", "--manager", `127.0.0.1:${sensorPort}`]);
    procs.start("player", ["player", "--config", config]);
    await until("the player's web server", 20000, async () => (await fetch(player + "/")).ok);
    const callref = await until("a live call in /api/v1/calls", 30000, async () => {
      const r = await fetch(player + "/api/v1/calls", { headers: { authorization: `Bearer ${key}` } });
      const calls = (await r.json()).calls || [];
      return calls.length ? calls[0].callreference : null;
    });
    procs.log(`[test] call ${callref}`);

    const page = await open();
    await page.goto(dashboard.origin + "/");

    // ---- the token plays the tones ----
    await page.evaluate((r) => window.embedPlay(r), callref);
    await until("3 s of audio on the dashboard", 30000, async () => {
      const o = await page.evaluate(() => window.outcome());
      if (o && o.startsWith("error")) throw new Error(o);
      return o && o.startsWith("played") && Number(o.split(" ")[1]) >= 3;
    }, 300);
    const s = await peaks(page);
    assert.ok(Math.abs(s.l.hz - CALLER_HZ) <= 5 + s.l.binHz, `left (caller) peak at ${s.l.hz.toFixed(1)} Hz, want ${CALLER_HZ} ± 5`);
    assert.ok(Math.abs(s.r.hz - CALLED_HZ) <= 5 + s.r.binHz, `right (called) peak at ${s.r.hz.toFixed(1)} Hz, want ${CALLED_HZ} ± 5`);
    await page.screenshot({ path: join(SHOTS, "embed-dashboard.png"), fullPage: true });
    const audit = JSON.parse(run(["audit", "--json", "--database", db]).stdout);
    const row = audit.find((a) => a.outcome === "listened");
    assert.ok(row, JSON.stringify(audit));
    assert.equal(row.api_key, "acme-dashboard");
    assert.equal(row.end_user, "Ann Agent");
    assert.equal(row.source_ip, "127.0.0.1");

    // ---- the same token after its session ended ----
    await page.evaluate(() => window.player.stop());
    await sleep(300);
    const refused = async (what) => {
      const o = await until(what, 15000, async () => {
        const o = await page.evaluate(() => window.outcome());
        return o && (o.startsWith("error") || o.startsWith("played")) ? o : null;
      });
      assert.ok(o.startsWith("error"), `${what}: ${o}`);
      return o;
    };
    await page.evaluate(() => window.embedWithToken(window.lastToken));
    assert.match(await refused("the used token refused"), /used already/);

    // ---- a token for another call ----
    const other = await mint(callref);
    await page.evaluate((tok) => window.embedWithToken(tok, "0x1234"), other.token);
    assert.match(await refused("the token refused for another call"), /is for call/);

    // ---- an expired token ----
    const late = await mint(callref);
    await sleep((TOKEN_SECONDS + 1) * 1000);
    await page.evaluate((tok) => window.embedWithToken(tok), late.token);
    assert.match(await refused("the expired token refused"), /expired/);

    // ---- a page on an origin the player does not list ----
    // Its module script and worklet get no CORS header, so the element cannot even load there;
    // a WebSocket it opens itself with a valid token is refused by the Origin check.
    const unbound = await fetch(player + "/api/v1/listen-tokens", {
      method: "POST",
      headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
      body: JSON.stringify({ sensor_id: 1, callref, user: "Mallory" }),
    }).then((r) => r.json());
    await page.goto(stranger.origin + "/");
    const defined = await page.evaluate(() => new Promise((r) => setTimeout(() => r(!!customElements.get("earshot-player")), 1500)));
    assert.equal(defined, false, "the element's module loaded on a non-allowed origin");
    const wsText = await page.evaluate(
      ({ player, token }) =>
        new Promise((resolve) => {
          const ws = new WebSocket(player.replace("http", "ws") + "/api/listen?token=" + token);
          ws.onmessage = (e) => resolve(typeof e.data === "string" ? e.data : "binary");
          ws.onclose = () => resolve("closed without a message");
        }),
      { player, token: unbound.token },
    );
    assert.match(wsText, /may not listen with a token/);

    // ---- framing: the dashboard may frame the player, the stranger may not ----
    const framed = async (origin) => {
      await page.goto(origin + "/frame");
      await sleep(1500);
      const f = page.frames().find((fr) => fr !== page.mainFrame());
      if (!f || !f.url().startsWith(player)) return false;
      return f.locator("#login-section").count().then((n) => n > 0, () => false);
    };
    assert.equal(await framed(dashboard.origin), true, "the dashboard frames the player");
    assert.equal(await framed(stranger.origin), false, "a non-allowed origin framed the player");
  });
});

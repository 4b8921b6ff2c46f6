// End-to-end test of `earshot player` in headless Chromium.
//
//   EARSHOT_BIN=target/debug/earshot node --test tests/browser/player.test.mjs
//
// Needs: EARSHOT_BIN (a built `earshot` binary with the `player` subcommand), Chromium at
// /usr/bin/chromium (or CHROMIUM=…), `npm install` in tests/browser (playwright-core only; no
// browser download). Skips, saying why, when one of them is missing.
//
// What it does: a synthetic capture (caller sends 400 Hz, called 1 kHz; `earshot synth`),
// replayed in a loop by `earshot sensor`; `earshot player` with a listener user and the sensor
// registered; in Chromium: log in with the keyboard, see the sensor error while the sensor is
// down, see the call, click listen, check ≥ 3 s played, left = 400 Hz and right = 1 kHz (±5 Hz),
// mute left → left silent, "call ended", download the WAV, then the ChunkPlayer form (callref +
// sensor id + play) on the next call. Screenshots go to target/screenshots/.

import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, mkdirSync, rmSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import net from "node:net";

const HERE = dirname(fileURLToPath(import.meta.url));
const REPO = resolve(HERE, "../..");
const SHOTS = join(REPO, "target", "screenshots");
const BIN = process.env.EARSHOT_BIN ? resolve(process.env.EARSHOT_BIN) : "";
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const CALLER_HZ = 400;
const CALLED_HZ = 1000;
const CALL_SECONDS = 20;

function skipReason() {
  if (!BIN) return "EARSHOT_BIN is not set: build earshot and point EARSHOT_BIN at the binary";
  if (!existsSync(BIN)) return `EARSHOT_BIN=${BIN} does not exist`;
  const help = spawnSync(BIN, ["player", "--help"], { encoding: "utf8", timeout: 20000 });
  if (help.status !== 0) return `${BIN} has no \`player\` subcommand (earshot player --help failed: ${(help.stderr || "").split("\n")[0]})`;
  if (!existsSync(CHROMIUM)) return `no Chromium at ${CHROMIUM} (apt-get install -y chromium, or set CHROMIUM)`;
  return null;
}

async function loadPlaywright() {
  try {
    return await import("playwright-core");
  } catch {
    return null;
  }
}

function freePort() {
  return new Promise((res, rej) => {
    const s = net.createServer();
    s.unref();
    s.on("error", rej);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => res(port));
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Polls `fn` until it returns a truthy value; fails with `what` after `ms`. */
async function until(what, ms, fn, every = 200) {
  const deadline = Date.now() + ms;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what} (last: ${last instanceof Error ? last.message : JSON.stringify(last)})`);
    await sleep(every);
  }
}

function run(args, input) {
  const r = spawnSync(BIN, args, { input, encoding: "utf8", timeout: 60000 });
  if (r.status !== 0) throw new Error(`earshot ${args.join(" ")} failed (${r.status}): ${r.stderr}`);
  return r;
}

test("earshot player in headless Chromium", { timeout: 180000 }, async (t) => {
  const why = skipReason();
  if (why) return t.skip(why);
  const pw = await loadPlaywright();
  if (!pw) return t.skip("playwright-core is not installed: cd tests/browser && npm install");

  const dir = mkdtempSync(join(tmpdir(), "earshot-browser-"));
  mkdirSync(SHOTS, { recursive: true });
  const children = [];
  const logs = [];
  let context = null;
  const start = (name, args) => {
    const p = spawn(BIN, args, { stdio: ["ignore", "pipe", "pipe"] });
    const keep = (d) => logs.push(`[${name}] ${d.toString().trimEnd()}`);
    p.stdout.on("data", keep);
    p.stderr.on("data", keep);
    p.on("exit", (code, sig) => logs.push(`[${name}] exited ${code ?? sig}`));
    children.push(p);
    return p;
  };

  try {
    const pcap = join(dir, "call.pcap");
    const db = `sqlite://${join(dir, "p.db")}?mode=rwc`;
    const sensorPort = await freePort();
    const webPort = await freePort();
    run(["synth", "--calls", "1", "--seconds", String(CALL_SECONDS), "--codec", "pcma", "--out", pcap]);
    run(["users", "add", "tester", "--role", "listener", "--password-stdin", "--database", db], "s3cret-pass\n");
    run(["sensors", "add", "--id", "1", "--name", "s1", "--host", "127.0.0.1", "--port", String(sensorPort), "--database", db]);

    start("player", ["player", "--listen", `127.0.0.1:${webPort}`, "--database", db, "--manager", `127.0.0.1:${sensorPort}`]);
    const base = `http://127.0.0.1:${webPort}`;
    await until("the player's web server", 20000, async () => (await fetch(base + "/")).ok);

    const profile = join(dir, "chromium-profile");
    context = await pw.chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      acceptDownloads: true,
      viewport: { width: 1280, height: 900 },
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--autoplay-policy=no-user-gesture-required",
        // Pages fulfilled by the dev aid below have no address space: without this Chromium's
        // Local Network Access checks block their WebSocket to 127.0.0.1.
        ...(process.env.EARSHOT_WEB_FROM_DISK ? ["--disable-features=LocalNetworkAccessChecks"] : []),
      ],
      timeout: 30000,
    });
    const page = context.pages()[0] || (await context.newPage());
    page.setDefaultTimeout(15000);
    page.on("console", (m) => logs.push(`[console.${m.type()}] ${m.text()}`));
    page.on("pageerror", (e) => logs.push(`[pageerror] ${e.message}`));
    if (process.env.EARSHOT_WEB_FROM_DISK) {
      // Development aid: serve crates/earshot-player/web/ from disk instead of the copies
      // embedded in the binary, so page changes need no rebuild.
      const web = join(REPO, "crates", "earshot-player", "web");
      const files = { "/": "index.html", "/api/chunkplayer/index.html": "index.html", "/app.js": "app.js", "/earshot-player.js": "earshot-player.js", "/player-worklet.js": "player-worklet.js", "/style.css": "style.css" };
      const types = { html: "text/html", js: "text/javascript", css: "text/css" };
      await context.route(/^http:\/\/127\.0\.0\.1:\d+\/[^?]*/, (route) => {
        const path = new URL(route.request().url()).pathname;
        const f = files[path];
        if (!f) return route.continue();
        route.fulfill({ body: readFileSync(join(web, f)), contentType: `${types[f.split(".").pop()]}; charset=utf-8` });
      });
    }

    // ---- log in, keyboard only ----
    await page.goto(base + "/");
    await page.locator("#login-section").waitFor({ state: "visible" });
    await page.locator("#login input[name=name]").focus();
    await page.keyboard.type("tester");
    await page.keyboard.press("Tab");
    await page.keyboard.type("s3cret-pass");
    await page.keyboard.press("Enter");
    await page.locator("#app").waitFor({ state: "visible" });

    // ---- the sensor is not running yet: its error is shown ----
    await page.locator("#sensor-errors li").first().waitFor({ state: "visible" });
    assert.match(await page.locator("#sensor-errors").innerText(), /sensor s1 \(1\): .*(reach|connect|refused)/i);
    await page.screenshot({ path: join(SHOTS, "01-sensor-down.png"), fullPage: true });

    // ---- the call appears once the sensor runs ----
    start("sensor", ["sensor", "--pcap", pcap, "--speed", "1", "--loop", "--manager", `127.0.0.1:${sensorPort}`]);
    // `--manager` also makes the same sensor the player's default one (id 0): pick sensor 1's row.
    const row = page.locator('#calls tbody tr[data-sensor="1"]').first();
    const listenButton = row.locator("button.listen");
    await listenButton.waitFor({ state: "visible", timeout: 20000 });
    await until("the sensor error to clear", 10000, async () => (await page.locator("#sensor-errors li").count()) === 0);
    const firstRef = await row.getAttribute("data-callref");
    // The filter hides what does not match and shows what does.
    await page.locator("#filter").fill("no-such-number");
    await until("the filter to hide the call", 5000, () => listenButton.isHidden());
    await page.locator("#filter").fill("");
    await listenButton.waitFor({ state: "visible" });
    await page.waitForTimeout(1500); // let the duration tick, for the screenshot
    await listenButton.click();

    const played = () => page.evaluate(() => earshotTest.sampleRate ? earshotTest.samplesPlayed / earshotTest.sampleRate : 0);
    await until("3 s of audio played", 20000, async () => (await played()) >= 3);

    const spectrum = () =>
      page.evaluate(() => {
        const peak = (a) => {
          const bins = new Float32Array(a.frequencyBinCount);
          a.getFloatFrequencyData(bins);
          let best = 0;
          for (let i = 1; i < bins.length; i++) if (bins[i] > bins[best]) best = i;
          const rate = a.context.sampleRate;
          const time = new Float32Array(a.fftSize);
          a.getFloatTimeDomainData(time);
          let max = 0;
          for (const v of time) max = Math.max(max, Math.abs(v));
          return { hz: (best * rate) / a.fftSize, binHz: rate / a.fftSize, db: bins[best], max };
        };
        return { l: peak(earshotTest.analyserL), r: peak(earshotTest.analyserR), state: earshotTest.state, stats: earshotTest.stats };
      });
    let s = await spectrum();
    logs.push(`[test] playing: ${JSON.stringify(s)}`);
    assert.ok(Math.abs(s.l.hz - CALLER_HZ) <= 5 + s.l.binHz, `left (caller) peak at ${s.l.hz.toFixed(1)} Hz, want ${CALLER_HZ} ± 5`);
    assert.ok(Math.abs(s.r.hz - CALLED_HZ) <= 5 + s.r.binHz, `right (called) peak at ${s.r.hz.toFixed(1)} Hz, want ${CALLED_HZ} ± 5`);
    assert.ok(s.l.max > 0.05 && s.r.max > 0.05, "both parties audible before muting");
    assert.equal(s.state, "playing");
    await page.waitForTimeout(1200); // a quality frame or two for the screenshot
    await page.screenshot({ path: join(SHOTS, "02-playing.png"), fullPage: true });

    // ---- mute the caller: left goes silent, right keeps playing ----
    const muteCaller = page.locator("#player .party[data-party=caller] button.mute");
    await muteCaller.click();
    assert.equal(await muteCaller.getAttribute("aria-pressed"), "true");
    await page.waitForTimeout(1000); // the analyser holds 0.68 s of samples
    s = await spectrum();
    logs.push(`[test] muted: ${JSON.stringify(s)}`);
    assert.ok(s.l.max < 1e-4, `left should be silent after mute, max |sample| = ${s.l.max}`);
    assert.ok(s.r.max > 0.05, `right should still play after muting left, max |sample| = ${s.r.max}`);
    assert.ok(Math.abs(s.r.hz - CALLED_HZ) <= 5 + s.r.binHz);
    await page.screenshot({ path: join(SHOTS, "03-caller-muted.png"), fullPage: true });

    // ---- the call ends: "call ended", no reconnection ----
    await until("the call to end", (CALL_SECONDS + 15) * 1000, async () => (await page.evaluate(() => earshotTest.state)) === "ended", 300);
    await page.locator("#player .state", { hasText: "call ended" }).waitFor({ state: "visible" });
    await page.screenshot({ path: join(SHOTS, "04-call-ended.png"), fullPage: true });
    await page.waitForTimeout(1500);
    assert.equal(await page.evaluate(() => earshotTest.state), "ended", "no reconnection after the end of the call");

    // ---- what was heard, as a WAV ----
    const [download] = await Promise.all([page.waitForEvent("download"), page.locator("#player button.download").click()]);
    const wavPath = join(dir, "heard.wav");
    await download.saveAs(wavPath);
    const wav = readFileSync(wavPath);
    assert.equal(wav.subarray(0, 4).toString(), "RIFF");
    assert.equal(wav.readUInt16LE(22), 2, "stereo WAV");
    assert.equal(wav.readUInt32LE(24), 48000, "48 kHz WAV");
    assert.ok(wav.length > 44 + 3 * 48000 * 4, `WAV holds at least 3 s (${wav.length} bytes)`);

    // ---- the ChunkPlayer form, on the next pass of the looped capture ----
    await muteCaller.click(); // unmute
    const next = await until("the next call of the looped capture", 30000, () =>
      page.evaluate((first) => {
        const c = earshotTest.calls.find((c) => c.sensor_id === 1 && String(c.callreference).toLowerCase() !== String(first).toLowerCase());
        return c ? { ref: c.callreference, sensor: c.sensor_id } : null;
      }, firstRef),
    );
    await page.locator("#callref").fill(next.ref);
    await page.locator("#sensor_id").fill(String(next.sensor));
    await page.locator("#play").click();
    await until("2 s of audio from the ChunkPlayer form", 20000, async () => (await page.evaluate(() => earshotTest.session && earshotTest.session.callref)) === next.ref && (await played()) >= 2);
    s = await spectrum();
    logs.push(`[test] chunkplayer: ${JSON.stringify(s)}`);
    assert.ok(Math.abs(s.l.hz - CALLER_HZ) <= 5 + s.l.binHz, `ChunkPlayer: left peak at ${s.l.hz.toFixed(1)} Hz`);
    assert.ok(Math.abs(s.r.hz - CALLED_HZ) <= 5 + s.r.binHz, `ChunkPlayer: right peak at ${s.r.hz.toFixed(1)} Hz`);
    const lat = s.stats.latencyMs;
    assert.ok(typeof lat === "number" && lat > 0 && lat < 5000, `latency estimate is plausible: ${lat}`);
    await page.screenshot({ path: join(SHOTS, "05-chunkplayer.png"), fullPage: true });

    // ---- a phone-sized screen ----
    await page.setViewportSize({ width: 390, height: 844 });
    await page.waitForTimeout(300);
    await page.screenshot({ path: join(SHOTS, "06-phone.png"), fullPage: true });

    await page.locator("#stop").click();
    assert.equal(await page.evaluate(() => earshotTest.state), "stopped");
  } catch (e) {
    console.error(logs.slice(-80).join("\n"));
    throw e;
  } finally {
    writeFileSync(join(SHOTS, "log.txt"), logs.join("\n") + "\n");
    if (context) await context.close().catch(() => {});
    for (const p of children) if (p.exitCode === null) p.kill("SIGTERM");
    await sleep(300);
    for (const p of children) if (p.exitCode === null) p.kill("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  }
});

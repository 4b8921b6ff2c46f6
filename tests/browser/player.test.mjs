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
import { mkdtempSync, mkdirSync, rmSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  REPO, SHOTS, missingPrerequisite, skipOrFail, loadPlaywright, freePort, until, run, Processes,
  launchChromium, logIn, spectrum, secondsPlayed,
} from "./lib.mjs";

const CALLER_HZ = 400;
const CALLED_HZ = 1000;
const CALL_SECONDS = 20;
const TOKEN = "good-token";

test("earshot player in headless Chromium", { timeout: 180000 }, async (t) => {
  const why = missingPrerequisite();
  if (why) return skipOrFail(t, why);
  const pw = await loadPlaywright();
  if (!pw) return skipOrFail(t, "playwright-core is not installed: cd tests/browser && npm install");

  const dir = mkdtempSync(join(tmpdir(), "earshot-browser-"));
  mkdirSync(SHOTS, { recursive: true });
  const procs = new Processes();
  const logs = procs.logs;
  let context = null;
  const start = (name, args) => procs.start(name, args);

  try {
    const pcap = join(dir, "call.pcap");
    const db = `sqlite://${join(dir, "p.db")}?mode=rwc`;
    const sensorPort = await freePort();
    const webPort = await freePort();
    run(["synth", "--calls", "1", "--seconds", String(CALL_SECONDS), "--codec", "pcma", "--out", pcap]);
    run(["users", "add", "tester", "--role", "listener", "--password-stdin", "--database", db], "s3cret-pass\n");
    run(["users", "add", "boss", "--role", "admin", "--password-stdin", "--database", db], "b0ss-pass\n");
    run(["sensors", "add", "--id", "1", "--name", "s1", "--host", "127.0.0.1", "--port", String(sensorPort), "--token", TOKEN, "--database", db]);
    // The same sensor registered with a wrong token: its error must reach the page.
    run(["sensors", "add", "--id", "2", "--name", "badtoken", "--host", "127.0.0.1", "--port", String(sensorPort), "--token", "wrong-token", "--database", db]);

    start("player", ["player", "--listen", `127.0.0.1:${webPort}`, "--database", db]);
    const base = `http://127.0.0.1:${webPort}`;
    await until("the player's web server", 20000, async () => (await fetch(base + "/")).ok);

    // Pages fulfilled by the dev aid below have no address space: without the flag Chromium's
    // Local Network Access checks block their WebSocket to 127.0.0.1.
    context = await launchChromium(pw, dir, process.env.EARSHOT_WEB_FROM_DISK ? ["--disable-features=LocalNetworkAccessChecks"] : []);
    const page = context.pages()[0] || (await context.newPage());
    page.setDefaultTimeout(15000);
    page.on("console", (m) => logs.push(`[console.${m.type()}] ${m.text()}`));
    page.on("pageerror", (e) => logs.push(`[pageerror] ${e.message}`));
    // Files the page asks for and the player does not have (the favicon was one): a 404 in
    // every supervisor's console. API answers (a call not found) are not files.
    const missingFiles = [];
    page.on("response", (r) => {
      if (r.status() === 404 && !new URL(r.url()).pathname.startsWith("/api/")) missingFiles.push(r.url());
    });
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
    await logIn(page, base, "tester", "s3cret-pass");

    // ---- the sensor is not running yet: its error is shown ----
    // By the sensor's name, once the page has it (the first window may come before the names).
    await page.locator("#sensor-errors li").first().waitFor({ state: "visible" });
    const named = /sensor s1 \(1\): .*(reach|connect|refused)/i;
    await until("the down sensor's error under its name", 15000, async () => named.test(await page.locator("#sensor-errors").innerText()));
    await page.screenshot({ path: join(SHOTS, "01-sensor-down.png"), fullPage: true });

    // ---- the call appears once the sensor runs ----
    start("sensor", ["sensor", "--pcap", pcap, "--speed", "1", "--loop", "--manager", `127.0.0.1:${sensorPort}`, "--token", TOKEN]);
    const row = page.locator('#calls tbody tr[data-sensor="1"]').first();
    const listenButton = row.locator("button.listen");
    await listenButton.waitFor({ state: "visible", timeout: 20000 });
    // Sensor 2 has the wrong token: the page says so, and only sensor 2's error remains.
    await until("only the wrong-token sensor's error", 10000, async () => (await page.locator("#sensor-errors li").count()) === 1);
    assert.match(await page.locator("#sensor-errors").innerText(), /badtoken \(2\): .*refused the player's token/i);
    const firstRef = await row.getAttribute("data-callref");
    // The filter hides what does not match and shows what does.
    await page.locator("#filter").fill("no-such-number");
    await until("the filter to hide the call", 5000, () => listenButton.isHidden());
    await page.locator("#filter").fill("");
    await listenButton.waitFor({ state: "visible" });
    await page.waitForTimeout(1500); // let the duration tick, for the screenshot
    await listenButton.click();

    const played = () => secondsPlayed(page);
    await until("3 s of audio played", 20000, async () => (await played()) >= 3);
    assert.deepEqual(missingFiles, [], "every file the page asked for exists");
    // Headless Chromium asks for no icon by itself: check the page names one that exists.
    const icon = await page.evaluate(() => document.querySelector('link[rel="icon"]')?.href);
    assert.ok(icon, "the page names its icon");
    assert.equal((await fetch(icon)).status, 200, `${icon} exists`);

    let s = await spectrum(page);
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
    s = await spectrum(page);
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
    s = await spectrum(page);
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

    // ---- a sensor that refuses the player's token: a clear error, not a hang ----
    await page.setViewportSize({ width: 1280, height: 900 });
    await page.locator("#sensor_id").fill("2");
    await page.locator("#play").click();
    await until("the wrong-token error in the player panel", 10000, async () => (await page.evaluate(() => earshotTest.state)) === "error");
    assert.match(await page.locator("#player .msg").innerText(), /refused the player's token/i);
    await page.screenshot({ path: join(SHOTS, "07-wrong-token.png"), fullPage: true });

    // ---- the audit log has both listening sessions, with who, what and when ----
    const audit = JSON.parse(run(["audit", "--json", "--database", db]).stdout);
    for (const ref of [firstRef, next.ref]) {
      // The listened session, not the failed attempt on sensor 2 (the wrong token) below.
      const row = audit.find(
        (r) => r.callreference.toLowerCase() === String(ref).toLowerCase() && r.outcome === "listened",
      );
      assert.ok(row, `audit row for ${ref}: ${JSON.stringify(audit)}`);
      assert.equal(row.user_name, "tester");
      assert.equal(row.id_sensor, 1);
      assert.equal(row.source_ip, "127.0.0.1");
      assert.ok(row.callid && row.caller && row.called, `audit row names the call: ${JSON.stringify(row)}`);
      assert.ok(row.stopped >= row.started, `audit row has a stop time: ${JSON.stringify(row)}`);
    }
    // The attempt the sensor refused is in the audit log too, with why.
    const failed = audit.find((r) => r.id_sensor === 2 && r.outcome === "failed");
    assert.ok(failed && /token/i.test(failed.reason || ""), `a failed row for sensor 2: ${JSON.stringify(audit)}`);
    // A listener sees no administration; an admin sees the sensors and the audit log.
    assert.equal(await page.locator("#admin-section").isVisible(), false, "no admin section for a listener");
    await page.locator("#logout").click();
    await logIn(page, base, "boss", "b0ss-pass");
    await page.locator("#admin-section").waitFor({ state: "visible" });
    await until("the audit log on the admin page", 10000, async () => (await page.locator(`#audit tbody tr[data-callref="${firstRef}"]`).count()) === 1);
    assert.match(await page.locator(`#audit tbody tr[data-callref="${firstRef}"]`).innerText(), /tester\s+127\.0\.0\.1\s+1\s/);
    await until("both sensors in the admin table", 10000, async () => (await page.locator("#sensors tbody tr").count()) === 2);
    page.once("dialog", (d) => d.accept());
    await page.locator('#sensors tbody tr[data-sensor="2"] button.remove').click();
    await until("sensor 2 to be removed", 10000, async () => (await page.locator("#sensors tbody tr").count()) === 1);
    await page.screenshot({ path: join(SHOTS, "08-admin.png"), fullPage: true });
  } catch (e) {
    console.error(logs.slice(-80).join("\n"));
    throw e;
  } finally {
    writeFileSync(join(SHOTS, "log.txt"), logs.join("\n") + "\n");
    if (context) await context.close().catch(() => {});
    await procs.stopAll();
    rmSync(dir, { recursive: true, force: true });
  }
});

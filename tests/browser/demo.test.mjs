// `earshot demo` in headless Chromium: the demo's own login, its live calls, and real speech on
// both channels of one of them.
//
//   EARSHOT_BIN=target/debug/earshot node --test tests/browser/demo.test.mjs
//
// Needs what player.test.mjs needs (EARSHOT_BIN, Chromium at /usr/bin/chromium or CHROMIUM=…,
// `npm install` in tests/browser); skips, saying why, when one of them is missing.
//
// What it does: runs `earshot demo` on free ports, reads the URL and the login it prints, logs
// in, waits for ≥ 3 calls in ≥ 3 codecs on the page, listens to the G.722 call for 10 s (more
// than one turn of its conversation) and samples the page's analysers every 250 ms. Each
// channel must carry speech: loud enough, most of its power in the 300–3400 Hz band, spread
// over the band rather than one tone, and varying over time. The channels must differ: the
// parties take turns, so there are moments when the left is loud and the right quiet, and the
// reverse. Screenshots go to target/screenshots/demo-*.png.

import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BIN, SHOTS, missingPrerequisite, skipOrFail, loadPlaywright, sleep, until, launchChromium } from "./lib.mjs";

const LISTEN_MS = 10000;

function skipReason() {
  const why = missingPrerequisite();
  if (why) return why;
  const help = spawnSync(BIN, ["demo", "--help"], { encoding: "utf8", timeout: 20000 });
  if (help.status !== 0) return `${BIN} has no \`demo\` subcommand (earshot demo --help failed: ${(help.stderr || "").split("\n")[0]})`;
  return null;
}

/** The demo's one line: `earshot demo: open URL  user: U  password: P  manager: ADDR`. */
function parseBanner(text) {
  const m = /open (http:\/\/\S+)\s+user: (\S+)\s+password: (\S+)\s+manager: (\S+)/.exec(text);
  return m ? { url: m[1], user: m[2], password: m[3], manager: m[4] } : null;
}

test("earshot demo: login, live calls, speech on both channels", { timeout: 120000 }, async (t) => {
  const why = skipReason();
  if (why) return skipOrFail(t, why);
  const pw = await loadPlaywright();
  if (!pw) return skipOrFail(t, "playwright-core is not installed: cd tests/browser && npm install");

  const dir = mkdtempSync(join(tmpdir(), "earshot-demo-browser-"));
  mkdirSync(SHOTS, { recursive: true });
  const logs = [];
  let context = null;
  let out = "";
  const demo = spawn(BIN, ["demo", "--listen", "127.0.0.1:0", "--manager", "127.0.0.1:0"], { stdio: ["ignore", "pipe", "pipe"] });
  demo.stdout.on("data", (d) => {
    out += d.toString();
    logs.push(`[demo] ${d.toString().trimEnd()}`);
  });
  demo.stderr.on("data", (d) => logs.push(`[demo:err] ${d.toString().trimEnd()}`));
  demo.on("exit", (code, sig) => logs.push(`[demo] exited ${code ?? sig}`));

  try {
    const banner = await until("the demo's URL and login on stdout", 15000, () => parseBanner(out));
    logs.push(`[test] banner: ${JSON.stringify(banner)}`);

    context = await launchChromium(pw, dir);
    const page = context.pages()[0] || (await context.newPage());
    page.setDefaultTimeout(15000);
    page.on("console", (m) => logs.push(`[console.${m.type()}] ${m.text()}`));
    page.on("pageerror", (e) => logs.push(`[pageerror] ${e.message}`));

    // ---- log in with what the demo printed ----
    await page.goto(banner.url);
    await page.locator("#login-section").waitFor({ state: "visible" });
    await page.locator("#login input[name=name]").fill(banner.user);
    await page.locator("#login input[name=password]").fill(banner.password);
    await page.locator("#login input[name=password]").press("Enter");
    await page.locator("#app").waitFor({ state: "visible" });

    // ---- the calls: at least three, in at least three codecs ----
    const seen = await until("three demo calls in three codecs on the page", 10000, () =>
      page.evaluate(() => {
        const rows = [...document.querySelectorAll("#calls tbody tr[data-callref]")].filter((r) => r.offsetParent !== null);
        const codecs = new Set(earshotTest.calls.flatMap((c) => (c.codecs || []).map((x) => x.toUpperCase())));
        return rows.length >= 3 && codecs.size >= 3 ? { rows: rows.length, codecs: [...codecs] } : null;
      }),
    );
    logs.push(`[test] calls: ${JSON.stringify(seen)}`);
    await page.screenshot({ path: join(SHOTS, "demo-01-calls.png"), fullPage: true });

    // ---- listen to the G.722 call ----
    const row = page.locator("#calls tbody tr[data-callref]", { hasText: "G722" }).first();
    await row.locator("button.listen").click();
    await until("audio playing", 15000, () => page.evaluate(() => earshotTest.state === "playing" && earshotTest.samplesPlayed > earshotTest.sampleRate));

    const measure = () =>
      page.evaluate(() => {
        const one = (a) => {
          const bins = new Float32Array(a.frequencyBinCount);
          a.getFloatFrequencyData(bins);
          const binHz = a.context.sampleRate / a.fftSize;
          const lo = Math.round(300 / binHz);
          const hi = Math.round(3400 / binHz);
          let all = 0;
          let band = 0;
          let bandMax = -Infinity;
          for (let i = 1; i < bins.length; i++) {
            const p = Math.pow(10, bins[i] / 10);
            all += p;
            if (i >= lo && i <= hi) {
              band += p;
              bandMax = Math.max(bandMax, bins[i]);
            }
          }
          // How much of the band is within 30 dB of its loudest bin: a tone fills a few
          // bins, speech (harmonics under moving formants) a good part of it.
          let near = 0;
          for (let i = lo; i <= hi; i++) if (bins[i] > bandMax - 30) near++;
          const time = new Float32Array(a.fftSize);
          a.getFloatTimeDomainData(time);
          let sq = 0;
          for (const v of time) sq += v * v;
          return { rms: Math.sqrt(sq / time.length), bandShare: all > 0 ? band / all : 0, spread: near / (hi - lo + 1) };
        };
        return { l: one(earshotTest.analyserL), r: one(earshotTest.analyserR), state: earshotTest.state };
      });

    const samples = [];
    const playedBefore = await page.evaluate(() => earshotTest.samplesPlayed);
    const end = Date.now() + LISTEN_MS;
    while (Date.now() < end) {
      samples.push(await measure());
      await sleep(250);
    }
    await page.screenshot({ path: join(SHOTS, "demo-02-listening.png"), fullPage: true });
    // The first screenful, as a newcomer sees it (the README's picture is made from this one).
    await page.screenshot({ path: join(SHOTS, "demo-03-first-screen.png") });
    logs.push(`[test] samples: ${JSON.stringify(samples.map((s) => [s.l.rms.toFixed(4), s.l.bandShare.toFixed(2), s.l.spread.toFixed(3), s.r.rms.toFixed(4), s.r.bandShare.toFixed(2), s.r.spread.toFixed(3)]))}`);
    // Judged by what was played, not by wall-clock smoothness: on a loaded machine the worklet
    // may underrun and buffer for a moment, which is not a failure; leaving the call is.
    const states = [...new Set(samples.map((s) => s.state))];
    assert.ok(states.every((st) => st === "playing" || st === "buffering"), `stayed on the call (states: ${states})`);
    const played = (await page.evaluate(() => earshotTest.samplesPlayed)) - playedBefore;
    const rate = await page.evaluate(() => earshotTest.sampleRate);
    assert.ok(played >= (rate * LISTEN_MS) / 2000, `played ≥ half of the ${LISTEN_MS / 1000} s listened (${(played / rate).toFixed(1)} s)`);

    for (const side of ["l", "r"]) {
      const name = side === "l" ? "left (caller)" : "right (called)";
      const loud = samples.map((s) => s[side]).filter((m) => m.rms > 0.02);
      assert.ok(loud.length >= 4, `${name}: speech heard in ≥ 1 s of the ${LISTEN_MS / 1000} s (loud samples: ${loud.length})`);
      const speechy = loud.filter((m) => m.bandShare > 0.6 && m.spread > 0.03);
      assert.ok(speechy.length >= loud.length / 2, `${name}: most loud moments are speech-band, broadband sound (${speechy.length} of ${loud.length})`);
      const rms = samples.map((s) => s[side].rms);
      assert.ok(Math.max(...rms) > 4 * Math.min(...rms) + 1e-4, `${name}: the level varies, as speech does (${Math.min(...rms)}..${Math.max(...rms)})`);
    }
    const leftOnly = samples.filter((s) => s.l.rms > 0.02 && s.l.rms > 4 * s.r.rms).length;
    const rightOnly = samples.filter((s) => s.r.rms > 0.02 && s.r.rms > 4 * s.l.rms).length;
    assert.ok(leftOnly >= 2 && rightOnly >= 2, `the channels differ: left alone in ${leftOnly} samples, right alone in ${rightOnly}`);
  } catch (e) {
    console.error(logs.slice(-60).join("\n"));
    throw e;
  } finally {
    writeFileSync(join(SHOTS, "demo-log.txt"), logs.join("\n") + "\n");
    if (context) await context.close().catch(() => {});
    if (demo.exitCode === null) demo.kill("SIGTERM");
    await sleep(300);
    if (demo.exitCode === null) demo.kill("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  }
});

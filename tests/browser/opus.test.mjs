// Listening in Opus: the page asks the sensor for 16 kHz stereo Opus (encoded once per call and
// format, relayed by the player unchanged) and decodes it with WebCodecs' AudioDecoder; where
// the browser has no WebCodecs it listens in PCM instead. Both play the tones test (400 Hz on
// the left from the caller, 1 kHz on the right from the callee), and the bytes the page receives
// per second are measured: at most 8 KB/s in Opus.
//
//   EARSHOT_BIN=target/debug/earshot node --test tests/browser/opus.test.mjs
//
// The call: `earshot synth --calls 1 --seconds 40`, replayed in a loop by the sensor.
// Screenshot: target/screenshots/opus-playing.png (docs/images/ has a copy).

import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  SHOTS, freePort, until, run, logIn, inBrowser, secondsPlayed, spectrum, sleep,
} from "./lib.mjs";

const CALLER_HZ = 400;
const CALLED_HZ = 1000;
const OPUS_MAX_BYTES_PER_SECOND = 8000;

/** Bytes the page received per second over `ms` of listening, measured in the page. */
async function bytesPerSecond(page, ms) {
  const read = () => page.evaluate(() => ({ bytes: earshotTest.session.bytesReceived, t: performance.now() }));
  const a = await read();
  await sleep(ms);
  const b = await read();
  return ((b.bytes - a.bytes) * 1000) / (b.t - a.t);
}

/** Listens to the first live call from the list and checks both tones; returns what it saw. */
async function listenToTones(page, logs, label) {
  const listen = page.locator('#calls tbody tr[data-sensor="1"]:not(.over) button.listen').first();
  await listen.waitFor({ state: "visible", timeout: 20000 });
  await listen.click();
  await until(`${label}: 3 s of audio played`, 20000, async () => (await secondsPlayed(page)) >= 3, 300);
  const perSecond = await bytesPerSecond(page, 5000);
  const s = await spectrum(page);
  const codec = await page.evaluate(() => (earshotTest.session.opus ? "opus" : "pcm"));
  logs.push(`[test] ${label}: ${codec}, ${perSecond.toFixed(0)} B/s, ${JSON.stringify(s)}`);
  console.log(`# ${label}: listening in ${codec} received ${(perSecond / 1000).toFixed(2)} KB/s; latency ${s.stats.latencyMs?.toFixed(0)} ms`);
  assert.ok(Math.abs(s.l.hz - CALLER_HZ) <= 5 + s.l.binHz, `${label}: left (caller) peak at ${s.l.hz.toFixed(1)} Hz, want ${CALLER_HZ} ± 5`);
  assert.ok(Math.abs(s.r.hz - CALLED_HZ) <= 5 + s.r.binHz, `${label}: right (called) peak at ${s.r.hz.toFixed(1)} Hz, want ${CALLED_HZ} ± 5`);
  assert.ok(s.l.max > 0.05 && s.r.max > 0.05, `${label}: both parties audible (${s.l.max}, ${s.r.max})`);
  assert.equal(s.stats.droppedFrames, 0, `${label}: no frame lost`);
  return { codec, perSecond, stats: s.stats };
}

test("listening in Opus through WebCodecs, and in PCM without it", { timeout: 180000 }, async (t) => {
  await inBrowser(t, "opus", async ({ dir, procs, open }) => {
    const pcap = join(dir, "call.pcap");
    run(["synth", "--calls", "1", "--seconds", "40", "--codec", "pcma", "--out", pcap]);
    const db = `sqlite://${join(dir, "p.db")}?mode=rwc`;
    const [sensorPort, webPort] = [await freePort(), await freePort()];
    run(["users", "add", "tester", "--role", "listener", "--password-stdin", "--database", db], "s3cret-pass\n");
    run(["sensors", "add", "--id", "1", "--name", "s1", "--host", "127.0.0.1", "--port", String(sensorPort), "--database", db]);
    procs.start("sensor", ["sensor", "--pcap", pcap, "--speed", "1", "--loop", "--manager", `127.0.0.1:${sensorPort}`]);
    procs.start("player", ["player", "--listen", `127.0.0.1:${webPort}`, "--database", db]);
    const base = `http://127.0.0.1:${webPort}`;
    await until("the player's web server", 20000, async () => (await fetch(base + "/")).ok);

    const page = await open();
    await logIn(page, base, "tester", "s3cret-pass");

    // ---- WebCodecs present: Opus ----
    const opus = await listenToTones(page, procs.logs, "Opus");
    assert.equal(opus.codec, "opus", "Chromium has WebCodecs: the page listens in Opus");
    assert.equal(opus.stats.codec, "opus");
    assert.equal(opus.stats.rate, 16000, "16 kHz, the band telephone audio has");
    assert.ok(opus.perSecond > 1000, `audio arrives (${opus.perSecond.toFixed(0)} B/s)`);
    assert.ok(opus.perSecond <= OPUS_MAX_BYTES_PER_SECOND, `Opus at 16 kHz stereo took ${opus.perSecond.toFixed(0)} B/s, want ≤ ${OPUS_MAX_BYTES_PER_SECOND}`);
    await until("the stream figure in the panel", 10000, async () => /Opus 16 kHz · \d/.test(await page.locator("#player .stream").innerText()));
    await page.screenshot({ path: join(SHOTS, "opus-playing.png"), fullPage: true });
    await page.locator("#player button.stop").click();

    // ---- no WebCodecs (older browsers): PCM, same tones ----
    await page.addInitScript(() => {
      delete window.AudioDecoder;
      delete window.EncodedAudioChunk;
    });
    await page.reload();
    await page.locator("#app").waitFor({ state: "visible" });
    assert.equal(await page.evaluate(() => typeof AudioDecoder), "undefined");
    const pcm = await listenToTones(page, procs.logs, "PCM fallback");
    assert.equal(pcm.codec, "pcm", "without WebCodecs the page listens in PCM");
    assert.ok(pcm.perSecond > 10 * opus.perSecond, `PCM (${pcm.perSecond.toFixed(0)} B/s) is what Opus saves (${opus.perSecond.toFixed(0)} B/s)`);
  });
});

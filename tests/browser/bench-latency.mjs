// Benchmark: latency from the sensor's capture of a packet to the AudioWorklet playing it, in
// headless Chromium, over loopback (BENCHMARKS.md, "Player latency").
//
//   cargo build --release -p earshot
//   cd tests/browser && npm install
//   EARSHOT_BIN=../../target/release/earshot node bench-latency.mjs [--seconds 30] [--warmup 5] [--jitter MS] [--codec opus|pcm]
//
// A synthetic call (`earshot synth`, 20 ms G.711 packets) is replayed at wall-clock speed by
// `earshot sensor`, so each packet's capture time is the moment the sensor took it in. The page
// listens through `earshot player`; its worklet reports, ten times a second, how long ago the
// sample it is playing was captured (the stream frames carry capture timestamps), and the page
// adds the AudioContext's output and base latency: capture → speaker. The same clock serves
// both ends here, so no clock offset enters the figure. Prints p50/p90/p99/max over the
// measured window, the jitter buffer's depth and target, underruns, and the bytes received per
// second. `--codec opus` (the default, as the page does where WebCodecs exists): 16 kHz stereo
// Opus decoded by WebCodecs; `--codec pcm`: the page without WebCodecs, 48 kHz stereo PCM.

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  missingPrerequisite, loadPlaywright, freePort, until, run, Processes, launchChromium, logIn,
  secondsPlayed, percentile, sleep,
} from "./lib.mjs";

function option(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && process.argv[i + 1] !== undefined ? Number(process.argv[i + 1]) : fallback;
}

const SECONDS = option("seconds", 30);
const WARMUP = option("warmup", 5);
const JITTER = option("jitter", 0);
const CODEC = process.argv.includes("pcm") ? "pcm" : "opus";

async function main() {
  const why = missingPrerequisite();
  if (why) throw new Error(why);
  const pw = await loadPlaywright();
  if (!pw) throw new Error("playwright-core is not installed: cd tests/browser && npm install");

  const dir = mkdtempSync(join(tmpdir(), "earshot-latency-"));
  const procs = new Processes();
  let context = null;
  try {
    const pcap = join(dir, "call.pcap");
    const db = `sqlite://${join(dir, "p.db")}?mode=rwc`;
    const sensorPort = await freePort();
    const webPort = await freePort();
    const callSeconds = WARMUP + SECONDS + 10;
    run(["synth", "--calls", "1", "--seconds", String(callSeconds), "--codec", "pcma", "--jitter", String(JITTER), "--out", pcap]);
    run(["users", "add", "bench", "--role", "listener", "--password-stdin", "--database", db], "bench-pass\n");
    procs.start("sensor", ["sensor", "--pcap", pcap, "--speed", "1", "--manager", `127.0.0.1:${sensorPort}`]);
    procs.start("player", ["player", "--listen", `127.0.0.1:${webPort}`, "--database", db, "--manager", `127.0.0.1:${sensorPort}`]);
    const base = `http://127.0.0.1:${webPort}`;
    await until("the player's web server", 20000, async () => (await fetch(base + "/")).ok);

    context = await launchChromium(pw, dir);
    const page = context.pages()[0] || (await context.newPage());
    if (CODEC === "pcm") await page.addInitScript(() => { delete window.AudioDecoder; });
    await logIn(page, base, "bench", "bench-pass");
    const listen = page.locator("#calls tbody tr button.listen").first();
    await listen.waitFor({ state: "visible", timeout: 20000 });
    await listen.click();
    await until("audio to play", 20000, async () => (await secondsPlayed(page)) > 0.2);
    await sleep(WARMUP * 1000);

    const samples = [];
    const depths = [];
    const bytesAt = () => page.evaluate(() => ({ bytes: earshotTest.session.bytesReceived, t: performance.now() }));
    const before = await bytesAt();
    const deadline = Date.now() + SECONDS * 1000;
    let last = null;
    while (Date.now() < deadline) {
      last = await page.evaluate(() => earshotTest.stats);
      if (last && typeof last.latencyMs === "number") {
        samples.push(last.latencyMs);
        depths.push(last.depthMs);
      }
      await sleep(100);
    }
    const after = await bytesAt();
    if (samples.length < SECONDS * 5) throw new Error(`only ${samples.length} latency readings in ${SECONDS} s`);
    const sorted = [...samples].sort((a, b) => a - b);
    const dsorted = [...depths].sort((a, b) => a - b);
    const f = (x) => x.toFixed(1);
    console.log(`latency capture → speaker over ${SECONDS} s (${samples.length} readings, after ${WARMUP} s warm-up, synth --jitter ${JITTER}, ${last.codec} at ${last.rate} Hz):`);
    console.log(`  p50 ${f(percentile(sorted, 50))} ms   p90 ${f(percentile(sorted, 90))} ms   p99 ${f(percentile(sorted, 99))} ms   max ${f(sorted[sorted.length - 1])} ms`);
    console.log(`  of which AudioContext output + base latency: ${f(last.outputLatencyMs)} ms`);
    console.log(`  jitter buffer depth p50 ${f(percentile(dsorted, 50))} ms, p99 ${f(percentile(dsorted, 99))} ms; target at the end ${f(last.targetMs)} ms; underruns ${last.underruns}; lost frames ${last.droppedFrames}`);
    console.log(`  received ${f(((after.bytes - before.bytes) * 1000) / (after.t - before.t) / 1000)} KB/s of stream frames`);
  } catch (e) {
    console.error(procs.logs.slice(-40).join("\n"));
    throw e;
  } finally {
    if (context) await context.close().catch(() => {});
    await procs.stopAll();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(`bench-latency: ${e.message}`);
  process.exit(1);
});

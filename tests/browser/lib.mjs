// Shared pieces of the headless-Chromium tests and benchmarks: prerequisites, processes, ports,
// polling, the Chromium launch the project's brief prescribes, and logging in.

import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, mkdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import net from "node:net";

export const HERE = dirname(fileURLToPath(import.meta.url));
export const REPO = resolve(HERE, "../..");
export const SHOTS = join(REPO, "target", "screenshots");
export const BIN = process.env.EARSHOT_BIN ? resolve(process.env.EARSHOT_BIN) : "";
export const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";

/** Why the browser tests cannot run here, or null when they can. */
export function missingPrerequisite() {
  if (!BIN) return "EARSHOT_BIN is not set: build earshot and point EARSHOT_BIN at the binary";
  if (!existsSync(BIN)) return `EARSHOT_BIN=${BIN} does not exist`;
  const help = spawnSync(BIN, ["player", "--help"], { encoding: "utf8", timeout: 20000 });
  if (help.status !== 0) return `${BIN} has no \`player\` subcommand (earshot player --help failed: ${(help.stderr || "").split("\n")[0]})`;
  if (!existsSync(CHROMIUM)) return `no Chromium at ${CHROMIUM} (apt-get install -y chromium, or set CHROMIUM)`;
  return null;
}

/** CI must run these tests: there a missing prerequisite is a failure, elsewhere a skip. */
export function skipOrFail(t, why) {
  if (process.env.CI) throw new Error(`CI is set, so this cannot be skipped: ${why}`);
  return t.skip(why);
}

export async function loadPlaywright() {
  try {
    return await import("playwright-core");
  } catch {
    return null;
  }
}

export function freePort() {
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

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Polls `fn` until it returns a truthy value; fails with `what` after `ms`. */
export async function until(what, ms, fn, every = 200) {
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

/** Runs `earshot ARGS` to completion; throws with its stderr when it fails. */
export function run(args, input) {
  const r = spawnSync(BIN, args, { input, encoding: "utf8", timeout: 60000 });
  if (r.status !== 0) throw new Error(`earshot ${args.join(" ")} failed (${r.status}): ${r.stderr}`);
  return r;
}

/** Child processes whose output goes to one log, all stopped by `stopAll`. */
export class Processes {
  constructor() {
    this.children = [];
    this.logs = [];
  }
  start(name, args) {
    const p = spawn(BIN, args, { stdio: ["ignore", "pipe", "pipe"] });
    const keep = (d) => this.logs.push(`[${name}] ${d.toString().trimEnd()}`);
    p.stdout.on("data", keep);
    p.stderr.on("data", keep);
    p.on("exit", (code, sig) => this.logs.push(`[${name}] exited ${code ?? sig}`));
    this.children.push(p);
    return p;
  }
  log(line) {
    this.logs.push(line);
  }
  async stopAll() {
    for (const p of this.children) if (p.exitCode === null) p.kill("SIGTERM");
    await sleep(300);
    for (const p of this.children) if (p.exitCode === null) p.kill("SIGKILL");
  }
}

/** Chromium with the flags the project's brief prescribes and a fresh profile in `dir`. */
export async function launchChromium(pw, dir, extraArgs = []) {
  return pw.chromium.launchPersistentContext(join(dir, "chromium-profile"), {
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
      ...extraArgs,
    ],
    timeout: 30000,
  });
}

/**
 * Runs `body({ dir, procs, open })` with what every browser test needs: the prerequisites
 * (skipped, or failed under CI, when missing), a fresh temporary directory, child processes
 * stopped at the end, and `open()` for a Chromium page whose console goes to the log. On a
 * failure the processes' and the page's log is printed.
 */
export async function inBrowser(t, name, body) {
  const why = missingPrerequisite();
  if (why) return skipOrFail(t, why);
  const pw = await loadPlaywright();
  if (!pw) return skipOrFail(t, "playwright-core is not installed: cd tests/browser && npm install");
  const dir = mkdtempSync(join(tmpdir(), `earshot-${name}-`));
  mkdirSync(SHOTS, { recursive: true });
  const procs = new Processes();
  let context = null;
  const open = async (timeout = 20000) => {
    context = await launchChromium(pw, dir);
    const page = context.pages()[0] || (await context.newPage());
    page.setDefaultTimeout(timeout);
    page.on("console", (m) => procs.logs.push(`[console.${m.type()}] ${m.text()}`));
    page.on("pageerror", (e) => procs.logs.push(`[pageerror] ${e.message}`));
    return page;
  };
  try {
    await body({ dir, procs, open });
  } catch (e) {
    console.error(procs.logs.join("\n"));
    throw e;
  } finally {
    if (context) await context.close().catch(() => {});
    await procs.stopAll();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Logs in through the page's form, with the keyboard only. */
export async function logIn(page, base, name, password) {
  await page.goto(base + "/");
  await page.locator("#login-section").waitFor({ state: "visible" });
  await page.locator("#login input[name=name]").focus();
  await page.keyboard.type(name);
  await page.keyboard.press("Tab");
  await page.keyboard.type(password);
  await page.keyboard.press("Enter");
  await page.locator("#app").waitFor({ state: "visible" });
}

/** Per analyser: peak frequency, bin width, peak level and max |sample|, read in the page. */
export function spectrum(page) {
  return page.evaluate(() => {
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
}

/** Seconds of real audio the page's worklet has played. */
export function secondsPlayed(page) {
  return page.evaluate(() => (earshotTest.sampleRate ? earshotTest.samplesPlayed / earshotTest.sampleRate : 0));
}

export function percentile(sorted, p) {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}

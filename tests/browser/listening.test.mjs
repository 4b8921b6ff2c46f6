// The listening panel says why a call is silent: "waiting for media" while it rings (and keeps
// listening until the answer), "cannot decode EVS" for a codec the sensor cannot decode, and
// "encrypted" for SRTP media the sensor has no key for (whose row says so too).
//
//   EARSHOT_BIN=target/debug/earshot node --test tests/browser/listening.test.mjs
//
// Captures: tests/captures/listening/ringing_then_answered.pcap (12 s ringing, then G.711) and
// evs_call.pcap (EVS both ways), each replayed in a loop by its own sensor; and
// tests/captures/srtp/dtls_no_key.pcap (SRTP by libsrtp2, DTLS-SRTP: no key in the SDP). Screenshots go to
// target/screenshots/ (listening-*.png; docs/images/ has copies).

import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, mkdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  REPO, SHOTS, missingPrerequisite, skipOrFail, loadPlaywright, freePort, until, run, Processes,
  launchChromium, logIn, secondsPlayed,
} from "./lib.mjs";

const CAPTURES = join(REPO, "tests", "captures", "listening");
const SRTP_CAPTURE = join(REPO, "tests", "captures", "srtp", "dtls_no_key.pcap");

test("the listening panel shows waiting for media and cannot decode", { timeout: 180000 }, async (t) => {
  const why = missingPrerequisite();
  if (why) return skipOrFail(t, why);
  const pw = await loadPlaywright();
  if (!pw) return skipOrFail(t, "playwright-core is not installed: cd tests/browser && npm install");

  const dir = mkdtempSync(join(tmpdir(), "earshot-listening-"));
  mkdirSync(SHOTS, { recursive: true });
  const procs = new Processes();
  const logs = procs.logs;
  let context = null;
  try {
    const db = `sqlite://${join(dir, "p.db")}?mode=rwc`;
    const [ringPort, amrPort, srtpPort, webPort] = [await freePort(), await freePort(), await freePort(), await freePort()];
    run(["users", "add", "tester", "--role", "listener", "--password-stdin", "--database", db], "s3cret-pass\n");
    run(["sensors", "add", "--id", "1", "--name", "ringing", "--host", "127.0.0.1", "--port", String(ringPort), "--database", db]);
    run(["sensors", "add", "--id", "2", "--name", "evs", "--host", "127.0.0.1", "--port", String(amrPort), "--database", db]);
    run(["sensors", "add", "--id", "3", "--name", "srtp", "--host", "127.0.0.1", "--port", String(srtpPort), "--database", db]);
    procs.start("player", ["player", "--listen", `127.0.0.1:${webPort}`, "--database", db]);
    const base = `http://127.0.0.1:${webPort}`;
    await until("the player's web server", 20000, async () => (await fetch(base + "/")).ok);

    context = await launchChromium(pw, dir);
    const page = context.pages()[0] || (await context.newPage());
    page.setDefaultTimeout(15000);
    page.on("console", (m) => logs.push(`[console.${m.type()}] ${m.text()}`));
    page.on("pageerror", (e) => logs.push(`[pageerror] ${e.message}`));
    await logIn(page, base, "tester", "s3cret-pass");

    // ---- a ringing call: "waiting for media", still listening past 10 s, then audio ----
    procs.start("sensor-amr", ["sensor", "--pcap", join(CAPTURES, "evs_call.pcap"), "--speed", "1", "--loop", "--manager", `127.0.0.1:${amrPort}`]);
    procs.start("sensor-ringing", ["sensor", "--pcap", join(CAPTURES, "ringing_then_answered.pcap"), "--speed", "1", "--loop", "--manager", `127.0.0.1:${ringPort}`]);
    const ringing = page.locator('#calls tbody tr[data-sensor="1"] button.listen').first();
    await ringing.waitFor({ state: "visible", timeout: 20000 });
    // Every state the panel goes through: it must never lose the stream while the call rings.
    await page.evaluate(() => {
      window.seenStates = [];
      document.addEventListener("earshot-state", (e) => window.seenStates.push(e.detail.state));
    });
    await ringing.click();
    const panel = page.locator("#player .listening");
    await panel.filter({ hasText: "waiting for media" }).waitFor({ state: "visible", timeout: 10000 });
    await page.screenshot({ path: join(SHOTS, "listening-waiting-for-media.png"), fullPage: true });
    // The answer comes 12 s after the INVITE; the player used to give up after 10 s of nothing.
    await until("audio after the answer", 40000, async () => (await secondsPlayed(page)) >= 1, 300);
    const state = await page.evaluate(() => earshotTest.state);
    assert.ok(["playing", "buffering"].includes(state), `state after the answer: ${state}`);
    const seen = await page.evaluate(() => window.seenStates);
    logs.push(`[test] states: ${seen.join(" ")}`);
    assert.ok(!seen.includes("reconnecting") && !seen.includes("error"), `the stream was lost while ringing: ${seen.join(" ")}`);
    await until("the waiting notice to go", 5000, async () => (await panel.innerText()).trim() === "");
    await page.locator("#player button.stop").click();

    // ---- an EVS call: "cannot decode EVS" ----
    // The EVS call repeats every 7 s and an ended one lingers in the list (faded, class
    // "over", below live calls): pick a live one, and try again if it ends under the click.
    const amrNotice = panel.filter({ hasText: "cannot decode EVS" });
    await until("an EVS call listened to", 60000, async () => {
      const amr = page.locator('#calls tbody tr[data-sensor="2"]:not(.over) button.listen').first();
      await amr.waitFor({ state: "visible", timeout: 20000 });
      await amr.click();
      return amrNotice.waitFor({ state: "visible", timeout: 5000 }).then(() => true, () => false);
    }, 100);
    await page.screenshot({ path: join(SHOTS, "listening-cannot-decode.png"), fullPage: true });
    await page.locator("#player button.stop").click();

    // ---- an SRTP call without its key: the row and the panel say encrypted ----
    procs.start("sensor-srtp", ["sensor", "--pcap", SRTP_CAPTURE, "--speed", "1", "--loop", "--manager", `127.0.0.1:${srtpPort}`]);
    const srtpNotice = panel.filter({ hasText: "encrypted (SRTP), no key" });
    await until("an SRTP call listened to", 60000, async () => {
      const row = page.locator('#calls tbody tr[data-sensor="3"]:not(.over)').first();
      await row.waitFor({ state: "visible", timeout: 20000 });
      if (!/encrypted, no key/.test(await row.locator('td[data-label="State"]').innerText())) return false;
      await row.locator("button.listen").click();
      return srtpNotice.waitFor({ state: "visible", timeout: 5000 }).then(() => true, () => false);
    }, 100);
    const heard = await page.evaluate(() => {
      const a = earshotTest.analyserL;
      const buf = new Float32Array(a.fftSize);
      a.getFloatTimeDomainData(buf);
      return buf.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    });
    // Ciphertext decoded as G.711 is white noise around -10 dBFS (0.3); what reaches the page
    // here is digital silence, once in a few runs a few LSB (1.2e-4) of the audio path's own.
    assert.ok(heard < 1e-3, `an encrypted call plays silence, not noise (max |sample| ${heard})`);
    await page.screenshot({ path: join(SHOTS, "listening-encrypted.png"), fullPage: true });
  } catch (e) {
    console.error(logs.join("\n"));
    throw e;
  } finally {
    if (context) await context.close().catch(() => {});
    await procs.stopAll();
    rmSync(dir, { recursive: true, force: true });
  }
});

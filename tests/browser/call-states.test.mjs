// The call list shows what state a call is in and when its quality cannot be known: a held
// call reads "on hold", a call whose codec the sensor cannot decode reads "cannot decode EVS"
// beside its state, with MOS "– / –" and a tooltip saying why; a ringing call has no MOS or
// jitter, "no media yet".
//
//   EARSHOT_BIN=target/debug/earshot node --test tests/browser/call-states.test.mjs
//
// Captures, each replayed in a loop by its own sensor: tests/captures/dialog/baresip_hold.pcap
// (two real baresip instances: answered, held by the caller with a=sendonly, resumed) and
// tests/captures/listening/evs_call.pcap (EVS both ways) and ringing_then_answered.pcap (12 s
// of ringing before any media). The screenshot goes to
// target/screenshots/call-list-states.png (docs/images/ has a copy).

import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, mkdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  REPO, SHOTS, missingPrerequisite, skipOrFail, loadPlaywright, freePort, until, run, Processes,
  launchChromium, logIn,
} from "./lib.mjs";

const CAPTURES = join(REPO, "tests", "captures");

/** The live (not faded "over") rows of one sensor: their cells' text and tooltips. */
function liveRows(page, sensor) {
  return page.evaluate((sensor) => {
    const rows = [...document.querySelectorAll(`#calls tbody tr[data-sensor="${sensor}"]:not(.over)`)];
    return rows.filter((tr) => !tr.hidden).map((tr) => {
      const cell = (label) => tr.querySelector(`td[data-label="${label}"]`);
      return {
        state: cell("State").textContent,
        mos: cell("MOS").textContent,
        mosTitle: cell("MOS").title,
        jitter: cell("Jitter ms").textContent,
        onHoldClass: tr.classList.contains("on-hold"),
      };
    });
  }, sensor);
}

test("the call list shows on hold, cannot decode EVS and an unknown MOS", { timeout: 180000 }, async (t) => {
  const why = missingPrerequisite();
  if (why) return skipOrFail(t, why);
  const pw = await loadPlaywright();
  if (!pw) return skipOrFail(t, "playwright-core is not installed: cd tests/browser && npm install");

  const dir = mkdtempSync(join(tmpdir(), "earshot-call-states-"));
  mkdirSync(SHOTS, { recursive: true });
  const procs = new Processes();
  const logs = procs.logs;
  let context = null;
  try {
    const db = `sqlite://${join(dir, "p.db")}?mode=rwc`;
    const [holdPort, amrPort, ringPort, webPort] = [await freePort(), await freePort(), await freePort(), await freePort()];
    run(["users", "add", "viewer", "--role", "viewer", "--password-stdin", "--database", db], "s3cret-pass\n");
    run(["sensors", "add", "--id", "1", "--name", "baresip", "--host", "127.0.0.1", "--port", String(holdPort), "--database", db]);
    run(["sensors", "add", "--id", "2", "--name", "evs", "--host", "127.0.0.1", "--port", String(amrPort), "--database", db]);
    run(["sensors", "add", "--id", "3", "--name", "ringing", "--host", "127.0.0.1", "--port", String(ringPort), "--database", db]);
    procs.start("player", ["player", "--listen", `127.0.0.1:${webPort}`, "--database", db]);
    procs.start("sensor-hold", ["sensor", "--pcap", join(CAPTURES, "dialog", "baresip_hold.pcap"), "--speed", "1", "--loop", "--manager", `127.0.0.1:${holdPort}`]);
    procs.start("sensor-amr", ["sensor", "--pcap", join(CAPTURES, "listening", "evs_call.pcap"), "--speed", "1", "--loop", "--manager", `127.0.0.1:${amrPort}`]);
    procs.start("sensor-ringing", ["sensor", "--pcap", join(CAPTURES, "listening", "ringing_then_answered.pcap"), "--speed", "1", "--loop", "--manager", `127.0.0.1:${ringPort}`]);
    const base = `http://127.0.0.1:${webPort}`;
    await until("the player's web server", 20000, async () => (await fetch(base + "/")).ok);

    context = await launchChromium(pw, dir);
    const page = context.pages()[0] || (await context.newPage());
    page.setDefaultTimeout(15000);
    page.on("console", (m) => logs.push(`[console.${m.type()}] ${m.text()}`));
    page.on("pageerror", (e) => logs.push(`[pageerror] ${e.message}`));
    await logIn(page, base, "viewer", "s3cret-pass");

    // Both at once, for the screenshot: the baresip call while held, and a live EVS call that
    // has sent RTP (before its first packet its MOS is unknown for another reason, no media).
    const seen = [];
    const both = await until("a held, an undecodable EVS and a ringing call in the list", 90000, async () => {
      const [hold, amr, ring] = [await liveRows(page, 1), await liveRows(page, 2), await liveRows(page, 3)];
      seen.push(JSON.stringify({ hold, amr, ring }));
      const held = hold.find((r) => r.state.startsWith("on hold"));
      const undecodable = amr.find((r) => r.state.includes("cannot decode EVS"));
      const ringing = ring.find((r) => r.state === "ringing");
      return held && undecodable && ringing ? { held, undecodable, ringing } : null;
    }, 250);
    logs.push(`[test] ${JSON.stringify(both)}`);
    await page.screenshot({ path: join(SHOTS, "call-list-states.png"), fullPage: true });

    const { held, undecodable, ringing } = both;
    assert.equal(held.state, "on hold (by caller)", JSON.stringify(held));
    assert.ok(held.onHoldClass, "the held row has class on-hold");
    assert.match(held.mos, /^\d\.\d \/ \d\.\d$/, `a held G.711 call keeps its MOS: ${held.mos}`);

    assert.equal(undecodable.state, "answered · cannot decode EVS", JSON.stringify(undecodable));
    assert.equal(undecodable.mos, "– / –", `MOS of an EVS call: ${undecodable.mos}`);
    assert.equal(
      undecodable.mosTitle,
      "caller: EVS cannot be decoded; called: EVS cannot be decoded",
      JSON.stringify(undecodable),
    );
    // Its jitter is measured all the same (the EVS clock rate is known from the rtpmap).
    assert.match(undecodable.jitter, /^\d+\.\d \/ \d+\.\d$/, `jitter of an EVS call: ${undecodable.jitter}`);

    // A ringing call has no media yet: neither MOS nor jitter, and the tooltip says so.
    assert.equal(ringing.mos, "– / –", JSON.stringify(ringing));
    assert.equal(ringing.jitter, "– / –", JSON.stringify(ringing));
    assert.equal(ringing.mosTitle, "caller: no media yet; called: no media yet", JSON.stringify(ringing));
  } catch (e) {
    console.error(logs.join("\n"));
    throw e;
  } finally {
    if (context) await context.close().catch(() => {});
    await procs.stopAll();
    rmSync(dir, { recursive: true, force: true });
  }
});

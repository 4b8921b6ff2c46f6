// The call list with 10,000 calls: the page holds only the rows near the screen (the player
// streams that window), the filter searches every call in the player and finds one by its
// numbers, scrolling to the end brings the last calls, and the page's JS heap stays small.
// Prints the figures (filter time, heap) for BENCHMARKS.md; the assertions are about what
// was shown, not how fast.
//
//   EARSHOT_BIN=target/debug/earshot node --test tests/browser/call-list-scale.test.mjs
//
// The calls: `earshot synth --calls 10000 --seconds 90 --ptime 100 --loss 99` replayed by one
// sensor (1 % of the RTP kept: the SIP of 10,000 calls in the first second, little load after;
// a synth of full-rate calls takes minutes in a debug build).
// The screenshot goes to target/screenshots/call-list-10000.png (docs/images/ has a copy).

import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  SHOTS, freePort, until, run, logIn, inBrowser,
} from "./lib.mjs";

const CALLS = 10000;

/** The data rows the page has in its DOM (not the spacers), and those visible. */
function domRows(page) {
  return page.evaluate(() => {
    const rows = [...document.querySelectorAll("#calls tbody tr:not(.spacer)")];
    return { inDom: rows.length, shown: rows.filter((r) => !r.hidden).length };
  });
}

test("10,000 calls: windowed list, filter over every call, scrolling", { timeout: 240000 }, async (t) => {
  await inBrowser(t, "call-list-scale", async ({ dir, procs, open }) => {
    const pcap = join(dir, "calls.pcap");
    run(["synth", "--calls", String(CALLS), "--seconds", "90", "--ptime", "100", "--codec", "pcma", "--loss", "99", "--out", pcap]);
    const db = `sqlite://${join(dir, "p.db")}`;
    const [sensorPort, webPort] = [await freePort(), await freePort()];
    run(["users", "add", "viewer", "--role", "viewer", "--password-stdin", "--database", db], "s3cret-pass\n");
    run(["sensors", "add", "--id", "1", "--name", "big", "--host", "127.0.0.1", "--port", String(sensorPort), "--database", db]);
    procs.start("sensor", ["sensor", "--pcap", pcap, "--speed", "1", "--manager", `127.0.0.1:${sensorPort}`]);
    procs.start("player", ["player", "--listen", `127.0.0.1:${webPort}`, "--database", db]);
    const base = `http://127.0.0.1:${webPort}`;
    await until("the player's web server", 20000, async () => (await fetch(base + "/")).ok);

    const page = await open();
    await logIn(page, base, "viewer", "s3cret-pass");

    // Every call is counted, a window of them is in the page.
    await until(`all ${CALLS} calls listed`, 90000, async () => (await page.locator("#calls-count").innerText()) === `(${CALLS})`);
    const rows = await domRows(page);
    assert.ok(rows.inDom > 0 && rows.inDom <= 150, `rows in the page: ${JSON.stringify(rows)}`);
    assert.equal(await page.evaluate(() => window.earshotTest.streamed), true, "the list comes from the stream");
    await page.locator("#calls-section").screenshot({ path: join(SHOTS, "call-list-10000.png") });

    // A call far outside the window, found by its numbers.
    const target = await page.evaluate(async () => {
      const r = await fetch("/api/calls?offset=9876&limit=1", { credentials: "same-origin" });
      return (await r.json()).calls[0];
    });
    assert.ok(target && target.caller && target.called, JSON.stringify(target));
    const filterMs = await page.evaluate(async ({ caller, called }) => {
      const box = document.getElementById("filter");
      const t0 = performance.now();
      box.value = `${caller} ${called}`;
      box.dispatchEvent(new Event("input"));
      for (;;) {
        const rows = [...document.querySelectorAll("#calls tbody tr:not(.spacer)")];
        const hit = rows.find((r) => r.querySelector('td[data-label="Caller"]').textContent === caller);
        if (hit && rows.length === 1) return performance.now() - t0;
        if (performance.now() - t0 > 15000) throw new Error(`not found: ${rows.length} rows`);
        await new Promise((r) => requestAnimationFrame(r));
      }
    }, target);
    assert.equal(await page.locator("#calls-count").innerText(), "(1)");

    // Back to every call, then to the end of the list by scrolling.
    await page.locator("#filter").fill("");
    await until("the whole list again", 20000, async () => (await page.locator("#calls-count").innerText()) === `(${CALLS})`);
    const last = await page.evaluate(async () => {
      const r = await fetch(`/api/calls?offset=${10000 - 1}&limit=1`, { credentials: "same-origin" });
      return (await r.json()).calls[0];
    });
    await page.evaluate(() => {
      const box = document.getElementById("calls-scroll");
      box.scrollTop = box.scrollHeight;
    });
    await until("the last call on screen after scrolling", 20000, async () =>
      page.evaluate((ref) => !!document.querySelector(`#calls tbody tr[data-callref="${ref}"]`), last.callreference));
    const end = await domRows(page);
    assert.ok(end.inDom <= 150, `rows in the page after scrolling: ${JSON.stringify(end)}`);

    const heap = await page.evaluate(() => (performance.memory ? performance.memory.usedJSHeapSize : null));
    console.log(`# ${CALLS} calls: filter found one call in ${filterMs.toFixed(0)} ms; rows in the page ${rows.inDom}; JS heap ${heap === null ? "?" : (heap / 1048576).toFixed(1) + " MiB"}`);
  });
});

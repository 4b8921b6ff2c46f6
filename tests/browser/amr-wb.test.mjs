// A whole AMR-WB call between two real baresip agents (tests/captures/baresip/amr_wb_call.pcap,
// made by make.sh there: baresip's amr module, VisualOn's AMR-WB encoder, octet-aligned), replayed
// live by a sensor and heard through the player in Chromium: the tones test, 400 Hz on the left
// from the caller, 1 kHz on the right from the callee (issue 18).
//
//   EARSHOT_BIN=target/debug/earshot node --test tests/browser/amr-wb.test.mjs
//
// Screenshot: target/screenshots/amr-wb-playing.png.

import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { REPO, SHOTS, freePort, until, run, logIn, inBrowser, secondsPlayed, spectrum } from "./lib.mjs";

const CALLER_HZ = 400;
const CALLED_HZ = 1000;

test("a baresip AMR-WB call heard live in the page", { timeout: 180000 }, async (t) => {
  await inBrowser(t, "amr-wb", async ({ dir, procs, open }) => {
    const pcap = join(REPO, "tests", "captures", "baresip", "amr_wb_call.pcap");
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
    const row = page.locator('#calls tbody tr[data-sensor="1"]:not(.over)').first();
    await row.waitFor({ state: "visible", timeout: 20000 });
    assert.match(await row.innerText(), /AMR-WB/, "the list names the codec");
    await row.locator("button.listen").click();
    await until("3 s of AMR-WB audio played", 30000, async () => (await secondsPlayed(page)) >= 3, 300);
    const s = await spectrum(page);
    procs.logs.push(`[test] AMR-WB: ${JSON.stringify(s)}`);
    assert.ok(Math.abs(s.l.hz - CALLER_HZ) <= 5 + s.l.binHz, `left (caller) peak at ${s.l.hz.toFixed(1)} Hz, want ${CALLER_HZ} ± 5`);
    assert.ok(Math.abs(s.r.hz - CALLED_HZ) <= 5 + s.r.binHz, `right (called) peak at ${s.r.hz.toFixed(1)} Hz, want ${CALLED_HZ} ± 5`);
    assert.ok(s.l.max > 0.05 && s.r.max > 0.05, `both parties audible (${s.l.max}, ${s.r.max})`);
    await page.screenshot({ path: join(SHOTS, "amr-wb-playing.png"), fullPage: true });
  });
});

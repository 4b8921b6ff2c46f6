// A call that ended half a minute ago is still listed (faded, "ended", its button "replay")
// and plays from its start: the sensor keeps an ended call's rewind while it lingers in the
// table (`[calls] linger_s`, here 120 s).
//
//   EARSHOT_BIN=target/debug/earshot node --test tests/browser/recently-ended.test.mjs
//
// The call: `earshot synth --calls 1 --seconds 6` (400 Hz from the caller, 1 kHz from the
// callee), replayed once by the sensor.

import { test } from "node:test";
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  SHOTS, freePort, until, run, logIn, inBrowser, secondsPlayed, sleep,
} from "./lib.mjs";

const CALL_SECONDS = 6;
const ENDED_AGO_MS = 30000;

test("a call that ended 30 s ago is listed and plays from its start", { timeout: 180000 }, async (t) => {
  await inBrowser(t, "recently-ended", async ({ dir, procs, open }) => {
    const pcap = join(dir, "call.pcap");
    run(["synth", "--calls", "1", "--seconds", String(CALL_SECONDS), "--codec", "pcma", "--out", pcap]);
    const conf = join(dir, "sensor.toml");
    writeFileSync(conf, "[calls]\nlinger_s = 120\n");
    const db = `sqlite://${join(dir, "p.db")}`;
    const [sensorPort, webPort] = [await freePort(), await freePort()];
    run(["users", "add", "tester", "--role", "listener", "--password-stdin", "--database", db], "s3cret-pass\n");
    run(["sensors", "add", "--id", "1", "--name", "s1", "--host", "127.0.0.1", "--port", String(sensorPort), "--database", db]);
    procs.start("player", ["player", "--listen", `127.0.0.1:${webPort}`, "--database", db]);
    const base = `http://127.0.0.1:${webPort}`;
    await until("the player's web server", 20000, async () => (await fetch(base + "/")).ok);

    const page = await open();
    await logIn(page, base, "tester", "s3cret-pass");

    procs.start("sensor", ["sensor", "--pcap", pcap, "--speed", "1", "--config", conf, "--manager", `127.0.0.1:${sensorPort}`]);
    const row = page.locator('#calls tbody tr[data-sensor="1"]').first();
    await row.waitFor({ state: "visible" });
    await until("the call to end", (CALL_SECONDS + 20) * 1000, async () => (await row.getAttribute("class") || "").includes("over"));
    await sleep(ENDED_AGO_MS);

    // Still listed, as over, with a replay button.
    assert.match(await row.locator('td[data-label="State"]').innerText(), /ended/);
    const button = row.locator("button.listen");
    assert.equal(await button.innerText(), "replay");
    await page.screenshot({ path: join(SHOTS, "recently-ended.png"), fullPage: true });
    await button.click();
    await until("the call's audio, from its start", 30000, async () => (await secondsPlayed(page)) >= CALL_SECONDS - 2, 300);
    await until("the end of the replay", 30000, async () => (await page.evaluate(() => earshotTest.state)) === "ended", 300);
    const played = await secondsPlayed(page);
    assert.ok(played >= CALL_SECONDS - 2 && played <= CALL_SECONDS + 3, `played ${played.toFixed(1)} s of a ${CALL_SECONDS} s call`);
  });
});

// Both legs of a call: a sensor replaying A/B legs through a "B2BUA" (SIPp on both sides of
// every leg, tests/captures/legs/make-sipp.sh) lists each B-leg indented under its A-leg,
// marked with what correlated them; "both legs" plays the A-leg and its B-leg together (two
// streams, mixed by the browser), and both streams' audio arrives.
//
//   EARSHOT_BIN=target/debug/earshot node --test tests/browser/legs.test.mjs
//
// The capture: five A/B pairs (X-CID, Session-ID, icid, X-Orig-Call, which the sensor is
// configured to read, and X-Merge, hidden with a secret it is not given) and one unrelated
// call. Screenshot: target/screenshots/legs.png
// (docs/images/ has a copy).

import { test } from "node:test";
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { REPO, SHOTS, freePort, until, run, logIn, inBrowser } from "./lib.mjs";

const CAPTURE = join(REPO, "tests/captures/legs/b2bua_legs.pcap.gz");

test("A/B legs are grouped in the list and heard together", { timeout: 180000 }, async (t) => {
  await inBrowser(t, "legs", async ({ dir, procs, open }) => {
    const conf = join(dir, "sensor.toml");
    // Lingering calls keep the list still for the screenshot and leave a rewind to replay.
    writeFileSync(conf, '[calls]\nlinger_s = 120\n\n[correlation]\nheaders = ["X-Orig-Call"]\n');
    const db = `sqlite://${join(dir, "p.db")}`;
    const [sensorPort, webPort] = [await freePort(), await freePort()];
    run(["users", "add", "tester", "--role", "listener", "--password-stdin", "--database", db], "s3cret-pass\n");
    run(["sensors", "add", "--id", "1", "--name", "sbc-1", "--host", "127.0.0.1", "--port", String(sensorPort), "--database", db]);
    procs.start("player", ["player", "--listen", `127.0.0.1:${webPort}`, "--database", db]);
    const base = `http://127.0.0.1:${webPort}`;
    await until("the player's web server", 20000, async () => (await fetch(base + "/")).ok);
    const page = await open();
    await logIn(page, base, "tester", "s3cret-pass");
    procs.start("sensor", ["sensor", "--pcap", CAPTURE, "--speed", "1", "--config", conf, "--manager", `127.0.0.1:${sensorPort}`]);

    // All eleven calls listed, the eight legs of the pairs the sensor reads grouped (the
    // X-Merge pair needs a secret it is not given).
    const rowsInfo = () => page.evaluate(() => [...document.querySelectorAll("#calls tbody tr:not(.spacer)")].map((tr) => ({
      title: tr.title, cls: tr.className, hidden: tr.hidden,
      state: tr.querySelector('td[data-label="State"]').textContent,
    })));
    const rows = await until("eleven calls, eight of them legs", 60000, async () => {
      const r = await rowsInfo();
      return r.length === 11 && r.filter((x) => /a-leg|b-leg/.test(x.cls)).length === 8 && r;
    }, 200);
    // Each B-leg right after its A-leg, both naming the A-leg's Call-ID.
    for (const [name, via] of [["xcid", "x-cid"], ["sid", "session-id"], ["icid", "icid"], ["hdr", "header"]]) {
      const a = rows.findIndex((r) => r.title.includes(`a-${name}@pbx.example`));
      assert.ok(a >= 0, `A-leg ${name}`);
      assert.match(rows[a].cls, /a-leg/);
      assert.match(rows[a].state, /A-leg · 1 B-leg/);
      assert.ok(rows[a + 1].title.includes(`b-${name}@sbc.example`), `B-leg ${name} under its A-leg: ${JSON.stringify(rows)}`);
      assert.match(rows[a + 1].cls, /b-leg/);
      assert.ok(rows[a + 1].state.includes(`B-leg of a-${name}@pbx.example (${via})`), rows[a + 1].state);
    }
    for (const id of ["lone@pbx.example", "a-sec@pbx.example", "b-sec@sbc.example"]) {
      assert.doesNotMatch(rows.find((r) => r.title.includes(id)).cls, /a-leg|b-leg/, id);
    }

    // Both legs of the last pair (6 s calls, the last to start: most likely still live, and
    // replayed from their start if not): the A-leg's stream and the B-leg's, each with audio.
    const aRow = page.locator("#calls tbody tr.a-leg", { hasText: "1004" });
    await aRow.locator("button.both").click();
    const rate = await until("both players running", 20000, async () => page.evaluate(() => earshotTest.sampleRate));
    await until("audio of both legs", 30000, async () => {
      const [a, b] = await page.evaluate(() => [earshotTest.samplesPlayed, earshotTest.samplesPlayedB]);
      return a >= rate && b >= rate; // a second of each (the calls are 6.2 s long)
    }, 300);
    assert.equal(await page.locator("#player-b").isVisible(), true);
    await page.screenshot({ path: join(SHOTS, "legs.png"), fullPage: true });

    // Folding hides the B-leg, unfolding shows it again.
    await aRow.locator("button.fold").click();
    await until("the B-leg folded", 5000, async () => (await rowsInfo()).filter((r) => r.hidden).length === 1);
    await aRow.locator("button.fold").click();
    await until("the B-leg unfolded", 5000, async () => (await rowsInfo()).every((r) => !r.hidden));
  });
});

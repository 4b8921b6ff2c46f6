// Quality over time: the page's chart of a lossy call (`earshot synth --loss 5 --jitter 30`)
// has one point per second of the call, per party, and the same seconds as the offline
// `analyze --json --timeline` of the same capture. A screenshot of the chart during the call
// goes to docs/images/quality-chart.png.
//
//   EARSHOT_BIN=target/debug/earshot node --test tests/browser/quality.test.mjs

import { test } from "node:test";
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { REPO, freePort, until, run, logIn, inBrowser } from "./lib.mjs";

const CALL_SECONDS = 20;

test("the quality chart of a lossy call has one point per second", { timeout: 240000 }, async (t) => {
  await inBrowser(t, "quality", async ({ dir, procs, open }) => {
    const pcap = join(dir, "lossy.pcap");
    run(["synth", "--calls", "1", "--seconds", String(CALL_SECONDS), "--codec", "pcmu", "--loss", "5", "--jitter", "30", "--seed", "19", "--out", pcap]);
    const offline = JSON.parse(run(["analyze", "--json", "--timeline", pcap]).stdout);
    const offlinePoints = Object.fromEntries(
      offline.calls[0].streams.map((s) => [s.direction, s.timeline.points.length]),
    );
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
    await page.setViewportSize({ width: 1100, height: 900 });
    await logIn(page, base, "tester", "s3cret-pass");
    procs.start("sensor", ["sensor", "--pcap", pcap, "--speed", "1", "--config", conf, "--manager", `127.0.0.1:${sensorPort}`]);
    const row = page.locator('#calls tbody tr[data-sensor="1"]').first();
    await row.waitFor({ state: "visible" });
    // Any listed call: a click on its row (not its listen button) shows its chart.
    await row.locator('td[data-label="Caller"]').click();
    const points = (party) =>
      page.locator(`#quality-chart svg.quality-chart-loss circle[data-party="${party}"]`).count();

    // During the call: the chart grows, a second at a time; the screenshot shows it mid-call.
    await until("ten seconds of the call in the chart", 60000, async () => (await points("caller")) >= 10, 300);
    const chart = page.locator("#quality-chart");
    await chart.screenshot({ path: join(REPO, "docs", "images", "quality-chart.png") });

    // After the call: every second of it, for both parties, in order, with MOS and jitter too.
    await until("the call to end", (CALL_SECONDS + 30) * 1000, async () => ((await row.getAttribute("class")) || "").includes("over"));
    await until("the chart to have the call's last seconds", 15000, async () => (await points("caller")) >= CALL_SECONDS - 1, 300);
    for (const party of ["caller", "called"]) {
      const n = await points(party);
      assert.ok(Math.abs(n - CALL_SECONDS) <= 1, `${party}: ${n} points for a ${CALL_SECONDS} s call`);
      assert.ok(Math.abs(n - offlinePoints[party]) <= 1, `${party}: ${n} points, analyze --timeline has ${offlinePoints[party]}`);
      const ts = await page
        .locator(`#quality-chart svg.quality-chart-loss circle[data-party="${party}"]`)
        .evaluateAll((cs) => cs.map((c) => Number(c.dataset.t)));
      const firstT = ts[0];
      assert.deepEqual(ts, ts.map((_, i) => firstT + i), `${party}: one point per second, no gaps`);
      for (const metric of ["mos", "jitter"]) {
        const m = await page.locator(`#quality-chart svg.quality-chart-${metric} circle[data-party="${party}"]`).count();
        assert.equal(m, n, `${party} ${metric}`);
      }
    }
    // Loss shows: --loss 5 over 20 s loses some packets in some second.
    const lossy = await page
      .locator('#quality-chart svg.quality-chart-loss circle')
      .evaluateAll((cs) => cs.filter((c) => Number(c.getAttribute("cy")) < 55).length);
    assert.ok(lossy > 0, "no second with loss drawn above the axis");
    // The call list shows capture loss beside MOS: none here (no RTCP, no sensor drops).
    assert.match(await row.locator('td[data-label="Capture loss"]').innerText(), /^0 \/ 0$/);
  });
});

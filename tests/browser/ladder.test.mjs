// The SIP ladder of a call: a listener presses "SIP" on a call and sees one column per
// address and one arrow per SIP message, in capture order, labelled with its method or
// status; clicking an arrow shows that message's text. The order is checked against tshark's
// view of the capture (tests/captures/dialog/baresip_hold.tshark-sip.txt: two baresip
// instances, answered, held by the caller, resumed, a last re-INVITE, BYE).
//
//   EARSHOT_BIN=target/debug/earshot node --test tests/browser/ladder.test.mjs
//
// The screenshot goes to target/screenshots/ladder.png (docs/images/ladder.png is a copy).

import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { REPO, SHOTS, inBrowser, freePort, until, run, logIn } from "./lib.mjs";

const DIALOG = join(REPO, "tests", "captures", "dialog");

/** tshark's view: per message, the sender's port and the method or status code. */
function tsharkSip(name) {
  return readFileSync(join(DIALOG, `${name}.tshark-sip.txt`), "utf8")
    .split("\n")
    .filter((l) => l.trim())
    .map((l) => {
      const f = l.split(" ");
      return { from: `${f[1]}:${f[2]}`, kind: f[3] || f[4] };
    });
}

test("the SIP ladder shows the call's messages in order and each one's text", { timeout: 180000 }, async (t) => {
  await inBrowser(t, "ladder", async ({ dir, procs, open }) => {
    const db = `sqlite://${join(dir, "p.db")}?mode=rwc`;
    const [sensorPort, webPort] = [await freePort(), await freePort()];
    run(["users", "add", "alice", "--role", "listener", "--password-stdin", "--database", db], "s3cret-pass\n");
    run(["users", "add", "vera", "--role", "viewer", "--password-stdin", "--database", db], "s3cret-pass\n");
    run(["sensors", "add", "--id", "1", "--name", "edge", "--host", "127.0.0.1", "--port", String(sensorPort), "--database", db]);
    // Room for the whole dialog: five INVITEs with SDP are more than the default 8 KiB.
    const conf = join(dir, "sensor.toml");
    writeFileSync(conf, "[calls]\nsip_log_messages = 64\nsip_log_call_kb = 64\n");
    procs.start("player", ["player", "--listen", `127.0.0.1:${webPort}`, "--database", db]);
    procs.start("sensor", ["sensor", "--config", conf, "--pcap", join(DIALOG, "baresip_hold.pcap"), "--speed", "4", "--loop", "--manager", `127.0.0.1:${sensorPort}`]);
    const base = `http://127.0.0.1:${webPort}`;
    await until("the player's web server", 20000, async () => (await fetch(base + "/")).ok);

    const page = await open();
    await logIn(page, base, "alice", "s3cret-pass");
    const want = tsharkSip("baresip_hold");
    // Opens the ladder of the call in the list until one shows the whole dialog (a replay in
    // a loop: the call in the list may be one still going, or one over whose log is whole).
    const ladder = await until("a call whose ladder has the whole dialog", 90000, async () => {
      const button = page.locator("#calls tbody tr:not(.spacer) button.ladder").first();
      if (!(await button.count())) return null;
      await button.click();
      await page.locator("#ladder-section .ladder-status").waitFor();
      await page.waitForFunction(() => !document.querySelector("#ladder-section .ladder-status").textContent.startsWith("loading"));
      const got = await page.evaluate(() => ({
        columns: [...document.querySelectorAll("#ladder-section svg text.column")].map((e) => e.textContent),
        arrows: [...document.querySelectorAll("#ladder-section g.arrow")].map((g) => ({ label: g.dataset.label, aria: g.getAttribute("aria-label") })),
        status: document.querySelector("#ladder-section .ladder-status").textContent,
      }));
      procs.log(`[test] ${JSON.stringify(got)}`);
      return got.arrows.length === want.length ? got : null;
    }, 1000);

    // One column per address, the caller's first; the arrows are tshark's messages in order.
    assert.deepEqual(ladder.columns, ["127.0.0.1:46000", "127.0.0.1:46010"]);
    assert.deepEqual(ladder.arrows.map((a) => a.label.split(" ")[0]), want.map((m) => m.kind));
    assert.deepEqual(ladder.arrows.map((a) => a.aria.split(", ")[1].split(" to ")[0]), want.map((m) => m.from));
    assert.equal(ladder.arrows[0].label, "INVITE (SDP)");
    assert.equal(ladder.arrows[1].label, "180 Ringing");
    assert.equal(ladder.arrows[2].label, "200 Answering (SDP)"); // baresip's reason phrase
    assert.match(ladder.status, /15 SIP messages/);

    // Clicking the hold re-INVITE (the fifth message) shows its text, sendonly and all.
    await page.locator('#ladder-section g.arrow[data-index="4"]').click();
    const text = await page.locator("#ladder-section pre.ladder-message").textContent();
    assert.match(text, /^INVITE sip:/);
    assert.match(text, /CSeq: 20620 INVITE/);
    assert.match(text, /a=sendonly/);
    assert.match(await page.locator("#ladder-section .ladder-caption").textContent(), /^\[5\] \+3\.51\d s · 127\.0\.0\.1:46000 → 127\.0\.0\.1:46010 · INVITE \(SDP\) · over UDP/);
    assert.ok(await page.locator('#ladder-section g.arrow[data-index="4"].selected').count());
    await page.locator("#ladder-section").screenshot({ path: join(SHOTS, "ladder.png") });

    // A viewer has no SIP button, and the API refuses them as it refuses listening.
    const callref = await page.locator("#calls tbody tr:not(.spacer)").first().getAttribute("data-callref");
    const viewer = await (await fetch(`${base}/api/login`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ name: "vera", password: "s3cret-pass" }) })).headers.get("set-cookie");
    const refused = await fetch(`${base}/api/ladder?sensor_id=1&callref=${callref}`, { headers: { cookie: viewer.split(";")[0] } });
    assert.equal(refused.status, 403);
    // The looks are in the audit log: alice's shown ladder, vera's refusal.
    const audit = JSON.parse(run(["audit", "--json", "--database", db]).stdout);
    const rows = Array.isArray(audit) ? audit : audit.rows || [];
    assert.ok(rows.some((r) => r.user_name === "alice" && r.via === "ladder" && r.outcome === "viewed"), JSON.stringify(rows));
    assert.ok(rows.some((r) => r.user_name === "vera" && r.via === "ladder" && r.outcome === "refused"), JSON.stringify(rows));
  });
});

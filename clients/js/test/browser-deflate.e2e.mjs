// permessage-deflate with a real browser: Debian's chromium (driven by
// playwright-core) opens the demo page of a server started with
// deflate.enabled=true, and from inside the page connects to /echo and
// /ws with the browser's own WebSocket. The browser offers the extension
// by itself; the page checks `ws.extensions`, echoes compressible JSON
// (which both ends compress) and receives a channel push on /ws.
//
//   node --test test/browser-deflate.e2e.mjs   (CHROMIUM=/path overrides /usr/bin/chromium)
import test from "node:test";
import assert from "node:assert/strict";
import { chromium } from "playwright-core";
import { startServer } from "./harness.mjs";

test("chromium negotiates permessage-deflate and echoes compressed JSON", { timeout: 60_000 }, async (t) => {
  const server = await startServer(["--set", "deflate.enabled=true"]);
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    args: ["--no-sandbox"],
  });
  t.after(async () => {
    await browser.close();
    await server.stop();
  });
  const page = await browser.newPage();
  await page.goto(`http://${server.addr}/`);
  const result = await page.evaluate(async (addr) => {
    const open = (path) =>
      new Promise((resolve, reject) => {
        const ws = new WebSocket(`ws://${addr}${path}`);
        ws.onopen = () => resolve(ws);
        ws.onerror = () => reject(new Error(`cannot open ${path}`));
      });
    const next = (ws) => new Promise((resolve) => (ws.onmessage = (e) => resolve(e.data)));
    const line = (i) =>
      JSON.stringify({ channel: "room:lobby", offset: i, data: { user: `user-${i % 7}`, text: "on my way, see you at the station in ten minutes" } });
    const page = "[" + Array.from({ length: 300 }, (_, i) => line(i)).join(",") + "]";

    const echo = await open("/echo");
    const echoExt = echo.extensions;
    const echoed = next(echo);
    echo.send(page);
    const back = await echoed;

    const sub = await open("/ws");
    const pub = await open("/ws");
    const subscribed = next(sub);
    sub.send(JSON.stringify({ id: 1, op: "subscribe", channel: "room:deflate" }));
    await subscribed;
    const pushed = next(sub);
    const data = Array.from({ length: 20 }, (_, i) => JSON.parse(line(i)));
    pub.send(JSON.stringify({ id: 2, op: "publish", channel: "room:deflate", data }));
    const push = JSON.parse(await pushed);
    return {
      echoExt,
      wsExt: sub.extensions,
      echoOk: back === page,
      pushOk: JSON.stringify(push.data) === JSON.stringify(data),
      length: page.length,
    };
  }, server.addr);
  assert.match(result.echoExt, /^permessage-deflate/, `extensions on /echo: '${result.echoExt}'`);
  assert.match(result.wsExt, /^permessage-deflate/, `extensions on /ws: '${result.wsExt}'`);
  assert.ok(result.echoOk, `echo of ${result.length} chars differs`);
  assert.ok(result.pushOk, "push data differs");
  console.log(`chromium: extensions '${result.echoExt}', ${result.length}-char JSON echoed, push received`);
});

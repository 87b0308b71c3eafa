// The demo chat in a real browser: Debian's chromium driven by
// playwright-core (no browser download). Two pages chat through the page
// the ringcast binary serves, behind a proxy that cuts every connection
// mid-conversation and refuses reconnects while a Node client publishes;
// both pages must reconnect and show every message once, in order. A
// screenshot is saved to target/browser-demo.png on every run.
//
//   node --test test/browser.e2e.mjs     (CHROMIUM=/path overrides /usr/bin/chromium)
import test from "node:test";
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import WebSocket from "ws";
import { chromium } from "playwright-core";
import { RingcastClient } from "../dist/index.js";
import { startServer, startProxy, sleep } from "./harness.mjs";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");

test("two browser pages chat through cuts and see every message once", { timeout: 60_000 }, async (t) => {
  const server = await startServer();
  const proxy = await startProxy(server.addr);
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    args: ["--no-sandbox"],
  });
  const node = new RingcastClient(`ws://${server.addr}/ws`, { WebSocket });
  t.after(async () => {
    node.disconnect();
    await browser.close();
    await proxy.close();
    await server.stop();
  });
  await node.connect();

  const cspViolations = [];
  const open = async (name) => {
    const page = await browser.newPage();
    page.on("console", (m) => {
      if (/Content Security Policy/i.test(m.text())) cspViolations.push(m.text());
    });
    page.on("pageerror", (e) => cspViolations.push(String(e)));
    await page.goto(`http://${proxy.addr}/#e2e`);
    await page.fill("#name", name);
    await page.click("#join button");
    await page.waitForSelector("#status.connected");
    await page.waitForFunction(() => document.querySelector("#resume").textContent.startsWith("joined chat:e2e"));
    return page;
  };
  const ann = await open("ann");
  const bob = await open("bob");
  const say = async (page, text) => {
    await page.fill("#text", text);
    await page.click("#send button");
  };
  const lines = (page) =>
    page.$$eval("#messages li", (lis) => lis.map((li) => li.lastChild.textContent));

  const expected = [];
  const send = async (page, text) => {
    expected.push(text);
    await say(page, text);
    // Wait for it to come back, so the next sender's message follows it.
    await page.waitForFunction(
      (t) => [...document.querySelectorAll("#messages li")].some((li) => li.lastChild.textContent === t),
      text,
    );
  };
  await send(ann, "hello from ann");
  await send(bob, "hi ann");
  const all = async (n) => {
    for (const page of [ann, bob]) {
      const deadline = Date.now() + 20_000;
      while ((await lines(page)).length < n) {
        if (Date.now() > deadline) throw new Error(`page has ${(await lines(page)).length} of ${n} messages`);
        await sleep(50);
      }
    }
  };
  await all(2);

  for (let round = 0; round < 2; round++) {
    proxy.down = true;
    proxy.cutAll();
    await ann.waitForSelector("#status.reconnecting");
    for (let i = 0; i < 3; i++) {
      const text = `while away ${round}.${i}`;
      expected.push(text);
      await node.publish("chat:e2e", { user: "node", text });
    }
    await sleep(300);
    proxy.down = false;
    for (const page of [ann, bob]) {
      await page.waitForSelector("#status.connected", { timeout: 25_000 });
      await page.waitForFunction(() => document.querySelector("#resume").textContent.includes("nothing missed"));
    }
    await send(bob, `back ${round}`);
    await send(ann, `welcome back ${round}`);
    await all(expected.length);
  }

  mkdirSync(path.join(root, "target"), { recursive: true });
  await ann.screenshot({ path: path.join(root, "target/browser-demo.png"), fullPage: true });
  for (const page of [ann, bob]) assert.deepEqual(await lines(page), expected);
  assert.deepEqual(cspViolations, []);
});

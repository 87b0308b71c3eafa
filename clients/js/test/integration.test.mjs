// The client against the real ringcast binary, through a proxy that cuts
// every connection mid-stream and refuses reconnects while messages are
// published: every client must end up with every message once, in order.
import test from "node:test";
import assert from "node:assert/strict";
import WebSocket from "ws";
import { RingcastClient } from "../dist/index.js";
import { startServer, startProxy, waitFor, sleep } from "./harness.mjs";

const fast = { WebSocket, minReconnectDelay: 20, maxReconnectDelay: 200 };

async function setupWorld(t) {
  const server = await startServer();
  const proxy = await startProxy(server.addr);
  const clients = [];
  t.after(async () => {
    for (const c of clients) c.disconnect();
    await proxy.close();
    await server.stop();
  });
  return { server, proxy, clients };
}

test("every client gets every message once, in order, across repeated cuts", { timeout: 30_000 }, async (t) => {
  const { server, proxy, clients } = await setupWorld(t);
  const publisher = new RingcastClient(`ws://${server.addr}/ws`, fast);
  clients.push(publisher);
  await publisher.connect();

  const CHANNELS = ["room:a", "room:b"];
  const received = [];
  const subscribedEvents = [];
  for (let i = 0; i < 4; i++) {
    const c = new RingcastClient(`ws://${proxy.addr}/ws`, fast);
    clients.push(c);
    const got = Object.fromEntries(CHANNELS.map((ch) => [ch, []]));
    received.push(got);
    for (const ch of CHANNELS) {
      c.subscribe(ch, {
        onMessage: (data, meta) => got[ch].push([data, meta.offset]),
        onSubscribed: (e) => subscribedEvents.push(e),
      });
    }
    await c.connect();
  }
  await waitFor(() => subscribedEvents.length === 4 * CHANNELS.length, 5_000, "first subscribes");

  const sent = Object.fromEntries(CHANNELS.map((ch) => [ch, []]));
  let n = 0;
  const publishSome = async (count) => {
    for (let i = 0; i < count; i++) {
      const ch = CHANNELS[n % CHANNELS.length];
      const data = { n: n++, text: `message ${n}` };
      const offset = await publisher.publish(ch, data);
      sent[ch].push([data, offset]);
    }
  };

  for (let round = 0; round < 5; round++) {
    // Cut mid-stream: publishes are in flight to the clients when the sockets die.
    const inFlight = publishSome(10);
    await sleep(2);
    proxy.down = true;
    proxy.cutAll();
    await inFlight;
    // Published while every client is away.
    await publishSome(10);
    proxy.down = false;
    await publishSome(5);
    // Every client back and resubscribed before the next cut.
    const want = 4 * CHANNELS.length * (round + 2);
    await waitFor(() => subscribedEvents.length === want, 10_000, `round ${round} resubscribes`);
  }

  const total = (got) => CHANNELS.reduce((s, ch) => s + got[ch].length, 0);
  await waitFor(() => received.every((got) => total(got) === n), 15_000, `all ${n} messages at every client`);
  for (const got of received) {
    for (const ch of CHANNELS) assert.deepEqual(got[ch], sent[ch], `channel ${ch}`);
  }
  // Every resubscribe found the missed messages in history.
  const resumes = subscribedEvents.filter((e) => e.resumed);
  assert.equal(resumes.length, 4 * CHANNELS.length * 5);
  assert.ok(resumes.every((e) => e.recovered), "every resume recovered");
  assert.ok(proxy.accepted >= 4 * 6, "clients reconnected through the proxy");
});

test("a gap longer than history is reported as recovered:false and delivery continues live", { timeout: 20_000 }, async (t) => {
  const { server, proxy, clients } = await setupWorld(t);
  const publisher = new RingcastClient(`ws://${server.addr}/ws`, fast);
  const c = new RingcastClient(`ws://${proxy.addr}/ws`, fast);
  clients.push(publisher, c);
  await publisher.connect();
  const got = [];
  const subscribed = [];
  c.subscribe("room:gap", { onMessage: (d) => got.push(d), onSubscribed: (e) => subscribed.push(e) });
  await c.connect();
  await waitFor(() => subscribed.length === 1, 5_000, "subscribe");
  await publisher.publish("room:gap", 0);
  await waitFor(() => got.length === 1, 5_000, "first message");

  proxy.down = true;
  proxy.cutAll();
  for (let i = 1; i <= 150; i++) await publisher.publish("room:gap", i); // history keeps 100
  proxy.down = false;
  await waitFor(() => subscribed.length === 2, 10_000, "resubscribe");
  assert.deepEqual([subscribed[1].resumed, subscribed[1].recovered], [true, false]);
  assert.equal(subscribed[1].offset, 151);
  await publisher.publish("room:gap", "live");
  await waitFor(() => got.length === 2, 5_000, "live message");
  assert.deepEqual(got, [0, "live"]);
});

test("publish rejects with the server's error code", { timeout: 10_000 }, async (t) => {
  const { server, clients } = await setupWorld(t);
  const c = new RingcastClient(`ws://${server.addr}/ws`, fast);
  clients.push(c);
  await c.connect();
  await assert.rejects(c.publish("bad channel!", 1), { code: "invalid_channel" });
  assert.equal(typeof (await c.publish("ok", 1)), "number");
});

test("a connection gone silent is detected by the info heartbeat and resumed", { timeout: 15_000 }, async (t) => {
  const { server, proxy, clients } = await setupWorld(t);
  const publisher = new RingcastClient(`ws://${server.addr}/ws`, fast);
  const c = new RingcastClient(`ws://${proxy.addr}/ws`, { ...fast, heartbeatInterval: 100, heartbeatTimeout: 400 });
  clients.push(publisher, c);
  const disconnects = [];
  c.on("disconnected", (e) => disconnects.push(e.code));
  await publisher.connect();
  const got = [];
  const subscribed = [];
  c.subscribe("room:silent", { onMessage: (d) => got.push(d), onSubscribed: (e) => subscribed.push(e) });
  await c.connect();
  await waitFor(() => subscribed.length === 1, 5_000, "subscribe");
  // The real server answers the heartbeat: a quiet but healthy connection stays up.
  await sleep(800);
  assert.deepEqual(disconnects, []);

  proxy.freezeAll();
  await publisher.publish("room:silent", 1);
  await publisher.publish("room:silent", 2);
  await waitFor(() => disconnects.length === 1, 5_000, "heartbeat timeout");
  assert.equal(disconnects[0], 4000);
  await waitFor(() => got.length === 2, 5_000, "messages after the resume");
  assert.deepEqual(got, [1, 2]);
  assert.equal(subscribed[1].recovered, true);
});

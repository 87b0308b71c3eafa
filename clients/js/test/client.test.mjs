// The client's state machine against a hand-played server and a fake clock:
// close-code reactions, backoff reset, resume bookkeeping, duplicate
// suppression, publish outcomes, heartbeat and token refresh.
import test from "node:test";
import assert from "node:assert/strict";
import { RingcastClient } from "../dist/index.js";
import { FakeTimers, flush, makeFakeSocket, fakeJwt } from "./fakes.mjs";

function setup(options = {}) {
  const timers = options.timers ?? new FakeTimers();
  const { FakeSocket, sockets } = makeFakeSocket();
  const client = new RingcastClient("ws://example.test/ws", {
    WebSocket: FakeSocket,
    timers,
    random: () => 0.5,
    ...options,
  });
  const events = [];
  for (const name of ["connecting", "connected", "disconnected", "subscribed", "error"]) {
    client.on(name, (e) => events.push([name, e]));
  }
  const last = () => sockets[sockets.length - 1];
  return { client, timers, sockets, events, last };
}

/** Connects and answers nothing yet; returns the open socket. */
async function connectOpen(t) {
  t.client.connect();
  await flush();
  const s = t.last();
  s.open();
  return s;
}

test("reconnects after an abnormal close with jittered, growing delays, reset after a stable connection", async () => {
  const t = setup();
  await connectOpen(t);
  const delays = [];
  for (let i = 0; i < 5; i++) {
    t.last().serverClose(1006);
    const ev = t.events.filter(([n]) => n === "disconnected").at(-1)[1];
    delays.push(ev.reconnectIn);
    await t.timers.advance(ev.reconnectIn);
    assert.equal(t.sockets.length, i + 2, "a new socket after the delay");
    t.last().open(); // open, then dropped before it is stable
  }
  assert.deepEqual(delays, [125, 250, 500, 1000, 2000]);
  // Stable for stableAfter (2 s): the next drop starts from the first window again.
  await t.timers.advance(2_000);
  t.last().serverClose(1006);
  assert.equal(t.events.filter(([n]) => n === "disconnected").at(-1)[1].reconnectIn, 125);
});

test("a server that refuses every handshake is retried with delays capped at maxReconnectDelay", async () => {
  const t = setup({ random: () => 1 });
  t.client.connect();
  await flush();
  const delays = [];
  for (let i = 0; i < 12; i++) {
    t.last().serverClose(1006); // never opened
    const d = t.events.filter(([n]) => n === "disconnected").at(-1)[1].reconnectIn;
    delays.push(d);
    await t.timers.advance(d);
  }
  assert.equal(Math.max(...delays), 20_000);
  assert.ok(delays.every((d) => d >= 250), "no hot loop");
  assert.equal(t.sockets.length, 13);
});

test("1001 (drain) reconnects soon after a stable connection, and is not retried hot if repeated", async () => {
  const t = setup({ random: () => 1 });
  await connectOpen(t);
  await t.timers.advance(2_000); // stable
  const delays = [];
  for (let i = 0; i < 4; i++) {
    t.last().serverClose(1001, "server shutting down");
    const ev = t.events.filter(([n]) => n === "disconnected").at(-1)[1];
    assert.equal(ev.code, 1001);
    delays.push(ev.reconnectIn);
    await t.timers.advance(ev.reconnectIn);
    t.last().open(); // and closed again at once
  }
  assert.deepEqual(delays, [250, 500, 1000, 2000]);
});

test("1008 (slow consumer) reconnects and resumes with since", async () => {
  const t = setup();
  const s = await connectOpen(t);
  const got = [];
  t.client.subscribe("room:1", { onMessage: (d) => got.push(d) });
  s.reply("subscribe", { epoch: "E", offset: 4, recovered: false });
  s.push({ channel: "room:1", offset: 5, epoch: "E", data: "a" });
  s.serverClose(1008, "slow consumer");
  await t.timers.advance(1_000);
  const s2 = t.last();
  assert.notEqual(s2, s);
  s2.open();
  const cmd = s2.sent.find((c) => c.op === "subscribe");
  assert.deepEqual(cmd.since, { epoch: "E", offset: 5 });
});

test("4001 fetches a new token before reconnecting; without getToken the client stops with an error", async () => {
  let n = 0;
  const t = setup({ getToken: async () => `tok${++n}` });
  await connectOpen(t);
  assert.match(t.sockets[0].url, /token=tok1/);
  t.last().serverClose(4001, "token expired");
  await t.timers.advance(1_000);
  assert.match(t.last().url, /token=tok2/);

  const u = setup({ token: "fixed" });
  await connectOpen(u);
  u.last().serverClose(4001, "token expired");
  await u.timers.advance(60_000);
  assert.equal(u.sockets.length, 1, "no reconnect with a token known to be expired");
  assert.equal(u.client.state, "closed");
  assert.equal(u.events.find(([n]) => n === "error")[1].code, "close_4001");
});

test("1002/1007/1009 surface an error and are never retried hot", async () => {
  for (const code of [1002, 1007, 1009]) {
    const t = setup({ random: () => 0 }); // the jitter alone would allow 0 ms
    await connectOpen(t);
    const delays = [];
    for (let i = 0; i < 4; i++) {
      await t.timers.advance(5_000); // stable in between: backoff alone resets
      t.last().serverClose(code, "bad");
      delays.push(t.events.filter(([n]) => n === "disconnected").at(-1)[1].reconnectIn);
      await t.timers.advance(delays[i]);
      t.last().open();
    }
    const errors = t.events.filter(([n]) => n === "error").map(([, e]) => e.code);
    assert.deepEqual(errors, Array(4).fill(`close_${code}`));
    assert.deepEqual(delays, [500, 1000, 2000, 4000], `code ${code}`);
  }
});

test("disconnect() stops reconnecting and rejects queued publishes", async () => {
  const t = setup();
  await connectOpen(t);
  t.last().serverClose(1006);
  const p = t.client.publish("room:1", 1);
  t.client.disconnect();
  await assert.rejects(p, { code: "client_closed" });
  await t.timers.advance(60_000);
  assert.equal(t.sockets.length, 1);
  assert.equal(t.client.state, "closed");
});

test("resume: remembers epoch and offset, resubscribes with since, reports recovered", async () => {
  const t = setup();
  const s = await connectOpen(t);
  const got = [];
  const subscribed = [];
  const sub = t.client.subscribe("room:1", {
    onMessage: (d, m) => got.push([d, m.offset]),
    onSubscribed: (e) => subscribed.push(e),
  });
  assert.equal(s.sent[0].since, undefined, "first subscribe has no since");
  s.reply("subscribe", { epoch: "E", offset: 10, recovered: false });
  s.push({ channel: "room:1", offset: 11, epoch: "E", data: "m11" });
  s.push({ channel: "room:1", offset: 12, epoch: "E", data: "m12" });
  assert.deepEqual(sub.position, { epoch: "E", offset: 12 });

  s.serverClose(1006);
  await t.timers.advance(200);
  const s2 = t.last();
  s2.open();
  assert.deepEqual(s2.sent[0], { id: s2.sent[0].id, op: "subscribe", channel: "room:1", since: { epoch: "E", offset: 12 } });
  s2.reply("subscribe", { epoch: "E", offset: 14, recovered: true });
  s2.push({ channel: "room:1", offset: 13, epoch: "E", data: "m13" });
  s2.push({ channel: "room:1", offset: 14, epoch: "E", data: "m14" });

  // History lost (new epoch): the app is told recovered:false and delivery continues live.
  s2.serverClose(1006);
  await t.timers.advance(500);
  const s3 = t.last();
  s3.open();
  assert.deepEqual(s3.sent[0].since, { epoch: "E", offset: 14 });
  s3.reply("subscribe", { epoch: "F", offset: 3, recovered: false });
  s3.push({ channel: "room:1", offset: 4, epoch: "F", data: "f4" });

  assert.deepEqual(got, [["m11", 11], ["m12", 12], ["m13", 13], ["m14", 14], ["f4", 4]]);
  assert.deepEqual(
    subscribed.map((e) => [e.resumed, e.recovered, e.epoch]),
    [[false, false, "E"], [true, true, "E"], [true, false, "F"]],
  );
});

test("no duplicate reaches the app: replayed or repeated pushes at or below the last offset are dropped", async () => {
  const t = setup();
  const s = await connectOpen(t);
  const got = [];
  t.client.subscribe("c", { onMessage: (d, m) => got.push(m.offset) });
  s.reply("subscribe", { epoch: "E", offset: 0, recovered: false });
  for (const o of [1, 2, 3, 2, 3]) s.push({ channel: "c", offset: o, epoch: "E", data: o });
  s.serverClose(1006);
  await t.timers.advance(500);
  const s2 = t.last();
  s2.open();
  s2.reply("subscribe", { epoch: "E", offset: 5, recovered: true });
  // A server (or proxy) that replays from too far back: 1..3 were delivered already.
  for (const o of [1, 2, 3, 4, 5, 5, 6]) s2.push({ channel: "c", offset: o, epoch: "E", data: o });
  assert.deepEqual(got, [1, 2, 3, 4, 5, 6]);
});

test("a jump in live offsets or a new epoch is reported as a gap before the message", async () => {
  const t = setup();
  const s = await connectOpen(t);
  const seen = [];
  t.client.on("gap", (g) => seen.push(["event", g.lastOffset, g.offset]));
  t.client.subscribe("c", {
    onMessage: (d, m) => seen.push(["msg", m.epoch, m.offset]),
    onGap: (g) => seen.push(["gap", g.previousEpoch, g.lastOffset, g.epoch, g.offset]),
  });
  s.reply("subscribe", { epoch: "E", offset: 2, recovered: false });
  for (const [epoch, offset] of [["E", 3], ["E", 4], ["E", 7], ["E", 8], ["F", 1], ["F", 2]]) {
    s.push({ channel: "c", offset, epoch, data: offset });
  }
  assert.deepEqual(seen, [
    ["msg", "E", 3],
    ["msg", "E", 4],
    ["gap", "E", 4, "E", 7],
    ["event", 4, 7],
    ["msg", "E", 7],
    ["msg", "E", 8],
    ["gap", "E", 8, "F", 1],
    ["event", 8, 1],
    ["msg", "F", 1],
    ["msg", "F", 2],
  ]);
});

test("pushes for an unsubscribed channel are dropped, and unsubscribe tells the server", async () => {
  const t = setup();
  const s = await connectOpen(t);
  const got = [];
  const sub = t.client.subscribe("c", { onMessage: (d) => got.push(d) });
  s.reply("subscribe", { epoch: "E", offset: 0, recovered: false });
  s.push({ channel: "c", offset: 1, epoch: "E", data: 1 });
  const done = sub.unsubscribe();
  s.push({ channel: "c", offset: 2, epoch: "E", data: 2 });
  await flush();
  s.reply("unsubscribe", {});
  await done;
  assert.deepEqual(got, [1]);
  assert.deepEqual(s.ops(), ["subscribe", "unsubscribe"]);
  // A reconnect does not bring it back.
  s.serverClose(1006);
  await t.timers.advance(500);
  t.last().open();
  assert.deepEqual(t.last().ops(), []);
});

test("a refused subscribe reaches onError and the subscription is dropped", async () => {
  const t = setup();
  const s = await connectOpen(t);
  let error;
  t.client.subscribe("secret", { onError: (e) => (error = e) });
  s.replyError("subscribe", "forbidden");
  assert.equal(error.code, "forbidden");
  assert.deepEqual(t.client.subscriptions, []);
});

test("publish resolves to the offset, rejects with the server's code, and fails in-flight ones with disconnected", async () => {
  const t = setup();
  const s = await connectOpen(t);
  const ok = t.client.publish("c", { text: "hi" });
  const cmd = s.reply("publish", { offset: 42 });
  assert.deepEqual(cmd.data, { text: "hi" });
  assert.equal(await ok, 42);
  const refused = t.client.publish("c", 1);
  s.replyError("publish", "rate_limited", "over limits.command_rate");
  await assert.rejects(refused, { code: "rate_limited", message: "over limits.command_rate" });
  const lost = t.client.publish("c", 2);
  s.serverClose(1006);
  await assert.rejects(lost, { code: "disconnected" });
  // While reconnecting, a publish waits and goes out after the resubscribes.
  t.client.subscribe("c");
  const queued = t.client.publish("c", 3);
  await t.timers.advance(500);
  const s2 = t.last();
  s2.open();
  assert.deepEqual(s2.ops(), ["subscribe", "publish"]);
  s2.reply("publish", { offset: 7 });
  assert.equal(await queued, 7);
});

test("heartbeat: an info round trip after silence; no answer closes and reconnects", async () => {
  const t = setup({ heartbeatInterval: 15_000, heartbeatTimeout: 10_000 });
  const s = await connectOpen(t);
  await t.timers.advance(10_000);
  s.push({ id: 999, result: {} }); // any frame counts as life
  await t.timers.advance(14_000);
  assert.deepEqual(s.ops(), [], "no heartbeat while frames keep arriving");
  await t.timers.advance(1_000);
  assert.deepEqual(s.ops(), ["info"]);
  s.reply("info", { worker: 0, workers: 2 });
  await t.timers.advance(14_999);
  assert.deepEqual(s.ops(), ["info"]);
  await t.timers.advance(1);
  assert.deepEqual(s.ops(), ["info", "info"]);
  // Silence: the connection is given up within interval + timeout.
  await t.timers.advance(10_000);
  assert.deepEqual(s.closedWith, { code: 4000, reason: "heartbeat timeout" });
  const ev = t.events.filter(([n]) => n === "disconnected").at(-1)[1];
  assert.equal(ev.code, 4000);
  await t.timers.advance(ev.reconnectIn);
  assert.equal(t.sockets.length, 2);
});

test("token refresh: getToken and refresh before exp, rescheduled from expires_at", async () => {
  const timers = new FakeTimers();
  const nowS = () => Math.floor(timers.now() / 1000);
  let issued = 0;
  const t = setup({
    timers,
    heartbeatInterval: 0,
    getToken: async () => fakeJwt({ sub: "u", exp: nowS() + 100, n: ++issued }),
  });
  const s = await connectOpen(t);
  assert.equal(issued, 1);
  await t.timers.advance(79_000);
  assert.deepEqual(s.ops(), []);
  await t.timers.advance(1_000); // 80 % of 100 s
  assert.equal(issued, 2);
  const cmd = s.reply("refresh", { expires_at: nowS() + 100 });
  assert.equal(typeof cmd.token, "string");
  await flush();
  await t.timers.advance(80_000);
  assert.deepEqual(s.ops(), ["refresh", "refresh"]);
  // A refused refresh is reported and retried.
  s.replyError("refresh", "unauthorized", "bad signature");
  await flush();
  assert.equal(t.events.find(([n]) => n === "error")[1].code, "unauthorized");
  await t.timers.advance(5_000);
  assert.deepEqual(s.ops(), ["refresh", "refresh", "refresh"]);
});

test("without a global WebSocket the constructor explains what to pass", () => {
  if (globalThis.WebSocket) return; // Node ≥ 22 has one
  assert.throws(() => new RingcastClient("ws://x/ws"), /pass one/);
});

test("subscriptions made before connect() go out on open, and connect() resolves then", async () => {
  const t = setup();
  t.client.subscribe("a");
  t.client.subscribe("b");
  assert.throws(() => t.client.subscribe("a"), { code: "already_subscribed" });
  let resolved = false;
  const p = t.client.connect().then(() => (resolved = true));
  await flush();
  assert.equal(resolved, false);
  assert.equal(t.client.state, "connecting");
  t.last().open();
  await p;
  assert.equal(t.client.state, "connected");
  assert.deepEqual(t.last().sent.map((c) => [c.op, c.channel, c.since]), [
    ["subscribe", "a", undefined],
    ["subscribe", "b", undefined],
  ]);
});

test("subscribe and unsubscribe of one channel are never pipelined: each waits for the previous reply", async () => {
  const t = setup();
  const s = await connectOpen(t);
  const first = t.client.subscribe("c");
  const gone = first.unsubscribe();
  const subscribed = [];
  t.client.subscribe("c", { onSubscribed: (e) => subscribed.push(e) });
  await flush();
  assert.deepEqual(s.ops(), ["subscribe"], "the unsubscribe waits for the subscribe's reply");
  s.reply("subscribe", { epoch: "E", offset: 0, recovered: false });
  await flush();
  assert.deepEqual(s.ops(), ["subscribe", "unsubscribe"]);
  s.reply("unsubscribe", {});
  await gone;
  await flush();
  assert.deepEqual(s.ops(), ["subscribe", "unsubscribe", "subscribe"]);
  s.reply("subscribe", { epoch: "E", offset: 0, recovered: false });
  assert.equal(subscribed.length, 1);
  // Other channels are not held up.
  t.client.subscribe("d");
  assert.deepEqual(s.ops().at(-1), "subscribe");
});

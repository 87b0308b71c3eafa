// Measures the time from connection loss to resumed delivery with the
// client's default options: CLIENTS clients (default 10) behind a proxy
// that cuts every connection at once, ROUNDS times (default 10, so 100
// drops); right after each cut a message is published to every client's
// channel, and the clock stops when the client receives it (after its
// backoff, a new handshake, the resubscribe with `since` and the replay).
// Between rounds the clients stay connected past `stableAfter` so each drop
// starts from the first backoff window, as a single network blip would.
//
//   node bench/reconnect.mjs            (after npm run build; RINGCAST_BIN as in the tests)
import WebSocket from "ws";
import { RingcastClient } from "../dist/index.js";
import { startServer, startProxy, waitFor, sleep } from "../test/harness.mjs";

const CLIENTS = Number(process.env.CLIENTS ?? 10);
const ROUNDS = Number(process.env.ROUNDS ?? 10);

const server = await startServer();
const proxy = await startProxy(server.addr);
const publisher = new RingcastClient(`ws://${server.addr}/ws`, { WebSocket });
await publisher.connect();

const waiting = new Map(); // channel -> { t0, resolve }
const clients = [];
for (let i = 0; i < CLIENTS; i++) {
  const c = new RingcastClient(`ws://${proxy.addr}/ws`, { WebSocket }); // default options
  const channel = `bench:${i}`;
  c.subscribe(channel, {
    onMessage: (data) => {
      const w = waiting.get(channel);
      if (w && data === w.token) {
        waiting.delete(channel);
        w.resolve(performance.now() - w.t0);
      }
    },
  });
  await c.connect();
  clients.push(c);
}
await sleep(2_200);

const samples = [];
for (let round = 0; round < ROUNDS; round++) {
  const t0 = performance.now();
  const done = clients.map(
    (_, i) => new Promise((resolve) => waiting.set(`bench:${i}`, { t0, resolve, token: `r${round}` })),
  );
  for (const [, w] of waiting) w.token = `r${round}`;
  proxy.cutAll();
  await Promise.all(clients.map((_, i) => publisher.publish(`bench:${i}`, `r${round}`)));
  samples.push(...(await Promise.all(done)));
  // Stay up past stableAfter (2 s) so the next drop starts a fresh backoff.
  await waitFor(() => clients.every((c) => c.state === "connected"), 30_000, "reconnects");
  await sleep(2_200);
}

samples.sort((a, b) => a - b);
const q = (p) => samples[Math.min(samples.length - 1, Math.floor(p * samples.length))];
console.log(
  JSON.stringify({
    drops: samples.length,
    clients: CLIENTS,
    median_ms: +q(0.5).toFixed(1),
    p99_ms: +q(0.99).toFixed(1),
    min_ms: +samples[0].toFixed(1),
    max_ms: +samples.at(-1).toFixed(1),
  }),
);
for (const c of clients) c.disconnect();
publisher.disconnect();
await proxy.close();
await server.stop();

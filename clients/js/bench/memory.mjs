// The client's memory and CPU for 1,000 subscriptions in Node: heap before
// and after subscribing one client to 1,000 channels on the real server,
// the CPU time to subscribe them, to take 10,000 pushes spread over them,
// and to resubscribe all of them (with `since`) after a cut.
//
//   node --expose-gc bench/memory.mjs   (after npm run build)
import WebSocket from "ws";
import { RingcastClient } from "../dist/index.js";
import { startServer, startProxy, waitFor } from "../test/harness.mjs";

const N = Number(process.env.SUBSCRIPTIONS ?? 1000);
const PUSHES = 10_000;
const server = await startServer([
  "--set", `pubsub.max_subscriptions_per_connection=${N}`,
  "--set", "limits.command_rate=0",
]);
const proxy = await startProxy(server.addr);
const publisher = new RingcastClient(`ws://${server.addr}/ws`, { WebSocket });
await publisher.connect();
const client = new RingcastClient(`ws://${proxy.addr}/ws`, { WebSocket });
await client.connect();

const gc = () => globalThis.gc?.();
const heap = () => (gc(), process.memoryUsage());
const cpu = (since) => {
  const u = process.cpuUsage(since);
  return +((u.user + u.system) / 1000).toFixed(1);
};
let subscribed = 0;
let received = 0;
const before = heap();
let c0 = process.cpuUsage();
const subs = [];
for (let i = 0; i < N; i++) {
  subs.push(client.subscribe(`mem:${i}`, { onMessage: () => received++, onSubscribed: () => subscribed++ }));
}
await waitFor(() => subscribed === N, 30_000, "subscribes");
const subscribeCpu = cpu(c0);
const after = heap();

const c1 = process.cpuUsage();
const batch = [];
for (let i = 0; i < PUSHES; i++) {
  batch.push(publisher.publish(`mem:${i % N}`, { i }));
  if (batch.length === 500) await Promise.all(batch.splice(0));
}
await Promise.all(batch);
await waitFor(() => received === PUSHES, 30_000, "pushes");
const pushCpu = cpu(c1);

const c2 = process.cpuUsage();
const t2 = performance.now();
proxy.cutAll();
await waitFor(() => subscribed === 2 * N, 30_000, "resubscribes");
const resubscribeMs = performance.now() - t2;
const resubscribeCpu = cpu(c2);

const kib = (b) => +(b / 1024).toFixed(1);
console.log(
  JSON.stringify({
    subscriptions: N,
    gc: typeof globalThis.gc === "function",
    heap_used_before_kib: kib(before.heapUsed),
    heap_used_after_kib: kib(after.heapUsed),
    heap_per_subscription_bytes: Math.round((after.heapUsed - before.heapUsed) / N),
    rss_delta_kib: kib(after.rss - before.rss),
    subscribe_cpu_ms: subscribeCpu,
    pushes: PUSHES,
    push_cpu_ms_incl_publisher: pushCpu,
    resubscribe_all_ms: +resubscribeMs.toFixed(1),
    resubscribe_cpu_ms: resubscribeCpu,
  }),
);
client.disconnect();
publisher.disconnect();
await proxy.close();
await server.stop();

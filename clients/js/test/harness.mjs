// Shared by the integration test and the benchmarks: the real ringcast
// binary on a loopback port, and a TCP proxy in front of it that can cut
// every connection mid-stream and refuse new ones while "down".
import { spawn } from "node:child_process";
import { createServer, connect } from "node:net";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import path from "node:path";

const here = path.dirname(fileURLToPath(import.meta.url));

export function ringcastBin() {
  const bin = process.env.RINGCAST_BIN ?? path.resolve(here, "../../../target/debug/ringcast");
  if (!existsSync(bin)) throw new Error(`no ringcast binary at ${bin}: run cargo build -p ringcast or set RINGCAST_BIN`);
  return bin;
}

/** Starts `ringcast serve` on 127.0.0.1:0; resolves to { addr, stop }. */
export function startServer(extraArgs = []) {
  const child = spawn(ringcastBin(), ["serve", "--listen", "127.0.0.1:0", "--workers", "2", ...extraArgs], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  child.stderr.on("data", (d) => (stderr += d));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`ringcast did not report its address within 10 s; stderr:\n${stderr}`));
    }, 10_000);
    let out = "";
    child.stdout.on("data", (d) => {
      out += d;
      const m = /ringcast listening on (\S+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({
          addr: m[1],
          stop: () =>
            new Promise((done) => {
              if (child.exitCode !== null) return done();
              child.once("exit", () => done());
              child.kill("SIGKILL");
            }),
        });
      }
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`ringcast exited with ${code}; stderr:\n${stderr}`));
    });
  });
}

/** A TCP proxy to `target` ("host:port") on a loopback port. */
export async function startProxy(target) {
  const [host, port] = [target.slice(0, target.lastIndexOf(":")), Number(target.slice(target.lastIndexOf(":") + 1))];
  const live = new Set();
  const proxy = { down: false, accepted: 0 };
  const server = createServer((client) => {
    if (proxy.down) {
      client.destroy();
      return;
    }
    proxy.accepted++;
    const upstream = connect(port, host);
    const pair = { client, upstream };
    live.add(pair);
    const drop = () => {
      live.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on("error", drop).on("close", drop);
    upstream.on("error", drop).on("close", drop);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  proxy.addr = `127.0.0.1:${server.address().port}`;
  /** Cuts every connection at once, in whatever state its streams are. */
  proxy.cutAll = () => {
    const n = live.size;
    for (const { client, upstream } of [...live]) {
      client.destroy();
      upstream.destroy();
    }
    live.clear();
    return n;
  };
  /**
   * Stops forwarding on every connection without closing it: what a phone
   * that changed networks looks like to both ends (no FIN, no RST, silence).
   */
  proxy.freezeAll = () => {
    for (const { client, upstream } of live) {
      client.unpipe(upstream);
      upstream.unpipe(client);
      client.pause();
      upstream.pause();
    }
  };
  proxy.liveCount = () => live.size;
  proxy.close = () =>
    new Promise((r) => {
      proxy.cutAll();
      server.close(() => r());
    });
  return proxy;
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Polls `cond` until true or `ms` passes (then throws with `what`). */
export async function waitFor(cond, ms, what) {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

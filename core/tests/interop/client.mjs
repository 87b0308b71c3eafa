// Interop client for ringcast's `/echo` endpoint, written with Node `ws`.
//
// Run by core/tests/interop.rs, which installs the `ws` pinned in package.json
// into target/tmp/interop/node and points NODE_PATH at its node_modules (ws is
// loaded with require() so NODE_PATH applies). By hand:
//
//   npm install --prefix /tmp/wsnode ./core/tests/interop   # or copy package.json there
//   NODE_PATH=/tmp/wsnode/node_modules node client.mjs ws://127.0.0.1:PORT/echo [--max-message 65536] [--shutdown-check]
//
// Prints one line per check (`PASS name: detail` / `FAIL name: detail`) and
// exits 0 only when every check passed; every check has its own timeout.
// Same checks as client.py: text (ASCII, UTF-8), binary (0..255, empty), 60 KiB,
// a text message sent as 3 fragments (send(..., {fin:false})) echoed whole,
// ping -> pong, client-initiated close 1000 answered with 1000; with
// --max-message N an N-byte message echoes and N+1 bytes draw a 1009 close on a
// second connection; with --shutdown-check a last connection prints
// `READY shutdown-check` and expects a 1001 close (the harness sends SIGTERM).
// With --deflate: the server must have accepted permessage-deflate (which ws
// offers by default), and compressible JSON (small and 48 KiB) must echo.
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const WebSocket = require('ws');
const wsVersion = require('ws/package.json').version;

let CHECK_TIMEOUT_MS = 10_000;
const results = [];

function expect(cond, msg) {
  if (!cond) throw new Error(msg);
}

function describe(data, isBinary) {
  if (!isBinary) return `text of ${Buffer.byteLength(data)} UTF-8 bytes`;
  return `binary of ${data.length} bytes`;
}

function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms / 1000} s (${what})`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

async function check(name, fn) {
  try {
    const detail = await withTimeout(fn(), CHECK_TIMEOUT_MS, name);
    results.push([name, true]);
    console.log(`PASS ${name}: ${detail}`);
  } catch (e) {
    results.push([name, false]);
    console.log(`FAIL ${name}: ${e && e.message ? e.message : e}`);
  }
}

// A connection whose incoming messages, pongs and close are queued, so a check
// can wait for "the next one" without racing the event emitter.
class Conn {
  constructor(url) {
    this.ws = new WebSocket(url, { maxPayload: 0, handshakeTimeout: 5000 });
    this.messages = [];
    this.waiters = [];
    this.pongs = [];
    this.pongWaiters = [];
    this.closed = new Promise((resolve) => {
      this.ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() }));
    });
    this.opened = new Promise((resolve, reject) => {
      this.ws.once('open', resolve);
      this.ws.once('error', reject);
    });
    this.ws.on('error', (e) => { this.error = e; });
    this.ws.on('message', (data, isBinary) => this.push(this.messages, this.waiters, { data, isBinary }));
    this.ws.on('pong', (data) => this.push(this.pongs, this.pongWaiters, data));
  }

  push(queue, waiters, item) {
    const w = waiters.shift();
    if (w) w(item); else queue.push(item);
  }

  next(queue, waiters) {
    if (queue.length) return Promise.resolve(queue.shift());
    return new Promise((resolve) => waiters.push(resolve));
  }

  // Resolves with the next message, or rejects if the connection closes first.
  async nextMessage() {
    const closed = this.closed.then((c) => { throw new Error(`connection closed ${c.code} '${c.reason}' before a message arrived`); });
    return Promise.race([this.next(this.messages, this.waiters), closed]);
  }

  nextPong() { return this.next(this.pongs, this.pongWaiters); }

  send(data, opts) {
    return new Promise((resolve, reject) => this.ws.send(data, opts, (err) => (err ? reject(err) : resolve())));
  }
}

function chatJson(i) {
  return `{"channel":"room:lobby","offset":${1000 + i},"data":{"user":"user-${i % 7}","text":"on my way, see you at the station in ten minutes","ts":${1733000000 + i}}}`;
}

async function echo(conn, data, isBinary) {
  await conn.send(data, { binary: isBinary });
  const got = await conn.nextMessage();
  const sentDesc = describe(data, isBinary);
  expect(got.isBinary === isBinary, `sent ${sentDesc}, got ${describe(got.data, got.isBinary)}`);
  const want = Buffer.from(data);
  expect(Buffer.compare(got.data, want) === 0, `sent ${sentDesc}, got different ${describe(got.data, got.isBinary)}`);
  return `echoed ${sentDesc}`;
}

async function fragmented(conn) {
  const parts = ['frag-one|', 'fragment two é|', 'three 🦀'];
  await conn.send(parts[0], { fin: false });
  await conn.send(parts[1], { fin: false });
  await conn.send(parts[2], { fin: true });
  const got = await conn.nextMessage();
  const whole = parts.join('');
  expect(!got.isBinary, `expected text, got ${describe(got.data, got.isBinary)}`);
  expect(got.data.toString() === whole, `expected '${whole}', got '${got.data.toString().slice(0, 80)}'`);
  return `3 text fragments echoed as one message of ${Buffer.byteLength(whole)} bytes`;
}

async function ping(conn) {
  const payload = Buffer.from('interop-ping');
  const started = process.hrtime.bigint();
  conn.ws.ping(payload);
  const got = await conn.nextPong();
  expect(Buffer.compare(got, payload) === 0, `pong payload '${got}' != ping payload '${payload}'`);
  return `pong for '${payload}' after ${Number(process.hrtime.bigint() - started) / 1e6} ms`;
}

async function clientClose(conn) {
  const started = Date.now();
  conn.ws.close(1000, 'interop bye');
  const { code, reason } = await conn.closed;
  const ms = Date.now() - started;
  // ws reports 1006 when no close frame came back, else the code the server sent.
  expect(code === 1000, `server answered close with ${code} '${reason}', expected 1000`);
  // ws ends its side after both close frames and waits (30 s) for the server's FIN.
  expect(ms < 5000, `close took ${ms} ms: the server did not close TCP after the close handshake`);
  return `server echoed close ${code} '${reason}'; closed in ${ms} ms`;
}

async function oversize(url, limit) {
  const conn = new Conn(url);
  await conn.opened;
  const started = Date.now();
  conn.send(Buffer.alloc(limit + 1, 0x78), { binary: true }).catch(() => {});
  const outcome = await Promise.race([
    conn.closed.then((c) => ({ closed: c })),
    conn.nextMessage().then((m) => ({ message: m }), () => ({ pending: true })),
  ]);
  if (outcome.message) {
    conn.ws.terminate();
    throw new Error(`server echoed ${describe(outcome.message.data, outcome.message.isBinary)} instead of closing with 1009`);
  }
  const { code, reason } = await conn.closed;
  expect(code === 1009, `server closed with ${code} '${reason}', expected 1009`);
  return `message of ${limit + 1} bytes -> server close ${code} '${reason}' after ${Date.now() - started} ms`;
}

async function shutdown(url) {
  const conn = new Conn(url);
  await conn.opened;
  console.log('READY shutdown-check');
  const { code, reason } = await conn.closed;
  expect(code === 1001, `server closed with ${code} '${reason}', expected 1001`);
  return `server closed with ${code} '${reason}'`;
}

async function main() {
  const args = process.argv.slice(2);
  const url = args[0];
  if (!url) {
    console.log('usage: client.mjs URL [--max-message N] [--shutdown-check]');
    return 2;
  }
  const mm = args.indexOf('--max-message');
  const maxMessage = mm >= 0 ? Number(args[mm + 1]) : null;
  const shutdownCheck = args.includes('--shutdown-check');
  const deflate = args.includes('--deflate');
  console.log(`client: node ${process.version} ws ${wsVersion} -> ${url}`);

  const conn = new Conn(url);
  await withTimeout(conn.opened, CHECK_TIMEOUT_MS, 'connect');
  console.log(`connected: extensions ${conn.ws.extensions || 'none'}`);
  if (deflate) {
    await check('deflate-negotiated', async () => {
      const ext = conn.ws.extensions;
      expect(ext && ext.includes('permessage-deflate'), `server answered extensions '${ext}', expected permessage-deflate`);
      return `server accepted '${ext}'`;
    });
    await check('json-chat-compressed', () => echo(conn, chatJson(3), false));
    const page = '[' + Array.from({ length: 200 }, (_, i) => chatJson(i)).join(',').slice(0, 48 * 1024) + ']';
    await check('json-48KiB-compressed', () => echo(conn, page, false));
  }
  await check('text-ascii', () => echo(conn, 'hello, ringcast', false));
  await check('text-utf8', () => echo(conn, 'héllo wörld — ünïcode 😀 日本語', false));
  await check('binary-0-255', () => echo(conn, Buffer.from(Array.from({ length: 256 }, (_, i) => i)), true));
  await check('binary-empty', () => echo(conn, Buffer.alloc(0), true));
  await check('binary-60KiB', () => echo(conn, Buffer.from(Array.from({ length: 60 * 1024 }, (_, i) => i % 251)), true));
  await check('text-60KiB', () => echo(conn, 'abé€'.repeat((60 * 1024) / 8), false));
  if (maxMessage !== null) {
    await check('binary-at-limit', () => echo(conn, Buffer.from(Array.from({ length: maxMessage }, (_, i) => i % 253)), true));
  }
  await check('text-3-fragments', () => fragmented(conn));
  await check('ping-pong', () => ping(conn));
  await check('client-close-1000', () => clientClose(conn));
  if (maxMessage !== null) await check('server-close-1009', () => oversize(url, maxMessage));
  if (shutdownCheck) {
    CHECK_TIMEOUT_MS = 20_000;
    await check('server-close-1001-on-sigterm', () => shutdown(url));
  }

  const failed = results.filter(([, ok]) => !ok).map(([name]) => name);
  console.log(`${results.length - failed.length}/${results.length} checks ok${failed.length ? '; failed: ' + failed.join(', ') : ''}`);
  return failed.length ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (e) => { console.log(`FAIL setup: ${e && e.message ? e.message : e}`); process.exit(1); },
);

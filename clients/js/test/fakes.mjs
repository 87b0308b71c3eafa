// Test doubles: a clock whose time moves only when the test says so, and a
// WebSocket whose server side the test plays by hand.

export class FakeTimers {
  constructor(start = 1_700_000_000_000) {
    this.time = start;
    this.seq = 0;
    this.timers = new Map();
  }
  now() {
    return this.time;
  }
  setTimeout(fn, ms) {
    const id = ++this.seq;
    this.timers.set(id, { at: this.time + Math.max(0, ms), fn, id });
    return id;
  }
  clearTimeout(id) {
    this.timers.delete(id);
  }
  /** The delays of the timers now pending, from now. */
  pending() {
    return [...this.timers.values()].map((t) => t.at - this.time);
  }
  /** Moves time forward, running every timer that falls due, in order. */
  async advance(ms) {
    const end = this.time + ms;
    for (;;) {
      const due = [...this.timers.values()].filter((t) => t.at <= end).sort((a, b) => a.at - b.at || a.id - b.id)[0];
      if (!due) break;
      this.timers.delete(due.id);
      this.time = due.at;
      due.fn();
      await flush();
    }
    this.time = end;
    await flush();
  }
}

/** Lets promise callbacks (getToken, replies) run. */
export async function flush() {
  for (let i = 0; i < 10; i++) await Promise.resolve();
}

export function makeFakeSocket() {
  const sockets = [];
  class FakeSocket {
    constructor(url) {
      this.url = url;
      this.sent = [];
      this.closedWith = undefined;
      this.onopen = this.onmessage = this.onclose = this.onerror = null;
      sockets.push(this);
    }
    send(text) {
      this.sent.push(JSON.parse(text));
    }
    close(code, reason) {
      this.closedWith = { code, reason };
    }
    // --- the server's side ---
    open() {
      this.onopen?.({});
    }
    push(obj) {
      this.onmessage?.({ data: JSON.stringify(obj) });
    }
    serverClose(code, reason = "") {
      this.onclose?.({ code, reason });
    }
    /** Answers the last command with `op` (or the given id) with a result. */
    reply(op, result) {
      const cmd = [...this.sent].reverse().find((c) => c.op === op);
      if (!cmd) throw new Error(`no ${op} sent; sent: ${JSON.stringify(this.sent)}`);
      this.push({ id: cmd.id, result });
      return cmd;
    }
    replyError(op, code, message = code) {
      const cmd = [...this.sent].reverse().find((c) => c.op === op);
      if (!cmd) throw new Error(`no ${op} sent`);
      this.push({ id: cmd.id, error: { code, message } });
      return cmd;
    }
    ops() {
      return this.sent.map((c) => c.op);
    }
  }
  return { FakeSocket, sockets };
}

/** A unsigned JWT-shaped token with the given claims (the client never verifies). */
export function fakeJwt(claims) {
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString("base64url");
  return `${b64({ alg: "HS256", typ: "JWT" })}.${b64(claims)}.sig`;
}

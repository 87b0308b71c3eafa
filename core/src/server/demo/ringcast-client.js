// ringcast-client, built from clients/js by scripts/bundle.mjs: do not edit by hand.

// ---- timers.js
//! The clock and timers the client uses, injectable so that tests drive time
//! by hand instead of sleeping.
/** The real clock: `Date.now` and the global timers (browsers and Node). */
export const systemTimers = {
    now: () => Date.now(),
    setTimeout: (fn, ms) => globalThis.setTimeout(fn, ms),
    clearTimeout: (handle) => globalThis.clearTimeout(handle),
};

// ---- backoff.js
//! Full-jitter exponential backoff: the n-th retry waits a uniformly random
//! time in [0, min(max, min * 2^n)]. The randomness spreads a crowd of clients
//! dropped at once (a server restart) over the whole window instead of sending
//! them back together.
export class Backoff {
    options;
    attempt = 0;
    constructor(options) {
        this.options = options;
    }
    /** The ceiling for the next retry, without consuming it. */
    ceiling() {
        const { minDelay, maxDelay } = this.options;
        // 2^attempt overflows to Infinity long after it passes maxDelay; cap the
        // exponent so the product stays finite.
        const factor = Math.pow(2, Math.min(this.attempt, 30));
        return Math.min(maxDelay, minDelay * factor);
    }
    /** The wait before the next retry; each call widens the window. */
    next() {
        const delay = this.options.random() * this.ceiling();
        this.attempt += 1;
        return delay;
    }
    /** How many retries in a row so far. */
    get attempts() {
        return this.attempt;
    }
    /** Back to the first window: called once a connection proved stable. */
    reset() {
        this.attempt = 0;
    }
}

// ---- errors.js
//! The error type every rejected promise and `error` event carries: the
//! server's stable error code (docs/protocol.md, "Error codes") or one of the
//! client's own codes below.
/**
 * Codes the client produces itself, besides the server's:
 * - `disconnected`: the command was sent but the connection closed before its
 *   reply, so whether the server ran it is unknown;
 * - `client_closed`: `disconnect()` was called while the command waited;
 * - `close_<N>`: the server closed with code N, one the client does not retry
 *   blindly (1002, 1007, 1009) or a 4001 without `getToken`.
 * - `token`: `getToken` threw.
 */
export class RingcastError extends Error {
    code;
    name = "RingcastError";
    constructor(
    /** The server's error code (`forbidden`, `rate_limited`, …) or a client code. */
    code, message) {
        super(message);
        this.code = code;
    }
}

// ---- token.js
//! Reads a JWT's `exp` without verifying it: the client only needs to know
//! when to refresh. The server is the one that checks signatures.
/** The token's `exp` in Unix seconds, or `undefined` if it has none or is not a JWT. */
export function tokenExpiry(token) {
    const parts = token.split(".");
    if (parts.length !== 3)
        return undefined;
    try {
        const b64 = parts[1].replace(/-/g, "+").replace(/_/g, "/");
        const padded = b64 + "=".repeat((4 - (b64.length % 4)) % 4);
        const claims = JSON.parse(atob(padded));
        if (claims && typeof claims === "object" && "exp" in claims) {
            const exp = claims.exp;
            if (typeof exp === "number" && Number.isFinite(exp))
                return exp;
        }
    }
    catch {
        // Not base64 or not JSON: treat as a token without expiry.
    }
    return undefined;
}

// ---- emitter.js
//! A minimal typed event emitter, so the package needs neither Node's
//! `events` nor the DOM's `EventTarget` (whose events cannot carry typed data).
export class Emitter {
    listeners = {};
    /** Adds a listener; returns a function that removes it. */
    on(name, listener) {
        let set = this.listeners[name];
        if (!set) {
            set = new Set();
            this.listeners[name] = set;
        }
        set.add(listener);
        return () => this.off(name, listener);
    }
    off(name, listener) {
        this.listeners[name]?.delete(listener);
    }
    emit(name, event) {
        const set = this.listeners[name];
        if (!set)
            return;
        for (const listener of [...set]) {
            // A throwing listener must not break the connection's state machine.
            try {
                listener(event);
            }
            catch (err) {
                queueMicrotask(() => {
                    throw err;
                });
            }
        }
    }
}

// ---- socket.js
//! The part of the WebSocket API the client uses. The browser's `WebSocket`,
//! Node 22's global one and the `ws` package all fit it, so none of them is a
//! dependency: the app passes one in where there is no global.
/** The environment's WebSocket, if it has one (browsers, Node ≥ 22). */
export function globalWebSocket() {
    return globalThis.WebSocket;
}
/** A text frame's payload as a string, whatever type the implementation delivers. */
export function frameText(data) {
    if (typeof data === "string")
        return data;
    // `ws` may hand over a Buffer (a Uint8Array); ArrayBuffer for binaryType "arraybuffer".
    if (data instanceof ArrayBuffer || ArrayBuffer.isView(data)) {
        return new TextDecoder().decode(data);
    }
    return String(data);
}

// ---- subscription.js
//! A channel the app subscribed to: its handlers and the resume bookkeeping
//! (epoch and last delivered offset) that lets a reconnect continue exactly
//! where delivery stopped.
/** Per-channel state kept by the client. */
export class ChannelState {
    channel;
    handlers;
    epoch;
    offset = 0;
    constructor(channel, handlers) {
        this.channel = channel;
        this.handlers = handlers;
    }
    /** The `since` to resume from, once a subscribe reply gave an epoch. */
    since() {
        return this.epoch === undefined ? undefined : { epoch: this.epoch, offset: this.offset };
    }
    /** Records a subscribe reply; returns whether it was a resume attempt. */
    subscribed(epoch, lastOffset, recovered) {
        const resumed = this.epoch !== undefined;
        // Recovered: the replay starts right after our offset, keep it. Otherwise
        // live pushes start after the channel's current last offset.
        if (!recovered || this.epoch !== epoch)
            this.offset = lastOffset;
        this.epoch = epoch;
        return resumed;
    }
    /**
     * Decides what a push is: a duplicate (at or below the last delivered
     * offset of the same epoch: dropped), the next message, or a message
     * after a gap (an offset skipped, or a new epoch): delivered after the
     * returned {@link GapEvent}.
     */
    accept(epoch, offset) {
        if (this.epoch === undefined)
            return "duplicate";
        if (epoch === this.epoch && offset <= this.offset)
            return "duplicate";
        const next = epoch === this.epoch && offset === this.offset + 1;
        const gap = {
            channel: this.channel,
            epoch,
            lastOffset: this.offset,
            previousEpoch: this.epoch,
            offset,
        };
        this.epoch = epoch;
        this.offset = offset;
        return next ? "next" : gap;
    }
}

// ---- client.js
//! The ringcast client: one WebSocket connection, kept up with full-jitter
//! backoff, whose subscriptions survive reconnects without a gap or a
//! duplicate (resume with `since`), whose token is refreshed before it
//! expires, and whose silence is noticed through an application-level
//! heartbeat (the `info` command) because browsers hide WebSocket pings.
/** The close code the client uses for a connection it gives up on after a silent heartbeat. */
export const HEARTBEAT_TIMEOUT_CODE = 4000;
/** Close codes after which reconnecting as-is would fail the same way. */
const PROTOCOL_ERROR_CODES = new Set([1002, 1007, 1009]);
/** setTimeout takes a signed 32-bit delay; longer ones fire at once. */
const MAX_TIMER_MS = 2_000_000_000;
export class RingcastClient extends Emitter {
    url;
    options;
    getToken;
    WebSocketImpl;
    backoff;
    token;
    needToken;
    stateValue = "idle";
    ws;
    /** Bumped whenever a socket is abandoned, so its late events are ignored. */
    generation = 0;
    nextId = 1;
    pending = new Map();
    outbox = [];
    channels = new Map();
    /** Per channel, the subscribe/unsubscribe in flight on this connection (see `serial`). */
    channelOps = new Map();
    /** Consecutive 1002/1007/1009 closes: raise the minimum wait so a bad peer is never retried hot. */
    protocolErrors = 0;
    lastFrameAt = 0;
    heartbeatDeadline;
    reconnectTimer;
    stableTimer;
    heartbeatTimer;
    refreshTimer;
    connectedWaiters = [];
    constructor(url, options = {}) {
        super();
        this.url = url;
        this.token = options.token;
        this.getToken = options.getToken;
        this.needToken = options.getToken !== undefined && options.token === undefined;
        const impl = options.WebSocket ?? globalWebSocket();
        if (!impl) {
            throw new Error("ringcast-client: no global WebSocket here (Node < 22): pass one, e.g. `new RingcastClient(url, { WebSocket })` with `import WebSocket from \"ws\"`");
        }
        this.WebSocketImpl = impl;
        this.options = {
            minReconnectDelay: options.minReconnectDelay ?? 250,
            maxReconnectDelay: options.maxReconnectDelay ?? 20_000,
            stableAfter: options.stableAfter ?? 2_000,
            heartbeatInterval: options.heartbeatInterval ?? 15_000,
            heartbeatTimeout: options.heartbeatTimeout ?? 10_000,
            refreshAt: options.refreshAt ?? 0.8,
            timers: options.timers ?? systemTimers,
            random: options.random ?? Math.random,
        };
        this.backoff = new Backoff({
            minDelay: this.options.minReconnectDelay,
            maxDelay: this.options.maxReconnectDelay,
            random: this.options.random,
        });
    }
    get state() {
        return this.stateValue;
    }
    /**
     * Starts connecting (and reconnecting until `disconnect()`). Resolves on
     * the next successful connection; rejects only if `disconnect()` comes first.
     */
    connect() {
        const wait = new Promise((resolve, reject) => this.connectedWaiters.push({ resolve, reject }));
        if (this.stateValue === "idle" || this.stateValue === "closed") {
            this.protocolErrors = 0;
            this.backoff.reset();
            void this.open();
        }
        else if (this.stateValue === "connected") {
            this.resolveWaiters();
        }
        return wait;
    }
    /** Closes the connection and stops reconnecting. Subscriptions are kept: a later `connect()` resumes them. */
    disconnect() {
        if (this.stateValue === "idle" || this.stateValue === "closed")
            return;
        this.clear("reconnectTimer");
        const ws = this.ws;
        this.abandon(1000, "client disconnect");
        try {
            ws?.close(1000, "client disconnect");
        }
        catch {
            // Closing a socket still connecting may throw in some implementations.
        }
        this.stateValue = "closed";
        for (const q of this.outbox.splice(0))
            q.pending.reject(new RingcastError("client_closed", "disconnect() was called"));
        for (const w of this.connectedWaiters.splice(0))
            w.reject(new RingcastError("client_closed", "disconnect() was called"));
        this.emit("disconnected", { code: 1000, reason: "client disconnect", reconnectIn: null });
    }
    /**
     * Subscribes to a channel; after a reconnect the client resumes it with
     * `since` so each message reaches `onMessage` once, in order.
     */
    subscribe(channel, handlers = {}) {
        if (this.channels.has(channel)) {
            throw new RingcastError("already_subscribed", `already subscribed to ${channel}`);
        }
        const state = new ChannelState(channel, handlers);
        this.channels.set(channel, state);
        if (this.stateValue === "connected")
            this.sendSubscribe(state);
        return {
            channel,
            get position() {
                const since = state.since();
                return since && { ...since };
            },
            unsubscribe: () => this.unsubscribe(state),
        };
    }
    /**
     * Publishes JSON data; resolves to its offset in the channel once the
     * server has it in history. Rejects with a RingcastError whose `code` is
     * the server's (`forbidden`, `rate_limited`, `overloaded`, …), or
     * `disconnected` if the connection dropped before the reply (the message
     * may or may not have been published). While the client is reconnecting,
     * publishes wait and go out once it is connected.
     */
    publish(channel, data) {
        return this.command({ op: "publish", channel, data }).then((r) => r.offset);
    }
    /** Subscribed channels (the app's view: includes those waiting for a reconnect). */
    get subscriptions() {
        return [...this.channels.keys()];
    }
    // ---- commands ------------------------------------------------------
    command(command) {
        return new Promise((resolve, reject) => {
            if (this.stateValue === "closed" || this.stateValue === "idle") {
                reject(new RingcastError("client_closed", "the client is not connected; call connect()"));
                return;
            }
            const pending = { resolve, reject };
            if (this.stateValue === "connected")
                this.send(command, pending);
            else
                this.outbox.push({ command, pending });
        });
    }
    send(command, pending) {
        const id = this.nextId++;
        if (pending)
            this.pending.set(id, pending);
        try {
            this.ws?.send(JSON.stringify({ id, ...command }));
        }
        catch (err) {
            this.pending.delete(id);
            pending?.reject(new RingcastError("disconnected", `send failed: ${String(err)}`));
        }
    }
    /**
     * Runs the channel's subscribe/unsubscribe commands one at a time: the
     * next is sent only once the previous one's reply arrived. The server may
     * answer a pipelined subscribe + unsubscribe of a channel owned by another
     * core out of order (and then lose a following subscribe), so the client
     * never pipelines them. With nothing in flight, `fn` runs at once, keeping
     * the resubscribes ahead of queued publishes on a new connection.
     */
    serial(channel, fn) {
        const generation = this.generation;
        const run = () => (generation === this.generation ? fn() : Promise.resolve());
        const prev = this.channelOps.get(channel);
        const next = prev ? prev.then(run, run) : run();
        this.channelOps.set(channel, next);
        void next.finally(() => {
            if (this.channelOps.get(channel) === next)
                this.channelOps.delete(channel);
        });
        return next;
    }
    sendSubscribe(state) {
        const generation = this.generation;
        void this.serial(state.channel, () => new Promise((done) => {
            // An unsubscribe came first while this waited: nothing to do.
            if (this.channels.get(state.channel) !== state)
                return done();
            const since = state.since();
            const command = { op: "subscribe", channel: state.channel };
            if (since)
                command.since = since;
            this.send(command, {
                resolve: (result) => {
                    done();
                    if (this.channels.get(state.channel) !== state || generation !== this.generation)
                        return;
                    const resumed = state.subscribed(result.epoch, result.offset, result.recovered);
                    const event = {
                        channel: state.channel,
                        epoch: result.epoch,
                        offset: result.offset,
                        resumed,
                        recovered: result.recovered,
                    };
                    this.emit("subscribed", event);
                    state.handlers.onSubscribed?.(event);
                },
                reject: (error) => {
                    done();
                    // A lost connection resubscribes on the next one; anything else is the server's refusal.
                    if (error.code === "disconnected" || this.channels.get(state.channel) !== state)
                        return;
                    this.channels.delete(state.channel);
                    state.handlers.onError?.(error);
                    this.emit("error", error);
                },
            });
        }));
    }
    async unsubscribe(state) {
        if (this.channels.get(state.channel) !== state)
            return;
        this.channels.delete(state.channel);
        if (this.stateValue !== "connected")
            return;
        await this.serial(state.channel, () => this.command({ op: "unsubscribe", channel: state.channel }).then(() => undefined, () => undefined));
    }
    // ---- connection lifecycle -----------------------------------------
    async open() {
        const generation = ++this.generation;
        this.stateValue = "connecting";
        this.emit("connecting", { attempt: this.backoff.attempts });
        if (this.getToken && this.needToken) {
            try {
                this.token = await this.getToken();
                this.needToken = false;
            }
            catch (err) {
                if (generation !== this.generation)
                    return;
                this.emit("error", new RingcastError("token", `getToken failed: ${String(err)}`));
                this.retry(1006, "getToken failed", false);
                return;
            }
            if (generation !== this.generation)
                return;
        }
        let ws;
        try {
            ws = new this.WebSocketImpl(this.socketUrl());
        }
        catch (err) {
            this.emit("error", new RingcastError("connect", String(err)));
            this.retry(1006, String(err), false);
            return;
        }
        this.ws = ws;
        let opened = false;
        ws.onopen = () => {
            if (generation !== this.generation)
                return;
            opened = true;
            this.onOpen();
        };
        ws.onmessage = (event) => {
            if (generation !== this.generation)
                return;
            this.onFrame(frameText(event.data));
        };
        ws.onclose = (event) => {
            if (generation !== this.generation)
                return;
            this.onClose(event.code, event.reason ?? "", opened);
        };
        // An error is always followed by a close event, which does the work.
        ws.onerror = () => undefined;
    }
    socketUrl() {
        if (this.token === undefined)
            return this.url;
        const url = new URL(this.url);
        url.searchParams.set("token", this.token);
        return url.toString();
    }
    onOpen() {
        const { timers } = this.options;
        this.stateValue = "connected";
        this.lastFrameAt = timers.now();
        this.stableTimer = timers.setTimeout(() => {
            this.stableTimer = undefined;
            this.backoff.reset();
        }, this.options.stableAfter);
        this.emit("connected", {});
        // Resubscribe first: the server answers in order, so the replay of every
        // channel is under way before the queued publishes reach it.
        for (const state of this.channels.values())
            this.sendSubscribe(state);
        for (const q of this.outbox.splice(0))
            this.send(q.command, q.pending);
        this.armHeartbeat(this.options.heartbeatInterval);
        this.scheduleRefresh(this.token === undefined ? undefined : tokenExpiry(this.token));
        this.resolveWaiters();
    }
    resolveWaiters() {
        for (const w of this.connectedWaiters.splice(0))
            w.resolve();
    }
    onFrame(text) {
        this.lastFrameAt = this.options.timers.now();
        this.heartbeatDeadline = undefined;
        let msg;
        try {
            msg = JSON.parse(text);
        }
        catch {
            return;
        }
        if (msg === null || typeof msg !== "object")
            return;
        if ("result" in msg || "error" in msg) {
            if (typeof msg.id !== "number") {
                if (msg.error)
                    this.emit("error", new RingcastError(msg.error.code, msg.error.message));
                return;
            }
            const pending = this.pending.get(msg.id);
            if (!pending)
                return;
            this.pending.delete(msg.id);
            if (msg.error)
                pending.reject(new RingcastError(String(msg.error.code), String(msg.error.message)));
            else
                pending.resolve(msg.result);
            return;
        }
        if (typeof msg.channel === "string" && typeof msg.offset === "number") {
            const state = this.channels.get(msg.channel);
            if (!state)
                return;
            const seen = state.accept(String(msg.epoch), msg.offset);
            if (seen === "duplicate")
                return;
            if (seen !== "next") {
                state.handlers.onGap?.(seen);
                this.emit("gap", seen);
            }
            state.handlers.onMessage?.(msg.data, { channel: msg.channel, offset: msg.offset, epoch: String(msg.epoch) });
        }
    }
    onClose(code, reason, wasOpen) {
        this.abandon(code, reason);
        this.retry(code, reason, wasOpen);
    }
    /** Forgets the current socket: late events are ignored, commands in flight fail. */
    abandon(_code, _reason) {
        this.generation++;
        const ws = this.ws;
        if (ws) {
            ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
            this.ws = undefined;
        }
        this.clear("stableTimer");
        this.clear("heartbeatTimer");
        this.clear("refreshTimer");
        this.heartbeatDeadline = undefined;
        this.channelOps.clear();
        const pending = [...this.pending.values()];
        this.pending.clear();
        for (const p of pending)
            p.reject(new RingcastError("disconnected", "the connection closed before the reply"));
    }
    /** Decides how to come back after a close, per docs/protocol.md's close codes. */
    retry(code, reason, wasOpen) {
        let delay;
        if (code === 1001) {
            // Drain or idle timeout: the server asks us to come back (elsewhere).
            // After a stable connection the backoff is in its first window (at
            // most minReconnectDelay): soon. A server that closes with 1001 right
            // after every open still meets a growing wait, never a hot loop.
            delay = this.backoff.next();
        }
        else if (code === 4001) {
            if (!this.getToken) {
                this.stop(code, reason, new RingcastError("close_4001", "token expired and no getToken to fetch a new one"));
                return;
            }
            this.needToken = true;
            delay = this.backoff.next();
        }
        else if (PROTOCOL_ERROR_CODES.has(code)) {
            this.protocolErrors += 1;
            this.emit("error", new RingcastError(`close_${code}`, reason || `closed with ${code}`));
            // Never faster than a floor that doubles with each such close in a row.
            const floor = Math.min(this.options.maxReconnectDelay, this.options.minReconnectDelay * Math.pow(2, Math.min(this.protocolErrors, 30)));
            delay = Math.max(floor, this.backoff.next());
        }
        else {
            if (!wasOpen && this.getToken)
                this.needToken = true; // maybe a 401 a browser cannot see
            delay = this.backoff.next();
        }
        if (wasOpen && !PROTOCOL_ERROR_CODES.has(code))
            this.protocolErrors = 0;
        this.stateValue = "reconnecting";
        this.emit("disconnected", { code, reason, reconnectIn: delay });
        if (this.stateValue !== "reconnecting")
            return; // a listener called disconnect()
        this.reconnectTimer = this.options.timers.setTimeout(() => {
            this.reconnectTimer = undefined;
            void this.open();
        }, delay);
    }
    stop(code, reason, error) {
        this.stateValue = "closed";
        this.emit("error", error);
        for (const q of this.outbox.splice(0))
            q.pending.reject(error);
        for (const w of this.connectedWaiters.splice(0))
            w.reject(error);
        this.emit("disconnected", { code, reason, reconnectIn: null });
    }
    // ---- heartbeat -------------------------------------------------------
    armHeartbeat(ms) {
        if (this.options.heartbeatInterval <= 0)
            return;
        this.clear("heartbeatTimer");
        this.heartbeatTimer = this.options.timers.setTimeout(() => this.heartbeatTick(), ms);
    }
    /**
     * Runs when the connection may have been silent for a heartbeat interval.
     * Timers are not reset on every frame (that would cost a timer per
     * message); the tick checks the time of the last frame instead.
     */
    heartbeatTick() {
        this.heartbeatTimer = undefined;
        if (this.stateValue !== "connected")
            return;
        const now = this.options.timers.now();
        if (this.heartbeatDeadline !== undefined) {
            if (now >= this.heartbeatDeadline) {
                const ws = this.ws;
                this.onClose(HEARTBEAT_TIMEOUT_CODE, "heartbeat timeout", true);
                try {
                    ws?.close(HEARTBEAT_TIMEOUT_CODE, "heartbeat timeout");
                }
                catch {
                    // The socket is being dropped anyway.
                }
                return;
            }
            this.armHeartbeat(this.heartbeatDeadline - now);
            return;
        }
        const silent = now - this.lastFrameAt;
        if (silent < this.options.heartbeatInterval) {
            this.armHeartbeat(this.options.heartbeatInterval - silent);
            return;
        }
        // `info` without a channel is answered by the connection's own core: a
        // cheap round trip every protocol v1 server supports, needing no permission.
        this.heartbeatDeadline = now + this.options.heartbeatTimeout;
        this.send({ op: "info" }, { resolve: () => undefined, reject: () => undefined });
        this.armHeartbeat(this.options.heartbeatTimeout);
    }
    // ---- token refresh --------------------------------------------------
    scheduleRefresh(expSeconds) {
        this.clear("refreshTimer");
        if (!this.getToken || expSeconds === undefined || expSeconds === null)
            return;
        const remaining = expSeconds * 1000 - this.options.timers.now();
        const wait = Math.max(0, Math.min(MAX_TIMER_MS, remaining * this.options.refreshAt));
        this.refreshTimer = this.options.timers.setTimeout(() => {
            this.refreshTimer = undefined;
            void this.refresh();
        }, wait);
    }
    async refresh() {
        if (!this.getToken || this.stateValue !== "connected")
            return;
        const generation = this.generation;
        let token;
        try {
            token = await this.getToken();
        }
        catch (err) {
            this.emit("error", new RingcastError("token", `getToken failed: ${String(err)}`));
            this.retryRefreshLater(generation);
            return;
        }
        if (generation !== this.generation)
            return;
        try {
            const result = await this.command({ op: "refresh", token });
            this.token = token;
            if (generation === this.generation)
                this.scheduleRefresh(result.expires_at ?? tokenExpiry(token));
        }
        catch (err) {
            if (generation !== this.generation)
                return;
            this.emit("error", err);
            this.retryRefreshLater(generation);
        }
    }
    retryRefreshLater(generation) {
        if (generation !== this.generation)
            return;
        this.clear("refreshTimer");
        this.refreshTimer = this.options.timers.setTimeout(() => {
            this.refreshTimer = undefined;
            void this.refresh();
        }, 5_000);
    }
    clear(name) {
        const handle = this[name];
        if (handle !== undefined) {
            this.options.timers.clearTimeout(handle);
            this[name] = undefined;
        }
    }
}

//! The ringcast client: one WebSocket connection, kept up with full-jitter
//! backoff, whose subscriptions survive reconnects without a gap or a
//! duplicate (resume with `since`), whose token is refreshed before it
//! expires, and whose silence is noticed through an application-level
//! heartbeat (the `info` command) because browsers hide WebSocket pings.

import { Backoff } from "./backoff.js";
import { Emitter } from "./emitter.js";
import { RingcastError } from "./errors.js";
import { frameText, globalWebSocket, type WebSocketConstructor, type WebSocketLike } from "./socket.js";
import {
  ChannelState,
  type GapEvent,
  type SubscribedEvent,
  type Subscription,
  type SubscriptionHandlers,
} from "./subscription.js";
import { systemTimers, type TimerHandle, type Timers } from "./timers.js";
import { tokenExpiry } from "./token.js";

export interface ClientOptions {
  /** A fixed token (JWT), sent as `?token=` on the upgrade. */
  token?: string;
  /**
   * Fetches a token: before the first connect, after a 4001 (token expired)
   * or a failed handshake, and before the current token's `exp` (then sent
   * with `refresh` on the open connection).
   */
  getToken?: () => Promise<string> | string;
  /** The first retry waits up to this many ms (full jitter). Default 250. */
  minReconnectDelay?: number;
  /** Retries never wait longer than this many ms. Default 20 000. */
  maxReconnectDelay?: number;
  /** A connection open this long (ms) resets the backoff. Default 2 000. */
  stableAfter?: number;
  /** Send a heartbeat (`info`) after this many ms without any frame from the server; 0 turns it off. Default 15 000. */
  heartbeatInterval?: number;
  /** Give the connection up if nothing arrives within this many ms of a heartbeat. Default 10 000. */
  heartbeatTimeout?: number;
  /** Refresh the token when this fraction of its remaining lifetime has passed. Default 0.8. */
  refreshAt?: number;
  /** The WebSocket implementation, e.g. `ws`'s default export in Node 20. Default: the global one. */
  WebSocket?: WebSocketConstructor;
  /** The clock (wall-clock milliseconds) and timers. Default: `Date.now` and the global timers. */
  timers?: Timers;
  /** Uniform random numbers in [0, 1) for the jitter. Default `Math.random`. */
  random?: () => number;
}

export type ClientState = "idle" | "connecting" | "connected" | "reconnecting" | "closed";

export interface DisconnectedEvent {
  /** The close code (1006 when the connection was lost without a close frame, 4000 for a heartbeat timeout). */
  code: number;
  reason: string;
  /** Milliseconds until the next attempt, or null when the client stopped. */
  reconnectIn: number | null;
}

export interface ClientEvents extends Record<string, unknown> {
  connecting: { attempt: number };
  connected: Record<string, never>;
  disconnected: DisconnectedEvent;
  subscribed: SubscribedEvent;
  gap: GapEvent;
  error: RingcastError;
}

/** The close code the client uses for a connection it gives up on after a silent heartbeat. */
export const HEARTBEAT_TIMEOUT_CODE = 4000;

interface Pending {
  resolve: (result: any) => void;
  reject: (error: RingcastError) => void;
}

interface Queued {
  command: Record<string, unknown>;
  pending: Pending;
}

/** Close codes after which reconnecting as-is would fail the same way. */
const PROTOCOL_ERROR_CODES = new Set([1002, 1007, 1009]);

/** setTimeout takes a signed 32-bit delay; longer ones fire at once. */
const MAX_TIMER_MS = 2_000_000_000;

export class RingcastClient extends Emitter<ClientEvents> {
  private readonly url: string;
  private readonly options: Required<
    Omit<ClientOptions, "token" | "getToken" | "WebSocket">
  >;
  private readonly getToken: (() => Promise<string> | string) | undefined;
  private readonly WebSocketImpl: WebSocketConstructor;
  private readonly backoff: Backoff;

  private token: string | undefined;
  private needToken: boolean;
  private stateValue: ClientState = "idle";
  private ws: WebSocketLike | undefined;
  /** Bumped whenever a socket is abandoned, so its late events are ignored. */
  private generation = 0;
  private nextId = 1;
  private pending = new Map<number, Pending>();
  private outbox: Queued[] = [];
  private channels = new Map<string, ChannelState>();
  /** Per channel, the subscribe/unsubscribe in flight on this connection (see `serial`). */
  private channelOps = new Map<string, Promise<void>>();
  /** Consecutive 1002/1007/1009 closes: raise the minimum wait so a bad peer is never retried hot. */
  private protocolErrors = 0;
  private lastFrameAt = 0;
  private heartbeatDeadline: number | undefined;

  private reconnectTimer: TimerHandle | undefined;
  private stableTimer: TimerHandle | undefined;
  private heartbeatTimer: TimerHandle | undefined;
  private refreshTimer: TimerHandle | undefined;
  private connectedWaiters: Array<{ resolve: () => void; reject: (e: Error) => void }> = [];

  constructor(url: string, options: ClientOptions = {}) {
    super();
    this.url = url;
    this.token = options.token;
    this.getToken = options.getToken;
    this.needToken = options.getToken !== undefined && options.token === undefined;
    const impl = options.WebSocket ?? globalWebSocket();
    if (!impl) {
      throw new Error(
        "ringcast-client: no global WebSocket here (Node < 22): pass one, e.g. `new RingcastClient(url, { WebSocket })` with `import WebSocket from \"ws\"`",
      );
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

  get state(): ClientState {
    return this.stateValue;
  }

  /**
   * Starts connecting (and reconnecting until `disconnect()`). Resolves on
   * the next successful connection; rejects only if `disconnect()` comes first.
   */
  connect(): Promise<void> {
    const wait = new Promise<void>((resolve, reject) => this.connectedWaiters.push({ resolve, reject }));
    if (this.stateValue === "idle" || this.stateValue === "closed") {
      this.protocolErrors = 0;
      this.backoff.reset();
      void this.open();
    } else if (this.stateValue === "connected") {
      this.resolveWaiters();
    }
    return wait;
  }

  /** Closes the connection and stops reconnecting. Subscriptions are kept: a later `connect()` resumes them. */
  disconnect(): void {
    if (this.stateValue === "idle" || this.stateValue === "closed") return;
    this.clear("reconnectTimer");
    const ws = this.ws;
    this.abandon(1000, "client disconnect");
    try {
      ws?.close(1000, "client disconnect");
    } catch {
      // Closing a socket still connecting may throw in some implementations.
    }
    this.stateValue = "closed";
    for (const q of this.outbox.splice(0)) q.pending.reject(new RingcastError("client_closed", "disconnect() was called"));
    for (const w of this.connectedWaiters.splice(0)) w.reject(new RingcastError("client_closed", "disconnect() was called"));
    this.emit("disconnected", { code: 1000, reason: "client disconnect", reconnectIn: null });
  }

  /**
   * Subscribes to a channel; after a reconnect the client resumes it with
   * `since` so each message reaches `onMessage` once, in order.
   */
  subscribe<T = unknown>(channel: string, handlers: SubscriptionHandlers<T> = {}): Subscription {
    if (this.channels.has(channel)) {
      throw new RingcastError("already_subscribed", `already subscribed to ${channel}`);
    }
    const state = new ChannelState(channel, handlers);
    this.channels.set(channel, state);
    if (this.stateValue === "connected") this.sendSubscribe(state);
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
  publish(channel: string, data: unknown): Promise<number> {
    return this.command({ op: "publish", channel, data }).then((r: { offset: number }) => r.offset);
  }

  /** Subscribed channels (the app's view: includes those waiting for a reconnect). */
  get subscriptions(): string[] {
    return [...this.channels.keys()];
  }

  // ---- commands ------------------------------------------------------

  private command(command: Record<string, unknown>): Promise<any> {
    return new Promise((resolve, reject) => {
      if (this.stateValue === "closed" || this.stateValue === "idle") {
        reject(new RingcastError("client_closed", "the client is not connected; call connect()"));
        return;
      }
      const pending = { resolve, reject };
      if (this.stateValue === "connected") this.send(command, pending);
      else this.outbox.push({ command, pending });
    });
  }

  private send(command: Record<string, unknown>, pending?: Pending): void {
    const id = this.nextId++;
    if (pending) this.pending.set(id, pending);
    try {
      this.ws?.send(JSON.stringify({ id, ...command }));
    } catch (err) {
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
  private serial(channel: string, fn: () => Promise<void>): Promise<void> {
    const generation = this.generation;
    const run = () => (generation === this.generation ? fn() : Promise.resolve());
    const prev = this.channelOps.get(channel);
    const next = prev ? prev.then(run, run) : run();
    this.channelOps.set(channel, next);
    void next.finally(() => {
      if (this.channelOps.get(channel) === next) this.channelOps.delete(channel);
    });
    return next;
  }

  private sendSubscribe(state: ChannelState): void {
    const generation = this.generation;
    void this.serial(
      state.channel,
      () =>
        new Promise<void>((done) => {
          // An unsubscribe came first while this waited: nothing to do.
          if (this.channels.get(state.channel) !== state) return done();
          const since = state.since();
          const command: Record<string, unknown> = { op: "subscribe", channel: state.channel };
          if (since) command.since = since;
          this.send(command, {
            resolve: (result: { epoch: string; offset: number; recovered: boolean }) => {
              done();
              if (this.channels.get(state.channel) !== state || generation !== this.generation) return;
              const resumed = state.subscribed(result.epoch, result.offset, result.recovered);
              const event: SubscribedEvent = {
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
              if (error.code === "disconnected" || this.channels.get(state.channel) !== state) return;
              this.channels.delete(state.channel);
              state.handlers.onError?.(error);
              this.emit("error", error);
            },
          });
        }),
    );
  }

  private async unsubscribe(state: ChannelState): Promise<void> {
    if (this.channels.get(state.channel) !== state) return;
    this.channels.delete(state.channel);
    if (this.stateValue !== "connected") return;
    await this.serial(state.channel, () =>
      this.command({ op: "unsubscribe", channel: state.channel }).then(
        () => undefined,
        () => undefined,
      ),
    );
  }

  // ---- connection lifecycle -----------------------------------------

  private async open(): Promise<void> {
    const generation = ++this.generation;
    this.stateValue = "connecting";
    this.emit("connecting", { attempt: this.backoff.attempts });
    if (this.getToken && this.needToken) {
      try {
        this.token = await this.getToken();
        this.needToken = false;
      } catch (err) {
        if (generation !== this.generation) return;
        this.emit("error", new RingcastError("token", `getToken failed: ${String(err)}`));
        this.retry(1006, "getToken failed", false);
        return;
      }
      if (generation !== this.generation) return;
    }
    let ws: WebSocketLike;
    try {
      ws = new this.WebSocketImpl(this.socketUrl());
    } catch (err) {
      this.emit("error", new RingcastError("connect", String(err)));
      this.retry(1006, String(err), false);
      return;
    }
    this.ws = ws;
    let opened = false;
    ws.onopen = () => {
      if (generation !== this.generation) return;
      opened = true;
      this.onOpen();
    };
    ws.onmessage = (event) => {
      if (generation !== this.generation) return;
      this.onFrame(frameText(event.data));
    };
    ws.onclose = (event) => {
      if (generation !== this.generation) return;
      this.onClose(event.code, event.reason ?? "", opened);
    };
    // An error is always followed by a close event, which does the work.
    ws.onerror = () => undefined;
  }

  private socketUrl(): string {
    if (this.token === undefined) return this.url;
    const url = new URL(this.url);
    url.searchParams.set("token", this.token);
    return url.toString();
  }

  private onOpen(): void {
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
    for (const state of this.channels.values()) this.sendSubscribe(state);
    for (const q of this.outbox.splice(0)) this.send(q.command, q.pending);
    this.armHeartbeat(this.options.heartbeatInterval);
    this.scheduleRefresh(this.token === undefined ? undefined : tokenExpiry(this.token));
    this.resolveWaiters();
  }

  private resolveWaiters(): void {
    for (const w of this.connectedWaiters.splice(0)) w.resolve();
  }

  private onFrame(text: string): void {
    this.lastFrameAt = this.options.timers.now();
    this.heartbeatDeadline = undefined;
    let msg: any;
    try {
      msg = JSON.parse(text);
    } catch {
      return;
    }
    if (msg === null || typeof msg !== "object") return;
    if ("result" in msg || "error" in msg) {
      if (typeof msg.id !== "number") {
        if (msg.error) this.emit("error", new RingcastError(msg.error.code, msg.error.message));
        return;
      }
      const pending = this.pending.get(msg.id);
      if (!pending) return;
      this.pending.delete(msg.id);
      if (msg.error) pending.reject(new RingcastError(String(msg.error.code), String(msg.error.message)));
      else pending.resolve(msg.result);
      return;
    }
    if (typeof msg.channel === "string" && typeof msg.offset === "number") {
      const state = this.channels.get(msg.channel);
      if (!state) return;
      const seen = state.accept(String(msg.epoch), msg.offset);
      if (seen === "duplicate") return;
      if (seen !== "next") {
        state.handlers.onGap?.(seen);
        this.emit("gap", seen);
      }
      state.handlers.onMessage?.(msg.data, { channel: msg.channel, offset: msg.offset, epoch: String(msg.epoch) });
    }
  }

  private onClose(code: number, reason: string, wasOpen: boolean): void {
    this.abandon(code, reason);
    this.retry(code, reason, wasOpen);
  }

  /** Forgets the current socket: late events are ignored, commands in flight fail. */
  private abandon(_code: number, _reason: string): void {
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
    for (const p of pending) p.reject(new RingcastError("disconnected", "the connection closed before the reply"));
  }

  /** Decides how to come back after a close, per docs/protocol.md's close codes. */
  private retry(code: number, reason: string, wasOpen: boolean): void {
    let delay: number;
    if (code === 1001) {
      // Drain or idle timeout: the server asks us to come back (elsewhere).
      // After a stable connection the backoff is in its first window (at
      // most minReconnectDelay): soon. A server that closes with 1001 right
      // after every open still meets a growing wait, never a hot loop.
      delay = this.backoff.next();
    } else if (code === 4001) {
      if (!this.getToken) {
        this.stop(code, reason, new RingcastError("close_4001", "token expired and no getToken to fetch a new one"));
        return;
      }
      this.needToken = true;
      delay = this.backoff.next();
    } else if (PROTOCOL_ERROR_CODES.has(code)) {
      this.protocolErrors += 1;
      this.emit("error", new RingcastError(`close_${code}`, reason || `closed with ${code}`));
      // Never faster than a floor that doubles with each such close in a row.
      const floor = Math.min(
        this.options.maxReconnectDelay,
        this.options.minReconnectDelay * Math.pow(2, Math.min(this.protocolErrors, 30)),
      );
      delay = Math.max(floor, this.backoff.next());
    } else {
      if (!wasOpen && this.getToken) this.needToken = true; // maybe a 401 a browser cannot see
      delay = this.backoff.next();
    }
    if (wasOpen && !PROTOCOL_ERROR_CODES.has(code)) this.protocolErrors = 0;
    this.stateValue = "reconnecting";
    this.emit("disconnected", { code, reason, reconnectIn: delay });
    if (this.stateValue !== "reconnecting") return; // a listener called disconnect()
    this.reconnectTimer = this.options.timers.setTimeout(() => {
      this.reconnectTimer = undefined;
      void this.open();
    }, delay);
  }

  private stop(code: number, reason: string, error: RingcastError): void {
    this.stateValue = "closed";
    this.emit("error", error);
    for (const q of this.outbox.splice(0)) q.pending.reject(error);
    for (const w of this.connectedWaiters.splice(0)) w.reject(error);
    this.emit("disconnected", { code, reason, reconnectIn: null });
  }

  // ---- heartbeat -------------------------------------------------------

  private armHeartbeat(ms: number): void {
    if (this.options.heartbeatInterval <= 0) return;
    this.clear("heartbeatTimer");
    this.heartbeatTimer = this.options.timers.setTimeout(() => this.heartbeatTick(), ms);
  }

  /**
   * Runs when the connection may have been silent for a heartbeat interval.
   * Timers are not reset on every frame (that would cost a timer per
   * message); the tick checks the time of the last frame instead.
   */
  private heartbeatTick(): void {
    this.heartbeatTimer = undefined;
    if (this.stateValue !== "connected") return;
    const now = this.options.timers.now();
    if (this.heartbeatDeadline !== undefined) {
      if (now >= this.heartbeatDeadline) {
        const ws = this.ws;
        this.onClose(HEARTBEAT_TIMEOUT_CODE, "heartbeat timeout", true);
        try {
          ws?.close(HEARTBEAT_TIMEOUT_CODE, "heartbeat timeout");
        } catch {
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

  private scheduleRefresh(expSeconds: number | null | undefined): void {
    this.clear("refreshTimer");
    if (!this.getToken || expSeconds === undefined || expSeconds === null) return;
    const remaining = expSeconds * 1000 - this.options.timers.now();
    const wait = Math.max(0, Math.min(MAX_TIMER_MS, remaining * this.options.refreshAt));
    this.refreshTimer = this.options.timers.setTimeout(() => {
      this.refreshTimer = undefined;
      void this.refresh();
    }, wait);
  }

  private async refresh(): Promise<void> {
    if (!this.getToken || this.stateValue !== "connected") return;
    const generation = this.generation;
    let token: string;
    try {
      token = await this.getToken();
    } catch (err) {
      this.emit("error", new RingcastError("token", `getToken failed: ${String(err)}`));
      this.retryRefreshLater(generation);
      return;
    }
    if (generation !== this.generation) return;
    try {
      const result: { expires_at: number | null } = await this.command({ op: "refresh", token });
      this.token = token;
      if (generation === this.generation) this.scheduleRefresh(result.expires_at ?? tokenExpiry(token));
    } catch (err) {
      if (generation !== this.generation) return;
      this.emit("error", err as RingcastError);
      this.retryRefreshLater(generation);
    }
  }

  private retryRefreshLater(generation: number): void {
    if (generation !== this.generation) return;
    this.clear("refreshTimer");
    this.refreshTimer = this.options.timers.setTimeout(() => {
      this.refreshTimer = undefined;
      void this.refresh();
    }, 5_000);
  }

  private clear(name: "reconnectTimer" | "stableTimer" | "heartbeatTimer" | "refreshTimer"): void {
    const handle = this[name];
    if (handle !== undefined) {
      this.options.timers.clearTimeout(handle);
      this[name] = undefined;
    }
  }
}

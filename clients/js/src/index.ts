//! The package's entry point: the client and the types an app needs.

export { RingcastClient, HEARTBEAT_TIMEOUT_CODE } from "./client.js";
export type { ClientOptions, ClientState, ClientEvents, DisconnectedEvent } from "./client.js";
export { RingcastError } from "./errors.js";
export { Backoff } from "./backoff.js";
export type { BackoffOptions } from "./backoff.js";
export type { Subscription, SubscriptionHandlers, SubscribedEvent, GapEvent, MessageMeta } from "./subscription.js";
export type { Timers, TimerHandle } from "./timers.js";
export type { WebSocketLike, WebSocketConstructor } from "./socket.js";
export { tokenExpiry } from "./token.js";

//! A channel the app subscribed to: its handlers and the resume bookkeeping
//! (epoch and last delivered offset) that lets a reconnect continue exactly
//! where delivery stopped.

/** Where a message sits in its channel. */
export interface MessageMeta {
  channel: string;
  /** Position in the channel, contiguous within an epoch (1, 2, 3, …). */
  offset: number;
  /** The channel history's identity; a new epoch means the history restarted. */
  epoch: string;
}

/** The outcome of a (re)subscribe. */
export interface SubscribedEvent {
  channel: string;
  epoch: string;
  /** The channel's last offset when the server answered. */
  offset: number;
  /**
   * Whether the subscribe asked to resume (`since`): true on every
   * resubscribe after a reconnect once the channel has been seen.
   */
  resumed: boolean;
  /**
   * True: every message missed while away follows, none lost. False after a
   * resume: history no longer covers the gap (or the epoch changed) — reload
   * the state from the app's own source of truth.
   */
  recovered: boolean;
}

/**
 * Live delivery jumped: offsets between the last delivered message and this
 * one will never arrive (the server's history no longer held them when it
 * noticed, e.g. a cluster node cut off from Redis for longer than the
 * history lasts), or the channel's history restarted under a new epoch.
 * Reload the state from the app's own source of truth, as after a resume
 * with `recovered: false`. The message at `offset` is delivered right after.
 */
export interface GapEvent {
  channel: string;
  epoch: string;
  /** The offset delivered last before the gap, in `previousEpoch`. */
  lastOffset: number;
  /** The epoch `lastOffset` belongs to (differs from `epoch` after a restart). */
  previousEpoch: string;
  /** The offset that arrived. */
  offset: number;
}

export interface SubscriptionHandlers<T = unknown> {
  /** Each message once, in offset order, across reconnects. */
  onMessage?: (data: T, meta: MessageMeta) => void;
  /** After the first subscribe and after every resubscribe. */
  onSubscribed?: (event: SubscribedEvent) => void;
  /** Live delivery skipped offsets or the epoch changed; see {@link GapEvent}. */
  onGap?: (event: GapEvent) => void;
  /** The server refused the subscribe (`forbidden`, `invalid_channel`, …); the subscription is dropped. */
  onError?: (error: Error) => void;
}

/** The handle `subscribe` returns. */
export interface Subscription {
  readonly channel: string;
  /** The last delivered position, or undefined before the first subscribe reply. */
  readonly position: { epoch: string; offset: number } | undefined;
  /** Stops delivery at once and tells the server; resolves when it has answered (or the connection is down). */
  unsubscribe(): Promise<void>;
}

/** Per-channel state kept by the client. */
export class ChannelState {
  epoch: string | undefined;
  offset = 0;

  constructor(
    readonly channel: string,
    readonly handlers: SubscriptionHandlers<any>,
  ) {}

  /** The `since` to resume from, once a subscribe reply gave an epoch. */
  since(): { epoch: string; offset: number } | undefined {
    return this.epoch === undefined ? undefined : { epoch: this.epoch, offset: this.offset };
  }

  /** Records a subscribe reply; returns whether it was a resume attempt. */
  subscribed(epoch: string, lastOffset: number, recovered: boolean): boolean {
    const resumed = this.epoch !== undefined;
    // Recovered: the replay starts right after our offset, keep it. Otherwise
    // live pushes start after the channel's current last offset.
    if (!recovered || this.epoch !== epoch) this.offset = lastOffset;
    this.epoch = epoch;
    return resumed;
  }

  /**
   * Decides what a push is: a duplicate (at or below the last delivered
   * offset of the same epoch: dropped), the next message, or a message
   * after a gap (an offset skipped, or a new epoch): delivered after the
   * returned {@link GapEvent}.
   */
  accept(epoch: string, offset: number): "duplicate" | "next" | GapEvent {
    if (this.epoch === undefined) return "duplicate";
    if (epoch === this.epoch && offset <= this.offset) return "duplicate";
    const next = epoch === this.epoch && offset === this.offset + 1;
    const gap: GapEvent = {
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

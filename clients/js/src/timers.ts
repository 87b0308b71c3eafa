//! The clock and timers the client uses, injectable so that tests drive time
//! by hand instead of sleeping.

/** An opaque timer handle as returned by `setTimeout`. */
export type TimerHandle = unknown;

/** What the client needs from the environment's clock. */
export interface Timers {
  /** Milliseconds since some fixed point; only differences are used. */
  now(): number;
  setTimeout(fn: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
}

/** The real clock: `Date.now` and the global timers (browsers and Node). */
export const systemTimers: Timers = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => globalThis.setTimeout(fn, ms),
  clearTimeout: (handle) => globalThis.clearTimeout(handle as ReturnType<typeof setTimeout>),
};

//! Full-jitter exponential backoff: the n-th retry waits a uniformly random
//! time in [0, min(max, min * 2^n)]. The randomness spreads a crowd of clients
//! dropped at once (a server restart) over the whole window instead of sending
//! them back together.

export interface BackoffOptions {
  /** The ceiling of the first retry's wait, in ms. */
  minDelay: number;
  /** The largest ceiling, in ms. */
  maxDelay: number;
  /** A source of uniform numbers in [0, 1); injectable for tests. */
  random: () => number;
}

export class Backoff {
  private attempt = 0;

  constructor(private readonly options: BackoffOptions) {}

  /** The ceiling for the next retry, without consuming it. */
  ceiling(): number {
    const { minDelay, maxDelay } = this.options;
    // 2^attempt overflows to Infinity long after it passes maxDelay; cap the
    // exponent so the product stays finite.
    const factor = Math.pow(2, Math.min(this.attempt, 30));
    return Math.min(maxDelay, minDelay * factor);
  }

  /** The wait before the next retry; each call widens the window. */
  next(): number {
    const delay = this.options.random() * this.ceiling();
    this.attempt += 1;
    return delay;
  }

  /** How many retries in a row so far. */
  get attempts(): number {
    return this.attempt;
  }

  /** Back to the first window: called once a connection proved stable. */
  reset(): void {
    this.attempt = 0;
  }
}

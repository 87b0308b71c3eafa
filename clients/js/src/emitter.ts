//! A minimal typed event emitter, so the package needs neither Node's
//! `events` nor the DOM's `EventTarget` (whose events cannot carry typed data).

export type Listener<T> = (event: T) => void;

export class Emitter<Events extends Record<string, unknown>> {
  private listeners: { [K in keyof Events]?: Set<Listener<Events[K]>> } = {};

  /** Adds a listener; returns a function that removes it. */
  on<K extends keyof Events>(name: K, listener: Listener<Events[K]>): () => void {
    let set = this.listeners[name];
    if (!set) {
      set = new Set();
      this.listeners[name] = set;
    }
    set.add(listener);
    return () => this.off(name, listener);
  }

  off<K extends keyof Events>(name: K, listener: Listener<Events[K]>): void {
    this.listeners[name]?.delete(listener);
  }

  protected emit<K extends keyof Events>(name: K, event: Events[K]): void {
    const set = this.listeners[name];
    if (!set) return;
    for (const listener of [...set]) {
      // A throwing listener must not break the connection's state machine.
      try {
        listener(event);
      } catch (err) {
        queueMicrotask(() => {
          throw err;
        });
      }
    }
  }
}

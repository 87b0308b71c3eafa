// Full-jitter backoff: the bounds of every window and that the jitter uses the whole window.
import test from "node:test";
import assert from "node:assert/strict";
import { Backoff } from "../dist/index.js";

test("windows double from the minimum and stop at the maximum", () => {
  const b = new Backoff({ minDelay: 250, maxDelay: 20_000, random: () => 0.999999 });
  const ceilings = [];
  for (let i = 0; i < 12; i++) {
    ceilings.push(b.ceiling());
    b.next();
  }
  assert.deepEqual(ceilings, [250, 500, 1000, 2000, 4000, 8000, 16000, 20000, 20000, 20000, 20000, 20000]);
});

test("full jitter: the delay is random * window, from 0 up to the window", () => {
  for (const r of [0, 0.25, 0.5, 0.999]) {
    const b = new Backoff({ minDelay: 250, maxDelay: 20_000, random: () => r });
    const delays = Array.from({ length: 10 }, () => b.next());
    delays.forEach((d, i) => assert.equal(d, r * Math.min(20_000, 250 * 2 ** i)));
  }
});

test("with Math.random every delay stays inside its window and they spread", () => {
  const b = new Backoff({ minDelay: 250, maxDelay: 20_000, random: Math.random });
  const samples = [];
  for (let i = 0; i < 2000; i++) {
    const ceiling = b.ceiling();
    const d = b.next();
    assert.ok(d >= 0 && d <= ceiling, `${d} outside [0, ${ceiling}]`);
    if (ceiling === 20_000) samples.push(d);
  }
  // Uniform over [0, 20 s]: some early, some late — not a fixed delay.
  assert.ok(samples.some((d) => d < 5_000) && samples.some((d) => d > 15_000));
});

test("reset returns to the first window, and huge attempt counts stay finite", () => {
  const b = new Backoff({ minDelay: 250, maxDelay: 20_000, random: () => 1 });
  for (let i = 0; i < 5000; i++) b.next();
  assert.equal(b.ceiling(), 20_000);
  b.reset();
  assert.equal(b.ceiling(), 250);
  assert.equal(b.attempts, 0);
});

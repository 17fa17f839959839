import { describe, expect, it } from "vitest";
import { retryDelayMs } from "../../shared/refreshSweep.js";

describe("retry delay", () => {
  it("retry delay waits the Retry-After", () => {
    expect(retryDelayMs(1, 7, { pastDue: false })).toBe(7_000);
  });

  it("retry delay waits nothing for Retry-After 0", () => {
    expect(retryDelayMs(2, 0, { pastDue: false })).toBe(0);
  });

  it("retry delay caps the Retry-After", () => {
    expect(retryDelayMs(1, 600, { pastDue: false, maxDelayMs: 30_000 })).toBe(
      30_000,
    );
  });

  it("retry delay caps the Retry-After at a minute by default", () => {
    expect(retryDelayMs(1, 3_600, { pastDue: false })).toBe(60_000);
  });

  it("retry delay jitters below the doubling ceiling", () => {
    const options = { pastDue: false, backoffBaseMs: 100 };
    for (let attempt = 1; attempt <= 5; attempt++) {
      const ceiling = 100 * 2 ** (attempt - 1);
      for (let sample = 0; sample < 200; sample++) {
        const delay = retryDelayMs(attempt, undefined, options);
        expect(delay).toBeGreaterThanOrEqual(0);
        expect(delay).toBeLessThan(ceiling);
      }
    }
  });

  it("retry delay spreads over its range", () => {
    const delays = Array.from({ length: 200 }, () =>
      retryDelayMs(3, undefined, { pastDue: false, backoffBaseMs: 100 }),
    );

    // Full jitter: 200 draws from 0 to 400 ms land on both halves of the range.
    expect(delays.some((delay) => delay < 200)).toBe(true);
    expect(delays.some((delay) => delay >= 200)).toBe(true);
  });

  it("retry delay caps the backoff", () => {
    for (let sample = 0; sample < 100; sample++) {
      const delay = retryDelayMs(20, undefined, {
        pastDue: false,
        backoffBaseMs: 1_000,
        maxDelayMs: 5_000,
      });
      expect(delay).toBeLessThan(5_000);
    }
  });

  it("retry delay defaults to one second doubling", () => {
    for (let sample = 0; sample < 100; sample++) {
      expect(retryDelayMs(1, undefined, { pastDue: false })).toBeLessThan(
        1_000,
      );
      expect(retryDelayMs(2, undefined, { pastDue: false })).toBeLessThan(
        2_000,
      );
    }
  });
});

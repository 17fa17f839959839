/**
 * Fixed-window counters that cap how often a key (a client address, a grant) may do something.
 * Memory is bounded: when more than `maxKeys` keys are tracked, the oldest windows are dropped.
 *
 * NOTE: counters are per function app instance, so the effective limit across a deployment is the
 * configured one times the number of instances.
 */

export interface RateLimiter {
  /** Seconds until `key` may act again, or 0 when it is under its limit now. */
  retryAfterSeconds(key: string): number;
  /** Counts one action of `key`; returns the seconds to wait when this action passed the limit. */
  record(key: string): number;
}

interface Window {
  startedAt: number;
  count: number;
}

export function createRateLimiter(options: {
  limit: number;
  windowMs: number;
  maxKeys?: number;
}): RateLimiter {
  const windows = new Map<string, Window>();
  const maxKeys = options.maxKeys ?? 100_000;

  function current(key: string, now: number): Window | undefined {
    const window = windows.get(key);
    if (window === undefined || now - window.startedAt >= options.windowMs)
      return undefined;
    return window;
  }

  function secondsLeft(window: Window, now: number): number {
    return Math.max(
      1,
      Math.ceil((window.startedAt + options.windowMs - now) / 1000),
    );
  }

  return {
    retryAfterSeconds(key) {
      const now = Date.now();
      const window = current(key, now);
      return window !== undefined && window.count >= options.limit
        ? secondsLeft(window, now)
        : 0;
    },

    record(key) {
      const now = Date.now();
      let window = current(key, now);
      if (window === undefined) {
        window = { startedAt: now, count: 0 };
        windows.delete(key);
        windows.set(key, window);
        while (windows.size > maxKeys) {
          const oldest = windows.keys().next().value;
          if (oldest === undefined) break;
          windows.delete(oldest);
        }
      }
      window.count += 1;
      return window.count > options.limit ? secondsLeft(window, now) : 0;
    },
  };
}

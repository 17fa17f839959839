import { HttpRequest } from "@azure/functions";
import { describe, expect, it } from "vitest";
import { createRateLimiter } from "../../shared/rateLimiter.js";
import { readClientAddress } from "../../shared/tokenBroker.js";

function requestFrom(forwardedFor?: string): HttpRequest {
  return new HttpRequest({
    method: "POST",
    url: "https://broker.example/api/token",
    headers:
      forwardedFor === undefined ? {} : { "x-forwarded-for": forwardedFor },
  });
}

describe("rate limiter", () => {
  it("rate limiter allows the limit then asks to wait", () => {
    const limiter = createRateLimiter({ limit: 2, windowMs: 60_000 });

    expect(limiter.record("a")).toBe(0);
    expect(limiter.record("a")).toBe(0);
    expect(limiter.retryAfterSeconds("a")).toBeGreaterThan(0);
    expect(limiter.record("a")).toBeGreaterThan(0);
    expect(limiter.retryAfterSeconds("b")).toBe(0);
  });

  it("rate limiter forgets the oldest keys past its size", () => {
    const limiter = createRateLimiter({
      limit: 1,
      windowMs: 60_000,
      maxKeys: 2,
    });
    limiter.record("a");
    limiter.record("b");
    limiter.record("c");

    expect(limiter.retryAfterSeconds("a")).toBe(0);
    expect(limiter.retryAfterSeconds("c")).toBeGreaterThan(0);
  });

  it("client address is the last forwarded entry without port", () => {
    expect(
      readClientAddress(requestFrom("198.51.100.1, 203.0.113.5:51234")),
    ).toBe("203.0.113.5");
    expect(readClientAddress(requestFrom("[2001:db8::1]:443"))).toBe(
      "2001:db8::1",
    );
    expect(readClientAddress(requestFrom())).toBe("unknown");
  });

  it("client address keeps a bare IPv6 address whole", () => {
    expect(readClientAddress(requestFrom("2001:db8::1"))).toBe("2001:db8::1");
    expect(readClientAddress(requestFrom("2001:db8::2"))).toBe("2001:db8::2");
    expect(readClientAddress(requestFrom("fe80::1234"))).toBe("fe80::1234");
    expect(readClientAddress(requestFrom("[2001:DB8::1]"))).toBe("2001:db8::1");
    expect(readClientAddress(requestFrom("10.0.0.1, 2001:db8::a"))).toBe(
      "2001:db8::a",
    );
    expect(readClientAddress(requestFrom("198.51.100.7"))).toBe("198.51.100.7");
  });
});

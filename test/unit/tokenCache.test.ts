import { describe, expect, it } from "vitest";
import { createTokenCache } from "../../shared/tokenCache.js";

const hourFromNow = () => new Date(Date.now() + 3_600_000);

describe("token cache", () => {
  it("cache drops the least recently used token", () => {
    const cache = createTokenCache(2);
    cache.set("a", { accessToken: "A", expiresOn: hourFromNow() });
    cache.set("b", { accessToken: "B", expiresOn: hourFromNow() });
    cache.getFresh("a", 0);
    cache.set("c", { accessToken: "C", expiresOn: hourFromNow() });

    expect(cache.size).toBe(2);
    expect(cache.getFresh("a", 0)?.accessToken).toBe("A");
    expect(cache.getFresh("b", 0)).toBeUndefined();
    expect(cache.getFresh("c", 0)?.accessToken).toBe("C");
  });

  it("cache withholds a token short of the minimum lifetime", () => {
    const cache = createTokenCache(10);
    cache.set("a", {
      accessToken: "A",
      expiresOn: new Date(Date.now() + 9 * 60_000),
    });

    expect(cache.getFresh("a", 15 * 60_000)).toBeUndefined();
    expect(cache.getFresh("a", 5 * 60_000)?.accessToken).toBe("A");
  });

  it("single flight shares one load and its failure", async () => {
    const cache = createTokenCache(10);
    let loads = 0;
    const load = async () => {
      loads += 1;
      await new Promise((resolve) => setTimeout(resolve, 10));
      throw new Error("refresh failed");
    };

    const results = await Promise.allSettled([
      cache.singleFlight("a", load),
      cache.singleFlight("a", load),
    ]);

    expect(loads).toBe(1);
    expect(results.every((result) => result.status === "rejected")).toBe(true);
    await expect(cache.singleFlight("a", async () => "again")).resolves.toBe(
      "again",
    );
  });
});

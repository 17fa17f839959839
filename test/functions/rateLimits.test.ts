import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { issueIdentifier } from "../../shared/identifier.js";
import {
  connectMailbox,
  handlerOf,
  invoke,
  startTestStack,
  type TestStack,
} from "../support/testStack.js";
import type { Broker } from "../../shared/broker.js";

const siteUrl = "https://mysite.equisonline.com";
let stack: TestStack;
let counter = 0;

beforeAll(async () => {
  stack = await startTestStack();
});

afterAll(async () => {
  await stack?.stop();
});

beforeEach(() => {
  stack.identity.control.reset();
});

function exchangeFrom(broker: Broker, identifier: string, address: string) {
  return invoke(handlerOf(broker, "tokenExchange"), {
    method: "POST",
    url: "/api/token",
    headers: {
      authorization: `Bearer ${identifier}`,
      "x-forwarded-for": address,
    },
  });
}

async function connect(broker: Broker): Promise<string> {
  counter += 1;
  return connectMailbox(stack, broker, {
    siteUrl,
    email: `limits${counter}@contoso.example`,
  });
}

describe("rate limits", () => {
  it("address over its failed attempts gets 429", async () => {
    const broker = stack.createBroker({ FAILED_ATTEMPTS_PER_ADDRESS: "3" });
    const identifier = await connect(broker);
    const unknown = issueIdentifier(
      "0123456789abcdef0123456789abcdef",
    ).identifier;

    const statuses = [];
    for (let attempt = 0; attempt < 4; attempt++) {
      statuses.push(
        (await exchangeFrom(broker, unknown, "203.0.113.7")).response.status,
      );
    }
    const blocked = await exchangeFrom(broker, identifier, "203.0.113.7");
    const otherAddress = await exchangeFrom(broker, identifier, "198.51.100.9");

    expect(statuses).toEqual([401, 401, 401, 429]);
    expect(blocked.response.status).toBe(429);
    expect((blocked.json() as { code: string }).code).toBe("rate_limited");
    expect(Number(blocked.response.headers.get("retry-after"))).toBeGreaterThan(
      0,
    );
    expect(otherAddress.response.status).toBe(200);
  });

  it("address is served again after the window", async () => {
    const broker = stack.createBroker({
      FAILED_ATTEMPTS_PER_ADDRESS: "1",
      FAILED_ATTEMPTS_WINDOW_SECONDS: "1",
    });
    const identifier = await connect(broker);

    await exchangeFrom(broker, "malformed", "203.0.113.8");
    expect(
      (await exchangeFrom(broker, "malformed", "203.0.113.8")).response.status,
    ).toBe(429);
    await new Promise((resolve) => setTimeout(resolve, 1_100));

    expect(
      (await exchangeFrom(broker, identifier, "203.0.113.8")).response.status,
    ).toBe(200);
  });

  it("wrong secrets for a grant are capped without locking it", async () => {
    const broker = stack.createBroker({
      FAILED_ATTEMPTS_PER_GRANT: "2",
      FAILED_ATTEMPTS_PER_ADDRESS: "1000",
    });
    const identifier = await connect(broker);
    const forged = issueIdentifier(identifier.slice(6, 38)).identifier;

    const statuses = [];
    for (let attempt = 0; attempt < 3; attempt++) {
      statuses.push(
        (await exchangeFrom(broker, forged, `192.0.2.${attempt}`)).response
          .status,
      );
    }
    const rightOne = await exchangeFrom(broker, identifier, "192.0.2.50");

    expect(statuses).toEqual([401, 401, 429]);
    expect(rightOne.response.status).toBe(200);
  });

  it("renewals per grant are capped whatever the callers do", async () => {
    const broker = stack.createBroker({
      MAX_REFRESHES_PER_GRANT_PER_MINUTE: "2",
    });
    const identifier = await connect(broker);

    const statuses = [];
    for (let attempt = 0; attempt < 3; attempt++) {
      // Each token is too short to cache, so every exchange needs a renewal.
      stack.identity.control.tokenLifetimeNext(60);
      statuses.push(
        (await exchangeFrom(broker, identifier, "192.0.2.60")).response.status,
      );
    }

    expect(statuses).toEqual([200, 200, 429]);
    expect(stack.identity.control.counts().refreshToken).toBe(2);
  });
});

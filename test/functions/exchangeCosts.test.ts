import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Broker } from "../../shared/broker.js";
import { issueIdentifier } from "../../shared/identifier.js";
import {
  connectMailbox,
  exchange,
  startTestStack,
  type TestStack,
} from "../support/testStack.js";

const siteUrl = "https://mysite.equisonline.com";
let stack: TestStack;

beforeAll(async () => {
  stack = await startTestStack();
});

afterAll(async () => {
  await stack?.stop();
});

/** Counts the HTTP requests the broker's grant table client sends. */
function countTableRequests(broker: Broker): {
  count(): number;
  reset(): void;
} {
  let requests = 0;
  broker.tables.grants.pipeline.addPolicy({
    name: "countRequests",
    sendRequest: (request, next) => {
      requests += 1;
      return next(request);
    },
  });
  return { count: () => requests, reset: () => (requests = 0) };
}

function totalKeyVaultCalls(): number {
  return Object.values(stack.keyVault.control.counts()).reduce(
    (sum, count) => sum + count,
    0,
  );
}

describe("exchange costs", () => {
  it("rejections cost what they should", async () => {
    const broker = stack.createBroker();
    const identifier = await connectMailbox(stack, broker, {
      siteUrl,
      email: "costs@contoso.example",
    });
    const table = countTableRequests(broker);
    const badChecksum = `${identifier.slice(0, -1)}${identifier.endsWith("A") ? "B" : "A"}`;
    stack.keyVault.control.resetCounts();

    table.reset();
    await exchange(broker, "m365b_short");
    expect(table.count()).toBe(0);

    table.reset();
    await exchange(broker, badChecksum);
    expect(table.count()).toBe(0);

    table.reset();
    await exchange(
      broker,
      issueIdentifier("0123456789abcdef0123456789abcdef").identifier,
    );
    expect(table.count()).toBe(1);

    table.reset();
    await exchange(broker, issueIdentifier(identifier.slice(6, 38)).identifier);
    expect(table.count()).toBe(1);

    expect(totalKeyVaultCalls()).toBe(0);
  });

  it("warm exchange costs no storage or token call", async () => {
    const broker = stack.createBroker();
    const identifier = await connectMailbox(stack, broker, {
      siteUrl,
      email: "warm.costs@contoso.example",
    });
    await exchange(broker, identifier);
    const table = countTableRequests(broker);
    stack.keyVault.control.resetCounts();
    stack.identity.control.resetCounts();

    for (let index = 0; index < 5; index++) {
      expect((await exchange(broker, identifier)).response.status).toBe(200);
    }

    expect(table.count()).toBe(0);
    expect(totalKeyVaultCalls()).toBe(0);
    expect(stack.identity.control.counts().token).toBe(0);
  });

  it("GRANT_CACHE_SECONDS=0 reads the grant row on every exchange", async () => {
    const broker = stack.createBroker({ GRANT_CACHE_SECONDS: "0" });
    const identifier = await connectMailbox(stack, broker, {
      siteUrl,
      email: "uncached.costs@contoso.example",
    });
    await exchange(broker, identifier);
    const table = countTableRequests(broker);
    stack.keyVault.control.resetCounts();

    for (let index = 0; index < 3; index++) {
      expect((await exchange(broker, identifier)).response.status).toBe(200);
    }

    expect(table.count()).toBe(3);
    expect(totalKeyVaultCalls()).toBe(0);
  });

  it("a wrong secret for a remembered grant still costs one read", async () => {
    const broker = stack.createBroker();
    const identifier = await connectMailbox(stack, broker, {
      siteUrl,
      email: "wrong.remembered@contoso.example",
    });
    await exchange(broker, identifier);
    const table = countTableRequests(broker);

    const wrongSecret = issueIdentifier(identifier.slice(6, 38)).identifier;
    expect((await exchange(broker, wrongSecret)).response.status).toBe(401);
    expect(table.count()).toBe(1);
  });

  it("two instances under load keep the newest refresh token", async () => {
    const first = stack.createBroker();
    const second = stack.createBroker();
    const identifiers: string[] = [];
    for (let index = 0; index < 100; index++) {
      identifiers.push(
        await connectMailbox(stack, first, {
          siteUrl,
          email: `load${index}@contoso.example`,
        }),
      );
    }
    stack.identity.control.resetCounts();

    const responses = await Promise.all(
      identifiers.flatMap((identifier) => [
        exchange(first, identifier),
        exchange(second, identifier),
        exchange(first, identifier),
        exchange(second, identifier),
      ]),
    );

    expect(
      responses.filter((response) => response.response.status !== 200),
    ).toEqual([]);
    // Each instance renews each grant at most once: 100 grants, two instances.
    expect(stack.identity.control.counts().refreshToken).toBeLessThanOrEqual(
      200,
    );
    for (const identifier of identifiers) {
      const grantId = identifier.slice(6, 38);
      const grant = await first.grants.get(grantId);
      const newest = await first.secrets.readNewestRefreshToken(grantId, {
        version: grant?.secretVersion ?? "",
        issuedAt: grant?.refreshTokenIssuedAt ?? new Date(0),
      });
      expect(newest.version).toBe(grant?.secretVersion);
    }
  });
});

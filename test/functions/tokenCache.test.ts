import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { Broker } from "../../shared/broker.js";
import {
  connectMailbox,
  exchange,
  handlerOf,
  invoke,
  startTestStack,
  type TestStack,
} from "../support/testStack.js";

const siteUrl = "https://mysite.equisonline.com";
let stack: TestStack;
let broker: Broker;
let counter = 0;

beforeAll(async () => {
  stack = await startTestStack();
  broker = stack.createBroker();
});

afterAll(async () => {
  await stack?.stop();
});

beforeEach(() => {
  stack.identity.control.reset();
  stack.keyVault.control.reset();
});

async function newIdentifier(): Promise<string> {
  counter += 1;
  return connectMailbox(stack, broker, {
    siteUrl,
    email: `cache${counter}@contoso.example`,
  });
}

interface TokenBody {
  access_token: string;
  expires_in: number;
}

describe("token cache", () => {
  it("warm exchange calls neither Key Vault nor Microsoft", async () => {
    const identifier = await newIdentifier();
    const first = (await exchange(broker, identifier)).json() as TokenBody;
    stack.identity.control.resetCounts();
    stack.keyVault.control.resetCounts();

    const second = await exchange(broker, identifier);

    expect(second.response.status).toBe(200);
    expect((second.json() as TokenBody).access_token).toBe(first.access_token);
    expect(stack.identity.control.counts().token).toBe(0);
    expect(
      Object.values(stack.keyVault.control.counts()).reduce(
        (sum, count) => sum + count,
        0,
      ),
    ).toBe(0);
  });

  it("token with 9 minutes left is replaced", async () => {
    const identifier = await newIdentifier();
    stack.identity.control.tokenLifetimeNext(9 * 60);
    const short = (await exchange(broker, identifier)).json() as TokenBody;
    expect(short.expires_in).toBeLessThanOrEqual(9 * 60);
    stack.identity.control.resetCounts();

    const renewed = (await exchange(broker, identifier)).json() as TokenBody;

    expect(stack.identity.control.counts().refreshToken).toBe(1);
    expect(renewed.access_token).not.toBe(short.access_token);
    expect(renewed.expires_in).toBeGreaterThanOrEqual(15 * 60);
  });

  it("token with 20 minutes left is served", async () => {
    const identifier = await newIdentifier();
    stack.identity.control.tokenLifetimeNext(20 * 60);
    const first = (await exchange(broker, identifier)).json() as TokenBody;
    stack.identity.control.resetCounts();

    const second = (await exchange(broker, identifier)).json() as TokenBody;

    expect(stack.identity.control.counts().token).toBe(0);
    expect(second.access_token).toBe(first.access_token);
    expect(second.expires_in).toBeGreaterThan(15 * 60);
  });

  it("200 concurrent requests make one token call", async () => {
    const identifier = await newIdentifier();
    stack.identity.control.resetCounts();

    const responses = await Promise.all(
      Array.from({ length: 200 }, () => exchange(broker, identifier)),
    );

    expect(
      responses.every((response) => response.response.status === 200),
    ).toBe(true);
    expect(
      new Set(
        responses.map(
          (response) => (response.json() as TokenBody).access_token,
        ),
      ).size,
    ).toBe(1);
    expect(stack.identity.control.counts().refreshToken).toBe(1);
  });

  it("revoke stops a cached token at once", async () => {
    const identifier = await newIdentifier();
    expect((await exchange(broker, identifier)).response.status).toBe(200);

    const revoked = await invoke(handlerOf(broker, "revokeToken"), {
      method: "DELETE",
      url: "/api/token",
      headers: { authorization: `Bearer ${identifier}` },
    });
    const after = await exchange(broker, identifier);

    expect(revoked.response.status).toBe(200);
    expect(after.response.status).toBe(410);
  });

  it("another instance has its own cache", async () => {
    const identifier = await newIdentifier();
    expect((await exchange(broker, identifier)).response.status).toBe(200);
    const other = stack.createBroker();
    stack.identity.control.resetCounts();

    expect((await exchange(other, identifier)).response.status).toBe(200);
    expect((await exchange(other, identifier)).response.status).toBe(200);

    expect(stack.identity.control.counts().refreshToken).toBe(1);
  });
});

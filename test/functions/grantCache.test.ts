import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Broker } from "../../shared/broker.js";
import { replaceIdentifier } from "../../shared/grantLifecycle.js";
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

beforeAll(async () => {
  stack = await startTestStack();
});

afterAll(async () => {
  await stack?.stop();
});

function grantIdOf(identifier: string): string {
  return identifier.slice(6, 38);
}

async function revoke(broker: Broker, identifier: string): Promise<number> {
  const { response } = await invoke(handlerOf(broker, "revokeToken"), {
    method: "DELETE",
    url: "/api/token",
    headers: { authorization: `Bearer ${identifier}` },
  });
  return response.status;
}

async function statusOf(broker: Broker, identifier: string): Promise<number> {
  return (await exchange(broker, identifier)).response.status;
}

describe("grant rows remembered by an instance", () => {
  it("a revoke through this instance takes effect at once", async () => {
    const broker = stack.createBroker({ GRANT_CACHE_SECONDS: "300" });
    const identifier = await connectMailbox(stack, broker, {
      siteUrl,
      email: "revoke.here@contoso.example",
    });
    expect(await statusOf(broker, identifier)).toBe(200);

    expect(await revoke(broker, identifier)).toBe(200);

    expect(await statusOf(broker, identifier)).toBe(410);
  });

  it("a revoke through another instance takes effect within GRANT_CACHE_SECONDS", async () => {
    const connecting = stack.createBroker();
    const identifier = await connectMailbox(stack, connecting, {
      siteUrl,
      email: "revoke.elsewhere@contoso.example",
    });
    const longMemory = stack.createBroker({ GRANT_CACHE_SECONDS: "300" });
    const shortMemory = stack.createBroker({ GRANT_CACHE_SECONDS: "1" });
    expect(await statusOf(longMemory, identifier)).toBe(200);
    expect(await statusOf(shortMemory, identifier)).toBe(200);

    expect(await revoke(connecting, identifier)).toBe(200);
    const revokedAt = Date.now();

    // The instance that read the row before the revoke still trusts it...
    expect(await statusOf(longMemory, identifier)).toBe(200);
    // ...and an instance whose copy is older than GRANT_CACHE_SECONDS reads it again.
    await sleep(Math.max(0, revokedAt + 1_100 - Date.now()));
    expect(await statusOf(shortMemory, identifier)).toBe(410);
  });

  it("an identifier issued through another instance works at once", async () => {
    const issuing = stack.createBroker();
    const oldIdentifier = await connectMailbox(stack, issuing, {
      siteUrl,
      email: "new.identifier@contoso.example",
    });
    const serving = stack.createBroker({ GRANT_CACHE_SECONDS: "300" });
    expect(await statusOf(serving, oldIdentifier)).toBe(200);

    const grant = await issuing.grants.get(grantIdOf(oldIdentifier));
    if (grant === undefined) throw new Error("grant not stored");
    const newIdentifier = await replaceIdentifier(issuing, grant);

    expect(await statusOf(serving, newIdentifier)).toBe(200);
    // Reading the row for the new identifier also ends the old one here.
    expect(await statusOf(serving, oldIdentifier)).toBe(401);
    expect(await statusOf(issuing, oldIdentifier)).toBe(401);
  });

  it("a grant restored through another instance is served at once", async () => {
    const restoring = stack.createBroker();
    const identifier = await connectMailbox(stack, restoring, {
      siteUrl,
      email: "restored.elsewhere@contoso.example",
    });
    const grantId = grantIdOf(identifier);
    const before = await restoring.grants.get(grantId);
    if (before === undefined) throw new Error("grant not stored");
    await restoring.grants.tryUpdate(grantId, before.etag, {
      status: "reauth_required",
    });

    const serving = stack.createBroker({ GRANT_CACHE_SECONDS: "300" });
    expect(await statusOf(serving, identifier)).toBe(409);

    const marked = await restoring.grants.get(grantId);
    if (marked === undefined) throw new Error("grant not stored");
    await restoring.grants.tryUpdate(grantId, marked.etag, {
      status: "active",
    });

    expect(await statusOf(serving, identifier)).toBe(200);
  });

  it("a write made against an older row makes the instance read it again", async () => {
    const first = stack.createBroker({ GRANT_CACHE_SECONDS: "300" });
    const second = stack.createBroker();
    const identifier = await connectMailbox(stack, first, {
      siteUrl,
      email: "stale.write@contoso.example",
    });
    const grantId = grantIdOf(identifier);
    const remembered = await first.grants.get(grantId);
    if (remembered === undefined) throw new Error("grant not stored");
    expect(first.grants.recent(grantId, 300_000)?.etag).toBe(remembered.etag);

    const current = await second.grants.get(grantId);
    if (current === undefined) throw new Error("grant not stored");
    await second.grants.tryUpdate(grantId, current.etag, {
      status: "revoked",
    });
    expect(
      await first.grants.tryUpdate(grantId, remembered.etag, {
        status: "degraded",
      }),
    ).toBeUndefined();

    expect(first.grants.recent(grantId, 300_000)).toBeUndefined();
    expect(await statusOf(first, identifier)).toBe(410);
  });

  it("an unknown grant is never remembered", async () => {
    const broker = stack.createBroker({ GRANT_CACHE_SECONDS: "300" });
    const unknown = "0123456789abcdef0123456789abcdef";
    expect(await broker.grants.get(unknown)).toBeUndefined();
    expect(broker.grants.recent(unknown, 300_000)).toBeUndefined();
  });
});

import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import { SecretClient } from "@azure/keyvault-secrets";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { findFreePort } from "../../local/azurite.js";
import { keyVaultOperations } from "../../local/keyvault/server.js";
import type { Broker } from "../../shared/broker.js";
import { revokeGrant } from "../../shared/grantLifecycle.js";
import { issueIdentifier, parseIdentifier } from "../../shared/identifier.js";
import { refreshTokenSecretName } from "../../shared/keys.js";
import {
  connectMailbox,
  cookieHeader,
  exchange,
  fetchResult,
  handlerOf,
  invoke,
  signInTagOf,
  signInWithoutBrowser,
  startTestStack,
  type Invocation,
  type TestStack,
} from "../support/testStack.js";

const siteUrl = "https://mysite.equisonline.com";
const webhookSecret = randomBytes(32).toString("base64url");
const refreshTokenLifetimeMs = 90 * 24 * 60 * 60_000;
const identifierPattern = /^m365b_[A-Za-z0-9_-]{81}$/;

interface ReceivedRequest {
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
}

interface WebhookEvent {
  type: string;
  id: string;
  grantId: string;
  siteUrl: string;
  mailbox: string;
  previousStatus: string;
  status: string;
  reason?: string;
  aadsts?: number;
  remedy?: string;
}

interface StatusBody {
  status: string;
  mailbox: string;
  siteUrl: string;
  cloud: string;
  tenantId: string;
  connectedAt: string;
  lastRefreshAt: string | null;
  lastFailure: {
    reason: string;
    aadsts?: number;
    description?: string;
    remedy?: string;
    at: string;
  } | null;
  refreshTokenExpiresAt: string | null;
}

interface ErrorBody {
  code: string;
  message: string;
  remedy?: string;
}

interface ResultBody {
  identifier: string | null;
  alreadyConnected: boolean;
}

let stack: TestStack;
let broker: Broker;
let failingBroker: Broker;
let closedBroker: Broker;
let receiver: Server;
let receiverUrl: string;
const received: ReceivedRequest[] = [];

/** Starts a receiver that records every request and responds 500 on /fail, 204 elsewhere. */
async function startWebhookReceiver(): Promise<void> {
  receiver = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => {
      const path = new URL(request.url ?? "/", "http://127.0.0.1").pathname;
      received.push({
        path,
        headers: request.headers,
        body: Buffer.concat(chunks).toString("utf8"),
      });
      response.statusCode = path === "/fail" ? 500 : 204;
      response.end();
    });
  });
  await new Promise<void>((resolve) =>
    receiver.listen(0, "127.0.0.1", resolve),
  );
  const address = receiver.address();
  if (address === null || typeof address === "string")
    throw new Error("the webhook receiver has no TCP port");
  receiverUrl = `http://127.0.0.1:${address.port}`;
}

beforeAll(async () => {
  await startWebhookReceiver();
  stack = await startTestStack();
  broker = stack.createBroker({
    NOTIFY_WEBHOOK_URL: `${receiverUrl}/events`,
    NOTIFY_WEBHOOK_SECRET: webhookSecret,
  });
  failingBroker = stack.createBroker({
    NOTIFY_WEBHOOK_URL: `${receiverUrl}/fail`,
    NOTIFY_WEBHOOK_SECRET: webhookSecret,
  });
  // Nothing listens on this port, so every connection is refused.
  closedBroker = stack.createBroker({
    NOTIFY_WEBHOOK_URL: `http://127.0.0.1:${await findFreePort()}/events`,
    NOTIFY_WEBHOOK_SECRET: webhookSecret,
  });
});

afterAll(async () => {
  await stack?.stop();
  await new Promise((resolve) => receiver?.close(resolve));
});

beforeEach(() => {
  stack.identity.control.reset();
  stack.keyVault.control.reset();
});

let mailboxCounter = 0;
function newMailbox(label: string): string {
  mailboxCounter += 1;
  return `${label}${mailboxCounter}.${Date.now()}@contoso.example`;
}

function grantIdOf(identifier: string): string {
  return parseIdentifier(identifier).grantId;
}

function vaultClient(): SecretClient {
  return new SecretClient(
    stack.keyVault.url,
    {
      getToken: async () => ({
        token: "local-test-token",
        expiresOnTimestamp: Date.now() + 3_600_000,
      }),
    },
    {
      allowInsecureConnection: true,
      disableChallengeResourceVerification: true,
    },
  );
}

function bearer(identifier: string): Record<string, string> {
  return { authorization: `Bearer ${identifier}` };
}

async function readStatus(
  target: Broker,
  identifier: string,
): Promise<Invocation> {
  return invoke(handlerOf(target, "tokenStatus"), {
    method: "GET",
    url: "/api/token/status",
    headers: bearer(identifier),
  });
}

async function revoke(target: Broker, identifier: string): Promise<Invocation> {
  return invoke(handlerOf(target, "revokeToken"), {
    method: "DELETE",
    url: "/api/token",
    headers: bearer(identifier),
  });
}

async function requestNewIdentifier(
  target: Broker,
  cookies: string,
): Promise<Invocation> {
  return invoke(handlerOf(target, "newIdentifier"), {
    method: "POST",
    url: "/api/auth/identifier",
    headers: { cookie: cookies },
    body: { string: JSON.stringify({ signin: signInTagOf(cookies) }) },
  });
}

interface FinishedSignIn {
  result: Invocation;
  body: ResultBody;
  /** Cookies the browser sends after the page fetched the result. */
  cookies: string;
}

/** Signs in on the page flow and fetches the result, as the page does after the return. */
async function signIn(target: Broker, email: string): Promise<FinishedSignIn> {
  const steps = await signInWithoutBrowser(stack, target, { siteUrl, email });
  expect(steps.callback.response.status).toBe(303);
  const result = await fetchResult(target, steps.cookies);
  expect(result.response.status).toBe(200);
  return {
    result,
    body: result.json() as ResultBody,
    cookies: cookieHeader(
      steps.start.response,
      steps.callback.response,
      result.response,
    ),
  };
}

/** Makes a grant `reauth_required`: Microsoft rejects its refresh token on the next exchange. */
async function requireReauthorisation(
  target: Broker,
  email: string,
  identifier: string,
): Promise<void> {
  stack.identity.control.revokeAccount(email);
  const exchanged = await exchange(target, identifier);
  expect(exchanged.response.status).toBe(409);
  expect((exchanged.json() as ErrorBody).code).toBe("reauth_required");
}

function eventsFor(grantId: string): {
  event: WebhookEvent;
  request: ReceivedRequest;
}[] {
  return received
    .filter((request) => request.path === "/events")
    .map((request) => ({
      event: JSON.parse(request.body) as WebhookEvent,
      request,
    }))
    .filter(({ event }) => event.grantId === grantId);
}

/** Checks a delivery as a receiver should: HMAC-SHA256 of `<timestamp>.<raw body>`, 5 minutes' tolerance. */
function isSignedByBroker(
  request: ReceivedRequest,
  secret: string = webhookSecret,
): boolean {
  const timestamp = request.headers["x-broker-timestamp"];
  const signature = request.headers["x-broker-signature"];
  if (typeof timestamp !== "string" || !/^\d+$/.test(timestamp)) return false;
  if (typeof signature !== "string") return false;
  if (Math.abs(Date.now() / 1000 - Number(timestamp)) > 300) return false;

  const hmac = createHmac("sha256", secret)
    .update(`${timestamp}.`)
    .update(request.body);
  const expected = Buffer.from(`sha256=${hmac.digest("hex")}`);
  const actual = Buffer.from(signature);
  return expected.length === actual.length && timingSafeEqual(expected, actual);
}

function tenantOf(accessToken: string): string {
  const payload = accessToken.split(".")[1] ?? "";
  return (
    JSON.parse(Buffer.from(payload, "base64url").toString("utf8")) as {
      tid: string;
    }
  ).tid;
}

async function issuedAtOfIndexedToken(grantId: string): Promise<number> {
  const grant = await broker.grants.get(grantId);
  const secret = await vaultClient().getSecret(
    refreshTokenSecretName(grantId),
    {
      version: grant?.secretVersion,
    },
  );
  return Date.parse(secret.properties.tags?.issuedAt ?? "");
}

const noVaultRequests = Object.fromEntries(
  keyVaultOperations.map((operation) => [operation, 0]),
);

describe("token status", () => {
  it("status describes a new grant", async () => {
    const email = newMailbox("status");
    const before = Date.now();
    const identifier = await connectMailbox(stack, broker, { siteUrl, email });
    const after = Date.now();
    const grantId = grantIdOf(identifier);
    const refreshToken = await broker.secrets.readRefreshToken(grantId);
    stack.keyVault.control.resetCounts();
    stack.identity.control.resetCounts();

    const status = await readStatus(broker, identifier);

    expect(status.response.status).toBe(200);
    expect(status.response.headers.get("cache-control")).toBe("no-store");
    const body = status.json() as StatusBody;
    expect(Object.keys(body).sort()).toEqual([
      "cloud",
      "connectedAt",
      "lastFailure",
      "lastRefreshAt",
      "mailbox",
      "refreshTokenExpiresAt",
      "siteUrl",
      "status",
      "tenantId",
    ]);
    expect(body.status).toBe("active");
    expect(body.mailbox).toBe(email);
    expect(body.siteUrl).toBe(siteUrl);
    expect(body.cloud).toBe("public");
    expect(Date.parse(body.connectedAt)).toBeGreaterThanOrEqual(before);
    expect(Date.parse(body.connectedAt)).toBeLessThanOrEqual(after);
    expect(body.lastRefreshAt).toBeNull();
    expect(body.lastFailure).toBeNull();
    expect(stack.keyVault.control.counts()).toEqual(noVaultRequests);
    expect(stack.identity.control.counts().token).toBe(0);

    const issuedAt = await issuedAtOfIndexedToken(grantId);
    expect(body.refreshTokenExpiresAt).toBe(
      new Date(issuedAt + refreshTokenLifetimeMs).toISOString(),
    );

    const visible = [status.text, ...status.logs].join("\n");
    expect(visible).not.toContain(identifier);
    expect(visible).not.toContain(parseIdentifier(identifier).secret);
    expect(visible).not.toContain(refreshToken);
  });

  it("status after an exchange", async () => {
    const email = newMailbox("refreshed");
    const identifier = await connectMailbox(stack, broker, { siteUrl, email });
    const grantId = grantIdOf(identifier);
    const before = Date.now();
    const exchanged = await exchange(broker, identifier);
    expect(exchanged.response.status).toBe(200);
    const accessToken = (exchanged.json() as { access_token: string })
      .access_token;
    const refreshToken = await broker.secrets.readRefreshToken(grantId);
    stack.keyVault.control.resetCounts();
    stack.identity.control.resetCounts();

    const status = await readStatus(broker, identifier);

    expect(status.response.status).toBe(200);
    const body = status.json() as StatusBody;
    expect(body.tenantId).toBe(tenantOf(accessToken));
    expect(body.lastRefreshAt).not.toBeNull();
    expect(Date.parse(body.lastRefreshAt ?? "")).toBeGreaterThanOrEqual(before);
    expect(body.lastFailure).toBeNull();
    expect(stack.keyVault.control.counts()).toEqual(noVaultRequests);
    expect(stack.identity.control.counts().token).toBe(0);
    const issuedAt = await issuedAtOfIndexedToken(grantId);
    expect(issuedAt).toBeGreaterThanOrEqual(before);
    expect(body.refreshTokenExpiresAt).toBe(
      new Date(issuedAt + refreshTokenLifetimeMs).toISOString(),
    );

    const visible = [status.text, ...status.logs].join("\n");
    expect(visible).not.toContain(identifier);
    expect(visible).not.toContain(accessToken);
    expect(visible).not.toContain(refreshToken);
  });

  it("status reports the last failure", async () => {
    const email = newMailbox("failed");
    const identifier = await connectMailbox(stack, broker, { siteUrl, email });
    const before = Date.now();
    await requireReauthorisation(broker, email, identifier);

    const status = await readStatus(broker, identifier);

    expect(status.response.status).toBe(200);
    const body = status.json() as StatusBody;
    expect(body.status).toBe("reauth_required");
    expect(body.lastFailure).not.toBeNull();
    expect(body.lastFailure?.reason).toBe("grant_revoked_by_microsoft");
    expect(body.lastFailure?.aadsts).toBe(50173);
    expect(body.lastFailure?.remedy).toContain("Sign in again");
    expect(body.lastFailure?.description).toBeTruthy();
    expect(Date.parse(body.lastFailure?.at ?? "")).toBeGreaterThanOrEqual(
      before,
    );
    expect(body.lastRefreshAt).toBeNull();
  });

  it("status rejects bad identifiers like token-exchange", async () => {
    const identifier = await connectMailbox(stack, broker, {
      siteUrl,
      email: newMailbox("rejected"),
    });
    stack.keyVault.control.resetCounts();
    stack.identity.control.resetCounts();
    const badChecksum = `${identifier.slice(0, 40)}${identifier[40] === "A" ? "B" : "A"}${identifier.slice(41)}`;
    const cases: [string, string][] = [
      ["short", "malformed_identifier"],
      [`${identifier}x`, "malformed_identifier"],
      [badChecksum, "identifier_checksum_mismatch"],
      [
        issueIdentifier("0123456789abcdef0123456789abcdef").identifier,
        "unknown_identifier",
      ],
      [issueIdentifier(grantIdOf(identifier)).identifier, "unknown_identifier"],
    ];

    for (const [presented, code] of cases) {
      const status = await readStatus(broker, presented);
      const exchanged = await exchange(broker, presented);
      expect(status.response.status).toBe(401);
      expect((status.json() as ErrorBody).code).toBe(code);
      expect(exchanged.response.status).toBe(401);
      expect((exchanged.json() as ErrorBody).code).toBe(code);
      expect(status.text).not.toContain(presented);
      expect(status.logs.join("\n")).not.toContain(presented);
    }
    expect(stack.keyVault.control.counts().getSecret).toBe(0);
    expect(stack.identity.control.counts().token).toBe(0);
  });

  it("status without an identifier asks for one", async () => {
    const status = await invoke(handlerOf(broker, "tokenStatus"), {
      method: "GET",
      url: "/api/token/status",
    });

    expect(status.response.status).toBe(401);
    expect((status.json() as ErrorBody).code).toBe("missing_identifier");
    expect(status.response.headers.get("www-authenticate")).toContain("Bearer");
  });
});

describe("revoke", () => {
  it("revoke ends a grant", async () => {
    const email = newMailbox("revoke");
    const identifier = await connectMailbox(stack, broker, { siteUrl, email });
    const grantId = grantIdOf(identifier);
    expect((await exchange(broker, identifier)).response.status).toBe(200);
    const refreshToken = await broker.secrets.readRefreshToken(grantId);

    const revoked = await revoke(broker, identifier);

    expect(revoked.response.status).toBe(200);
    expect((revoked.json() as StatusBody).status).toBe("revoked");
    expect((revoked.json() as StatusBody).refreshTokenExpiresAt).toBeNull();
    const grant = await broker.grants.get(grantId);
    expect(grant?.status).toBe("revoked");
    expect(grant?.revokedAt?.getTime()).toBeGreaterThan(0);
    expect(stack.keyVault.control.counts().deleteSecret).toBe(1);

    const visible = [revoked.text, ...revoked.logs].join("\n");
    expect(visible).not.toContain(identifier);
    expect(visible).not.toContain(refreshToken);
  });

  it("revoke during a refresh wins", async () => {
    const identifier = await connectMailbox(stack, broker, {
      siteUrl,
      email: newMailbox("racing"),
    });
    stack.identity.control.setLatency(1_000);
    const exchanging = exchange(broker, identifier);
    await new Promise((resolve) => setTimeout(resolve, 300));

    const revoked = await revoke(broker, identifier);
    stack.identity.control.setLatency(0);
    const exchanged = await exchanging;

    expect(revoked.response.status).toBe(200);
    expect(exchanged.response.status).toBe(410);
    expect((exchanged.json() as { code: string }).code).toBe("grant_revoked");
    const grant = await broker.grants.get(grantIdOf(identifier));
    expect(grant?.status).toBe("revoked");
    expect((await exchange(broker, identifier)).response.status).toBe(410);
  });

  it("revoke soft-deletes the refresh token", async () => {
    const identifier = await connectMailbox(stack, broker, {
      siteUrl,
      email: newMailbox("deleted"),
    });
    const grantId = grantIdOf(identifier);
    const name = refreshTokenSecretName(grantId);

    expect((await revoke(broker, identifier)).response.status).toBe(200);

    const deleted = await vaultClient().getDeletedSecret(name);
    expect(deleted.name).toBe(name);
    expect(deleted.properties.deletedOn).toBeInstanceOf(Date);
    await expect(broker.secrets.readRefreshToken(grantId)).rejects.toThrow();
  });

  it("revoked grant stops exchanging", async () => {
    const identifier = await connectMailbox(stack, broker, {
      siteUrl,
      email: newMailbox("gone"),
    });
    expect((await revoke(broker, identifier)).response.status).toBe(200);
    stack.identity.control.resetCounts();
    stack.keyVault.control.resetCounts();

    const exchanged = await exchange(broker, identifier);
    expect(exchanged.response.status).toBe(410);
    const error = exchanged.json() as ErrorBody;
    expect(error.code).toBe("grant_revoked");
    expect(error.remedy).toContain("Sign in again");
    expect(stack.identity.control.counts().token).toBe(0);
    expect(stack.keyVault.control.counts().getSecret).toBe(0);

    const status = await readStatus(broker, identifier);
    expect(status.response.status).toBe(200);
    expect((status.json() as StatusBody).status).toBe("revoked");
    expect((status.json() as StatusBody).refreshTokenExpiresAt).toBeNull();
  });

  it("revoking twice is harmless", async () => {
    const identifier = await connectMailbox(stack, broker, {
      siteUrl,
      email: newMailbox("twice"),
    });
    const grantId = grantIdOf(identifier);
    const first = await revoke(broker, identifier);
    const revokedAt = (await broker.grants.get(grantId))?.revokedAt;

    const second = await revoke(broker, identifier);

    expect(first.response.status).toBe(200);
    expect(second.response.status).toBe(200);
    expect((second.json() as StatusBody).status).toBe("revoked");
    expect((await broker.grants.get(grantId))?.revokedAt).toEqual(revokedAt);
    expect(eventsFor(grantId)).toHaveLength(1);
    expect((await exchange(broker, identifier)).response.status).toBe(410);
  });

  it("revoke sends a signed revoked event", async () => {
    const email = newMailbox("announced");
    const identifier = await connectMailbox(stack, broker, { siteUrl, email });
    const grantId = grantIdOf(identifier);

    expect((await revoke(broker, identifier)).response.status).toBe(200);

    const events = eventsFor(grantId);
    expect(events).toHaveLength(1);
    const [{ event, request }] = events as [(typeof events)[number]];
    expect(event.type).toBe("grant.status_changed");
    expect(event.previousStatus).toBe("active");
    expect(event.status).toBe("revoked");
    expect(event.reason).toBe("revoked_by_request");
    expect(event.siteUrl).toBe(siteUrl);
    expect(event.mailbox).toBe(email);
    expect(request.headers["x-broker-event-id"]).toBe(event.id);
    expect(isSignedByBroker(request)).toBe(true);
    expect(request.body).not.toContain(identifier);
  });

  it("stale revoke sends no event", async () => {
    const identifier = await connectMailbox(stack, broker, {
      siteUrl,
      email: newMailbox("stale"),
    });
    const grantId = grantIdOf(identifier);
    const stale = await broker.grants.get(grantId);
    if (stale === undefined) throw new Error("the grant was not stored");
    const log = { warn: () => undefined, error: () => undefined };
    const secondInstance = stack.createBroker({
      NOTIFY_WEBHOOK_URL: `${receiverUrl}/events`,
      NOTIFY_WEBHOOK_SECRET: webhookSecret,
    });

    // Two instances that read the grant before either revoked it.
    const first = await revokeGrant(broker, stale, log);
    const second = await revokeGrant(secondInstance, stale, log);

    expect(first.status).toBe("revoked");
    expect(second.status).toBe("revoked");
    expect(second.revokedAt).toEqual(first.revokedAt);
    expect(eventsFor(grantId)).toHaveLength(1);
  });

  it("revoke retry after vault failure", async () => {
    const identifier = await connectMailbox(stack, broker, {
      siteUrl,
      email: newMailbox("vaultdown"),
    });
    const grantId = grantIdOf(identifier);
    // Retry-After 0 lets the SDK retry at once, and four faults outlast its three retries.
    stack.keyVault.control.injectFaults({
      status: 503,
      count: 4,
      retryAfterSeconds: 0,
      operation: "deleteSecret",
    });

    const failed = await revoke(broker, identifier);
    const retried = await revoke(broker, identifier);

    expect(failed.response.status).toBe(503);
    expect((failed.json() as ErrorBody).code).toBe("storage_unavailable");
    expect((await exchange(broker, identifier)).response.status).toBe(410);
    expect(retried.response.status).toBe(200);
    await expect(
      vaultClient().getDeletedSecret(refreshTokenSecretName(grantId)),
    ).resolves.toBeDefined();
    const statuses = eventsFor(grantId).map(({ event }) => event.status);
    expect(statuses).toEqual(["revoked"]);
  });

  it("tampered event fails the signature check", async () => {
    const identifier = await connectMailbox(stack, broker, {
      siteUrl,
      email: newMailbox("tampered"),
    });
    expect((await revoke(broker, identifier)).response.status).toBe(200);
    const [delivery] = eventsFor(grantIdOf(identifier));
    if (delivery === undefined) throw new Error("no event was delivered");
    const { request } = delivery;
    const tampered = {
      ...request,
      body: request.body.replace('"revoked"', '"active"'),
    };

    expect(isSignedByBroker(request)).toBe(true);
    expect(tampered.body).not.toBe(request.body);
    expect(isSignedByBroker(tampered)).toBe(false);
    expect(isSignedByBroker(request, `${webhookSecret}x`)).toBe(false);
  });

  it("sign-in after revoke connects anew", async () => {
    const email = newMailbox("reconnected");
    const oldIdentifier = await connectMailbox(stack, broker, {
      siteUrl,
      email,
    });
    expect((await revoke(broker, oldIdentifier)).response.status).toBe(200);

    const signedIn = await signIn(broker, email);

    expect(signedIn.body.alreadyConnected).toBe(false);
    const newIdentifier = signedIn.body.identifier ?? "";
    expect(newIdentifier).toMatch(identifierPattern);
    expect(grantIdOf(newIdentifier)).not.toBe(grantIdOf(oldIdentifier));
    expect((await exchange(broker, newIdentifier)).response.status).toBe(200);
    const old = await exchange(broker, oldIdentifier);
    expect(old.response.status).toBe(410);
    expect((old.json() as ErrorBody).code).toBe("grant_revoked");
    const status = await readStatus(broker, newIdentifier);
    expect((status.json() as StatusBody).status).toBe("active");
  });
});

describe("re-authorisation", () => {
  it("sign-in restores a reauth_required grant", async () => {
    const email = newMailbox("reauth");
    const identifier = await connectMailbox(stack, broker, { siteUrl, email });
    await requireReauthorisation(broker, email, identifier);

    const signedIn = await signIn(broker, email);

    expect(signedIn.body.alreadyConnected).toBe(true);
    expect(signedIn.body.identifier).toBeNull();
    expect(signedIn.result.text).not.toContain(identifier);
    const exchanged = await exchange(broker, identifier);
    expect(exchanged.response.status).toBe(200);
    const status = (await readStatus(broker, identifier)).json() as StatusBody;
    expect(status.status).toBe("active");
    expect(status.lastFailure).toBeNull();
    expect(status.lastRefreshAt).not.toBeNull();
  });

  it("restored grant sends a signed recovery event", async () => {
    const email = newMailbox("recovered");
    const identifier = await connectMailbox(stack, broker, { siteUrl, email });
    const grantId = grantIdOf(identifier);
    await requireReauthorisation(broker, email, identifier);

    await signIn(broker, email);

    const statuses = eventsFor(grantId).map(
      ({ event }) => `${event.previousStatus}>${event.status}`,
    );
    expect(statuses).toEqual([
      "active>reauth_required",
      "reauth_required>active",
    ]);
    const recovery = eventsFor(grantId)[1];
    if (recovery === undefined) throw new Error("no recovery event arrived");
    expect(recovery.event.reason).toBe("signed_in_again");
    expect(recovery.event.mailbox).toBe(email);
    expect(recovery.request.headers["x-broker-event-id"]).toBe(
      recovery.event.id,
    );
    expect(isSignedByBroker(recovery.request)).toBe(true);
  });
});

describe("new identifier", () => {
  it("new identifier replaces the old one once", async () => {
    const email = newMailbox("replaced");
    const oldIdentifier = await connectMailbox(stack, broker, {
      siteUrl,
      email,
    });
    const signedIn = await signIn(broker, email);
    expect(signedIn.body.alreadyConnected).toBe(true);

    const issued = await requestNewIdentifier(broker, signedIn.cookies);

    expect(issued.response.status).toBe(200);
    expect(issued.response.headers.get("cache-control")).toBe("no-store");
    const newIdentifier = (issued.json() as { identifier: string }).identifier;
    expect(newIdentifier).toMatch(identifierPattern);
    expect(newIdentifier).not.toBe(oldIdentifier);
    expect(grantIdOf(newIdentifier)).toBe(grantIdOf(oldIdentifier));
    expect(issued.logs.join("\n")).not.toContain(newIdentifier);

    const old = await exchange(broker, oldIdentifier);
    expect(old.response.status).toBe(401);
    expect((old.json() as ErrorBody).code).toBe("unknown_identifier");
    expect((await readStatus(broker, oldIdentifier)).response.status).toBe(401);
    expect((await exchange(broker, newIdentifier)).response.status).toBe(200);

    const again = await requestNewIdentifier(broker, signedIn.cookies);
    expect(again.response.status).toBe(410);
    expect((again.json() as ErrorBody).code).toBe("result_already_shown");
    expect((await exchange(broker, newIdentifier)).response.status).toBe(200);
  });

  it("new identifier after re-authorisation exchanges", async () => {
    const email = newMailbox("reissued");
    const oldIdentifier = await connectMailbox(stack, broker, {
      siteUrl,
      email,
    });
    await requireReauthorisation(broker, email, oldIdentifier);
    const signedIn = await signIn(broker, email);
    expect(signedIn.body.alreadyConnected).toBe(true);

    const issued = await requestNewIdentifier(broker, signedIn.cookies);

    expect(issued.response.status).toBe(200);
    const newIdentifier = (issued.json() as { identifier: string }).identifier;
    expect((await exchange(broker, newIdentifier)).response.status).toBe(200);
    expect((await exchange(broker, oldIdentifier)).response.status).toBe(401);
    const status = (
      await readStatus(broker, newIdentifier)
    ).json() as StatusBody;
    expect(status.status).toBe("active");
  });

  it("new identifier rejects another browser", async () => {
    const email = newMailbox("otherbrowser");
    const identifier = await connectMailbox(stack, broker, { siteUrl, email });
    const signedIn = await signIn(broker, email);
    const otherBrowser = await signInWithoutBrowser(stack, broker, {
      siteUrl,
      email: newMailbox("stranger"),
    });
    const signInCookie = signedIn.cookies
      .split("; ")
      .filter((cookie) => cookie.startsWith("m365b_signin_"));
    const otherBrowserCookie = cookieHeader(otherBrowser.start.response);

    const rejected = await requestNewIdentifier(
      broker,
      [...signInCookie, otherBrowserCookie].join("; "),
    );
    const withoutBinding = await requestNewIdentifier(
      broker,
      signInCookie.join("; "),
    );

    expect(rejected.response.status).toBe(404);
    expect((rejected.json() as ErrorBody).code).toBe("result_not_found");
    expect(withoutBinding.response.status).toBe(404);
    expect((await exchange(broker, identifier)).response.status).toBe(200);
    expect(
      (await requestNewIdentifier(broker, signedIn.cookies)).response.status,
    ).toBe(200);
  });

  it("new identifier rejects new grants", async () => {
    const email = newMailbox("created");
    const steps = await signInWithoutBrowser(stack, broker, { siteUrl, email });
    const result = await fetchResult(broker, steps.cookies);
    const identifier = (result.json() as ResultBody).identifier ?? "";
    expect(identifier).toMatch(identifierPattern);

    // The cookies from before the result was fetched, since the result response expires the sign-in cookie.
    const rejected = await requestNewIdentifier(broker, steps.cookies);

    expect(rejected.response.status).toBe(404);
    expect((rejected.json() as ErrorBody).code).toBe("result_not_found");
    expect((await exchange(broker, identifier)).response.status).toBe(200);
  });

  it("new identifier needs the result", async () => {
    const email = newMailbox("unshown");
    const identifier = await connectMailbox(stack, broker, { siteUrl, email });
    const steps = await signInWithoutBrowser(stack, broker, { siteUrl, email });

    const rejected = await requestNewIdentifier(broker, steps.cookies);

    expect(rejected.response.status).toBe(404);
    expect((await exchange(broker, identifier)).response.status).toBe(200);
  });
});

describe("webhook failures", () => {
  const receivers: [string, () => Broker][] = [
    ["answering 500", () => failingBroker],
    ["closed", () => closedBroker],
  ];

  for (const [state, brokerFor] of receivers) {
    it(`revoke works with the receiver ${state}`, async () => {
      const target = brokerFor();
      const identifier = await connectMailbox(stack, target, {
        siteUrl,
        email: newMailbox("revokefail"),
      });
      const grantId = grantIdOf(identifier);

      const revoked = await revoke(target, identifier);

      expect(revoked.response.status).toBe(200);
      expect((revoked.json() as StatusBody).status).toBe("revoked");
      expect(revoked.logs.join("\n")).toContain(
        "Grant status notification failed",
      );
      expect((await target.grants.get(grantId))?.status).toBe("revoked");
      expect((await exchange(target, identifier)).response.status).toBe(410);
      await expect(
        vaultClient().getDeletedSecret(refreshTokenSecretName(grantId)),
      ).resolves.toBeDefined();
    });

    it(`re-authorisation works with the receiver ${state}`, async () => {
      const target = brokerFor();
      const email = newMailbox("reauthfail");
      const identifier = await connectMailbox(stack, target, {
        siteUrl,
        email,
      });
      await requireReauthorisation(target, email, identifier);
      expect((await target.grants.get(grantIdOf(identifier)))?.status).toBe(
        "reauth_required",
      );

      const signedIn = await signIn(target, email);

      expect(signedIn.body.alreadyConnected).toBe(true);
      expect((await exchange(target, identifier)).response.status).toBe(200);
      const status = (
        await readStatus(target, identifier)
      ).json() as StatusBody;
      expect(status.status).toBe("active");
      expect(status.lastFailure).toBeNull();
    });
  }

  it("failing receiver gets three attempts", async () => {
    const before = received.filter(
      (request) => request.path === "/fail",
    ).length;
    const identifier = await connectMailbox(stack, failingBroker, {
      siteUrl,
      email: newMailbox("retried"),
    });

    expect((await revoke(failingBroker, identifier)).response.status).toBe(200);

    const attempts = received
      .filter((request) => request.path === "/fail")
      .slice(before);
    expect(attempts).toHaveLength(3);
    const ids = new Set(
      attempts.map((request) => request.headers["x-broker-event-id"]),
    );
    expect(ids.size).toBe(1);
  });
});

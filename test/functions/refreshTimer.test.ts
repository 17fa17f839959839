import { randomBytes } from "node:crypto";
import { InvocationContext, type Timer } from "@azure/functions";
import type { TimerFunctionOptions } from "@azure/functions";
import {
  afterAll,
  beforeAll,
  beforeEach,
  describe,
  expect,
  it,
  vi,
} from "vitest";
import { createRefreshTimerHandler } from "../../functions/refreshTimer.js";
import type { Broker } from "../../shared/broker.js";
import { loadConfig } from "../../shared/config.js";
import {
  catalogueByAadsts,
  type FailureEntry,
} from "../../shared/failureCatalogue.js";
import type { Grant, StoredGrant } from "../../shared/grantStore.js";
import { issueIdentifier, newGrantId } from "../../shared/identifier.js";
import { grantKey } from "../../shared/keys.js";
import {
  runRefreshSweep,
  type SweepOptions,
  type SweepSummary,
} from "../../shared/refreshSweep.js";
import type { SecretStore } from "../../shared/secretStore.js";
import { readFailure } from "../../shared/tokenBroker.js";
import { connectIdentityControl } from "../../local/identity/controlClient.js";
import {
  connectMailbox,
  exchange,
  signInWithoutBrowser,
  startTestStack,
  type TestStack,
} from "../support/testStack.js";

// functions/index.ts registers the timer with `app.timer` when it is imported; the registrations
// are recorded here instead of going to a Functions host.
const registered = vi.hoisted(() => ({
  timers: [] as Array<{ name: string; options: TimerFunctionOptions }>,
}));
vi.mock("@azure/functions", async (importOriginal) => {
  const actual = await importOriginal<typeof import("@azure/functions")>();
  return {
    ...actual,
    app: {
      ...actual.app,
      setup: () => undefined,
      http: () => undefined,
      timer: (name: string, options: TimerFunctionOptions) => {
        registered.timers.push({ name, options });
      },
    },
  };
});

const siteUrl = "https://mysite.equisonline.com";
const hourMs = 60 * 60_000;
const dayMs = 24 * hourMs;

let stack: TestStack;

beforeAll(async () => {
  stack = await startTestStack();
});

afterAll(async () => {
  await stack?.stop();
});

beforeEach(async () => {
  await stack.identity.control.waitForIdle();
  stack.identity.control.reset();
  stack.keyVault.control.reset();
});

interface LogEntry {
  level: string;
  message: string;
  fields: Record<string, unknown>;
}

interface Sweep {
  summary: SweepSummary;
  logs: LogEntry[];
  /** Every log line as text, to search for secrets. */
  text: string;
}

/** Creates an InvocationContext as the Functions host does, and captures its log lines. */
function capturingContext(): { context: InvocationContext; logs: LogEntry[] } {
  const logs: LogEntry[] = [];
  const context = new InvocationContext({
    functionName: "refreshTimer",
    invocationId: randomBytes(8).toString("hex"),
    logHandler: (level, ...args) => {
      const [message, fields] = args as [string, Record<string, unknown>?];
      logs.push({ level, message, fields: fields ?? {} });
    },
  });
  return { context, logs };
}

function logText(logs: LogEntry[]): string {
  return logs
    .map(
      (entry) =>
        `${entry.level} ${entry.message} ${JSON.stringify(entry.fields)}`,
    )
    .join("\n");
}

const noWait = () => Promise.resolve();

/** Runs one sweep with tiny backoff and no real waiting, unless `options` overrides them. */
async function sweep(
  broker: Broker,
  options: Partial<SweepOptions> = {},
): Promise<Sweep> {
  const { context, logs } = capturingContext();
  const summary = await runRefreshSweep(broker, context, {
    pastDue: false,
    backoffBaseMs: 1,
    maxDelayMs: 20,
    sleep: noWait,
    ...options,
  });
  return { summary, logs, text: logText(logs) };
}

function withMessage(logs: LogEntry[], message: string): LogEntry[] {
  return logs.filter((entry) => entry.message === message);
}

/** Settings of a broker on tables of its own, so that each test lists only its own grants. */
function isolatedSettings(
  overrides: Record<string, string> = {},
): Record<string, string> {
  return {
    TABLE_NAME_PREFIX: `r${randomBytes(5).toString("hex")}`,
    ...overrides,
  };
}

function isolatedBroker(overrides: Record<string, string> = {}): Broker {
  return stack.createBroker(isolatedSettings(overrides));
}

/** A broker instance on the same tables as `broker`, as another function app instance would be. */
function peerOf(
  broker: Broker,
  overrides: Record<string, string> = {},
): Broker {
  return stack.createBroker({
    TABLE_NAME_PREFIX: broker.config.tableNamePrefix,
    ...overrides,
  });
}

interface Mailbox {
  email: string;
  identifier: string;
  grantId: string;
}

let mailboxCounter = 0;
function newEmail(label: string): string {
  mailboxCounter += 1;
  return `${label}${mailboxCounter}.${randomBytes(3).toString("hex")}@contoso.example`;
}

async function connect(broker: Broker, label = "equis"): Promise<Mailbox> {
  const email = newEmail(label);
  const identifier = await connectMailbox(stack, broker, { siteUrl, email });
  return { email, identifier, grantId: identifier.slice(6, 38) };
}

async function connectMany(
  broker: Broker,
  count: number,
  label = "equis",
): Promise<Mailbox[]> {
  const mailboxes: Mailbox[] = [];
  for (let index = 0; index < count; index++)
    mailboxes.push(await connect(broker, label));
  return mailboxes;
}

/** Runs `task` for each item with at most `limit` at once. */
async function forEachLimited<T>(
  items: T[],
  limit: number,
  task: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const item = items[next];
      next += 1;
      await task(item as T);
    }
  };
  await Promise.all(Array.from({ length: limit }, worker));
}

/** Moves a grant's dates with a direct update of its row, as time passing would. */
async function backdate(
  broker: Broker,
  grantId: string,
  dates: { refreshTokenIssuedAt?: Date; lastRefreshAt?: Date },
): Promise<void> {
  await broker.tables.grants.updateEntity(
    { partitionKey: grantKey(grantId), rowKey: "grant", ...dates },
    "Merge",
  );
}

async function makeDue(broker: Broker, grantIds: string[]): Promise<void> {
  const past = new Date(Date.now() - 2 * dayMs);
  await forEachLimited(grantIds, 8, (grantId) =>
    backdate(broker, grantId, {
      refreshTokenIssuedAt: past,
      lastRefreshAt: past,
    }),
  );
}

async function grantOf(broker: Broker, grantId: string): Promise<StoredGrant> {
  const grant = await broker.grants.get(grantId);
  if (grant === undefined) throw new Error(`grant ${grantId} not found`);
  return grant;
}

/**
 * Creates `count` due grants directly in the stores, each with one of the refresh tokens of
 * `templates` (signed-in mailboxes). The identity stand-in keeps a refresh token valid after it
 * issued the next one, so several grants can start from one token.
 */
async function seedDueGrants(
  broker: Broker,
  templates: Mailbox[],
  count: number,
): Promise<Mailbox[]> {
  const sources = await Promise.all(
    templates.map(async (template) => ({
      grant: await grantOf(broker, template.grantId),
      token: await broker.secrets.readRefreshToken(template.grantId),
    })),
  );
  const issuedAt = new Date(Date.now() - 2 * dayMs);
  const seeded: Mailbox[] = Array.from({ length: count }, (_, index) => {
    const grantId = newGrantId();
    return {
      email: `seeded${index}@contoso.example`,
      grantId,
      identifier: "",
    };
  });

  await forEachLimited(
    seeded.map((mailbox, index) => ({ mailbox, index })),
    16,
    async ({ mailbox, index }) => {
      const source = sources[index % sources.length]!;
      const issued = issueIdentifier(mailbox.grantId);
      mailbox.identifier = issued.identifier;
      const secretVersion = await broker.secrets.saveRefreshToken(
        mailbox.grantId,
        source.token,
        issuedAt,
      );
      const grant: Grant = {
        grantId: mailbox.grantId,
        status: "active",
        siteUrl: source.grant.siteUrl,
        mailbox: mailbox.email,
        mailboxNormalized: mailbox.email,
        cloud: source.grant.cloud,
        tenantId: source.grant.tenantId,
        objectId: source.grant.objectId,
        scopes: source.grant.scopes,
        identifierHash: issued.secretHash,
        secretVersion,
        connectedAt: issuedAt,
        refreshTokenIssuedAt: issuedAt,
        updatedAt: issuedAt,
      };
      if (!(await broker.grants.tryCreate(grant)))
        throw new Error(`grant ${mailbox.grantId} exists`);
    },
  );
  return seeded;
}

async function allGrants(broker: Broker): Promise<StoredGrant[]> {
  const grants: StoredGrant[] = [];
  for await (const page of broker.grants.listPages()) grants.push(...page);
  return grants;
}

async function countRows(table: Broker["tables"]["signIns"]): Promise<number> {
  let count = 0;
  for await (const _row of table.listEntities()) count += 1;
  return count;
}

interface ErrorBody {
  code: string;
  message: string;
  reason?: string;
  aadsts?: number;
  remedy?: string;
}

interface TokenBody {
  access_token: string;
  status: string;
}

function tokenCalls(): number {
  return stack.identity.control.counts().refreshToken;
}

/** Returns the OAuth error these tests send with an AADSTS number; the number decides first. */
function oauthErrorFor(aadsts: number, entry: FailureEntry): string {
  if (entry.kind === "operator")
    return aadsts === 700016 ? "unauthorized_client" : "invalid_client";
  if ([50076, 50079, 53003, 70043].includes(aadsts))
    return "interaction_required";
  return "invalid_grant";
}

const catalogueCases = Object.entries(catalogueByAadsts).map(
  ([aadsts, entry]) => ({
    aadsts: Number(aadsts),
    entry,
    error: oauthErrorFor(Number(aadsts), entry),
    reason: entry.reason,
  }),
);
const customerCases = catalogueCases.filter(
  (row) => row.entry.kind === "customer",
);
const operatorCases = catalogueCases.filter(
  (row) => row.entry.kind === "operator",
);

describe("refresh timer: customer failures", () => {
  it("catalogue has customer and operator entries", () => {
    expect(customerCases.length).toBeGreaterThanOrEqual(10);
    // The app secret, certificate and federated credential each have several.
    expect(operatorCases.length).toBeGreaterThanOrEqual(10);
  });

  it.each(customerCases)(
    "timer marks AADSTS$aadsts as $reason",
    async ({ aadsts, entry, error }) => {
      const broker = isolatedBroker();
      const mailbox = await connect(broker);
      await makeDue(broker, [mailbox.grantId]);
      const refreshToken = await broker.secrets.readRefreshToken(
        mailbox.grantId,
      );
      stack.identity.control.failNext({
        endpoint: "token",
        grantType: "refresh_token",
        error,
        aadsts,
      });

      const run = await sweep(broker);

      expect(run.summary.reauthRequired).toBe(1);
      const grant = await grantOf(broker, mailbox.grantId);
      expect(grant.status).toBe("reauth_required");
      expect(readFailure(grant)?.reason).toBe(entry.reason);
      expect(readFailure(grant)?.aadsts).toBe(aadsts);

      const failed = withMessage(run.logs, "grant refresh failed");
      expect(failed).toHaveLength(1);
      expect(failed[0]?.fields).toEqual({
        grant_id: mailbox.grantId,
        reason: entry.reason,
        aadsts,
      });
      expect(run.text).not.toContain(refreshToken);
      expect(run.text).not.toContain(mailbox.identifier);

      const callsBefore = stack.identity.control.counts().token;
      const exchanged = await exchange(broker, mailbox.identifier);
      expect(exchanged.response.status).toBe(409);
      const body = exchanged.json() as ErrorBody;
      expect(body.code).toBe("reauth_required");
      expect(body.reason).toBe(entry.reason);
      expect(body.aadsts).toBe(aadsts);
      expect(body.remedy).toBe(entry.remedy);
      expect(body.message).toBe(entry.description);
      expect(stack.identity.control.counts().token).toBe(callsBefore);
    },
  );

  it("timer explains AADSTS700082 as 90 days unused", async () => {
    const broker = isolatedBroker();
    const mailbox = await connect(broker);
    await makeDue(broker, [mailbox.grantId]);
    stack.identity.control.failNext({
      endpoint: "token",
      grantType: "refresh_token",
      error: "invalid_grant",
      aadsts: 700082,
    });

    await sweep(broker);
    const body = (
      await exchange(broker, mailbox.identifier)
    ).json() as ErrorBody;

    expect(body.reason).toBe("expired_by_inactivity");
    expect(body.message).toContain("90 days without use");
  });

  it("timer explains AADSTS50173 as a revocation", async () => {
    const broker = isolatedBroker();
    const mailbox = await connect(broker);
    await makeDue(broker, [mailbox.grantId]);
    stack.identity.control.revokeAccount(mailbox.email);

    await sweep(broker);
    const body = (
      await exchange(broker, mailbox.identifier)
    ).json() as ErrorBody;

    expect(body.reason).toBe("grant_revoked_by_microsoft");
    expect(body.aadsts).toBe(50173);
    expect(body.message).toContain("password change");
  });

  it.each([
    { aadsts: 50076, reason: "mfa_required", words: "multi-factor" },
    {
      aadsts: 50079,
      reason: "mfa_registration_required",
      words: "register for multi-factor",
    },
    {
      aadsts: 53003,
      reason: "conditional_access_blocked",
      words: "Conditional Access",
    },
    {
      aadsts: 70043,
      reason: "sign_in_frequency_expired",
      words: "sign-in frequency",
    },
  ])(
    "timer names interaction_required AADSTS$aadsts",
    async ({ aadsts, reason, words }) => {
      const broker = isolatedBroker();
      const mailbox = await connect(broker);
      await makeDue(broker, [mailbox.grantId]);
      stack.identity.control.failNext({
        endpoint: "token",
        grantType: "refresh_token",
        error: "interaction_required",
        aadsts,
      });

      await sweep(broker);
      const body = (
        await exchange(broker, mailbox.identifier)
      ).json() as ErrorBody;

      expect(body.reason).toBe(reason);
      expect(body.message).toContain(words);
    },
  );

  it.each([
    { error: "interaction_required", reason: "interaction_required" },
    { error: "consent_required", reason: "consent_missing" },
  ])("timer marks $error without AADSTS", async ({ error, reason }) => {
    const broker = isolatedBroker();
    const mailbox = await connect(broker);
    await makeDue(broker, [mailbox.grantId]);
    stack.identity.control.failNext({
      endpoint: "token",
      grantType: "refresh_token",
      error,
    });

    const run = await sweep(broker);

    expect(run.summary.reauthRequired).toBe(1);
    const grant = await grantOf(broker, mailbox.grantId);
    expect(grant.status).toBe("reauth_required");
    expect(readFailure(grant)?.reason).toBe(reason);
  });
});

describe("refresh timer: app credential failures", () => {
  const credentialCases = [
    ...operatorCases.map(({ aadsts, entry, error }) => ({
      label: `AADSTS${aadsts}`,
      aadsts: aadsts as number | undefined,
      error,
      entry,
    })),
    {
      label: "invalid_client",
      aadsts: undefined,
      error: "invalid_client",
      entry: undefined,
    },
    {
      label: "unauthorized_client",
      aadsts: undefined,
      error: "unauthorized_client",
      entry: undefined,
    },
  ];

  it.each(credentialCases)(
    "timer stops on $label",
    async ({ aadsts, error }) => {
      const concurrency = 2;
      const broker = isolatedBroker({
        REFRESH_CONCURRENCY: String(concurrency),
      });
      const mailboxes = await connectMany(broker, 6);
      await makeDue(
        broker,
        mailboxes.map((mailbox) => mailbox.grantId),
      );
      stack.identity.control.failNext({
        endpoint: "token",
        grantType: "refresh_token",
        error,
        aadsts,
        count: 100,
      });

      const run = await sweep(broker);

      expect(run.summary.due).toBe(6);
      expect(tokenCalls()).toBeGreaterThanOrEqual(1);
      expect(tokenCalls()).toBeLessThanOrEqual(concurrency);
      expect(run.summary.notAttempted).toBe(6 - tokenCalls());
      expect(run.summary.refreshed).toBe(0);
      for (const mailbox of mailboxes) {
        const grant = await grantOf(broker, mailbox.grantId);
        expect(grant.status).toBe("active");
        expect(readFailure(grant)).toBeUndefined();
      }
      const errors = run.logs.filter((entry) => entry.level === "error");
      expect(errors).toHaveLength(1);
      expect(withMessage(run.logs, "grant refresh failed")).toHaveLength(0);
      expect(run.summary.operatorFailure).toBe(errors[0]?.fields.reason);
      expect(errors[0]?.fields.aadsts).toBe(aadsts);

      // The grants keep no lease and no mark: once the credential works, the next run refreshes all.
      stack.identity.control.reset();
      const next = await sweep(broker);
      expect(next.summary.refreshed).toBe(6);
    },
  );

  it.each(operatorCases)(
    "timer names cause and fix of AADSTS$aadsts",
    async ({ aadsts, entry, error }) => {
      const broker = isolatedBroker();
      const mailbox = await connect(broker);
      await makeDue(broker, [mailbox.grantId]);
      stack.identity.control.failNext({
        endpoint: "token",
        grantType: "refresh_token",
        error,
        aadsts,
      });

      const run = await sweep(broker);

      const [logged] = run.logs.filter((line) => line.level === "error");
      expect(logged?.message).toContain(entry.description);
      expect(logged?.message).toContain(entry.remedy);
      expect(logged?.fields.reason).toBe(entry.reason);
      expect(run.summary.operatorFailure).toBe(entry.reason);
    },
  );

  it("timer stops on a wrong client secret", async () => {
    const broker = isolatedBroker({ REFRESH_CONCURRENCY: "2" });
    const mailboxes = await connectMany(broker, 6);
    await makeDue(
      broker,
      mailboxes.map((mailbox) => mailbox.grantId),
    );
    const misconfigured = peerOf(broker, {
      BROKER_CLIENT_SECRET: "not-the-client-secret",
      REFRESH_CONCURRENCY: "2",
    });

    const run = await sweep(misconfigured);

    expect(tokenCalls()).toBeGreaterThanOrEqual(1);
    expect(tokenCalls()).toBeLessThanOrEqual(2);
    expect(run.summary.notAttempted).toBe(6 - tokenCalls());
    expect(run.summary.operatorFailure).toBe("client_secret_invalid");
    const errors = run.logs.filter((entry) => entry.level === "error");
    expect(errors).toHaveLength(1);
    expect(errors[0]?.message).toContain("client secret");
    expect(errors[0]?.message).toContain("BROKER_CLIENT_SECRET");
    expect(errors[0]?.fields.aadsts).toBe(7000215);
    expect(run.text).not.toContain("not-the-client-secret");
    for (const mailbox of mailboxes) {
      const grant = await grantOf(broker, mailbox.grantId);
      expect(grant.status).toBe("active");
    }
  });
});

/** Checks what a transient failure must leave: status, stored token, and a working exchange. */
async function expectUnharmed(
  broker: Broker,
  mailbox: Mailbox,
  before: { grant: StoredGrant; token: string },
): Promise<void> {
  const after = await grantOf(broker, mailbox.grantId);
  expect(after.status).toBe(before.grant.status);
  expect(after.secretVersion).toBe(before.grant.secretVersion);
  expect(await broker.secrets.readRefreshToken(mailbox.grantId)).toBe(
    before.token,
  );
  expect(stack.keyVault.control.counts().deleteSecret).toBe(0);

  stack.identity.control.reset();
  const exchanged = await exchange(broker, mailbox.identifier);
  expect(exchanged.response.status).toBe(200);
}

async function snapshot(
  broker: Broker,
  mailbox: Mailbox,
): Promise<{ grant: StoredGrant; token: string }> {
  return {
    grant: await grantOf(broker, mailbox.grantId),
    token: await broker.secrets.readRefreshToken(mailbox.grantId),
  };
}

describe("refresh timer: transient failures", () => {
  it.each([
    { label: "503", status: 503, error: "server_error" },
    {
      label: "temporarily_unavailable",
      status: 400,
      error: "temporarily_unavailable",
    },
    { label: "500", status: 500, error: "server_error" },
  ])("timer keeps a grant on $label", async ({ status, error }) => {
    const broker = isolatedBroker();
    const mailbox = await connect(broker);
    await makeDue(broker, [mailbox.grantId]);
    const before = await snapshot(broker, mailbox);
    stack.identity.control.failNext({
      endpoint: "token",
      grantType: "refresh_token",
      status,
      error,
      count: 2,
    });

    const run = await sweep(broker, { maxAttempts: 2 });

    expect(run.summary.transientFailures).toBe(1);
    expect(tokenCalls()).toBe(2);
    const failed = withMessage(run.logs, "grant refresh failed");
    expect(failed).toHaveLength(1);
    expect(failed[0]?.fields.reason).toBe("identity_platform_unavailable");
    expect(failed[0]?.fields.attempts).toBe(2);
    expect(readFailure(await grantOf(broker, mailbox.grantId))?.reason).toBe(
      "identity_platform_unavailable",
    );
    expect(run.text).not.toContain(before.token);
    await expectUnharmed(broker, mailbox, before);
  });

  it("timer keeps a grant on a timeout", async () => {
    const broker = isolatedBroker({ IDENTITY_TIMEOUT_SECONDS: "1" });
    const mailbox = await connect(broker);
    await makeDue(broker, [mailbox.grantId]);
    const before = await snapshot(broker, mailbox);
    stack.identity.control.setLatency(1_500);

    const run = await sweep(broker, { maxAttempts: 1 });

    expect(run.summary.transientFailures).toBe(1);
    expect(run.summary.refreshed).toBe(0);
    stack.identity.control.setLatency(0);
    // The stand-in finishes the request the broker gave up on; the HTTP control waits for that.
    await connectIdentityControl(stack.identity.url).waitForIdle();
    await expectUnharmed(broker, mailbox, before);
  });

  it("timer keeps a grant on a connection reset", async () => {
    const broker = isolatedBroker();
    const mailbox = await connect(broker);
    await makeDue(broker, [mailbox.grantId]);
    const before = await snapshot(broker, mailbox);
    // Through the HTTP control, as a test in another process would reach the stand-in.
    await connectIdentityControl(stack.identity.url).resetConnectionNext();

    const run = await sweep(broker, { maxAttempts: 1 });

    expect(run.summary.transientFailures).toBe(1);
    expect(tokenCalls()).toBe(1);
    expect(
      withMessage(run.logs, "grant refresh failed")[0]?.fields.reason,
    ).toBe("identity_platform_unavailable");
    await expectUnharmed(broker, mailbox, before);
  });

  it("timer waits the Retry-After of a 429", async () => {
    const broker = isolatedBroker();
    const mailbox = await connect(broker);
    await makeDue(broker, [mailbox.grantId]);
    const before = await snapshot(broker, mailbox);
    stack.identity.control.failNext({
      endpoint: "token",
      grantType: "refresh_token",
      status: 429,
      error: "too_many_requests",
      retryAfterSeconds: 7,
    });
    const delays: number[] = [];

    const run = await sweep(broker, {
      maxDelayMs: 60_000,
      sleep: async (ms) => {
        delays.push(ms);
      },
    });

    expect(delays).toEqual([7_000]);
    expect(run.summary.refreshed).toBe(1);
    expect(tokenCalls()).toBe(2);
    const after = await grantOf(broker, mailbox.grantId);
    expect(after.status).toBe("active");
    expect(after.secretVersion).not.toBe(before.grant.secretVersion);
    expect((await exchange(broker, mailbox.identifier)).response.status).toBe(
      200,
    );
  });

  it("timer caps a long Retry-After", async () => {
    const broker = isolatedBroker();
    const mailbox = await connect(broker);
    await makeDue(broker, [mailbox.grantId]);
    stack.identity.control.failNext({
      endpoint: "token",
      grantType: "refresh_token",
      status: 429,
      error: "too_many_requests",
      retryAfterSeconds: 600,
    });
    const delays: number[] = [];

    await sweep(broker, {
      maxDelayMs: 30_000,
      sleep: async (ms) => {
        delays.push(ms);
      },
    });

    expect(delays).toEqual([30_000]);
  });

  it("timer separates transient and invalid_grant", async () => {
    const broker = isolatedBroker();
    const flaky = await connect(broker, "flaky");
    const expired = await connect(broker, "expired");
    await makeDue(broker, [flaky.grantId, expired.grantId]);
    const before = await snapshot(broker, flaky);
    stack.identity.control.failNext({
      endpoint: "token",
      grantType: "refresh_token",
      status: 503,
      error: "server_error",
      username: flaky.email,
      count: 3,
    });
    stack.identity.control.failNext({
      endpoint: "token",
      grantType: "refresh_token",
      error: "invalid_grant",
      aadsts: 700082,
      username: expired.email,
    });
    const delays: number[] = [];

    const run = await sweep(broker, {
      maxAttempts: 3,
      backoffBaseMs: 100,
      maxDelayMs: 10_000,
      sleep: async (ms) => {
        delays.push(ms);
      },
    });

    expect(run.summary.transientFailures).toBe(1);
    expect(run.summary.reauthRequired).toBe(1);
    expect(tokenCalls()).toBe(4);
    // Full jitter: the n-th wait is anywhere from 0 to 100 ms * 2^(n-1).
    expect(delays).toHaveLength(2);
    expect(delays[0]).toBeLessThanOrEqual(100);
    expect(delays[1]).toBeLessThanOrEqual(200);
    expect((await grantOf(broker, expired.grantId)).status).toBe(
      "reauth_required",
    );
    expect(readFailure(await grantOf(broker, expired.grantId))?.reason).toBe(
      "expired_by_inactivity",
    );
    const failed = withMessage(run.logs, "grant refresh failed");
    expect(failed.map((entry) => entry.fields.grant_id).sort()).toEqual(
      [flaky.grantId, expired.grantId].sort(),
    );
    expect(await broker.secrets.readRefreshToken(expired.grantId)).toBeTruthy();
    await expectUnharmed(broker, flaky, before);
  });
});

describe("refresh timer: degraded grants", () => {
  async function degrade(broker: Broker): Promise<Mailbox> {
    const mailbox = await connect(broker);
    const longAgo = new Date(
      Date.now() - (broker.config.refresh.degradedAfterDays + 1) * dayMs,
    );
    await backdate(broker, mailbox.grantId, {
      refreshTokenIssuedAt: longAgo,
      lastRefreshAt: longAgo,
    });
    stack.identity.control.failNext({
      endpoint: "token",
      grantType: "refresh_token",
      status: 503,
      error: "server_error",
      username: mailbox.email,
    });
    await sweep(broker, { maxAttempts: 1 });
    return mailbox;
  }

  it("timer flags a long-failing grant degraded", async () => {
    const broker = isolatedBroker({ DEGRADED_AFTER_DAYS: "3" });
    const mailbox = await degrade(broker);

    const grant = await grantOf(broker, mailbox.grantId);
    expect(grant.status).toBe("degraded");
    expect(readFailure(grant)?.reason).toBe("identity_platform_unavailable");
  });

  it("timer keeps a recent grant active", async () => {
    const broker = isolatedBroker({ DEGRADED_AFTER_DAYS: "3" });
    const mailbox = await connect(broker);
    await makeDue(broker, [mailbox.grantId]);
    stack.identity.control.failNext({
      endpoint: "token",
      grantType: "refresh_token",
      status: 503,
      error: "server_error",
    });

    await sweep(broker, { maxAttempts: 1 });

    expect((await grantOf(broker, mailbox.grantId)).status).toBe("active");
  });

  it("token-exchange serves a degraded grant", async () => {
    const broker = isolatedBroker({ DEGRADED_AFTER_DAYS: "3" });
    const mailbox = await degrade(broker);

    const exchanged = await exchange(broker, mailbox.identifier);

    expect(exchanged.response.status).toBe(200);
    const body = exchanged.json() as TokenBody;
    expect(body.access_token).toBeTruthy();
    // The exchange's own refresh succeeded, so the grant is active again and the response reports it.
    expect(body.status).toBe("active");
    expect((await grantOf(broker, mailbox.grantId)).status).toBe("active");
  });

  it("timer success makes a degraded grant active", async () => {
    const broker = isolatedBroker({ DEGRADED_AFTER_DAYS: "3" });
    const mailbox = await degrade(broker);

    const run = await sweep(broker);

    expect(run.summary.refreshed).toBe(1);
    const grant = await grantOf(broker, mailbox.grantId);
    expect(grant.status).toBe("active");
    expect(readFailure(grant)).toBeUndefined();
  });
});

describe("refresh timer: unknown codes", () => {
  it("timer logs an unknown AADSTS code once", async () => {
    const broker = isolatedBroker();
    const mailbox = await connect(broker);
    await makeDue(broker, [mailbox.grantId]);
    const unknown = {
      endpoint: "token" as const,
      grantType: "refresh_token" as const,
      error: "invalid_grant",
      aadsts: 5999001,
    };

    stack.identity.control.failNext(unknown);
    const first = await sweep(broker, { maxAttempts: 1 });
    stack.identity.control.failNext(unknown);
    const second = await sweep(broker, { maxAttempts: 1 });

    const notices = [...first.logs, ...second.logs].filter((entry) =>
      entry.message.includes("not in the failure catalogue"),
    );
    expect(notices).toHaveLength(1);
    expect(notices[0]?.fields.aadsts).toBe(5999001);
    expect(first.summary.transientFailures).toBe(1);
    expect(second.summary.transientFailures).toBe(1);
    for (const run of [first, second]) {
      const failed = withMessage(run.logs, "grant refresh failed");
      expect(failed).toHaveLength(1);
      expect(failed[0]?.fields.reason).toBe("unknown_failure");
      expect(failed[0]?.fields.aadsts).toBe(5999001);
    }
    expect((await grantOf(broker, mailbox.grantId)).status).toBe("active");
  });

  it("timer marks interaction_required with an unknown AADSTS", async () => {
    const broker = isolatedBroker();
    const mailbox = await connect(broker);
    await makeDue(broker, [mailbox.grantId]);
    stack.identity.control.failNext({
      endpoint: "token",
      grantType: "refresh_token",
      error: "interaction_required",
      aadsts: 50158,
    });

    const run = await sweep(broker);

    expect(run.summary.reauthRequired).toBe(1);
    const grant = await grantOf(broker, mailbox.grantId);
    expect(grant.status).toBe("reauth_required");
    expect(readFailure(grant)?.reason).toBe("interaction_required");
    const notices = run.logs.filter((entry) =>
      entry.message.includes("not in the failure catalogue"),
    );
    expect(notices).toHaveLength(1);
    expect(notices[0]?.fields.aadsts).toBe(50158);
    const body = (
      await exchange(broker, mailbox.identifier)
    ).json() as ErrorBody;
    expect(body.code).toBe("reauth_required");
    expect(body.aadsts).toBe(50158);
    expect(body.remedy).toContain("Sign in again");
  });
});

describe("refresh timer: concurrency", () => {
  it("two sweeps refresh each grant once", async () => {
    const first = isolatedBroker();
    const second = peerOf(first);
    const templates = await connectMany(first, 4, "template");
    await seedDueGrants(first, templates, 196);
    await makeDue(
      first,
      templates.map((mailbox) => mailbox.grantId),
    );
    stack.identity.control.resetCounts();

    const [one, two] = await Promise.all([sweep(first), sweep(second)]);

    // Any line besides the two summaries explains a wrong count below.
    const otherLines = logText(
      [...one.logs, ...two.logs].filter(
        (entry) => entry.message !== "refresh run finished",
      ),
    );
    expect(otherLines).toBe("");
    expect(tokenCalls()).toBe(200);
    expect(one.summary.refreshed + two.summary.refreshed).toBe(200);
    expect(one.summary.skipped + two.summary.skipped).toBe(200);
    const refreshedSince = Date.now() - hourMs;
    for (const grant of await allGrants(first)) {
      expect(grant.refreshTokenIssuedAt.getTime()).toBeGreaterThan(
        refreshedSince,
      );
    }
  });

  it("sweep skips a grant token-exchange is refreshing", async () => {
    const broker = isolatedBroker();
    const mailbox = await connect(broker);
    await makeDue(broker, [mailbox.grantId]);
    stack.identity.control.resetCounts();
    stack.keyVault.control.resetCounts();
    stack.identity.control.setLatency(300);

    const exchanging = exchange(broker, mailbox.identifier);
    await vi.waitFor(() => {
      expect(stack.identity.control.counts().token).toBe(1);
    });
    const run = await sweep(broker);
    const exchanged = await exchanging;

    expect(exchanged.response.status).toBe(200);
    expect(run.summary.due).toBe(1);
    expect(run.summary.skipped).toBe(1);
    expect(run.summary.refreshed).toBe(0);
    expect(tokenCalls()).toBe(1);
    expect(stack.identity.control.maxConcurrentTokenRequests()).toBe(1);
  });

  it("token-exchange waits for the sweep's refresh", async () => {
    const broker = isolatedBroker();
    const mailbox = await connect(broker);
    await makeDue(broker, [mailbox.grantId]);
    stack.identity.control.resetCounts();
    stack.keyVault.control.resetCounts();
    stack.identity.control.setLatency(300);

    const running = sweep(broker);
    await vi.waitFor(() => {
      expect(stack.identity.control.counts().token).toBe(1);
    });
    const exchanged = await exchange(broker, mailbox.identifier);
    const run = await running;

    expect(run.summary.refreshed).toBe(1);
    expect(exchanged.response.status).toBe(200);
    // Two refreshes one after the other, the second with the token the first stored.
    expect(tokenCalls()).toBe(2);
    expect(
      await connectIdentityControl(
        stack.identity.url,
      ).maxConcurrentTokenRequests(),
    ).toBe(1);
    expect(stack.keyVault.control.counts().setSecret).toBe(2);
  });

  it("sweep keeps 8 token requests in flight", async () => {
    const broker = isolatedBroker({ REFRESH_CONCURRENCY: "8" });
    const templates = await connectMany(broker, 4, "template");
    await seedDueGrants(broker, templates, 996);
    await makeDue(
      broker,
      templates.map((mailbox) => mailbox.grantId),
    );
    stack.identity.control.resetCounts();

    const run = await sweep(broker);

    expect(run.summary.grants).toBe(1000);
    expect(run.summary.due).toBe(1000);
    expect(run.summary.refreshed).toBe(1000);
    expect(tokenCalls()).toBe(1000);
    const maxConcurrentToken =
      stack.identity.control.maxConcurrentTokenRequests();
    expect(maxConcurrentToken).toBeLessThanOrEqual(8);
    expect(maxConcurrentToken).toBeGreaterThan(1);
    expect(withMessage(run.logs, "grant refresh failed")).toHaveLength(0);
  });
});

/** Wraps the secret store to measure the maximum number of vault calls in flight at once. */
function measureVaultConcurrency(broker: Broker): { max: () => number } {
  const inner = broker.secrets;
  let inFlight = 0;
  let max = 0;
  const measured = <A extends unknown[], R>(
    call: (...args: A) => Promise<R>,
  ) => {
    return async (...args: A): Promise<R> => {
      inFlight += 1;
      max = Math.max(max, inFlight);
      try {
        return await call(...args);
      } finally {
        inFlight -= 1;
      }
    };
  };
  const wrapped: SecretStore = {
    saveRefreshToken: measured(inner.saveRefreshToken.bind(inner)),
    readNewestRefreshToken: measured(inner.readNewestRefreshToken.bind(inner)),
    readRefreshToken: measured(inner.readRefreshToken.bind(inner)),
    deleteRefreshToken: measured(inner.deleteRefreshToken.bind(inner)),
    probe: measured(inner.probe.bind(inner)),
  };
  broker.secrets = wrapped;
  return { max: () => max };
}

describe("refresh timer: Key Vault throttling", () => {
  it("timer rides out Key Vault 429s", async () => {
    // Each 429 makes the Key Vault client wait the Retry-After of one second, so the run uses the
    // largest concurrency the setting allows to keep this test short.
    const concurrency = 64;
    const broker = isolatedBroker({ REFRESH_CONCURRENCY: String(concurrency) });
    const templates = await connectMany(broker, 4, "template");
    const seeded = await seedDueGrants(broker, templates, 496);
    await makeDue(
      broker,
      templates.map((mailbox) => mailbox.grantId),
    );
    const vault = measureVaultConcurrency(broker);
    stack.identity.control.resetCounts();
    stack.keyVault.control.resetCounts();

    // Keeps one pending 429 for every five vault requests so far, so about a fifth of them fail.
    let injected = 0;
    const vaultRequests = () =>
      Object.values(stack.keyVault.control.counts()).reduce(
        (sum, count) => sum + count,
        0,
      );
    const injector = setInterval(() => {
      const missing = Math.floor(vaultRequests() / 5) + 1 - injected;
      if (missing <= 0) return;
      stack.keyVault.control.injectFaults({
        status: 429,
        count: missing,
        retryAfterSeconds: 1,
      });
      injected += missing;
    }, 1);
    let run: Sweep;
    try {
      run = await sweep(broker, { maxAttempts: 5, maxDelayMs: 50 });
    } finally {
      clearInterval(injector);
    }
    const requests = vaultRequests();
    stack.keyVault.control.reset();

    // The last faults injected may be left unused; reset() above cleared them.
    expect(injected / requests).toBeGreaterThan(0.15);
    expect(injected / requests).toBeLessThan(0.25);
    expect(run.summary.due).toBe(500);
    // The sweep keeps twice REFRESH_CONCURRENCY grants in progress, and as many token calls.
    expect(vault.max()).toBeLessThanOrEqual(2 * concurrency);
    expect(
      stack.identity.control.maxConcurrentTokenRequests(),
    ).toBeLessThanOrEqual(concurrency);
    const grants = await allGrants(broker);
    expect(grants.filter((grant) => grant.status !== "active")).toEqual([]);
    expect(run.summary.reauthRequired).toBe(0);

    for (const mailbox of [...templates, ...seeded.slice(0, 20)]) {
      const exchanged = await exchange(broker, mailbox.identifier);
      expect(exchanged.response.status).toBe(200);
    }
  }, 60_000);
});

describe("refresh timer: process memory", () => {
  it("another instance refreshes connected grants", async () => {
    const connecting = isolatedBroker();
    const mailboxes = await connectMany(connecting, 3);
    await makeDue(
      connecting,
      mailboxes.map((mailbox) => mailbox.grantId),
    );
    const versionsBefore = await Promise.all(
      mailboxes.map(
        async (mailbox) =>
          (await grantOf(connecting, mailbox.grantId)).secretVersion,
      ),
    );
    stack.identity.control.resetCounts();
    const sweeping = peerOf(connecting);

    const run = await sweep(sweeping);

    expect(run.summary.refreshed).toBe(3);
    expect(tokenCalls()).toBe(3);
    expect(run.text.toLowerCase()).not.toContain("no tokens found");
    expect(run.text).not.toContain("no_tokens_found");
    for (const [index, mailbox] of mailboxes.entries()) {
      const grant = await grantOf(connecting, mailbox.grantId);
      expect(grant.secretVersion).not.toBe(versionsBefore[index]);
    }
  });

  it("timer makes one token call per grant per run", async () => {
    const broker = isolatedBroker();
    const mailboxes = await connectMany(broker, 3);
    const grantIds = mailboxes.map((mailbox) => mailbox.grantId);

    for (let run = 1; run <= 2; run++) {
      await makeDue(broker, grantIds);
      stack.identity.control.resetCounts();
      const { summary } = await sweep(peerOf(broker));
      expect(summary.refreshed).toBe(3);
      expect(tokenCalls()).toBe(3);
    }
  });
});

function timerOf(isPastDue: boolean): Timer {
  const now = new Date().toISOString();
  return {
    isPastDue,
    schedule: { adjustForDST: false },
    scheduleStatus: { last: now, next: now, lastUpdated: now },
  };
}

describe("refresh timer: registration", () => {
  it("timer schedule defaults to every 15 minutes", () => {
    const config = loadConfig(stack.settings);

    expect(config.refresh.schedule).toBe("0 */15 * * * *");
  });

  it("timer registers REFRESH_SCHEDULE without a start-up run", async () => {
    const settings = isolatedSettings({ REFRESH_SCHEDULE: "0 5 */2 * * *" });
    for (const [name, value] of Object.entries({
      ...stack.settings,
      ...settings,
    }))
      vi.stubEnv(name, value);
    try {
      await import("../../functions/index.js");
    } finally {
      vi.unstubAllEnvs();
    }

    expect(registered.timers.map((timer) => timer.name)).toEqual([
      "refreshTimer",
    ]);
    const options = registered.timers[0]!.options;
    expect(options.schedule).toBe("0 5 */2 * * *");
    expect(options.runOnStartup).toBe(false);

    // The registered handler sweeps the tables that the environment names.
    const broker = stack.createBroker(settings);
    const mailbox = await connect(broker);
    await makeDue(broker, [mailbox.grantId]);
    const { context, logs } = capturingContext();
    await options.handler(timerOf(true), context);

    const [finished] = withMessage(logs, "refresh run finished");
    expect(finished?.fields.pastDue).toBe(true);
    expect(finished?.fields.refreshed).toBe(1);
  });

  it("timer handler logs the run summary", async () => {
    const broker = isolatedBroker();
    const mailbox = await connect(broker);
    await makeDue(broker, [mailbox.grantId]);
    const handler = createRefreshTimerHandler(broker);
    const { context, logs } = capturingContext();

    await handler(timerOf(false), context);

    const finished = withMessage(logs, "refresh run finished");
    expect(finished).toHaveLength(1);
    expect(finished[0]?.level).toBe("information");
    expect(finished[0]?.fields.pastDue).toBe(false);
    expect(finished[0]?.fields.due).toBe(1);
    expect(finished[0]?.fields.refreshed).toBe(1);
    expect(
      (await grantOf(broker, mailbox.grantId)).refreshTokenIssuedAt.getTime(),
    ).toBeGreaterThan(Date.now() - hourMs);
  });
});

describe("refresh timer: rotation", () => {
  it("timer saves a rotated token before indexing it", async () => {
    const broker = isolatedBroker();
    const mailbox = await connect(broker);
    await makeDue(broker, [mailbox.grantId]);
    const before = await snapshot(broker, mailbox);
    const seen: Record<string, { indexed: string; latest: string }> = {};

    const run = await sweep(broker, {
      refresh: {
        onStep: async (step) => {
          const grant = await grantOf(broker, mailbox.grantId);
          seen[step] = {
            indexed: grant.secretVersion,
            latest: (
              await broker.secrets.readNewestRefreshToken(mailbox.grantId, {
                version: "",
                issuedAt: new Date(0),
              })
            ).version,
          };
        },
      },
    });

    expect(run.summary.refreshed).toBe(1);
    expect(seen.token_received).toEqual({
      indexed: before.grant.secretVersion,
      latest: before.grant.secretVersion,
    });
    expect(seen.secret_saved?.indexed).toBe(before.grant.secretVersion);
    expect(seen.secret_saved?.latest).not.toBe(before.grant.secretVersion);
    const after = await grantOf(broker, mailbox.grantId);
    expect(after.secretVersion).toBe(seen.secret_saved?.latest);
    expect(await broker.secrets.readRefreshToken(mailbox.grantId)).not.toBe(
      before.token,
    );
  });

  it("timer recovers a token saved but not indexed", async () => {
    const broker = isolatedBroker();
    const mailbox = await connect(broker);
    await makeDue(broker, [mailbox.grantId]);
    const before = await snapshot(broker, mailbox);

    // The run stops after saving the rotated token, as a crash of the process would.
    const crashed = await sweep(broker, {
      maxAttempts: 1,
      refresh: {
        onStep: async (step) => {
          if (step === "secret_saved") throw new Error("process stopped");
        },
      },
    });
    expect(crashed.summary.refreshed).toBe(0);
    expect(crashed.summary.errors).toBe(1);
    const [failed, ...others] = withMessage(
      crashed.logs,
      "grant refresh failed",
    );
    expect(others).toHaveLength(0);
    expect(failed?.level).toBe("error");
    expect(failed?.fields.grant_id).toBe(mailbox.grantId);
    expect(failed?.fields.reason).toBe("internal_error");
    expect(withMessage(crashed.logs, "refresh run finished")).toHaveLength(1);
    const unindexed = await broker.secrets.readRefreshToken(mailbox.grantId);
    expect(unindexed).not.toBe(before.token);
    expect((await grantOf(broker, mailbox.grantId)).secretVersion).toBe(
      before.grant.secretVersion,
    );

    // The stopped process never released its lease; let it run out.
    await broker.tables.grants.updateEntity(
      {
        partitionKey: grantKey(mailbox.grantId),
        rowKey: "grant",
        leaseUntil: new Date(Date.now() - 1_000),
      },
      "Merge",
    );
    const used: string[] = [];
    const refresh = broker.identity.refresh.bind(broker.identity);
    broker.identity.refresh = (grant) => {
      used.push(grant.refreshToken);
      return refresh(grant);
    };
    const run = await sweep(broker);

    expect(run.summary.refreshed).toBe(1);
    expect(used).toEqual([unindexed]);
    const after = await grantOf(broker, mailbox.grantId);
    const latest = await broker.secrets.readNewestRefreshToken(
      mailbox.grantId,
      { version: "", issuedAt: new Date(0) },
    );
    expect(after.secretVersion).toBe(latest.version);
  });

  it("timer run outlives a failing grant", async () => {
    const broker = isolatedBroker({ REFRESH_CONCURRENCY: "1" });
    const mailboxes = await connectMany(broker, 3);
    await makeDue(
      broker,
      mailboxes.map((mailbox) => mailbox.grantId),
    );
    let steps = 0;

    const run = await sweep(broker, {
      refresh: {
        onStep: async (step) => {
          if (step !== "secret_saved") return;
          steps += 1;
          if (steps === 1) throw new TypeError("unexpected failure");
        },
      },
    });

    expect(run.summary.errors).toBe(1);
    expect(run.summary.refreshed).toBe(2);
    expect(withMessage(run.logs, "grant refresh failed")).toHaveLength(1);
    expect(withMessage(run.logs, "refresh run finished")).toHaveLength(1);
  });

  it("timer keeps the token when none is returned", async () => {
    const broker = isolatedBroker();
    const mailbox = await connect(broker);
    await makeDue(broker, [mailbox.grantId]);
    const before = await snapshot(broker, mailbox);
    stack.keyVault.control.resetCounts();
    stack.identity.control.omitRefreshTokenNext();

    const run = await sweep(broker);

    expect(run.summary.refreshed).toBe(1);
    expect(stack.keyVault.control.counts().setSecret).toBe(0);
    const after = await grantOf(broker, mailbox.grantId);
    expect(after.secretVersion).toBe(before.grant.secretVersion);
    expect(after.refreshTokenIssuedAt).toEqual(
      before.grant.refreshTokenIssuedAt,
    );
    expect(after.lastRefreshAt?.getTime()).toBeGreaterThan(Date.now() - hourMs);
    expect(await broker.secrets.readRefreshToken(mailbox.grantId)).toBe(
      before.token,
    );
    expect((await exchange(broker, mailbox.identifier)).response.status).toBe(
      200,
    );
  });

  it("timer waits again after a refresh without rotation", async () => {
    const broker = isolatedBroker();
    const mailbox = await connect(broker);
    await makeDue(broker, [mailbox.grantId]);
    stack.identity.control.omitRefreshTokenNext();
    const first = await sweep(broker);
    const callsAfterFirst = tokenCalls();

    const second = await sweep(broker);

    expect(first.summary.refreshed).toBe(1);
    expect(second.summary.due).toBe(0);
    expect(tokenCalls()).toBe(callsAfterFirst);
  });

  it("timer keeps a newer sign-in's token", async () => {
    const broker = isolatedBroker();
    const mailbox = await connect(broker);
    await makeDue(broker, [mailbox.grantId]);
    let signedIn: StoredGrant | undefined;

    // The mailbox signs in again while the timer's refresh is between Microsoft and Key Vault.
    const run = await sweep(broker, {
      refresh: {
        onStep: async (step) => {
          if (step !== "token_received") return;
          const steps = await signInWithoutBrowser(stack, broker, {
            siteUrl,
            email: mailbox.email,
          });
          expect(steps.callback.response.status).toBe(303);
          signedIn = await grantOf(broker, mailbox.grantId);
        },
      },
    });

    expect(run.summary.refreshed).toBe(1);
    const after = await grantOf(broker, mailbox.grantId);
    expect(after.refreshTokenIssuedAt).toEqual(signedIn?.refreshTokenIssuedAt);
    expect(after.secretVersion).toBe(signedIn?.secretVersion);
    const newest = await broker.secrets.readNewestRefreshToken(
      mailbox.grantId,
      { version: after.secretVersion, issuedAt: after.refreshTokenIssuedAt },
    );
    expect(newest.version).toBe(signedIn?.secretVersion);
    expect((await exchange(broker, mailbox.identifier)).response.status).toBe(
      200,
    );
  });
});

describe("refresh timer: pending sign-ins", () => {
  it("timer deletes expired pending sign-ins", async () => {
    const broker = isolatedBroker();
    const pending = (expiresAt: Date) => ({
      codeVerifier: "verifier",
      nonce: "nonce",
      siteUrl,
      mailbox: "equis@contoso.example",
      mailboxNormalized: "equis@contoso.example",
      cloud: "public",
      bindingHash: "hash",
      expiresAt,
      status: "pending" as const,
    });
    await broker.signIns.create(
      "expired-long-ago",
      pending(new Date(Date.now() - hourMs)),
    );
    await broker.signIns.create(
      "expired-just-now",
      pending(new Date(Date.now() - 60_000)),
    );
    await broker.signIns.create(
      "open",
      pending(new Date(Date.now() + 10 * 60_000)),
    );
    expect(await countRows(broker.tables.signIns)).toBe(3);

    const run = await sweep(broker);

    expect(run.summary.signInsDeleted).toBe(1);
    expect(await countRows(broker.tables.signIns)).toBe(2);
    expect(await broker.signIns.get("expired-long-ago")).toBeUndefined();
    expect(await broker.signIns.get("expired-just-now")).toBeDefined();
  });
});

/**
 * One refresh of one grant, shared by the timer and token-exchange.
 *
 * A refresh first takes the grant's lease with an ETag condition, so of two runs, or a run and an
 * exchange, only one calls the token endpoint for a grant at a time. The lease ends by itself if
 * its holder stops. The rotated refresh token is saved as a new secret version before the index
 * names it, and the index takes it only when it was issued after the one it names, so an older
 * token never replaces a newer one. Failures are classified by the failure catalogue.
 */
import { randomUUID } from "node:crypto";
import type { Broker } from "./broker.js";
import { classifyFailure, type FailureEntry } from "./failureCatalogue.js";
import {
  unsetDate,
  updateGrant,
  type Grant,
  type GrantStatus,
  type StoredGrant,
} from "./grantStore.js";
import { IdentityError, type RefreshResult } from "./identityClient.js";
import type { NotifierLog } from "./notifier.js";
import { MissingSecretError } from "./secretStore.js";

export interface RefreshOptions {
  /** Wait for another holder's lease to end, up to `leaseWaitMs`, instead of skipping the grant. */
  waitForLease: boolean;
  leaseMs?: number;
  leaseWaitMs?: number;
  /**
   * Skip the grant unless its refresh token was issued at or before this time. The timer sets it
   * because the grant it listed may have been refreshed by another run before the lease is taken.
   */
  dueBefore?: Date;
  /**
   * Bounds the token calls made at once by several refreshes, which may then prepare the next
   * grants while the calls run. A refresh waiting here holds its lease, so the lease is longer.
   */
  tokenSlots?: Slots;
  /**
   * Shared by the refreshes of one run: set when Microsoft rejects the broker's own credential,
   * before the failed call's token slot passes on, so that no waiting refresh calls again.
   */
  stop?: { requested: boolean };
  /** Called after each step; a test stops the process there to simulate a crash. */
  onStep?: (step: "token_received" | "secret_saved") => Promise<void>;
}

export interface Slots {
  /** Runs `task` when fewer than the limit of tasks are running. */
  run<T>(task: () => Promise<T>): Promise<T>;
}

/** Creates slots for at most `limit` tasks at once; the others wait in order. */
export function createSlots(limit: number): Slots {
  let running = 0;
  const waiting: (() => void)[] = [];

  return {
    async run(task) {
      if (running >= limit)
        await new Promise<void>((resolve) => waiting.push(resolve));
      else running += 1;
      try {
        return await task();
      } finally {
        // The slot passes straight to the next waiter, so `running` counts it still.
        const next = waiting.shift();
        if (next === undefined) running -= 1;
        else next();
      }
    },
  };
}

export type SkipReason =
  "leased_elsewhere" | "not_refreshable" | "not_due" | "run_stopped";

export type RefreshOutcome =
  | { kind: "refreshed"; grant: StoredGrant; result: RefreshResult }
  | { kind: "skipped"; reason: SkipReason }
  | {
      kind: "failed";
      grant: StoredGrant;
      entry: FailureEntry;
      error: IdentityError;
      known: boolean;
    };

/** Time a lease allows for Key Vault and its retries, beyond the token call's own timeout. */
const leaseMarginMs = 30_000;
const defaultLeaseWaitMs = 10_000;
const leasePollMs = 100;

/** Grants that are refreshed; the others wait for a new sign-in or were revoked. */
export function isRefreshable(status: GrantStatus): boolean {
  return status === "active" || status === "degraded";
}

/**
 * True when the timer should refresh the grant: refreshable, and neither issued a refresh token nor
 * refreshed after `dueBefore`. A refresh that returned no new token counts too, or the grant would
 * be refreshed again on every run.
 */
export function isDue(grant: StoredGrant, dueBefore: Date): boolean {
  const lastRefresh = Math.max(
    grant.refreshTokenIssuedAt.getTime(),
    grant.lastRefreshAt?.getTime() ?? 0,
  );
  return isRefreshable(grant.status) && lastRefresh <= dueBefore.getTime();
}

export async function refreshGrant(
  broker: Broker,
  grant: StoredGrant,
  options: RefreshOptions,
  log: NotifierLog,
): Promise<RefreshOutcome> {
  const leased = await acquireLease(broker, grant, options);
  if (typeof leased === "string") return { kind: "skipped", reason: leased };

  let result: RefreshResult;
  let usedToken: { token: string; issuedAt: Date } | undefined;
  try {
    usedToken = await broker.secrets.readNewestRefreshToken(leased.grantId, {
      version: leased.secretVersion,
      issuedAt: leased.refreshTokenIssuedAt,
    });
    const request = {
      cloud: leased.cloud,
      tenantId: leased.tenantId,
      scopes: leased.scopes.split(" "),
      refreshToken: usedToken.token,
    };
    const { stop } = options;
    const call = async () => {
      if (stop?.requested === true) return undefined;
      try {
        return await broker.identity.refresh(request);
      } catch (error) {
        if (
          stop !== undefined &&
          error instanceof IdentityError &&
          classifyFailure(error).entry.kind === "operator"
        )
          stop.requested = true;
        throw error;
      }
    };
    const called = await (options.tokenSlots?.run(call) ?? call());
    if (called === undefined) {
      await releaseLease(broker, leased);
      return { kind: "skipped", reason: "run_stopped" };
    }
    result = called;
  } catch (error) {
    if (error instanceof MissingSecretError) {
      // A deleted or purged secret never comes back by retrying: the mailbox must sign in again.
      return recordFailure(
        broker,
        leased,
        new IdentityError("refresh_token_missing", undefined, false),
        log,
      );
    }
    if (!(error instanceof IdentityError)) {
      await releaseLease(broker, leased);
      throw error;
    }
    // The token that failed: a sign-in may replace it while the call runs.
    return recordFailure(broker, leased, error, log, usedToken?.issuedAt);
  }
  const issuedAt = new Date();
  await options.onStep?.("token_received");

  let secretVersion: string | undefined;
  if (
    result.refreshToken !== undefined &&
    result.refreshToken !== usedToken.token
  ) {
    try {
      secretVersion = await broker.secrets.saveRefreshToken(
        leased.grantId,
        result.refreshToken,
        issuedAt,
      );
    } catch (error) {
      // The rotated token is lost, but the stored one stays valid: Microsoft does not revoke a
      // refresh token when it issues the next.
      await releaseLease(broker, leased);
      // A revoke during the token call deletes the secret, and Key Vault then rejects new
      // versions of it. The caller must see the revoke, not a storage failure.
      const current = await broker.grants.get(leased.grantId);
      if (current === undefined || !isRefreshable(current.status)) {
        return { kind: "skipped", reason: "not_refreshable" };
      }
      throw error;
    }
    await options.onStep?.("secret_saved");
  }

  const stored = await recordSuccess(
    broker,
    leased,
    { secretVersion, issuedAt },
    log,
  );
  return { kind: "refreshed", grant: stored ?? leased, result };
}

/**
 * Takes the grant's lease, reading the grant again after each conflict. Every read is checked
 * again, because a concurrent writer may have refreshed, revoked or marked the grant meanwhile.
 */
async function acquireLease(
  broker: Broker,
  grant: StoredGrant,
  options: RefreshOptions,
): Promise<StoredGrant | SkipReason> {
  const deadline =
    Date.now() +
    (options.waitForLease ? (options.leaseWaitMs ?? defaultLeaseWaitMs) : 0);
  let current: StoredGrant | undefined = grant;

  for (;;) {
    if (current === undefined || !isRefreshable(current.status))
      return "not_refreshable";
    if (options.dueBefore !== undefined && !isDue(current, options.dueBefore))
      return "not_due";

    const now = Date.now();
    if ((current.leaseUntil?.getTime() ?? 0) > now) {
      if (now >= deadline) return "leased_elsewhere";
      await sleep(leasePollMs);
      current = await broker.grants.get(current.grantId);
      continue;
    }

    // The lease outlasts the longest token call, so no second caller starts one meanwhile.
    // Waiting for a token slot takes at most about one more token call.
    const tokenCallsMs =
      broker.config.identityTimeoutMs *
      (options.tokenSlots === undefined ? 1 : 2);
    const leaseMs = options.leaseMs ?? tokenCallsMs + leaseMarginMs;
    const leaseUntil = new Date(now + leaseMs);
    const leaseId = randomUUID();
    const etag = await broker.grants.tryUpdate(current.grantId, current.etag, {
      leaseUntil,
      leaseId,
    });
    if (etag !== undefined) return { ...current, etag, leaseUntil, leaseId };

    // Someone else changed the grant between our read and our claim: look again.
    current = await broker.grants.get(current.grantId);
  }
}

/** Fields that end the lease, when the lease is still ours. */
function endLease(
  current: StoredGrant,
  leaseId: string | undefined,
): Partial<Grant> {
  return current.leaseId === leaseId
    ? { leaseUntil: unsetDate, leaseId: "" }
    : {};
}

async function releaseLease(
  broker: Broker,
  leased: StoredGrant,
): Promise<void> {
  await updateGrant(broker.grants, leased, (current) =>
    endLease(current, leased.leaseId),
  );
}

async function recordSuccess(
  broker: Broker,
  leased: StoredGrant,
  rotated: { secretVersion: string | undefined; issuedAt: Date },
  log: NotifierLog,
): Promise<StoredGrant | undefined> {
  const now = new Date();
  let previousStatus: GrantStatus = leased.status;

  const stored = await updateGrant(broker.grants, leased, (current) => {
    previousStatus = current.status;
    // Revoked or marked while the token call ran: that status is kept, and the caller gets it.
    if (!isRefreshable(current.status))
      return endLease(current, leased.leaseId);

    const fields: Partial<Grant> = {
      lastRefreshAt: now,
      lastFailure: "",
      transientSince: unsetDate,
      updatedAt: now,
      ...endLease(current, leased.leaseId),
    };
    // A sign-in or another refresh may have stored a newer token meanwhile; keep the newer one.
    if (
      rotated.secretVersion !== undefined &&
      rotated.issuedAt > current.refreshTokenIssuedAt
    ) {
      fields.secretVersion = rotated.secretVersion;
      fields.refreshTokenIssuedAt = rotated.issuedAt;
    }
    if (current.status === "degraded") fields.status = "active";
    return fields;
  });

  if (previousStatus === "degraded" && stored?.status === "active") {
    await announce(
      broker,
      stored,
      "degraded",
      "active",
      { reason: "refreshed" },
      log,
    );
  }
  return stored;
}

async function recordFailure(
  broker: Broker,
  leased: StoredGrant,
  error: IdentityError,
  log: NotifierLog,
  failedTokenIssuedAt?: Date,
): Promise<RefreshOutcome> {
  const { entry, known } = classifyFailure(error);
  const now = new Date();
  const failure = JSON.stringify({
    reason: entry.reason,
    aadsts: error.aadsts,
    at: now.toISOString(),
  });
  let previousStatus: GrantStatus = leased.status;

  let superseded = false;
  const stored = await updateGrant(broker.grants, leased, (current) => {
    previousStatus = current.status;
    const fields: Partial<Grant> = { ...endLease(current, leased.leaseId) };
    if (entry.kind === "operator") return fields;
    // A sign-in stored a newer refresh token while the failed one was in use, so the failure is
    // about a token the grant no longer uses.
    superseded =
      failedTokenIssuedAt !== undefined &&
      current.refreshTokenIssuedAt > failedTokenIssuedAt;
    if (superseded) return fields;

    fields.lastFailure = failure;
    fields.updatedAt = now;
    if (entry.kind === "customer" && isRefreshable(current.status)) {
      fields.status = "reauth_required";
    }
    if (entry.kind === "transient") {
      const since =
        (current.transientSince?.getTime() ?? 0) > 0
          ? current.transientSince
          : now;
      fields.transientSince = since;
      if (
        current.status === "active" &&
        isPastDegradedLimit(broker, current, now)
      ) {
        fields.status = "degraded";
      }
    }
    return fields;
  });

  if (superseded) return { kind: "skipped", reason: "leased_elsewhere" };
  const grant = stored ?? leased;
  if (stored !== undefined && stored.status !== previousStatus) {
    await announce(
      broker,
      stored,
      previousStatus,
      stored.status,
      { reason: entry.reason, aadsts: error.aadsts, remedy: entry.remedy },
      log,
    );
  }
  return { kind: "failed", grant, entry, error, known };
}

/** True when the grant has gone without a successful refresh for longer than the configured days. */
function isPastDegradedLimit(
  broker: Broker,
  grant: StoredGrant,
  now: Date,
): boolean {
  const lastSuccess = Math.max(
    grant.lastRefreshAt?.getTime() ?? 0,
    grant.refreshTokenIssuedAt.getTime(),
  );
  return (
    now.getTime() - lastSuccess >
    broker.config.refresh.degradedAfterDays * 24 * 60 * 60_000
  );
}

async function announce(
  broker: Broker,
  grant: StoredGrant,
  previousStatus: GrantStatus,
  status: GrantStatus,
  details: { reason?: string; aadsts?: number; remedy?: string },
  log: NotifierLog,
): Promise<void> {
  await broker.notifier.notifyStatusChange(
    {
      grantId: grant.grantId,
      siteUrl: grant.siteUrl,
      mailbox: grant.mailbox,
      previousStatus,
      status,
      ...details,
    },
    log,
  );
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

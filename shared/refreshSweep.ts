/**
 * The refresh timer's run: every refreshable grant whose refresh token is older than the configured
 * age is refreshed, with bounded concurrency, a page of grants at a time so that memory does not
 * grow with their number. Transient failures are retried with exponential backoff and full jitter,
 * or after the Retry-After the token endpoint or Key Vault sent. A rejection of the broker's own
 * credential stops the run's further token calls. An unexpected error ends only its grant's
 * refresh, never the run. Each failed grant is logged once, at its last attempt, and the run once.
 * Expired pending sign-ins are deleted.
 */
import type { InvocationContext } from "@azure/functions";
import type { Broker } from "./broker.js";
import { BrokerError } from "./errors.js";
import type { FailureEntry } from "./failureCatalogue.js";
import type { StoredGrant } from "./grantStore.js";
import { describeCause } from "./http.js";
import type { IdentityError } from "./identityClient.js";
import {
  createSlots,
  isDue,
  refreshGrant,
  type RefreshOptions,
  type RefreshOutcome,
  type Slots,
} from "./refresher.js";

export interface SweepOptions {
  pastDue: boolean;
  /** Attempts per grant for transient failures. */
  maxAttempts?: number;
  /** Base of the exponential backoff between attempts. */
  backoffBaseMs?: number;
  /** Maximum wait between attempts, whatever Retry-After requests. */
  maxDelayMs?: number;
  sleep?: (ms: number) => Promise<void>;
  refresh?: Pick<RefreshOptions, "leaseMs" | "onStep">;
}

export interface SweepSummary {
  grants: number;
  due: number;
  refreshed: number;
  reauthRequired: number;
  transientFailures: number;
  /** Grants whose refresh failed with an unexpected error, each logged as an error. */
  errors: number;
  /** Attempts repeated after a transient failure, over all grants. */
  retries: number;
  skipped: number;
  notAttempted: number;
  operatorFailure: string | undefined;
  signInsDeleted: number;
  durationMs: number;
  pastDue: boolean;
}

/** A sign-in's result may be fetched up to this long after the sign-in expires. */
const signInRetentionMs = 10 * 60_000;

/** AADSTS numbers and error codes not in the catalogue, logged once per process. */
const reportedUnknownCodes = new Set<string>();

/** The dependencies, options and counters of one run, shared by its grants. */
interface SweepRun {
  broker: Broker;
  context: InvocationContext;
  options: SweepOptions;
  summary: SweepSummary;
  /** Grants whose refresh token was issued after this are not due. */
  dueBefore: Date;
  tokenSlots: Slots;
  /** Set once the broker's own credential is rejected: no further token calls. */
  stop: { requested: boolean };
}

/** A failed attempt that is worth repeating. */
interface TransientFailure {
  reason: string;
  aadsts?: number;
  retryAfterSeconds?: number;
  /** The kind of the underlying error, without its message. */
  cause?: string;
}

export async function runRefreshSweep(
  broker: Broker,
  context: InvocationContext,
  options: SweepOptions,
): Promise<SweepSummary> {
  const started = Date.now();
  const summary: SweepSummary = {
    grants: 0,
    due: 0,
    refreshed: 0,
    reauthRequired: 0,
    transientFailures: 0,
    errors: 0,
    retries: 0,
    skipped: 0,
    notAttempted: 0,
    operatorFailure: undefined,
    signInsDeleted: 0,
    durationMs: 0,
    pastDue: options.pastDue,
  };
  // REFRESH_CONCURRENCY bounds the token calls, the load that reaches Microsoft. Twice as many
  // grants are in progress, so their Key Vault and Table work runs while other grants' calls do.
  const concurrency = broker.config.refresh.concurrency;
  const pool = createPool(concurrency * 2);
  const tokenSlots = createSlots(concurrency);
  const run: SweepRun = {
    broker,
    context,
    options,
    summary,
    tokenSlots,
    stop: { requested: false },
    dueBefore: new Date(
      started - broker.config.refresh.afterHours * 60 * 60_000,
    ),
  };

  try {
    for await (const page of broker.grants.listPages()) {
      for (const grant of page) {
        summary.grants += 1;
        if (!isDue(grant, run.dueBefore)) continue;

        summary.due += 1;
        await pool.run(() => sweepGrant(run, grant));
      }
    }
  } finally {
    // A failed listing ends the run, but only after the refreshes it started have finished.
    await pool.drain();
  }

  summary.signInsDeleted = await deleteExpiredSignIns(broker, context);
  summary.durationMs = Date.now() - started;
  context.info("refresh run finished", { ...summary });
  return summary;
}

/** Refreshes one grant with retries. Never rejects, so that one grant cannot end the run. */
async function sweepGrant(run: SweepRun, grant: StoredGrant): Promise<void> {
  try {
    await refreshWithRetries(run, grant);
  } catch (error) {
    run.summary.errors += 1;
    run.context.error("grant refresh failed", {
      grant_id: grant.grantId,
      reason: "internal_error",
      cause: describeCause(error),
    });
  }
}

async function refreshWithRetries(
  run: SweepRun,
  grant: StoredGrant,
): Promise<void> {
  const { context, options, summary } = run;
  const maxAttempts = options.maxAttempts ?? 3;

  for (let attempt = 1; ; attempt++) {
    if (summary.operatorFailure !== undefined) {
      summary.notAttempted += 1;
      return;
    }

    // A retry starts from the listed grant too: its ETag is stale by then, so the lease step reads
    // the grant again and checks that it is still refreshable and due.
    const failure = await attemptRefresh(run, grant);
    if (failure === undefined) return;

    if (attempt >= maxAttempts) {
      summary.transientFailures += 1;
      context.warn("grant refresh failed", {
        grant_id: grant.grantId,
        reason: failure.reason,
        aadsts: failure.aadsts,
        cause: failure.cause,
        attempts: attempt,
      });
      return;
    }
    summary.retries += 1;
    await (options.sleep ?? sleep)(
      retryDelayMs(attempt, failure.retryAfterSeconds, options),
    );
  }
}

/** Makes one attempt; returns the failure to retry, or undefined when the grant is done with. */
async function attemptRefresh(
  run: SweepRun,
  grant: StoredGrant,
): Promise<TransientFailure | undefined> {
  const { broker, context, options, summary } = run;
  let outcome: RefreshOutcome;
  try {
    outcome = await refreshGrant(
      broker,
      grant,
      {
        waitForLease: false,
        ...options.refresh,
        dueBefore: run.dueBefore,
        tokenSlots: run.tokenSlots,
        stop: run.stop,
      },
      context,
    );
  } catch (error) {
    // Only dependency failures are worth a retry; a failure of ours is counted as an error.
    if (
      !(error instanceof BrokerError) ||
      error.status < 500 ||
      error.code === "internal_error"
    ) {
      throw error;
    }
    // Key Vault or Table Storage failed or throttled after the SDK's own retries.
    return {
      reason: error.code,
      retryAfterSeconds: error.retryAfterSeconds,
      cause: describeCause(error.cause),
    };
  }

  if (outcome.kind === "refreshed") {
    summary.refreshed += 1;
    // The token came for free with the refresh; exchanges on this instance can use it.
    broker.tokens.set(grant.grantId, {
      accessToken: outcome.result.accessToken,
      expiresOn: outcome.result.expiresOn,
    });
    return undefined;
  }
  if (outcome.kind === "skipped") {
    if (outcome.reason === "run_stopped") summary.notAttempted += 1;
    else summary.skipped += 1;
    return undefined;
  }

  const { entry, error, known } = outcome;
  if (!known) reportUnknownOnce(context, error, entry);
  if (entry.kind === "customer") {
    summary.reauthRequired += 1;
    context.warn("grant refresh failed", {
      grant_id: grant.grantId,
      reason: entry.reason,
      aadsts: error.aadsts,
    });
    return undefined;
  }
  if (entry.kind === "operator") {
    stopForOperator(
      context,
      summary,
      entry.reason,
      `${entry.description} ${entry.remedy}`,
      error.aadsts,
    );
    return undefined;
  }
  return {
    reason: entry.reason,
    aadsts: error.aadsts,
    retryAfterSeconds: error.retryAfterSeconds,
    cause: describeCause(error.cause),
  };
}

/** Deletes expired pending sign-ins; a failure is logged and costs only this cleanup. */
async function deleteExpiredSignIns(
  broker: Broker,
  context: InvocationContext,
): Promise<number> {
  try {
    return await broker.signIns.deleteExpired(
      new Date(Date.now() - signInRetentionMs),
    );
  } catch (error) {
    context.error("expired sign-ins not deleted", {
      cause: describeCause(error instanceof BrokerError ? error.cause : error),
    });
    return 0;
  }
}

/** Backoff with full jitter, or the Retry-After the dependency sent, capped either way. */
export function retryDelayMs(
  attempt: number,
  retryAfterSeconds: number | undefined,
  options: SweepOptions,
): number {
  const maxDelay = options.maxDelayMs ?? 60_000;
  if (retryAfterSeconds !== undefined)
    return Math.min(maxDelay, retryAfterSeconds * 1000);
  const ceiling = Math.min(
    maxDelay,
    (options.backoffBaseMs ?? 1000) * 2 ** (attempt - 1),
  );
  return Math.random() * ceiling;
}

function stopForOperator(
  context: InvocationContext,
  summary: SweepSummary,
  reason: string,
  explanation: string,
  aadsts: number | undefined,
): void {
  if (summary.operatorFailure !== undefined) return;
  summary.operatorFailure = reason;
  context.error(`refresh run stopped: ${explanation}`, { reason, aadsts });
}

function reportUnknownOnce(
  context: InvocationContext,
  error: IdentityError,
  entry: FailureEntry,
): void {
  const code =
    error.aadsts === undefined ? error.error : `AADSTS${error.aadsts}`;
  if (reportedUnknownCodes.has(code)) return;
  reportedUnknownCodes.add(code);
  context.warn("identity platform error not in the failure catalogue", {
    error: error.error,
    aadsts: error.aadsts,
    handled_as: entry.reason,
  });
}

/**
 * Runs tasks with at most `limit` at once; `run` waits while the pool is full. Tasks must not
 * reject: `sweepGrant` catches every error of its grant.
 */
function createPool(limit: number) {
  const running = new Set<Promise<void>>();

  return {
    async run(task: () => Promise<void>): Promise<void> {
      while (running.size >= limit) await Promise.race(running);
      const promise: Promise<void> = task().finally(() =>
        running.delete(promise),
      );
      running.add(promise);
    },
    async drain(): Promise<void> {
      await Promise.all(running);
    },
  };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

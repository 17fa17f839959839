/**
 * The refresh timer's run: every refreshable grant whose refresh token is older than the configured
 * age is refreshed, with bounded concurrency, a page of grants at a time so that memory does not
 * grow with their number. Transient failures are retried with exponential backoff and full jitter,
 * or after the Retry-After the token endpoint or Key Vault sent. A rejection of the broker's own
 * credential stops the run's further token calls. Expired pending sign-ins are deleted.
 */
import type { InvocationContext } from "@azure/functions";
import type { Broker } from "./broker.js";
import { BrokerError } from "./errors.js";
import type { StoredGrant } from "./grantStore.js";
import { describeCause } from "./http.js";
import { IdentityError } from "./identityClient.js";
import {
  isRefreshable,
  refreshGrant,
  type RefreshOptions,
} from "./refresher.js";

export interface SweepOptions {
  pastDue: boolean;
  /** Attempts per grant for transient failures. */
  maxAttempts?: number;
  /** Base of the exponential backoff between attempts. */
  backoffBaseMs?: number;
  /** Longest wait between attempts, whatever Retry-After asks. */
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
    skipped: 0,
    notAttempted: 0,
    operatorFailure: undefined,
    signInsDeleted: 0,
    durationMs: 0,
    pastDue: options.pastDue,
  };
  const dueBefore = started - broker.config.refresh.afterHours * 60 * 60_000;
  const pool = createPool(broker.config.refresh.concurrency);

  for await (const page of broker.grants.listPages()) {
    for (const grant of page) {
      summary.grants += 1;
      if (
        !isRefreshable(grant.status) ||
        grant.refreshTokenIssuedAt.getTime() > dueBefore
      )
        continue;

      summary.due += 1;
      await pool.run(() =>
        sweepGrant(broker, context, grant, options, summary),
      );
    }
  }
  await pool.drain();

  summary.signInsDeleted = await broker.signIns.deleteExpired(
    new Date(Date.now() - signInRetentionMs),
  );
  summary.durationMs = Date.now() - started;
  context.info("refresh run finished", { ...summary });
  return summary;
}

async function sweepGrant(
  broker: Broker,
  context: InvocationContext,
  first: StoredGrant,
  options: SweepOptions,
  summary: SweepSummary,
): Promise<void> {
  const maxAttempts = options.maxAttempts ?? 3;
  let grant: StoredGrant | undefined = first;

  for (let attempt = 1; grant !== undefined; attempt++) {
    if (summary.operatorFailure !== undefined) {
      summary.notAttempted += 1;
      return;
    }

    let retryAfterSeconds: number | undefined;
    let reason: string;
    let aadsts: number | undefined;
    try {
      const outcome = await refreshGrant(
        broker,
        grant,
        { waitForLease: false, ...options.refresh },
        context,
      );
      if (outcome.kind === "refreshed") {
        summary.refreshed += 1;
        return;
      }
      if (outcome.kind === "skipped") {
        summary.skipped += 1;
        return;
      }

      const { entry, error, known } = outcome;
      if (!known) reportUnknownOnce(context, error);
      if (entry.kind === "customer") {
        summary.reauthRequired += 1;
        context.warn("grant refresh failed", {
          grant_id: grant.grantId,
          reason: entry.reason,
          aadsts: error.aadsts,
        });
        return;
      }
      if (entry.kind === "operator") {
        stopForOperator(
          context,
          summary,
          entry.reason,
          `${entry.description} ${entry.remedy}`,
          error.aadsts,
        );
        return;
      }
      reason = entry.reason;
      aadsts = error.aadsts;
      retryAfterSeconds = error.retryAfterSeconds;
    } catch (error) {
      if (!(error instanceof BrokerError) || error.status < 500) throw error;
      // Key Vault or Table Storage failed or throttled after the SDK's own retries.
      reason = error.code;
      retryAfterSeconds = error.retryAfterSeconds;
      context.warn("grant refresh attempt failed", {
        grant_id: first.grantId,
        reason,
        cause: describeCause(error.cause),
      });
    }

    if (attempt >= maxAttempts) {
      summary.transientFailures += 1;
      context.warn("grant refresh failed", {
        grant_id: first.grantId,
        reason,
        aadsts,
        attempts: attempt,
      });
      return;
    }
    await (options.sleep ?? sleep)(
      retryDelayMs(attempt, retryAfterSeconds, options),
    );
    grant = await broker.grants.get(first.grantId);
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
): void {
  const code =
    error.aadsts === undefined ? error.error : `AADSTS${error.aadsts}`;
  if (reportedUnknownCodes.has(code)) return;
  reportedUnknownCodes.add(code);
  context.warn(
    "identity platform error not in the failure catalogue; treated as transient",
    {
      error: error.error,
      aadsts: error.aadsts,
    },
  );
}

/** Runs tasks with at most `limit` at once; `run` waits while the pool is full. */
function createPool(limit: number) {
  const running = new Set<Promise<void>>();
  let failure: unknown;

  return {
    async run(task: () => Promise<void>): Promise<void> {
      while (running.size >= limit) await Promise.race(running);
      if (failure !== undefined) throw failure;
      const promise: Promise<void> = task()
        .catch((error: unknown) => {
          failure ??= error;
        })
        .finally(() => running.delete(promise));
      running.add(promise);
    },
    async drain(): Promise<void> {
      await Promise.all(running);
      if (failure !== undefined) throw failure;
    },
  };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Status-change notifications: one signed JSON `POST` to the operator's webhook each time a grant
 * changes status. Delivery is at least once, so receivers drop duplicates by event id. The notifier
 * catches every fetch error and has no access to the grant store, so a failing receiver costs only
 * log lines.
 */
import { createHmac, randomUUID } from "node:crypto";
import { setTimeout as delay } from "node:timers/promises";
import type { GrantStatus } from "./grantStore.js";
import { describeCause } from "./http.js";

export type { GrantStatus };

export interface GrantStatusEvent {
  type: "grant.status_changed";
  /** Random UUID, also sent as `X-Broker-Event-Id` and the same on every retry. */
  id: string;
  /** ISO 8601 time in UTC at which the broker created the event. */
  occurredAt: string;
  grantId: string;
  siteUrl: string;
  mailbox: string;
  previousStatus: GrantStatus;
  status: GrantStatus;
  /** Stable snake_case reason code, such as `expired_by_inactivity`. */
  reason?: string;
  /** AADSTS error number returned by Microsoft Entra ID, when one caused the change. */
  aadsts?: number;
  /** Next step for the operator, in plain words. */
  remedy?: string;
}

export type GrantStatusChange = Omit<
  GrantStatusEvent,
  "type" | "id" | "occurredAt"
>;

export interface NotifierLog {
  warn(message: string, fields: Record<string, unknown>): void;
  error(message: string, fields: Record<string, unknown>): void;
}

export interface Notifier {
  /**
   * Delivers one event and never rejects, whatever the receiver or the network does. Resolves
   * when the event is delivered, rejected with a final status, or out of attempts.
   */
  notifyStatusChange(
    change: GrantStatusChange,
    log: NotifierLog,
  ): Promise<void>;
}

export interface NotifierOptions {
  /** Maximum number of delivery attempts per event, the first one included. */
  attempts?: number;
  /** Timeout of one attempt in ms, from opening the request until the response headers arrive. */
  timeoutMs?: number;
  /** Function that waits between attempts. Tests replace it to skip the backoff. */
  sleep?: (ms: number) => Promise<void>;
}

export const defaultAttempts = 4;
export const defaultTimeoutMs = 5_000;
/** Upper bound in ms of the first backoff. Each later retry doubles it. */
export const backoffBaseMs = 500;
/** Maximum wait in ms before a retry, for the backoff and for `Retry-After` alike. */
export const maxRetryDelayMs = 30_000;

export const userAgent = "m365-mail-oauth-broker";

/** Statuses outside 5xx that mean "try again later". Any other status outside 2xx is final. */
const retryableStatuses = new Set([408, 429]);
/** Statuses whose `Retry-After` header sets the wait before the next attempt. */
const retryAfterStatuses = new Set([429, 503]);

export function createNotifier(
  webhook: { url: string; secret: string } | undefined,
  options: NotifierOptions = {},
): Notifier {
  if (webhook === undefined) {
    return { notifyStatusChange: () => Promise.resolve() };
  }

  const attempts = options.attempts ?? defaultAttempts;
  const timeoutMs = options.timeoutMs ?? defaultTimeoutMs;
  if (!Number.isInteger(attempts) || attempts < 1) {
    throw new RangeError(
      `Notifier attempts must be a positive integer, got ${attempts}`,
    );
  }
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) {
    throw new RangeError(
      `Notifier timeoutMs must be a positive number of ms, got ${timeoutMs}`,
    );
  }

  const delivery: Delivery = {
    url: webhook.url,
    secret: webhook.secret,
    attempts,
    timeoutMs,
    sleep: options.sleep ?? ((ms) => delay(ms)),
  };
  return {
    notifyStatusChange: (change, log) => deliver(delivery, change, log),
  };
}

interface Delivery {
  url: string;
  secret: string;
  attempts: number;
  timeoutMs: number;
  sleep: (ms: number) => Promise<void>;
}

/** Result of one attempt: delivered, or the status or fetch error that made it fail. */
type AttemptOutcome =
  | { ok: true }
  | {
      ok: false;
      retry: boolean;
      /** Wait in ms before the next attempt, set by `Retry-After`. Undefined means the backoff applies. */
      delayMs?: number;
      failure: AttemptFailure;
    };

/** HTTP status of the response, or the kind of fetch error when there was no response. */
type AttemptFailure = { status: number } | { cause: string | undefined };

async function deliver(
  delivery: Delivery,
  change: GrantStatusChange,
  log: NotifierLog,
): Promise<void> {
  const now = new Date();
  const event = buildEvent(change, randomUUID(), now);
  const body = JSON.stringify(event);
  const timestamp = String(Math.floor(now.getTime() / 1000));
  const headers = {
    "Content-Type": "application/json",
    "User-Agent": userAgent,
    "X-Broker-Event-Id": event.id,
    "X-Broker-Timestamp": timestamp,
    "X-Broker-Signature": `sha256=${signPayload(delivery.secret, timestamp, body)}`,
  };

  for (let attempt = 1; attempt <= delivery.attempts; attempt++) {
    const outcome = await attemptDelivery(delivery, headers, body);
    if (outcome.ok) return;

    const fields = {
      grant_id: event.grantId,
      event_id: event.id,
      attempt,
      attempts: delivery.attempts,
      ...outcome.failure,
    };
    if (!outcome.retry) {
      log.error(finalFailureMessage(outcome.failure), fields);
      return;
    }
    if (attempt === delivery.attempts) {
      log.error(
        "Grant status notification failed on the last attempt, giving up",
        fields,
      );
      return;
    }

    const delayMs = outcome.delayMs ?? backoffDelayMs(attempt);
    log.warn("Grant status notification failed, retrying", {
      ...fields,
      retry_in_ms: delayMs,
    });
    await delivery.sleep(delayMs);
  }
}

function finalFailureMessage(failure: AttemptFailure): string {
  if ("status" in failure && failure.status >= 300 && failure.status < 400) {
    return "Grant status notification failed because the webhook URL redirects and redirects are not followed. Set NOTIFY_WEBHOOK_URL to the final URL";
  }
  return "Grant status notification failed with a status that is not retried, giving up";
}

/**
 * Copies only the event's own fields, so that a caller passing a whole grant record cannot leak
 * its token or identifier into the body. Undefined optional fields are left out of the JSON.
 */
function buildEvent(
  change: GrantStatusChange,
  id: string,
  now: Date,
): GrantStatusEvent {
  return {
    type: "grant.status_changed",
    id,
    occurredAt: now.toISOString(),
    grantId: change.grantId,
    siteUrl: change.siteUrl,
    mailbox: change.mailbox,
    previousStatus: change.previousStatus,
    status: change.status,
    reason: change.reason,
    aadsts: change.aadsts,
    remedy: change.remedy,
  };
}

/** Computes the hex HMAC-SHA256 of `<timestamp>.<body>`, keyed with the webhook secret. */
export function signPayload(
  secret: string,
  timestamp: string,
  body: string,
): string {
  return createHmac("sha256", secret)
    .update(`${timestamp}.${body}`)
    .digest("hex");
}

async function attemptDelivery(
  delivery: Delivery,
  headers: Record<string, string>,
  body: string,
): Promise<AttemptOutcome> {
  let response: Response;
  try {
    response = await fetch(delivery.url, {
      method: "POST",
      headers,
      body,
      redirect: "manual",
      signal: AbortSignal.timeout(delivery.timeoutMs),
    });
  } catch (error) {
    // Timeouts (TimeoutError), refused or dropped connections and DNS failures all land here.
    return {
      ok: false,
      retry: true,
      failure: { cause: describeFetchError(error) },
    };
  }

  // The body is never read, so it is released to free the connection.
  await response.body?.cancel().catch(() => undefined);

  const status = response.status;
  if (status >= 200 && status < 300) return { ok: true };

  const retry = status >= 500 || retryableStatuses.has(status);
  const delayMs = retryAfterStatuses.has(status)
    ? parseRetryAfterMs(response.headers.get("retry-after"), Date.now())
    : undefined;
  return { ok: false, retry, delayMs, failure: { status } };
}

/**
 * Describes a fetch failure by kind only. Node's fetch throws `TypeError: fetch failed` for every
 * network error and puts the socket error, with its code such as ECONNRESET, in `cause`.
 */
function describeFetchError(error: unknown): string | undefined {
  const description = describeCause(error);
  if (!(error instanceof Error) || error.cause === undefined) {
    return description;
  }
  return `${description}: ${describeCause(error.cause)}`;
}

/** Computes a full-jitter backoff: uniform in [0, base * 2^(attempt - 1)), capped. */
function backoffDelayMs(attempt: number): number {
  const ceiling = Math.min(maxRetryDelayMs, backoffBaseMs * 2 ** (attempt - 1));
  return Math.floor(Math.random() * ceiling);
}

/**
 * Parses `Retry-After` as delay-seconds or an HTTP date (RFC 9110, section 10.2.3) into a wait in
 * ms, capped at `maxRetryDelayMs`. Returns undefined when the header is missing or invalid, so the
 * backoff applies.
 */
export function parseRetryAfterMs(
  header: string | null,
  nowMs: number,
): number | undefined {
  if (header === null) return undefined;
  const text = header.trim();

  if (/^\d+$/.test(text)) {
    return Math.min(Number(text) * 1000, maxRetryDelayMs);
  }
  // Only the IMF-fixdate form ("Sun, 06 Nov 1994 08:49:37 GMT") is read as a date.
  const dateMs = text.endsWith(" GMT") ? Date.parse(text) : Number.NaN;
  if (Number.isNaN(dateMs)) return undefined;
  return Math.min(Math.max(dateMs - nowMs, 0), maxRetryDelayMs);
}

/**
 * Token exchange: turns an EQuIS site's identifier into a current access token for its mailbox,
 * with everything the site needs to authenticate by IMAP or SMTP with SASL XOAUTH2.
 */
import type { HttpRequest, InvocationContext } from "@azure/functions";
import type { Broker } from "./broker.js";
import { cloudProfiles, type CloudName, type MailEndpoint } from "./cloud.js";
import { BrokerError } from "./errors.js";
import type { GrantFailure, GrantStatus, StoredGrant } from "./grantStore.js";
import { parseIdentifier, secretMatchesHash } from "./identifier.js";
import { entryForReason } from "./failureCatalogue.js";
import { refreshGrant, type RefreshOutcome } from "./refresher.js";
import type { CachedToken } from "./tokenCache.js";
import { describeCause } from "./http.js";
import { normalizeSiteUrl } from "./validation.js";

export interface TokenResponse {
  access_token: string;
  token_type: "Bearer";
  /** Seconds the token has left. */
  expires_in: number;
  /** When the token expires, in Unix seconds. */
  expires_on: number;
  /** The user name for XOAUTH2: the mailbox. */
  xoauth2_user: string;
  /** Base64 SASL XOAUTH2 initial response, ready for `AUTHENTICATE XOAUTH2` or `AUTH XOAUTH2`. */
  sasl_xoauth2: string;
  imap: MailEndpoint;
  smtp: MailEndpoint;
  /** `degraded` when refreshes have failed for days; the token served is still good. */
  status: "active" | "degraded";
}

/**
 * Builds the SASL XOAUTH2 initial response: `user=` mailbox, byte 0x01, `auth=Bearer ` token,
 * bytes 0x01 0x01, as standard padded base64.
 */
export function buildXoauth2String(user: string, accessToken: string): string {
  return Buffer.from(
    `user=${user}\x01auth=Bearer ${accessToken}\x01\x01`,
    "utf8",
  ).toString("base64");
}

/**
 * Finds the grant an identifier names. A malformed identifier is rejected with no storage call,
 * and a grant row this instance read less than `maxAgeMs` ago is used without reading it again.
 */
export async function authenticateGrant(
  broker: Broker,
  identifierText: string | undefined,
  clientAddress = "unknown",
  maxAgeMs = 0,
): Promise<StoredGrant> {
  // An address over its limit of failed attempts is turned away before any storage call.
  const blockedFor =
    broker.limits.failedByAddress.retryAfterSeconds(clientAddress);
  if (blockedFor > 0) throw rateLimited(blockedFor);

  try {
    return await findGrant(broker, identifierText, maxAgeMs);
  } catch (error) {
    if (!(error instanceof BrokerError) || error.status !== 401) throw error;
    const waitSeconds = broker.limits.failedByAddress.record(clientAddress);
    throw waitSeconds > 0 ? rateLimited(waitSeconds) : error;
  }
}

async function findGrant(
  broker: Broker,
  identifierText: string | undefined,
  maxAgeMs: number,
): Promise<StoredGrant> {
  if (identifierText === undefined) throw new BrokerError("missing_identifier");
  const { grantId, secret } = parseIdentifier(identifierText);

  // Only a row that lets the request through is taken from memory. Anything else is read again,
  // so an identifier issued or a grant restored through another instance works at once.
  const remembered = broker.grants.recent(grantId, maxAgeMs);
  if (
    remembered !== undefined &&
    secretMatchesHash(secret, remembered.identifierHash) &&
    grantStatusError(remembered) === undefined
  ) {
    return remembered;
  }

  const grant = await broker.grants.get(grantId);
  if (grant === undefined || !secretMatchesHash(secret, grant.identifierHash)) {
    // Wrong secrets for a known grant are capped too, but never lock out the right one.
    if (grant !== undefined) {
      const waitSeconds = broker.limits.failedByGrant.record(grantId);
      if (waitSeconds > 0) throw rateLimited(waitSeconds);
    }
    throw new BrokerError("unknown_identifier", undefined, {
      remedy:
        "Check the identifier entered as the mail password in EQuIS, or sign in again on the sign-in page for a new one.",
    });
  }
  return grant;
}

function rateLimited(retryAfterSeconds: number): BrokerError {
  return new BrokerError("rate_limited", undefined, {
    retryAfterSeconds,
    remedy:
      "Check the identifier entered in EQuIS; repeated failed attempts are refused for a while.",
  });
}

/**
 * Returns the client's address for rate limiting: the last X-Forwarded-For entry, the one the
 * nearest proxy (the Functions front end) added, without a port.
 */
export function readClientAddress(request: HttpRequest): string {
  const forwarded = request.headers.get("x-forwarded-for") ?? "";
  const last = forwarded.split(",").at(-1)?.trim() ?? "";
  if (last === "") return "unknown";
  // A port follows only an IPv4 address or a bracketed IPv6 one. A bare IPv6 address has none.
  const bracketed = /^\[([0-9a-fA-F:.]+)\](?::\d+)?$/.exec(last)?.[1];
  const ipv4 = /^(\d{1,3}(?:\.\d{1,3}){3})(?::\d+)?$/.exec(last)?.[1];
  return (bracketed ?? ipv4 ?? last).toLowerCase();
}

export async function exchangeToken(
  broker: Broker,
  context: InvocationContext,
  identifierText: string | undefined,
  siteUrlInput: unknown,
  clientAddress?: string,
): Promise<TokenResponse> {
  const grant = await authenticateGrant(
    broker,
    identifierText,
    clientAddress,
    broker.config.grantCacheMs,
  );
  if (siteUrlInput !== undefined) {
    const siteUrl = normalizeSiteUrl(siteUrlInput, broker.config.siteAllowlist);
    if (siteUrl !== grant.siteUrl) {
      throw new BrokerError("site_mismatch", undefined, { field: "siteUrl" });
    }
  }
  // The grant row is at most GRANT_CACHE_SECONDS old, so a revoke or a failed refresh takes effect
  // within that time even while a token for the grant is still in the cache.
  rejectUnservable(grant);

  const cached = broker.tokens.getFresh(
    grant.grantId,
    broker.config.minTokenLifetimeMs,
  );
  const { token, status } =
    cached !== undefined
      ? { token: cached, status: grant.status }
      : await broker.tokens.singleFlight(grant.grantId, () =>
          renewToken(broker, context, grant),
        );

  const cloud = cloudProfiles[grant.cloud as CloudName] ?? broker.config.cloud;
  const expiresOn = Math.floor(token.expiresOn.getTime() / 1000);
  // Whole seconds left, rounded down, so a client never believes in a second the token lacks.
  const expiresIn = Math.max(
    0,
    Math.floor((token.expiresOn.getTime() - Date.now()) / 1000),
  );

  return {
    access_token: token.accessToken,
    token_type: "Bearer",
    expires_in: expiresIn,
    expires_on: expiresOn,
    xoauth2_user: grant.mailbox,
    sasl_xoauth2: buildXoauth2String(grant.mailbox, token.accessToken),
    imap: cloud.imap,
    smtp: cloud.smtp,
    status: status === "degraded" ? "degraded" : "active",
  };
}

/**
 * Refreshes the grant for a new access token and caches it. A new token with less than the minimum
 * lifetime left is still returned, since Microsoft issued nothing longer, and the next request
 * renews it.
 */
async function renewToken(
  broker: Broker,
  context: InvocationContext,
  grant: StoredGrant,
): Promise<{ token: CachedToken; status: GrantStatus }> {
  // A ceiling on renewals per grant, however many callers ask and however short the tokens are.
  const waitSeconds = broker.limits.refreshesByGrant.record(grant.grantId);
  if (waitSeconds > 0) throw rateLimited(waitSeconds);

  const outcome = await refreshGrant(
    broker,
    grant,
    { waitForLease: true },
    context,
  );
  if (outcome.kind === "skipped") {
    const current = await broker.grants.get(grant.grantId);
    if (current !== undefined) rejectUnservable(current);
    throw new BrokerError("refresh_in_progress", undefined, {
      retryAfterSeconds: 5,
    });
  }
  if (outcome.kind === "failed") throw failedRefreshError(context, outcome);
  rejectUnservable(outcome.grant);

  const token = {
    accessToken: outcome.result.accessToken,
    expiresOn: outcome.result.expiresOn,
  };
  broker.tokens.set(grant.grantId, token);
  return { token, status: outcome.grant.status };
}

/** Returns the error for a grant that cannot be served: revoked (410) or waiting for a sign-in (409). */
export function grantStatusError(grant: StoredGrant): BrokerError | undefined {
  if (grant.status === "revoked") {
    return new BrokerError("grant_revoked", undefined, {
      remedy: "Sign in again on the sign-in page to connect the mailbox.",
    });
  }
  if (grant.status !== "reauth_required") return undefined;

  const failure = readFailure(grant);
  const entry =
    failure === undefined ? undefined : entryForReason(failure.reason);
  return new BrokerError("reauth_required", entry?.description, {
    reason: failure?.reason ?? "reauth_required",
    aadsts: failure?.aadsts,
    remedy: entry?.remedy ?? signInAgainRemedy,
  });
}

function rejectUnservable(grant: StoredGrant): void {
  const error = grantStatusError(grant);
  if (error !== undefined) throw error;
}

const signInAgainRemedy =
  "Sign in again on the sign-in page for this site and mailbox; the identifier in EQuIS keeps working.";

/** Parses the grant's last failure; undefined when there is none. */
export function readFailure(grant: StoredGrant): GrantFailure | undefined {
  if (grant.lastFailure === undefined || grant.lastFailure === "")
    return undefined;
  try {
    return JSON.parse(grant.lastFailure) as GrantFailure;
  } catch {
    return undefined;
  }
}

function failedRefreshError(
  context: InvocationContext,
  outcome: Extract<RefreshOutcome, { kind: "failed" }>,
): BrokerError {
  const { entry, error, grant } = outcome;
  const fields = {
    grant_id: grant.grantId,
    reason: entry.reason,
    aadsts: error.aadsts,
  };

  if (entry.kind === "customer") {
    context.warn("refresh rejected", fields);
    return new BrokerError("reauth_required", entry.description, {
      reason: entry.reason,
      aadsts: error.aadsts,
      remedy: entry.remedy,
      cause: error,
    });
  }
  if (entry.kind === "operator") {
    context.error(
      `refresh failed: ${entry.description} ${entry.remedy}`,
      fields,
    );
    return new BrokerError(
      "identity_unavailable",
      "The broker's own credential was rejected by Microsoft.",
      {
        reason: entry.reason,
        aadsts: error.aadsts,
        retryAfterSeconds: 300,
        cause: error,
      },
    );
  }

  context.error("refresh failed", {
    ...fields,
    error: error.error,
    cause: describeCause(error.cause),
  });
  return new BrokerError("identity_unavailable", undefined, {
    reason: entry.reason,
    aadsts: error.aadsts,
    retryAfterSeconds: error.retryAfterSeconds ?? 30,
    cause: error,
  });
}

/**
 * Grant operations after the callback, apart from refreshes: the status reported to EQuIS sites
 * and administrators, revocation, and a new identifier in place of the old one.
 */
import type { Broker } from "./broker.js";
import { entryForReason } from "./failureCatalogue.js";
import {
  unsetDate,
  updateGrant,
  type GrantStatus,
  type StoredGrant,
} from "./grantStore.js";
import { issueIdentifier } from "./identifier.js";
import type { NotifierLog } from "./notifier.js";
import { readFailure } from "./tokenBroker.js";

/** Microsoft's refresh tokens expire after 90 days without use. */
const refreshTokenLifetimeMs = 90 * 24 * 60 * 60_000;

export interface GrantStatusBody {
  status: GrantStatus;
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
  /** When the refresh token expires if it is never used again; null once revoked. */
  refreshTokenExpiresAt: string | null;
}

export function describeGrantStatus(grant: StoredGrant): GrantStatusBody {
  const failure = readFailure(grant);
  const entry =
    failure === undefined ? undefined : entryForReason(failure.reason);
  const lastRefreshAt =
    grant.lastRefreshAt !== undefined && grant.lastRefreshAt.getTime() > 0
      ? grant.lastRefreshAt
      : undefined;

  return {
    status: grant.status,
    mailbox: grant.mailbox,
    siteUrl: grant.siteUrl,
    cloud: grant.cloud,
    tenantId: grant.tenantId,
    connectedAt: grant.connectedAt.toISOString(),
    lastRefreshAt: lastRefreshAt?.toISOString() ?? null,
    lastFailure:
      failure === undefined
        ? null
        : {
            ...failure,
            description: entry?.description,
            remedy: entry?.remedy,
          },
    refreshTokenExpiresAt:
      grant.status === "revoked"
        ? null
        : new Date(
            grant.refreshTokenIssuedAt.getTime() + refreshTokenLifetimeMs,
          ).toISOString(),
  };
}

/**
 * Revokes a grant: it is marked revoked first, so exchanges stop at once, then its refresh token
 * is deleted from Key Vault. The secret is soft-deleted, never reused: a new sign-in for the same
 * site and mailbox creates a grant with a new id and secret name.
 *
 * Only the call that changes the status sends the event, and it sends it before deleting the
 * secret. So a Key Vault failure, which the caller retries after its 503, neither loses the event
 * nor sends it twice. A call that finds the grant already revoked only deletes the secret.
 */
export async function revokeGrant(
  broker: Broker,
  grant: StoredGrant,
  log: NotifierLog,
): Promise<StoredGrant> {
  const now = new Date();
  let previousStatus: GrantStatus = grant.status;
  const revoked = await updateGrant(broker.grants, grant, (current) => {
    previousStatus = current.status;
    return current.status === "revoked"
      ? undefined
      : {
          status: "revoked",
          revokedAt: now,
          updatedAt: now,
          leaseUntil: unsetDate,
          leaseId: "",
        };
  });
  if (revoked === undefined || revoked.status !== "revoked") {
    throw new Error("grant could not be marked revoked");
  }

  if (previousStatus !== "revoked") {
    await broker.notifier.notifyStatusChange(
      {
        grantId: grant.grantId,
        siteUrl: grant.siteUrl,
        mailbox: grant.mailbox,
        previousStatus,
        status: "revoked",
        reason: "revoked_by_request",
      },
      log,
    );
  }
  broker.tokens.delete(grant.grantId);
  await broker.secrets.deleteRefreshToken(grant.grantId);
  return revoked;
}

/**
 * Issues a new identifier for a grant. The old one stops working at once through this instance and
 * within GRANT_CACHE_SECONDS through the others.
 */
export async function replaceIdentifier(
  broker: Broker,
  grant: StoredGrant,
): Promise<string> {
  const issued = issueIdentifier(grant.grantId);
  const updated = await updateGrant(broker.grants, grant, () => ({
    identifierHash: issued.secretHash,
    updatedAt: new Date(),
  }));
  if (updated === undefined)
    throw new Error("grant disappeared while its identifier was replaced");
  return issued.identifier;
}

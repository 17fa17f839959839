/**
 * Storing a grant after a successful sign-in. A site and mailbox have at most one grant: signing in
 * again restores it in place with the new refresh token, so the identifier already entered in EQuIS
 * keeps working. The refresh token is saved in Key Vault before the index refers to it.
 */
import type { Broker } from "./broker.js";
import { unsetDate, type StoredGrant } from "./grantStore.js";
import type { NotifierLog } from "./notifier.js";
import { issueIdentifier, newGrantId } from "./identifier.js";

export interface NewConnection {
  siteUrl: string;
  mailbox: string;
  mailboxNormalized: string;
  cloud: string;
  tenantId: string;
  objectId: string;
  scopes: string;
  refreshToken: string;
}

export interface Connection {
  grantId: string;
  alreadyConnected: boolean;
  /** The new identifier; absent when an existing grant was restored. */
  identifier?: string;
}

const maxAttempts = 3;

export async function connectGrant(
  broker: Broker,
  connection: NewConnection,
  log: NotifierLog,
): Promise<Connection> {
  const candidate = newGrantId();
  let grantId = await broker.grants.claimMailbox(
    connection.siteUrl,
    connection.mailboxNormalized,
    candidate,
  );

  for (let attempt = 1; attempt <= maxAttempts; attempt++) {
    const existing =
      grantId === candidate ? undefined : await broker.grants.get(grantId);

    if (existing?.status === "revoked") {
      grantId = await broker.grants.replaceMailbox(
        connection.siteUrl,
        connection.mailboxNormalized,
        grantId,
        candidate,
      );
      continue;
    }
    if (existing !== undefined) {
      if (await restoreGrant(broker, existing, connection, log))
        return { grantId, alreadyConnected: true };
      continue;
    }

    // No grant row yet: this is a new mailbox, or an earlier sign-in stopped between claiming the
    // mailbox and creating its grant. A concurrent sign-in may create it first; then restore it.
    const issued = issueIdentifier(grantId);
    const now = new Date();
    const secretVersion = await broker.secrets.saveRefreshToken(
      grantId,
      connection.refreshToken,
      now,
    );
    const created = await broker.grants.tryCreate({
      grantId,
      status: "active",
      siteUrl: connection.siteUrl,
      mailbox: connection.mailbox,
      mailboxNormalized: connection.mailboxNormalized,
      cloud: connection.cloud,
      tenantId: connection.tenantId,
      objectId: connection.objectId,
      scopes: connection.scopes,
      identifierHash: issued.secretHash,
      secretVersion,
      connectedAt: now,
      refreshTokenIssuedAt: now,
      updatedAt: now,
    });
    if (created)
      return {
        grantId,
        alreadyConnected: false,
        identifier: issued.identifier,
      };
  }

  throw new Error("grant changed concurrently on every attempt");
}

/**
 * Restores an existing grant with the new sign-in's refresh token. A grant that needed a new
 * sign-in becomes active again, and the status change is announced.
 */
async function restoreGrant(
  broker: Broker,
  existing: StoredGrant,
  connection: NewConnection,
  log: NotifierLog,
): Promise<boolean> {
  const now = new Date();
  const secretVersion = await broker.secrets.saveRefreshToken(
    existing.grantId,
    connection.refreshToken,
    now,
    { recoverDeleted: true },
  );
  // The cached access token belongs to the session this sign-in replaces.
  broker.tokens.delete(existing.grantId);
  const updated = await broker.grants.tryUpdate(
    existing.grantId,
    existing.etag,
    {
      status: "active",
      mailbox: connection.mailbox,
      tenantId: connection.tenantId,
      objectId: connection.objectId,
      scopes: connection.scopes,
      secretVersion,
      refreshTokenIssuedAt: now,
      lastFailure: "",
      transientSince: unsetDate,
      updatedAt: now,
    },
  );
  if (updated === undefined) return false;

  if (existing.status !== "active") {
    await broker.notifier.notifyStatusChange(
      {
        grantId: existing.grantId,
        siteUrl: existing.siteUrl,
        mailbox: connection.mailbox,
        previousStatus: existing.status,
        status: "active",
        reason: "signed_in_again",
      },
      log,
    );
  }
  return true;
}

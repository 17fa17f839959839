/**
 * Grants in Table Storage. Each grant is one row keyed by its id; a second row, keyed by a hash of
 * site and mailbox, points to it, so signing in again for the same site and mailbox finds the grant
 * and restores it in place.
 */
import type { TableClient } from "@azure/data-tables";
import { grantKey, mailboxKey } from "./keys.js";
import { withoutUndefined } from "./signInStore.js";
import { BrokerError } from "./errors.js";
import { hasStatus, toStorageError } from "./tables.js";

/**
 * `active` and `degraded` grants are served; `degraded` has had no successful refresh for a
 * configured number of days. `reauth_required` needs the mailbox to sign in again, and `revoked`
 * was ended through the API.
 */
export type GrantStatus = "active" | "degraded" | "reauth_required" | "revoked";

/** The last failed refresh, as stored on the grant. */
export interface GrantFailure {
  reason: string;
  aadsts?: number;
  at: string;
}

/** The value of a date field that is not set; Table Storage has no null. */
export const unsetDate = new Date(0);

export interface Grant {
  grantId: string;
  status: GrantStatus;
  siteUrl: string;
  /** Mailbox as typed at sign-in; the XOAUTH2 user. */
  mailbox: string;
  mailboxNormalized: string;
  cloud: string;
  tenantId: string;
  objectId: string;
  /** The exact scope string requested at consent; every refresh uses it. */
  scopes: string;
  identifierHash: string;
  secretVersion: string;
  connectedAt: Date;
  /** When the stored refresh token was issued; an older token never replaces a newer one. */
  refreshTokenIssuedAt: Date;
  updatedAt: Date;
  /** Last successful refresh, or `unsetDate`. */
  lastRefreshAt?: Date;
  /** JSON of the last GrantFailure, or "" after a success. */
  lastFailure?: string;
  /** Start of the current run of transient failures, or `unsetDate`. */
  transientSince?: Date;
  /** Until when one refresh has the grant leased, or `unsetDate`; claimed with an ETag condition. */
  leaseUntil?: Date;
  leaseId?: string;
  revokedAt?: Date;
}

export interface StoredGrant extends Grant {
  etag: string;
}

const grantRow = "grant";
const mailboxRow = "mailbox";

export interface GrantStore {
  get(grantId: string): Promise<StoredGrant | undefined>;
  /**
   * Returns the grant as this instance last read or wrote it, if that was less than `maxAgeMs`
   * ago, without a storage call. An unknown grant is never remembered.
   */
  recent(grantId: string, maxAgeMs: number): StoredGrant | undefined;
  /** Creates a grant; returns false when one with that id exists. */
  tryCreate(grant: Grant): Promise<boolean>;
  /**
   * Applies a change if the grant is unchanged since `etag` was read. Returns the new ETag, or
   * undefined when the grant has changed or is gone.
   */
  tryUpdate(
    grantId: string,
    etag: string,
    change: Partial<Grant>,
  ): Promise<string | undefined>;
  /** Pages through every grant, a page at a time, so memory does not grow with their number. */
  listPages(pageSize?: number): AsyncIterable<StoredGrant[]>;
  /** Returns the grant id recorded for a site and mailbox, recording `grantId` when there is none. */
  claimMailbox(
    siteUrl: string,
    mailbox: string,
    grantId: string,
  ): Promise<string>;
  /**
   * Points a site and mailbox at `newGrantId` if they still point at `expectedGrantId`, for
   * example after that grant was revoked. Returns the grant id they point at afterwards, which is
   * another one when a concurrent sign-in replaced it first.
   */
  replaceMailbox(
    siteUrl: string,
    mailbox: string,
    expectedGrantId: string,
    newGrantId: string,
  ): Promise<string>;
}

export interface GrantStoreOptions {
  /** Grant rows remembered for `recent`, least recently used dropped first. */
  recentRows: number;
}

export function createGrantStore(
  table: TableClient,
  ensureTables: () => Promise<void>,
  options: GrantStoreOptions = { recentRows: 10_000 },
): GrantStore {
  const recent = createRecentRows(options.recentRows);

  async function read(grantId: string): Promise<StoredGrant | undefined> {
    await ensureTables();
    try {
      const entity = await table.getEntity<Grant>(grantKey(grantId), grantRow);
      const grant = { ...entity, etag: entity.etag };
      recent.remember(grant);
      return grant;
    } catch (error) {
      if (hasStatus(error, 404)) {
        recent.forget(grantId);
        return undefined;
      }
      throw toStorageError(error);
    }
  }

  return {
    get: read,

    recent: (grantId, maxAgeMs) => recent.lookUp(grantId, maxAgeMs),

    async tryCreate(grant) {
      recent.forget(grant.grantId);
      try {
        await table.createEntity({
          partitionKey: grantKey(grant.grantId),
          rowKey: grantRow,
          ...withoutUndefined(grant),
        });
        return true;
      } catch (error) {
        if (hasStatus(error, 409)) return false;
        throw toStorageError(error);
      }
    },

    async tryUpdate(grantId, etag, change) {
      try {
        const response = await table.updateEntity(
          {
            partitionKey: grantKey(grantId),
            rowKey: grantRow,
            ...withoutUndefined(change),
          },
          "Merge",
          { etag },
        );
        const newEtag = response.etag ?? "";
        recent.applyChange(grantId, etag, change, newEtag);
        return newEtag;
      } catch (error) {
        // A failed write may still have reached storage, so the remembered row is not trusted.
        recent.forget(grantId);
        if (hasStatus(error, 412) || hasStatus(error, 404)) return undefined;
        throw toStorageError(error);
      }
    },

    async *listPages(pageSize = 100) {
      await ensureTables();
      const pages = table
        .listEntities<Grant>({
          queryOptions: { filter: `RowKey eq '${grantRow}'` },
        })
        .byPage({ maxPageSize: pageSize });
      try {
        for await (const page of pages) {
          yield page.map((entity) => ({ ...entity, etag: entity.etag }));
        }
      } catch (error) {
        throw toStorageError(error);
      }
    },

    async claimMailbox(siteUrl, mailbox, grantId) {
      await ensureTables();
      const partitionKey = mailboxKey(siteUrl, mailbox);
      try {
        await table.createEntity({ partitionKey, rowKey: mailboxRow, grantId });
        return grantId;
      } catch (error) {
        if (!hasStatus(error, 409)) throw toStorageError(error);
      }
      try {
        const existing = await table.getEntity<{ grantId: string }>(
          partitionKey,
          mailboxRow,
        );
        return existing.grantId;
      } catch (error) {
        throw toStorageError(error);
      }
    },

    async replaceMailbox(siteUrl, mailbox, expectedGrantId, newGrantId) {
      const partitionKey = mailboxKey(siteUrl, mailbox);
      try {
        const current = await table.getEntity<{ grantId: string }>(
          partitionKey,
          mailboxRow,
        );
        if (current.grantId !== expectedGrantId) return current.grantId;
        await table.updateEntity(
          { partitionKey, rowKey: mailboxRow, grantId: newGrantId },
          "Replace",
          { etag: current.etag },
        );
        return newGrantId;
      } catch (error) {
        if (!hasStatus(error, 412)) throw toStorageError(error);
      }
      // Another sign-in replaced it between the read and the write.
      try {
        const current = await table.getEntity<{ grantId: string }>(
          partitionKey,
          mailboxRow,
        );
        return current.grantId;
      } catch (error) {
        throw toStorageError(error);
      }
    },
  };
}

/**
 * Grant rows as this instance last read or wrote them, with when. A write through this instance
 * updates the remembered row only when it was made against the remembered ETag. Any other write
 * drops the row, so the next request reads it again.
 */
function createRecentRows(maxRows: number) {
  const rows = new Map<string, { grant: StoredGrant; at: number }>();

  function remember(grant: StoredGrant): void {
    rows.delete(grant.grantId);
    rows.set(grant.grantId, { grant, at: Date.now() });
    while (rows.size > maxRows) {
      const oldest = rows.keys().next().value;
      if (oldest === undefined) break;
      rows.delete(oldest);
    }
  }

  return {
    remember,

    lookUp(grantId: string, maxAgeMs: number): StoredGrant | undefined {
      const row = rows.get(grantId);
      if (row === undefined || Date.now() - row.at >= maxAgeMs)
        return undefined;
      return row.grant;
    },

    applyChange(
      grantId: string,
      etag: string,
      change: Partial<Grant>,
      newEtag: string,
    ): void {
      const row = rows.get(grantId);
      if (row === undefined) return;
      if (row.grant.etag !== etag || newEtag === "") {
        rows.delete(grantId);
        return;
      }
      remember({ ...row.grant, ...withoutUndefined(change), etag: newEtag });
    },

    forget(grantId: string): void {
      rows.delete(grantId);
    },
  };
}

const maxUpdateAttempts = 5;

/**
 * Applies a change computed from the grant's current state, reading it again after each ETag
 * conflict. Returns the stored grant, or undefined when it is gone. A change of undefined or of no
 * fields writes nothing. Throws `storage_unavailable` when every attempt met a conflict.
 */
export async function updateGrant(
  grants: GrantStore,
  first: StoredGrant,
  change: (current: StoredGrant) => Partial<Grant> | undefined,
): Promise<StoredGrant | undefined> {
  let current: StoredGrant | undefined = first;
  for (
    let attempt = 0;
    attempt < maxUpdateAttempts && current !== undefined;
    attempt++
  ) {
    const fields = change(current);
    if (fields === undefined || Object.keys(fields).length === 0)
      return current;

    const etag = await grants.tryUpdate(current.grantId, current.etag, fields);
    if (etag !== undefined) return { ...current, ...fields, etag };
    current = await grants.get(first.grantId);
  }
  if (current === undefined) return undefined;
  // Writing nothing must not look like success to the caller.
  throw new BrokerError(
    "storage_unavailable",
    "The grant kept changing; try again.",
    {
      retryAfterSeconds: 1,
    },
  );
}

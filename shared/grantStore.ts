/**
 * Grants in Table Storage. Each grant is one row keyed by its id; a second row, keyed by a hash of
 * site and mailbox, points to it, so signing in again for the same site and mailbox finds the grant
 * and restores it in place.
 */
import type { TableClient } from "@azure/data-tables";
import { grantKey, mailboxKey } from "./keys.js";
import { withoutUndefined } from "./signInStore.js";
import { hasStatus, toStorageError } from "./tables.js";

export type GrantStatus = "active" | "reauth_required" | "revoked";

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
  refreshTokenIssuedAt: Date;
  updatedAt: Date;
}

export interface StoredGrant extends Grant {
  etag: string;
}

const grantRow = "grant";
const mailboxRow = "mailbox";

export interface GrantStore {
  get(grantId: string): Promise<StoredGrant | undefined>;
  /** Creates a grant; returns false when one with that id exists. */
  tryCreate(grant: Grant): Promise<boolean>;
  /** Applies a change if the grant is unchanged since `etag` was read; returns false otherwise. */
  tryUpdate(
    grantId: string,
    etag: string,
    change: Partial<Grant>,
  ): Promise<boolean>;
  /** Returns the grant id recorded for a site and mailbox, recording `grantId` when there is none. */
  claimMailbox(
    siteUrl: string,
    mailbox: string,
    grantId: string,
  ): Promise<string>;
  /** Points a site and mailbox at another grant, for example after the old one was revoked. */
  replaceMailbox(
    siteUrl: string,
    mailbox: string,
    grantId: string,
  ): Promise<void>;
}

export function createGrantStore(
  table: TableClient,
  ensureTables: () => Promise<void>,
): GrantStore {
  return {
    async get(grantId) {
      await ensureTables();
      try {
        const entity = await table.getEntity<Grant>(
          grantKey(grantId),
          grantRow,
        );
        return { ...entity, etag: entity.etag };
      } catch (error) {
        if (hasStatus(error, 404)) return undefined;
        throw toStorageError(error);
      }
    },

    async tryCreate(grant) {
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
        await table.updateEntity(
          {
            partitionKey: grantKey(grantId),
            rowKey: grantRow,
            ...withoutUndefined(change),
          },
          "Merge",
          {
            etag,
          },
        );
        return true;
      } catch (error) {
        if (hasStatus(error, 412) || hasStatus(error, 404)) return false;
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

    async replaceMailbox(siteUrl, mailbox, grantId) {
      try {
        await table.upsertEntity(
          {
            partitionKey: mailboxKey(siteUrl, mailbox),
            rowKey: mailboxRow,
            grantId,
          },
          "Replace",
        );
      } catch (error) {
        throw toStorageError(error);
      }
    },
  };
}

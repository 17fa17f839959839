/**
 * Pending sign-ins in Table Storage, keyed by a hash of their state. A sign-in moves from `pending`
 * to `redeeming` (claimed with an ETag condition, so a doubled callback redeems its code once), then
 * to `completed` or `failed`, and to `shown` once the page has fetched its identifier.
 */
import { odata, type TableClient } from "@azure/data-tables";
import { signInKey } from "./keys.js";
import { hasStatus, toStorageError } from "./tables.js";

export type SignInStatus =
  "pending" | "redeeming" | "completed" | "failed" | "shown";

export interface PendingSignIn {
  codeVerifier: string;
  nonce: string;
  siteUrl: string;
  /** Mailbox as typed. */
  mailbox: string;
  mailboxNormalized: string;
  cloud: string;
  bindingHash: string;
  expiresAt: Date;
  status: SignInStatus;
  /** Set once completed. */
  grantId?: string;
  alreadyConnected?: boolean;
  sealedIdentifier?: string;
  completedAt?: Date;
  /** Set once a new identifier was issued from this sign-in's result. */
  newIdentifierIssued?: boolean;
}

export interface StoredSignIn extends PendingSignIn {
  etag: string;
}

const rowKey = "signin";

export interface SignInStore {
  create(state: string, signIn: PendingSignIn): Promise<void>;
  get(state: string): Promise<StoredSignIn | undefined>;
  /**
   * Applies a change if the sign-in is unchanged since `etag` was read. Returns the new ETag, or
   * undefined when the sign-in has changed or is gone.
   */
  tryUpdate(
    state: string,
    etag: string,
    change: Partial<PendingSignIn>,
  ): Promise<string | undefined>;
  /** Deletes sign-ins that expired before `before`, a page at a time; returns how many. */
  deleteExpired(before: Date): Promise<number>;
}

export function createSignInStore(
  table: TableClient,
  ensureTables: () => Promise<void>,
): SignInStore {
  return {
    async create(state, signIn) {
      await ensureTables();
      try {
        await table.createEntity({
          partitionKey: signInKey(state),
          rowKey,
          ...withoutUndefined(signIn),
        });
      } catch (error) {
        throw toStorageError(error);
      }
    },

    async get(state) {
      await ensureTables();
      try {
        const entity = await table.getEntity<PendingSignIn>(
          signInKey(state),
          rowKey,
        );
        return { ...entity, etag: entity.etag };
      } catch (error) {
        if (hasStatus(error, 404)) return undefined;
        throw toStorageError(error);
      }
    },

    async tryUpdate(state, etag, change) {
      try {
        const response = await table.updateEntity(
          {
            partitionKey: signInKey(state),
            rowKey,
            ...withoutUndefined(change),
          },
          "Merge",
          {
            etag,
          },
        );
        return response.etag ?? "";
      } catch (error) {
        if (hasStatus(error, 412) || hasStatus(error, 404)) return undefined;
        throw toStorageError(error);
      }
    },

    async deleteExpired(before) {
      await ensureTables();
      let deleted = 0;
      try {
        const pages = table
          .listEntities<PendingSignIn>({
            queryOptions: {
              filter: odata`expiresAt lt ${before}`,
              select: ["PartitionKey", "RowKey"],
            },
          })
          .byPage({ maxPageSize: 100 });
        for await (const page of pages) {
          for (const entity of page) {
            if (await tryDelete(table, entity.partitionKey, entity.rowKey)) {
              deleted += 1;
            }
          }
        }
      } catch (error) {
        throw toStorageError(error);
      }
      return deleted;
    },
  };
}

/** Deletes one row; returns false when another run deleted it first. */
async function tryDelete(
  table: TableClient,
  partitionKey: string | undefined,
  rowKey: string | undefined,
): Promise<boolean> {
  try {
    await table.deleteEntity(partitionKey ?? "", rowKey ?? "");
    return true;
  } catch (error) {
    if (hasStatus(error, 404)) return false;
    throw error;
  }
}

/** Drops undefined properties, which the Table SDK would otherwise send as nulls. */
export function withoutUndefined<T extends object>(value: T): T {
  return Object.fromEntries(
    Object.entries(value).filter(([, field]) => field !== undefined),
  ) as T;
}

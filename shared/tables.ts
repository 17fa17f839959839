/**
 * Table Storage clients for the broker's two tables: pending sign-ins and grants.
 */
import {
  TableClient,
  type TableServiceClientOptions,
} from "@azure/data-tables";
import type { TokenCredential } from "@azure/core-auth";
import { RestError } from "@azure/core-rest-pipeline";
import type { BrokerConfig } from "./config.js";
import { BrokerError } from "./errors.js";

export interface BrokerTables {
  signIns: TableClient;
  grants: TableClient;
  /** Creates both tables when missing; safe to call on every start. */
  ensureCreated(): Promise<void>;
}

export function createBrokerTables(
  config: BrokerConfig,
  credential: TokenCredential,
): BrokerTables {
  const names = {
    signIns: `${config.tableNamePrefix}signins`,
    grants: `${config.tableNamePrefix}grants`,
  };
  const signIns = createTableClient(config, credential, names.signIns);
  const grants = createTableClient(config, credential, names.grants);
  let created: Promise<void> | undefined;

  return {
    signIns,
    grants,
    ensureCreated() {
      created ??= Promise.all([
        signIns.createTable(),
        grants.createTable(),
      ]).then(
        () => undefined,
        (error: unknown) => {
          created = undefined;
          throw toStorageError(error);
        },
      );
      return created;
    },
  };
}

function createTableClient(
  config: BrokerConfig,
  credential: TokenCredential,
  tableName: string,
): TableClient {
  if ("connectionString" in config.tables) {
    const options: TableServiceClientOptions = {
      // Azurite serves plain http; the SDK sends nothing over http unless this option allows it.
      allowInsecureConnection:
        /TableEndpoint=http:\/\/(127\.0\.0\.1|localhost)[:/]/i.test(
          config.tables.connectionString,
        ),
    };
    return TableClient.fromConnectionString(
      config.tables.connectionString,
      tableName,
      options,
    );
  }
  return new TableClient(config.tables.endpoint, tableName, credential);
}

/** Checks that the Table service responds, for the health function. */
export async function probeTables(tables: BrokerTables): Promise<void> {
  await tables.ensureCreated();
  const page = tables.grants
    .listEntities({ queryOptions: { select: ["PartitionKey"] } })
    .byPage({ maxPageSize: 1 });
  await page.next();
}

export function hasStatus(error: unknown, status: number): boolean {
  return error instanceof RestError && error.statusCode === status;
}

/** Translates a Table Storage failure into `storage_unavailable`, keeping the library error as cause. */
export function toStorageError(error: unknown): BrokerError {
  if (error instanceof BrokerError) return error;
  return new BrokerError("storage_unavailable", undefined, {
    cause: error,
    retryAfterSeconds: 5,
  });
}

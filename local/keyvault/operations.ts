// Execution of one authenticated Key Vault secrets request against the store, producing the
// status and JSON body that the service returns.

import {
  deletedSecretBundle,
  deletedSecretItem,
  secretBundle,
  secretItem,
  versionItem,
} from "./bundles.js";
import { invalidName } from "./errors.js";
import { buildNextLink, parsePageRequest, takePage } from "./paging.js";
import { parseSetSecretBody, parseUpdateSecretBody } from "./requestBodies.js";
import type { VaultRoute } from "./routes.js";
import { currentVersion, nameKey } from "./store.js";
import type { SecretStore, SecretVersionRecord } from "./store.js";

/** Key Vault object name rule: 1 to 127 letters, digits and hyphens. */
const secretNamePattern = /^[0-9a-zA-Z-]{1,127}$/;

export interface OperationRequest {
  vaultUrl: string;
  path: string;
  query: URLSearchParams;
  apiVersion: string;
  body: string;
  /** Current time in Unix seconds. */
  now: number;
}

export interface OperationResult {
  status: number;
  /** JSON body, or undefined for an empty body. */
  body: unknown;
  /** Whether the operation changed stored data, so it must be persisted before responding. */
  changed: boolean;
}

function ok(body: unknown, changed = false): OperationResult {
  return { status: 200, body, changed };
}

function listPage<T>(
  items: T[],
  keyOf: (item: T) => string,
  render: (item: T) => unknown,
  request: OperationRequest,
): OperationResult {
  const pageRequest = parsePageRequest(request.query);
  const page = takePage(items, keyOf, pageRequest);
  const nextLink = buildNextLink(
    request.vaultUrl,
    request.path,
    request.apiVersion,
    pageRequest,
    page.nextMarker,
  );
  return ok({ value: page.items.map(render), nextLink });
}

function listVersions(
  store: SecretStore,
  name: string,
  request: OperationRequest,
): OperationResult {
  // NOTE: listing the versions of a missing or soft-deleted secret returns an empty list here.
  // Whether the service returns 404 instead is unverified.
  const secret = store.findActiveSecret(name);
  if (secret === undefined) {
    return listPage([], nameKey, () => undefined, request);
  }

  // The service documents no order for versions. Listing them by id rather than by creation
  // time keeps callers from relying on one.
  const versions = [...secret.versions].sort(byVersionKey);
  return listPage(
    versions,
    (version) => nameKey(version.version),
    (version) => versionItem(request.vaultUrl, secret, version),
    request,
  );
}

function byVersionKey(
  left: SecretVersionRecord,
  right: SecretVersionRecord,
): number {
  return nameKey(left.version) < nameKey(right.version) ? -1 : 1;
}

function secretName(route: VaultRoute): string | undefined {
  return "name" in route ? route.name : undefined;
}

/** Runs `route` against `store` and throws KeyVaultError for the service's error responses. */
export function executeOperation(
  store: SecretStore,
  route: VaultRoute,
  request: OperationRequest,
): OperationResult {
  const name = secretName(route);
  if (name !== undefined && !secretNamePattern.test(name)) {
    throw invalidName(name);
  }

  const vaultUrl = request.vaultUrl;
  switch (route.operation) {
    case "setSecret": {
      const input = parseSetSecretBody(request.body);
      const result = store.setSecret(route.name, input, request.now);
      return ok(
        secretBundle(vaultUrl, result.secret, result.version, true),
        true,
      );
    }
    case "getSecret": {
      const result = store.getSecret(route.name, route.version);
      return ok(secretBundle(vaultUrl, result.secret, result.version, true));
    }
    case "listVersions":
      return listVersions(store, route.name, request);
    case "listSecrets":
      return listPage(
        store.listSecrets(),
        (secret) => nameKey(secret.name),
        (secret) => secretItem(vaultUrl, secret),
        request,
      );
    case "updateSecret": {
      const update = parseUpdateSecretBody(request.body);
      const result = store.updateSecret(
        route.name,
        route.version,
        update,
        request.now,
      );
      return ok(
        secretBundle(vaultUrl, result.secret, result.version, false),
        true,
      );
    }
    case "deleteSecret":
      return ok(
        deletedSecretBundle(
          vaultUrl,
          store.deleteSecret(route.name, request.now),
        ),
        true,
      );
    case "getDeletedSecret":
      return ok(
        deletedSecretBundle(vaultUrl, store.getDeletedSecret(route.name)),
      );
    case "listDeletedSecrets":
      return listPage(
        store.listDeletedSecrets(),
        (secret) => nameKey(secret.name),
        (secret) => deletedSecretItem(vaultUrl, secret),
        request,
      );
    case "purgeDeletedSecret":
      store.purgeDeletedSecret(route.name);
      return { status: 204, body: undefined, changed: true };
    case "recoverDeletedSecret": {
      const secret = store.recoverDeletedSecret(route.name);
      return ok(
        secretBundle(vaultUrl, secret, currentVersion(secret), false),
        true,
      );
    }
  }
}

// JSON shapes of the Key Vault secrets REST API: SecretBundle, SecretItem, DeletedSecretBundle
// and DeletedSecretItem. Identifiers are `<vaultUrl>/secrets/<name>[/<version>]`.

import { currentVersion, recoverableDays } from "./store.js";
import type { SecretRecord, SecretVersionRecord } from "./store.js";

/** Recovery level of a vault with soft delete on and purge protection off. */
const recoveryLevel = "Recoverable+Purgeable";

export interface SecretAttributesJson {
  enabled: boolean;
  nbf?: number;
  exp?: number;
  created: number;
  updated: number;
  recoveryLevel: string;
  recoverableDays: number;
}

export interface SecretItemJson {
  id: string;
  contentType?: string;
  attributes: SecretAttributesJson;
  tags?: Record<string, string>;
}

export interface SecretBundleJson extends SecretItemJson {
  value?: string;
}

export interface DeletedSecretJson extends SecretItemJson {
  recoveryId: string;
  deletedDate: number;
  scheduledPurgeDate: number;
}

function secretAttributes(version: SecretVersionRecord): SecretAttributesJson {
  const attributes: SecretAttributesJson = {
    enabled: version.enabled,
    created: version.created,
    updated: version.updated,
    recoveryLevel,
    recoverableDays,
  };
  if (version.notBefore !== undefined) {
    attributes.nbf = version.notBefore;
  }
  if (version.expires !== undefined) {
    attributes.exp = version.expires;
  }
  return attributes;
}

function item(id: string, version: SecretVersionRecord): SecretItemJson {
  const json: SecretItemJson = { id, attributes: secretAttributes(version) };
  if (version.contentType !== undefined) {
    json.contentType = version.contentType;
  }
  if (version.tags !== undefined) {
    json.tags = version.tags;
  }
  return json;
}

function secretId(vaultUrl: string, secret: SecretRecord): string {
  return `${vaultUrl}/secrets/${secret.name}`;
}

function versionId(
  vaultUrl: string,
  secret: SecretRecord,
  version: SecretVersionRecord,
): string {
  return `${secretId(vaultUrl, secret)}/${version.version}`;
}

function deletion(vaultUrl: string, secret: SecretRecord) {
  if (
    secret.deletedDate === undefined ||
    secret.scheduledPurgeDate === undefined
  ) {
    throw new Error(`Secret ${secret.name} is not deleted`);
  }
  return {
    recoveryId: `${vaultUrl}/deletedsecrets/${secret.name}`,
    deletedDate: secret.deletedDate,
    scheduledPurgeDate: secret.scheduledPurgeDate,
  };
}

/** Returns the SecretBundle of one version. Only get and set responses include the value. */
export function secretBundle(
  vaultUrl: string,
  secret: SecretRecord,
  version: SecretVersionRecord,
  includeValue: boolean,
): SecretBundleJson {
  const bundle: SecretBundleJson = item(
    versionId(vaultUrl, secret, version),
    version,
  );
  if (includeValue) {
    return { value: version.value, ...bundle };
  }
  return bundle;
}

/** Returns the list-secrets item, whose id has no version and whose attributes are the current version's. */
export function secretItem(
  vaultUrl: string,
  secret: SecretRecord,
): SecretItemJson {
  return item(secretId(vaultUrl, secret), currentVersion(secret));
}

export function versionItem(
  vaultUrl: string,
  secret: SecretRecord,
  version: SecretVersionRecord,
): SecretItemJson {
  return item(versionId(vaultUrl, secret, version), version);
}

/** Returns the DeletedSecretBundle of the delete and get-deleted responses, which has no value. */
export function deletedSecretBundle(
  vaultUrl: string,
  secret: SecretRecord,
): DeletedSecretJson {
  const version = currentVersion(secret);
  return {
    ...deletion(vaultUrl, secret),
    ...item(versionId(vaultUrl, secret, version), version),
  };
}

/** Returns the list-deleted-secrets item, whose id has no version. */
export function deletedSecretItem(
  vaultUrl: string,
  secret: SecretRecord,
): DeletedSecretJson {
  return {
    ...deletion(vaultUrl, secret),
    ...item(secretId(vaultUrl, secret), currentVersion(secret)),
  };
}

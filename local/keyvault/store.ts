import { randomBytes } from "node:crypto";

import {
  deletedSecretNotFound,
  secretDeletedButRecoverable,
  secretDisabled,
  secretNotFound,
} from "./errors.js";

/** Days between a soft delete and its scheduled purge, which is Key Vault's default retention. */
export const recoverableDays = 90;

const secondsPerDay = 86_400;

/** One version of a secret. Times are Unix seconds, as the REST API sends them. */
export interface SecretVersionRecord {
  version: string;
  value: string;
  contentType?: string;
  tags?: Record<string, string>;
  enabled: boolean;
  notBefore?: number;
  expires?: number;
  created: number;
  updated: number;
}

/** A secret with its versions in creation order, where the last version is the current one. */
export interface SecretRecord {
  /** Spelling of the name when the secret was first created. */
  name: string;
  versions: SecretVersionRecord[];
  /** Soft-delete time, present only while the secret is deleted but recoverable. */
  deletedDate?: number;
  scheduledPurgeDate?: number;
}

export interface VaultSnapshot {
  secrets: SecretRecord[];
}

/** Properties of a new version, as the PUT body provides them. */
export interface SecretInput {
  value: string;
  contentType?: string;
  tags?: Record<string, string>;
  enabled?: boolean;
  notBefore?: number;
  expires?: number;
}

/** Properties that a PATCH changes. Absent ones stay as they are. */
export interface SecretUpdate {
  contentType?: string;
  tags?: Record<string, string>;
  enabled?: boolean;
  notBefore?: number;
  expires?: number;
}

export interface SecretVersionResult {
  secret: SecretRecord;
  version: SecretVersionRecord;
}

/** Returns the key that orders and matches names, because Key Vault names are case-insensitive. */
export function nameKey(name: string): string {
  return name.toUpperCase();
}

/** Returns the current version, which is the most recently created one. */
export function currentVersion(secret: SecretRecord): SecretVersionRecord {
  const version = secret.versions.at(-1);
  if (version === undefined) {
    throw new Error(`Secret ${secret.name} has no versions`);
  }
  return version;
}

function newVersionId(): string {
  return randomBytes(16).toString("hex");
}

function isDeleted(secret: SecretRecord): boolean {
  return secret.deletedDate !== undefined;
}

function byNameKey(left: SecretRecord, right: SecretRecord): number {
  const leftKey = nameKey(left.name);
  const rightKey = nameKey(right.name);
  if (leftKey < rightKey) {
    return -1;
  }
  return leftKey > rightKey ? 1 : 0;
}

/**
 * In-memory secrets of one vault with Key Vault's rules for versions, soft delete, purge and
 * recovery. Operations throw KeyVaultError with the service's status and code.
 */
export class SecretStore {
  #secrets = new Map<string, SecretRecord>();

  constructor(snapshot?: VaultSnapshot) {
    for (const secret of snapshot?.secrets ?? []) {
      this.#secrets.set(nameKey(secret.name), structuredClone(secret));
    }
  }

  snapshot(): VaultSnapshot {
    const secrets = [...this.#secrets.values()].sort(byNameKey);
    return { secrets: structuredClone(secrets) };
  }

  /** Adds a new version and creates the secret if needed. Rejects a name that is soft-deleted. */
  setSecret(
    name: string,
    input: SecretInput,
    now: number,
  ): SecretVersionResult {
    const key = nameKey(name);
    const existing = this.#secrets.get(key);
    if (existing !== undefined && isDeleted(existing)) {
      throw secretDeletedButRecoverable(existing.name);
    }

    const secret = existing ?? { name, versions: [] };
    const version: SecretVersionRecord = {
      version: newVersionId(),
      value: input.value,
      contentType: input.contentType,
      tags: input.tags,
      enabled: input.enabled ?? true,
      notBefore: input.notBefore,
      expires: input.expires,
      created: now,
      updated: now,
    };
    secret.versions.push(version);
    this.#secrets.set(key, secret);
    return { secret, version };
  }

  /**
   * Returns the version, or the current version when `versionId` is empty. The Get Secret
   * reference states that without a version "the latest version of the secret is returned", so a
   * disabled current version is forbidden instead of falling back to an older enabled version.
   */
  getSecret(name: string, versionId: string): SecretVersionResult {
    const result = this.#findVersion(name, versionId);
    if (!result.version.enabled) {
      throw secretDisabled();
    }
    return result;
  }

  /** Returns the active secret, or undefined when it does not exist or is soft-deleted. */
  findActiveSecret(name: string): SecretRecord | undefined {
    const secret = this.#secrets.get(nameKey(name));
    if (secret === undefined || isDeleted(secret)) {
      return undefined;
    }
    return secret;
  }

  listSecrets(): SecretRecord[] {
    return [...this.#secrets.values()]
      .filter((secret) => !isDeleted(secret))
      .sort(byNameKey);
  }

  /** Changes the properties of one version, or of the current version when `versionId` is empty. */
  updateSecret(
    name: string,
    versionId: string,
    update: SecretUpdate,
    now: number,
  ): SecretVersionResult {
    const result = this.#findVersion(name, versionId);
    const version = result.version;
    if (update.contentType !== undefined) {
      version.contentType = update.contentType;
    }
    if (update.tags !== undefined) {
      version.tags = update.tags;
    }
    if (update.enabled !== undefined) {
      version.enabled = update.enabled;
    }
    if (update.notBefore !== undefined) {
      version.notBefore = update.notBefore;
    }
    if (update.expires !== undefined) {
      version.expires = update.expires;
    }
    version.updated = now;
    return result;
  }

  /**
   * Soft-deletes all versions of a secret. The deletion completes at once, so the deleted
   * secret is readable as soon as this returns.
   */
  deleteSecret(name: string, now: number): SecretRecord {
    const secret = this.#requireActive(name, name);
    secret.deletedDate = now;
    secret.scheduledPurgeDate = now + recoverableDays * secondsPerDay;
    return secret;
  }

  getDeletedSecret(name: string): SecretRecord {
    const secret = this.#secrets.get(nameKey(name));
    if (secret === undefined || !isDeleted(secret)) {
      throw deletedSecretNotFound(name);
    }
    return secret;
  }

  // NOTE: a soft-deleted secret stays until it is purged or recovered. The stand-in never
  // purges it at its scheduledPurgeDate.
  listDeletedSecrets(): SecretRecord[] {
    return [...this.#secrets.values()].filter(isDeleted).sort(byNameKey);
  }

  purgeDeletedSecret(name: string): void {
    const secret = this.getDeletedSecret(name);
    this.#secrets.delete(nameKey(secret.name));
  }

  recoverDeletedSecret(name: string): SecretRecord {
    const secret = this.#secrets.get(nameKey(name));
    if (secret === undefined || !isDeleted(secret)) {
      throw secretNotFound(name);
    }
    delete secret.deletedDate;
    delete secret.scheduledPurgeDate;
    return secret;
  }

  #requireActive(name: string, identifier: string): SecretRecord {
    const secret = this.findActiveSecret(name);
    if (secret === undefined) {
      throw secretNotFound(identifier);
    }
    return secret;
  }

  #findVersion(name: string, versionId: string): SecretVersionResult {
    const identifier = versionId === "" ? name : `${name}/${versionId}`;
    const secret = this.#requireActive(name, identifier);
    if (versionId === "") {
      return { secret, version: currentVersion(secret) };
    }

    const requested = versionId.toLowerCase();
    const version = secret.versions.find(
      (candidate) => candidate.version === requested,
    );
    if (version === undefined) {
      throw secretNotFound(identifier);
    }
    return { secret, version };
  }
}

/**
 * Refresh tokens in Azure Key Vault: one secret per grant, a new version for each rotated token.
 * Each version is tagged with when its token was issued, so a reader can tell the newest token even
 * when the index in Table Storage lags behind the vault (a writer stopped between the two writes).
 */
import type { TokenCredential } from "@azure/core-auth";
import { SecretClient, type KeyVaultSecret } from "@azure/keyvault-secrets";
import { BrokerError } from "./errors.js";
import { refreshTokenSecretName } from "./keys.js";
import { hasStatus } from "./tables.js";

/** Key Vault rejects secret values over 25 KB. */
const maxSecretBytes = 25 * 1024;

/** Key Vault has no secret for the grant: deleted, purged or never written. */
export class MissingSecretError extends BrokerError {
  constructor(cause: unknown) {
    super(
      "storage_unavailable",
      "The grant's refresh token is missing from the key vault.",
      { cause },
    );
    this.name = "MissingSecretError";
  }
}

export interface StoredRefreshToken {
  token: string;
  version: string;
  issuedAt: Date;
}

export interface SecretStore {
  /**
   * Stores a refresh token as a new version of the grant's secret and returns the version id. With
   * `recoverDeleted`, a soft-deleted secret is recovered first, because Key Vault rejects new
   * versions of a deleted name; only a new sign-in requests that, never a refresh racing a revoke.
   */
  saveRefreshToken(
    grantId: string,
    refreshToken: string,
    issuedAt: Date,
    options?: { recoverDeleted?: boolean },
  ): Promise<string>;
  /**
   * Reads the newest refresh token of a grant: the vault's latest version, unless the version the
   * index names was issued later (a slower writer saved an older token after it).
   */
  readNewestRefreshToken(
    grantId: string,
    indexed: { version: string; issuedAt: Date },
  ): Promise<StoredRefreshToken>;
  /** Reads one version, or the latest; for status checks and tests. */
  readRefreshToken(grantId: string, version?: string): Promise<string>;
  /** Soft-deletes the grant's secret; a missing secret counts as deleted. */
  deleteRefreshToken(grantId: string): Promise<void>;
  /** Checks that the vault responds and accepts the broker's credential. */
  probe(): Promise<void>;
}

export function createSecretStore(
  vaultUrl: string,
  credential: TokenCredential,
): SecretStore {
  const loopback = /^http:\/\/(127\.0\.0\.1|localhost)[:/]/.test(vaultUrl);
  const client = new SecretClient(vaultUrl, credential, {
    // A local stand-in serves http on loopback and cannot prove it is vault.azure.net.
    allowInsecureConnection: loopback,
    disableChallengeResourceVerification: loopback,
  });

  async function read(
    grantId: string,
    version?: string,
  ): Promise<StoredRefreshToken> {
    const secret = await client.getSecret(refreshTokenSecretName(grantId), {
      version,
    });
    return toStored(secret);
  }

  /** The newest token: the latest version, unless the indexed one was issued later. */
  async function readNewest(
    grantId: string,
    indexed: { version: string; issuedAt: Date },
  ): Promise<StoredRefreshToken> {
    const latest = await read(grantId);
    if (
      latest.version === indexed.version ||
      latest.issuedAt >= indexed.issuedAt
    ) {
      return latest;
    }
    return read(grantId, indexed.version);
  }

  return {
    async saveRefreshToken(grantId, refreshToken, issuedAt, options = {}) {
      if (Buffer.byteLength(refreshToken, "utf8") > maxSecretBytes) {
        throw new BrokerError(
          "internal_error",
          "The refresh token is larger than Key Vault accepts.",
        );
      }
      const name = refreshTokenSecretName(grantId);
      const save = async () => {
        const secret = await client.setSecret(name, refreshToken, {
          contentType: "application/vnd.microsoft.refresh-token",
          tags: { grant: grantId, issuedAt: issuedAt.toISOString() },
        });
        return secret.properties.version ?? "";
      };
      try {
        return await save();
      } catch (error) {
        if (!(options.recoverDeleted === true && hasStatus(error, 409))) {
          throw toVaultError(error);
        }
      }
      try {
        const poller = await client.beginRecoverDeletedSecret(name);
        await poller.pollUntilDone();
        return await save();
      } catch (error) {
        throw toVaultError(error);
      }
    },

    async readNewestRefreshToken(grantId, indexed) {
      try {
        return await readNewest(grantId, indexed);
      } catch (error) {
        // Only 404 means the secret is gone. A 403 may be a disabled version but also a missing role
        // assignment, which must not mark every grant for a new sign-in.
        if (hasStatus(error, 404)) throw new MissingSecretError(error);
        throw toVaultError(error);
      }
    },

    async readRefreshToken(grantId, version) {
      try {
        return (await read(grantId, version)).token;
      } catch (error) {
        throw toVaultError(error);
      }
    },

    async deleteRefreshToken(grantId) {
      try {
        const poller = await client.beginDeleteSecret(
          refreshTokenSecretName(grantId),
        );
        await poller.pollUntilDone();
      } catch (error) {
        if (hasStatus(error, 404)) return;
        throw toVaultError(error);
      }
    },

    async probe() {
      try {
        await client.getSecret(refreshTokenSecretName("0".repeat(32)));
      } catch (error) {
        // A missing secret proves the vault responded and accepted the credential.
        if (hasStatus(error, 404)) return;
        throw toVaultError(error);
      }
    },
  };
}

function toStored(secret: KeyVaultSecret): StoredRefreshToken {
  if (secret.value === undefined) throw new BrokerError("storage_unavailable");
  const tagged = Date.parse(secret.properties.tags?.issuedAt ?? "");
  const issuedAt = Number.isFinite(tagged)
    ? new Date(tagged)
    : (secret.properties.createdOn ?? new Date(0));
  return {
    token: secret.value,
    version: secret.properties.version ?? "",
    issuedAt,
  };
}

function toVaultError(error: unknown): BrokerError {
  if (error instanceof BrokerError) return error;
  return new BrokerError(
    "storage_unavailable",
    "The broker's key vault could not be reached.",
    {
      cause: error,
      retryAfterSeconds: 5,
    },
  );
}

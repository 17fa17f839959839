/**
 * Refresh tokens in Azure Key Vault: one secret per grant, a new version for each rotated token.
 */
import { SecretClient } from "@azure/keyvault-secrets";
import type { TokenCredential } from "@azure/core-auth";
import { BrokerError } from "./errors.js";
import { refreshTokenSecretName } from "./keys.js";
import { hasStatus } from "./tables.js";

/** Key Vault rejects secret values over 25 KB. */
const maxSecretBytes = 25 * 1024;

export interface SecretStore {
  /** Stores a refresh token as a new version of the grant's secret and returns the version id. */
  saveRefreshToken(grantId: string, refreshToken: string): Promise<string>;
  readRefreshToken(grantId: string, version?: string): Promise<string>;
  /** Checks that the vault answers and accepts the broker's credential. */
  probe(): Promise<void>;
}

export function createSecretStore(
  vaultUrl: string,
  credential: TokenCredential,
): SecretStore {
  const loopback = /^http:\/\/(127\.0\.0\.1|localhost)[:/]/.test(vaultUrl);
  const client = new SecretClient(vaultUrl, credential, {
    // A local stand-in serves http on loopback and cannot answer for vault.azure.net.
    allowInsecureConnection: loopback,
    disableChallengeResourceVerification: loopback,
  });

  return {
    async saveRefreshToken(grantId, refreshToken) {
      if (Buffer.byteLength(refreshToken, "utf8") > maxSecretBytes) {
        throw new BrokerError(
          "internal_error",
          "The refresh token is larger than Key Vault accepts.",
        );
      }
      try {
        const secret = await client.setSecret(
          refreshTokenSecretName(grantId),
          refreshToken,
          {
            contentType: "application/vnd.microsoft.refresh-token",
            tags: { grant: grantId },
          },
        );
        return secret.properties.version ?? "";
      } catch (error) {
        throw toVaultError(error);
      }
    },

    async readRefreshToken(grantId, version) {
      try {
        const secret = await client.getSecret(refreshTokenSecretName(grantId), {
          version,
        });
        if (secret.value === undefined)
          throw new BrokerError("storage_unavailable");
        return secret.value;
      } catch (error) {
        throw toVaultError(error);
      }
    },

    async probe() {
      try {
        await client.getSecret(refreshTokenSecretName("0".repeat(32)));
      } catch (error) {
        // A missing secret proves the vault answered and accepted the credential.
        if (hasStatus(error, 404)) return;
        throw toVaultError(error);
      }
    },
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

/**
 * Composition of the broker's services from its configuration. Each function app instance builds
 * one; tests build several on the same storage to act as separate instances.
 */
import type { TokenCredential } from "@azure/core-auth";
import {
  DefaultAzureCredential,
  ManagedIdentityCredential,
} from "@azure/identity";
import { createAppCredential, type AppCredential } from "./clientCredential.js";
import type { BrokerConfig } from "./config.js";
import { createGrantStore, type GrantStore } from "./grantStore.js";
import { createIdentityClient, type IdentityClient } from "./identityClient.js";
import { createNotifier, type Notifier } from "./notifier.js";
import { createRateLimiter, type RateLimiter } from "./rateLimiter.js";
import { createTokenCache, type TokenCache } from "./tokenCache.js";
import { createSecretStore, type SecretStore } from "./secretStore.js";
import { createSignInStore, type SignInStore } from "./signInStore.js";
import { createBrokerTables, type BrokerTables } from "./tables.js";

export interface Broker {
  config: BrokerConfig;
  tables: BrokerTables;
  signIns: SignInStore;
  grants: GrantStore;
  secrets: SecretStore;
  identity: IdentityClient;
  /** The app credential the identity client presents; the health function probes it. */
  appCredential: AppCredential;
  notifier: Notifier;
  tokens: TokenCache;
  limits: {
    failedByAddress: RateLimiter;
    failedByGrant: RateLimiter;
    refreshesByGrant: RateLimiter;
  };
}

/** Maximum wait between two webhook attempts. */
const maxNotifyWaitMs = 2_000;

export interface BrokerOptions {
  /** Clock of the app credential's certificate cache, in milliseconds since the epoch. */
  now?: () => number;
}

export function createBroker(
  config: BrokerConfig,
  options: BrokerOptions = {},
): Broker {
  const managedIdentity =
    config.managedIdentityClientId === undefined
      ? undefined
      : new ManagedIdentityCredential({
          clientId: config.managedIdentityClientId,
        });
  const credential = managedIdentity ?? createAzureCredential(config);
  const appCredential = createAppCredential(config, {
    managedIdentity,
    vaultCredential: credential,
    now: options.now,
  });
  const tables = createBrokerTables(config, credential);
  const ensureTables = () => tables.ensureCreated();

  return {
    config,
    tables,
    signIns: createSignInStore(tables.signIns, ensureTables),
    grants: createGrantStore(tables.grants, ensureTables, {
      recentRows: config.tokenCacheSize,
    }),
    secrets: createSecretStore(config.keyVaultUrl, credential),
    identity: createIdentityClient(config, appCredential),
    appCredential,
    tokens: createTokenCache(config.tokenCacheSize),
    limits: {
      failedByAddress: createRateLimiter({
        limit: config.limits.failedPerAddress,
        windowMs: config.limits.failedWindowMs,
      }),
      failedByGrant: createRateLimiter({
        limit: config.limits.failedPerGrant,
        windowMs: config.limits.failedWindowMs,
      }),
      refreshesByGrant: createRateLimiter({
        limit: config.limits.refreshesPerGrantPerMinute,
        windowMs: 60_000,
      }),
    },
    // Deliveries are awaited by refreshes, sign-ins and revokes, so a receiver that is down may
    // hold one for 13 seconds at most: three 3-second tries and two waits of at most 2 seconds,
    // whatever Retry-After the receiver sends.
    notifier: createNotifier(config.webhook, {
      attempts: 3,
      timeoutMs: 3_000,
      sleep: (ms) =>
        new Promise((resolve) =>
          setTimeout(resolve, Math.min(ms, maxNotifyWaitMs)),
        ),
    }),
  };
}

/**
 * Creates the credential for Key Vault and Table Storage when MANAGED_IDENTITY_CLIENT_ID is not
 * set: the managed identity (or a developer's Azure sign-in) through DefaultAzureCredential, except
 * against a vault on loopback, which is a local stand-in that accepts any bearer token.
 */
function createAzureCredential(config: BrokerConfig): TokenCredential {
  if (/^http:\/\/(127\.0\.0\.1|localhost)[:/]/.test(config.keyVaultUrl)) {
    return {
      getToken: async () => ({
        token: "local-stand-in",
        expiresOnTimestamp: Date.now() + 3_600_000,
      }),
    };
  }
  // NOTE: never exercised against Azure here; the tests use Azurite's key and the vault stand-in.
  return new DefaultAzureCredential();
}

/**
 * The local stack: Azurite's Table service, the Key Vault stand-in and the identity platform
 * stand-in, with the broker settings that point at them, and on request the managed identity
 * endpoint stand-in. `npm start` and the tests both use it.
 */
import { join } from "node:path";
import { startAzuriteTables, type AzuriteTables } from "./azurite.js";
import {
  startIdentityStandIn,
  type FederatedIdentityCredential,
  type IdentityStandIn,
} from "./identity/server.js";
import {
  startKeyVaultStandIn,
  type KeyVaultStandIn,
} from "./keyvault/server.js";
import {
  startManagedIdentityStandIn,
  type ManagedIdentity,
  type ManagedIdentityStandIn,
} from "./managedIdentity/server.js";
import { ensureLocalCertificateAuthority } from "./tls.js";

/** The app registration registered with the identity stand-in; these values work only there. */
export const localClient = {
  clientId: "6f1f4e2a-8c53-4d8e-9a57-2f0b5c1d3e47",
  clientSecret: "local-client-secret",
};

/** The function app's managed identities that the managed identity stand-in serves. */
export const localManagedIdentities = {
  tenantId: "0f3c9a52-7e41-4b8d-a6c2-5d19e8b7f430",
  systemAssigned: {
    clientId: "3b8e5d21-9c4f-4a7e-b1d6-2f0a8c9e7d54",
    objectId: "a7d2c4e9-1b3f-4e8a-9c5d-6f2b0e1a3c87",
    kind: "system-assigned",
  },
  userAssigned: {
    clientId: "c91f6e3a-2d8b-4f5c-a7e0-4b1d9c3e8f26",
    objectId: "5e4a8b1c-7f2d-4c9e-b3a6-0d8f1e2c7b95",
    kind: "user-assigned",
  },
} as const satisfies {
  tenantId: string;
  systemAssigned: ManagedIdentity;
  userAssigned: ManagedIdentity;
};

export interface LocalStackOptions {
  /** Folder for persisted state; absent keeps everything in memory. */
  dataDir?: string;
  /** Folder of the local certificate authority. */
  tlsDir: string;
  /** Origin of the broker, for the redirect URI. */
  brokerOrigin: string;
  ports?: { tables?: number; keyVault?: number; identity?: number };
  /** Also start the managed identity endpoint stand-in with `localManagedIdentities`. */
  managedIdentity?: boolean;
}

export interface LocalManagedIdentity {
  standIn: ManagedIdentityStandIn;
  /**
   * Returns a federated identity credential that trusts this identity's tokens for `audience`
   * (the public cloud's token exchange audience by default), for the app registration.
   */
  federatedCredential(
    identity: ManagedIdentity,
    name: string,
    audience?: string,
  ): FederatedIdentityCredential;
}

export interface LocalStack {
  tables: AzuriteTables;
  keyVault: KeyVaultStandIn;
  identity: IdentityStandIn;
  /** Present when the stack was started with `managedIdentity`. */
  managedIdentity: LocalManagedIdentity | undefined;
  /** Broker settings for this stack, as the environment would hold them. */
  settings: Record<string, string>;
  stop(): Promise<void>;
}

export async function startLocalStack(
  options: LocalStackOptions,
): Promise<LocalStack> {
  const certificateAuthority = ensureLocalCertificateAuthority(options.tlsDir);
  const persisted = (name: string) =>
    options.dataDir === undefined ? undefined : join(options.dataDir, name);
  const redirectUri = `${options.brokerOrigin}/api/auth/callback`;

  const started: { stop(): Promise<void> }[] = [];
  try {
    const tables = await startAzuriteTables({
      location: persisted("azurite"),
      port: options.ports?.tables,
    });
    started.push(tables);
    const keyVault = await startKeyVaultStandIn({
      port: options.ports?.keyVault,
      dataDir: persisted("keyvault"),
    });
    started.push({ stop: () => keyVault.close() });
    const identity = await startIdentityStandIn({
      port: options.ports?.identity,
      certificateAuthority,
      clients: [{ ...localClient, redirectUris: [redirectUri] }],
      dataDir: persisted("identity"),
    });
    started.push({ stop: () => identity.close() });
    const managedIdentity =
      options.managedIdentity === true
        ? await startLocalManagedIdentity()
        : undefined;
    if (managedIdentity !== undefined)
      started.push({ stop: () => managedIdentity.standIn.close() });

    const settings: Record<string, string> = {
      BROKER_CLIENT_ID: localClient.clientId,
      BROKER_CLIENT_SECRET: localClient.clientSecret,
      BROKER_REDIRECT_URI: redirectUri,
      BROKER_AUTHORITY_HOST: identity.url,
      TABLES_CONNECTION_STRING: tables.connectionString,
      KEY_VAULT_URL: keyVault.url,
    };
    return {
      tables,
      keyVault,
      identity,
      managedIdentity,
      settings,
      stop: () => stopAll(started),
    };
  } catch (error) {
    await stopAll(started);
    throw error;
  }
}

async function startLocalManagedIdentity(): Promise<LocalManagedIdentity> {
  const standIn = await startManagedIdentityStandIn({
    tenantId: localManagedIdentities.tenantId,
    identities: [
      localManagedIdentities.systemAssigned,
      localManagedIdentities.userAssigned,
    ],
  });
  return {
    standIn,
    federatedCredential: (
      identity,
      name,
      audience = "api://AzureADTokenExchange",
    ) => ({
      name,
      issuer: standIn.issuer,
      subject: identity.objectId,
      audiences: [audience],
    }),
  };
}

async function stopAll(services: { stop(): Promise<void> }[]): Promise<void> {
  await Promise.allSettled(services.reverse().map((service) => service.stop()));
}

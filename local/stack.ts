/**
 * The local stack: Azurite's Table service, the Key Vault stand-in and the identity platform
 * stand-in, with the broker settings that point at them. `npm start` and the tests both use it.
 */
import { join } from "node:path";
import { startAzuriteTables, type AzuriteTables } from "./azurite.js";
import {
  startIdentityStandIn,
  type IdentityStandIn,
} from "./identity/server.js";
import {
  startKeyVaultStandIn,
  type KeyVaultStandIn,
} from "./keyvault/server.js";
import { ensureLocalCertificateAuthority } from "./tls.js";

/** The app registration registered with the identity stand-in; these values work only there. */
export const localClient = {
  clientId: "6f1f4e2a-8c53-4d8e-9a57-2f0b5c1d3e47",
  clientSecret: "local-client-secret",
};

export interface LocalStackOptions {
  /** Folder for persisted state; absent keeps everything in memory. */
  dataDir?: string;
  /** Folder of the local certificate authority. */
  tlsDir: string;
  /** Origin of the broker, for the redirect URI. */
  brokerOrigin: string;
  ports?: { tables?: number; keyVault?: number; identity?: number };
}

export interface LocalStack {
  tables: AzuriteTables;
  keyVault: KeyVaultStandIn;
  identity: IdentityStandIn;
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
      settings,
      stop: () => stopAll(started),
    };
  } catch (error) {
    await stopAll(started);
    throw error;
  }
}

async function stopAll(services: { stop(): Promise<void> }[]): Promise<void> {
  await Promise.allSettled(services.reverse().map((service) => service.stop()));
}

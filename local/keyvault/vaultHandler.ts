// Handling of Key Vault secrets requests. The checks run in this order: bearer token, then the
// operation (counted and possibly faulted), then api-version, then the operation itself.

import type { IncomingMessage } from "node:http";

import type { RequestControls } from "./control.js";
import {
  faultError,
  KeyVaultError,
  missingApiVersion,
  routeNotFound,
  unauthorized,
} from "./errors.js";
import type { Reply } from "./http.js";
import { executeOperation } from "./operations.js";
import type { SnapshotFile } from "./persistence.js";
import { matchRoute } from "./routes.js";
import type { SecretStore } from "./store.js";

/**
 * Made-up tenant id in the challenge. SecretClient passes it to the credential's getToken as
 * `tenantId`. Nothing contacts the authority address.
 */
export const challengeTenantId = "5f1c7a3e-9b2d-4e86-a0c4-3d8e6b1f2a97";

/** WWW-Authenticate value of the 401 challenge, in the form Key Vault sends it. */
export const challengeHeader =
  `Bearer authorization="https://login.microsoftonline.com/${challengeTenantId}", ` +
  'resource="https://vault.azure.net"';

export interface VaultContext {
  store: SecretStore;
  controls: RequestControls;
  vaultUrl: string;
  /** Present when the state is persisted to a data directory. */
  snapshotFile: SnapshotFile | undefined;
}

// The stand-in accepts any non-empty bearer token and validates none.
function hasBearerToken(request: IncomingMessage): boolean {
  return /^Bearer\s+\S+/i.test(request.headers.authorization ?? "");
}

function errorReply(
  error: KeyVaultError,
  headers?: Record<string, string>,
): Reply {
  return { status: error.status, body: error.toBody(), headers };
}

function unixNow(): number {
  return Math.floor(Date.now() / 1000);
}

/** Serves one Key Vault request and throws KeyVaultError for error responses. */
export async function serveVaultRequest(
  context: VaultContext,
  request: IncomingMessage,
  body: string,
): Promise<Reply> {
  if (!hasBearerToken(request)) {
    return errorReply(unauthorized(), { "WWW-Authenticate": challengeHeader });
  }

  const method = request.method ?? "GET";
  const url = new URL(request.url ?? "/", context.vaultUrl);
  const route = matchRoute(method, url.pathname);
  if (route === undefined) {
    throw routeNotFound(method, url.pathname);
  }

  context.controls.recordRequest(route.operation);
  const fault = context.controls.takeFault(route.operation);
  if (fault !== undefined) {
    const headers: Record<string, string> = {};
    if (fault.retryAfterSeconds !== undefined) {
      headers["Retry-After"] = String(fault.retryAfterSeconds);
    }
    return errorReply(faultError(fault.status), headers);
  }

  // URLSearchParams decodes the "api%2Dversion" key that SecretClient sends.
  // NOTE: any non-empty value is accepted. The stand-in does not check it against the
  // versions that the service supports.
  const apiVersion = url.searchParams.get("api-version");
  if (apiVersion === null || apiVersion === "") {
    throw missingApiVersion();
  }

  const result = executeOperation(context.store, route, {
    vaultUrl: context.vaultUrl,
    path: url.pathname,
    query: url.searchParams,
    apiVersion,
    body,
    now: unixNow(),
  });
  if (result.changed && context.snapshotFile !== undefined) {
    await context.snapshotFile.save(context.store.snapshot());
  }
  return { status: result.status, body: result.body };
}

/** Serves one Key Vault request and maps every failure to a Key Vault error reply. */
export async function replyToVaultRequest(
  context: VaultContext,
  request: IncomingMessage,
  body: string,
): Promise<Reply> {
  try {
    return await serveVaultRequest(context, request, body);
  } catch (error) {
    if (error instanceof KeyVaultError) {
      return errorReply(error);
    }
    console.error("Key Vault stand-in failed to serve a request", {
      method: request.method,
      path: new URL(request.url ?? "/", context.vaultUrl).pathname,
      error,
    });
    return errorReply(faultError(500));
  }
}

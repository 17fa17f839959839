// Test control of the stand-in: injected faults, latency, response overrides and
// request counts, in process and over HTTP under /_control/.

import type { IncomingMessage, ServerResponse } from "node:http";
import { z } from "zod";
import { federatedCredentialSchema } from "./clientAssertion.js";
import { EntraError } from "./errors.js";
import { readBody, sendJson } from "./http.js";
import type {
  IdentityControl,
  IdentityCounts,
  IdentityFault,
} from "./server.js";

const faultSchema = z.strictObject({
  endpoint: z.enum(["token", "authorize"]),
  grantType: z.enum(["authorization_code", "refresh_token"]).optional(),
  status: z.number().int().min(400).max(599).optional(),
  error: z.string().min(1),
  aadsts: z.number().int().positive().optional(),
  description: z.string().optional(),
  retryAfterSeconds: z.number().int().nonnegative().optional(),
  count: z.number().int().positive().optional(),
  username: z.string().min(1).optional(),
});
const latencySchema = z.strictObject({ ms: z.number().int().nonnegative() });
const scopesSchema = z.strictObject({
  scopes: z.array(z.string().min(1)).min(1),
});
const usernameSchema = z.strictObject({ username: z.string().min(1) });
const clientIdSchema = z.string().min(1);
const addFederatedCredentialSchema = z.strictObject({
  clientId: clientIdSchema,
  credential: federatedCredentialSchema,
});
const removeFederatedCredentialSchema = z.strictObject({
  clientId: clientIdSchema,
  name: z.string().min(1),
});
const addCertificateSchema = z.strictObject({
  clientId: clientIdSchema,
  certificatePem: z.string().min(1),
});
const removeCertificateSchema = z.strictObject({
  clientId: clientIdSchema,
  thumbprintSha256: z.string().regex(/^[0-9A-Fa-f]{64}$/),
});
const signInSchema = z.strictObject({
  authorizeUrl: z.string().min(1),
  username: z.string(),
});

export function zeroCounts(): IdentityCounts {
  return {
    token: 0,
    authorizationCode: 0,
    refreshToken: 0,
    authorize: 0,
    metadata: 0,
    jwks: 0,
  };
}

/** Settings that the next requests consume, and the request counts. */
export class ControlState {
  counts: IdentityCounts = zeroCounts();
  maxConcurrentTokenRequests = 0;
  latencyMilliseconds = 0;
  private faults: Array<{ fault: IdentityFault; remaining: number }> = [];
  private omitRefreshToken = false;
  private grantScopes: string[] | undefined;
  private nonce: string | undefined;
  private tokenLifetimeSeconds: number | undefined;
  private resetConnection = false;
  private tokenRequestsInFlight = 0;
  private idleWaiters: Array<() => void> = [];

  addFault(fault: IdentityFault): void {
    const parsed = faultSchema.parse(fault);
    this.faults.push({ fault: parsed, remaining: parsed.count ?? 1 });
  }

  /**
   * Returns and consumes the first fault that matches the request. `username` is the account
   * that the request's code or refresh token was issued to, when known.
   */
  takeFault(
    endpoint: "token" | "authorize",
    grantType?: string,
    username?: string,
  ): IdentityFault | undefined {
    const entry = this.faults.find(
      (candidate) =>
        candidate.fault.endpoint === endpoint &&
        (candidate.fault.grantType === undefined ||
          candidate.fault.grantType === grantType) &&
        (candidate.fault.username === undefined ||
          candidate.fault.username.toLowerCase() === username?.toLowerCase()),
    );
    if (entry === undefined) {
      return undefined;
    }
    entry.remaining -= 1;
    if (entry.remaining === 0) {
      this.faults = this.faults.filter((candidate) => candidate !== entry);
    }
    return entry.fault;
  }

  omitRefreshTokenNext(): void {
    this.omitRefreshToken = true;
  }

  resetConnectionNext(): void {
    this.resetConnection = true;
  }

  /** Returns whether this request's connection is to be reset, and clears the setting. */
  takeConnectionReset(): boolean {
    const reset = this.resetConnection;
    this.resetConnection = false;
    return reset;
  }

  beginTokenRequest(): void {
    this.tokenRequestsInFlight += 1;
    this.maxConcurrentTokenRequests = Math.max(
      this.maxConcurrentTokenRequests,
      this.tokenRequestsInFlight,
    );
  }

  endTokenRequest(): void {
    this.tokenRequestsInFlight -= 1;
    if (this.tokenRequestsInFlight > 0) {
      return;
    }
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const resolve of waiters) {
      resolve();
    }
  }

  waitForIdle(): Promise<void> {
    if (this.tokenRequestsInFlight === 0) {
      return Promise.resolve();
    }
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  grantScopesNext(scopes: string[]): void {
    this.grantScopes = scopesSchema.parse({ scopes }).scopes;
  }

  nonceNext(nonce: string): void {
    this.nonce = nonce;
  }

  /** Returns and clears the overrides for the next successful token response. */
  tokenLifetimeNext(seconds: number): void {
    this.tokenLifetimeSeconds = z
      .number()
      .int()
      .min(1)
      .max(86_400)
      .parse(seconds);
  }

  takeTokenOverrides(): {
    omitRefreshToken: boolean;
    grantScopes: string[] | undefined;
    nonce: string | undefined;
    tokenLifetimeSeconds: number | undefined;
  } {
    const overrides = {
      omitRefreshToken: this.omitRefreshToken,
      grantScopes: this.grantScopes,
      nonce: this.nonce,
      tokenLifetimeSeconds: this.tokenLifetimeSeconds,
    };
    this.omitRefreshToken = false;
    this.grantScopes = undefined;
    this.nonce = undefined;
    this.tokenLifetimeSeconds = undefined;
    return overrides;
  }

  resetCounts(): void {
    this.counts = zeroCounts();
    this.maxConcurrentTokenRequests = 0;
  }

  reset(): void {
    this.resetCounts();
    this.latencyMilliseconds = 0;
    this.faults = [];
    this.omitRefreshToken = false;
    this.grantScopes = undefined;
    this.nonce = undefined;
    this.tokenLifetimeSeconds = undefined;
    this.resetConnection = false;
  }
}

export function faultError(fault: IdentityFault): EntraError {
  return new EntraError({
    error: fault.error,
    code: fault.aadsts,
    description:
      fault.description ??
      "The identity stand-in returned this error because its control requested it.",
    status: fault.status,
  });
}

/**
 * Serves the control API. POST bodies are JSON objects mirroring the arguments of
 * IdentityControl: `failNext` takes the fault, `setLatency` `{ ms }`, `grantScopesNext`
 * `{ scopes }`, `revokeAccount` `{ username }`, `signIn` `{ authorizeUrl, username }`,
 * `addFederatedCredential` `{ clientId, credential }`, `removeFederatedCredential`
 * `{ clientId, name }`, `addCertificate` `{ clientId, certificatePem }` (returns
 * `{ thumbprintSha256 }`) and `removeCertificate` `{ clientId, thumbprintSha256 }`; the two
 * removals return `{ removed }`.
 * `waitForIdle` responds once no token request is in flight.
 * `GET /_control/counts` returns the counts, and `GET /_control/maxConcurrentTokenRequests`
 * returns `{ max }`.
 */
export async function handleControlRequest(
  control: IdentityControl,
  operation: string,
  request: IncomingMessage,
  response: ServerResponse,
): Promise<void> {
  if (operation === "counts" && request.method === "GET") {
    sendJson(response, 200, control.counts());
    return;
  }
  if (operation === "maxConcurrentTokenRequests" && request.method === "GET") {
    sendJson(response, 200, { max: control.maxConcurrentTokenRequests() });
    return;
  }
  if (request.method !== "POST") {
    sendJson(response, 405, {
      error: "invalid_request",
      message: `Use POST for /_control/${operation}.`,
    });
    return;
  }
  let body: unknown;
  try {
    const text = await readBody(request);
    body = text.trim() === "" ? {} : JSON.parse(text);
  } catch (error) {
    sendJson(response, 400, {
      error: "invalid_request",
      message: `The body is not JSON: ${String(error)}`,
    });
    return;
  }

  try {
    switch (operation) {
      case "failNext":
        control.failNext(faultSchema.parse(body));
        break;
      case "setLatency":
        control.setLatency(latencySchema.parse(body).ms);
        break;
      case "omitRefreshTokenNext":
        control.omitRefreshTokenNext();
        break;
      case "resetConnectionNext":
        control.resetConnectionNext();
        break;
      case "waitForIdle":
        await control.waitForIdle();
        break;
      case "tokenLifetimeNext":
        control.tokenLifetimeNext(
          z.object({ seconds: z.number() }).parse(body).seconds,
        );
        break;
      case "nonceNext":
        control.nonceNext(
          z.object({ nonce: z.string().min(1) }).parse(body).nonce,
        );
        break;
      case "grantScopesNext":
        control.grantScopesNext(scopesSchema.parse(body).scopes);
        break;
      case "revokeAccount":
        control.revokeAccount(usernameSchema.parse(body).username);
        break;
      case "resetCounts":
        control.resetCounts();
        break;
      case "reset":
        control.reset();
        break;
      case "forgetTokens":
        control.forgetTokens();
        break;
      case "signIn":
        sendJson(response, 200, await control.signIn(signInSchema.parse(body)));
        return;
      case "addFederatedCredential": {
        const { clientId, credential } =
          addFederatedCredentialSchema.parse(body);
        control.addFederatedCredential(clientId, credential);
        break;
      }
      case "removeFederatedCredential": {
        const { clientId, name } = removeFederatedCredentialSchema.parse(body);
        sendJson(response, 200, {
          removed: control.removeFederatedCredential(clientId, name),
        });
        return;
      }
      case "addCertificate": {
        const { clientId, certificatePem } = addCertificateSchema.parse(body);
        sendJson(
          response,
          200,
          control.addCertificate(clientId, certificatePem),
        );
        return;
      }
      case "removeCertificate": {
        const { clientId, thumbprintSha256 } =
          removeCertificateSchema.parse(body);
        sendJson(response, 200, {
          removed: control.removeCertificate(clientId, thumbprintSha256),
        });
        return;
      }
      default:
        sendJson(response, 404, {
          error: "not_found",
          message: `Unknown control operation '${operation}'.`,
        });
        return;
    }
  } catch (error) {
    const message =
      error instanceof z.ZodError
        ? z.prettifyError(error)
        : (error as Error).message;
    sendJson(response, 400, { error: "invalid_request", message });
    return;
  }
  response.writeHead(204).end();
}

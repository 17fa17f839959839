// Local stand-in for the Microsoft identity platform (Entra ID), served over HTTPS on
// 127.0.0.1. It implements the parts the broker uses through MSAL Node: discovery,
// the authorize page, the authorization_code and refresh_token grants, and the JWKS.
// Clients authenticate with a client secret or a client assertion: one signed with a
// registered certificate, or a federated one that a federated identity credential trusts.

import { createServer } from "node:https";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { LocalCertificateAuthority } from "../tls.js";
import { issueServerCertificate } from "../tls.js";
import { AccountDirectory } from "./accounts.js";
import { completeSignIn, validateAuthorizationRequest } from "./authorize.js";
import {
  federatedCredentialSchema,
  maxFederatedCredentials,
  registerCertificate,
  registerClient,
} from "./clientAssertion.js";
import type {
  FederatedIdentityCredential,
  RegisteredClient,
} from "./clientAssertion.js";
import type { IdentityContext } from "./context.js";
import { ControlState, handleControlRequest } from "./control.js";
import type { RequestTrace } from "./errors.js";
import {
  EntraError,
  createRequestTrace,
  describeFailure,
  errorResponseBody,
} from "./errors.js";
import { sendJson, sendText } from "./http.js";
import {
  hostOf,
  instanceDiscoveryDocument,
  openIdConfiguration,
} from "./metadata.js";
import { handleLogout, handleSignInForm, showAuthorizePage } from "./pages.js";
import { stylesheet, stylesheetPath } from "./signInPage.js";
import { StateStore } from "./store.js";
import { handleTokenRequest } from "./token.js";
import { jwksDocument, loadSigningKey } from "./tokens.js";

export interface IdentityAccount {
  /** The sign-in name, sent as `preferred_username`, `upn` and `unique_name`. */
  username: string;
  tenantId: string;
  objectId: string;
  name: string;
  email?: string;
}

export type { FederatedIdentityCredential } from "./clientAssertion.js";

export interface IdentityClient {
  clientId: string;
  /** Absent: the app registration has no client secret. */
  clientSecret?: string;
  /** Compared byte for byte with the redirect_uri of each request. */
  redirectUris: string[];
  /** External issuers whose tokens the app accepts as client assertions. */
  federatedCredentials?: FederatedIdentityCredential[];
  /** PEM certificates whose private keys may sign the app's client assertions. */
  certificatePems?: string[];
}

export interface IdentityStandInOptions {
  /** 0 or absent: a free port. */
  port?: number;
  certificateAuthority: LocalCertificateAuthority;
  clients: IdentityClient[];
  /**
   * Known accounts. The sign-in page also accepts any other email address and creates
   * its account in the tenant of the domain, with ids derived from the address.
   */
  accounts?: IdentityAccount[];
  /**
   * Absent: state in memory. Present: refresh tokens, revocations, consents and the
   * signing key are kept there, so a restarted stand-in accepts earlier tokens.
   */
  dataDir?: string;
  /** Clock in milliseconds since the epoch, for tests that move past a lifetime. */
  now?: () => number;
  /**
   * Receives one line for each error response, with the OAuth error, the AADSTS code
   * and the trace id. Absent: error responses are not logged.
   */
  log?: (message: string) => void;
}

export interface IdentityFault {
  endpoint: "token" | "authorize";
  /** Token faults only: match only this grant type. */
  grantType?: "authorization_code" | "refresh_token";
  /** Token faults only: HTTP status, 400 by default and 401 for invalid_client. */
  status?: number;
  error: string;
  aadsts?: number;
  description?: string;
  /** Token faults only: sent as the Retry-After header. */
  retryAfterSeconds?: number;
  /** Number of matching requests that fail, 1 by default. */
  count?: number;
  /**
   * Token faults only: match only requests whose code or refresh token was issued to this
   * account, compared case-insensitively.
   */
  username?: string;
}

export interface IdentityCounts {
  /** Every request to a token endpoint. */
  token: number;
  authorizationCode: number;
  refreshToken: number;
  /** Authorize requests: page loads plus `signIn` calls. */
  authorize: number;
  /** OpenID configuration and instance discovery requests. */
  metadata: number;
  jwks: number;
}

export interface IdentityControl {
  /**
   * Makes the next matching requests fail with an Entra-shaped error. Token faults
   * return JSON with the status, and authorize faults redirect with `error`.
   */
  failNext(fault: IdentityFault): void;
  /** Delays every token endpoint response by this many milliseconds. */
  setLatency(ms: number): void;
  /**
   * Destroys the connection of the next token request after reading it, without a response,
   * as a network reset would. The request is counted but grants nothing.
   */
  resetConnectionNext(): void;
  /** Resolves once no token endpoint request is in flight, for example one still delayed. */
  waitForIdle(): Promise<void>;
  /** The maximum number of token endpoint requests in flight at once since the last reset. */
  maxConcurrentTokenRequests(): number;
  /** The next successful token response has no refresh_token. */
  omitRefreshTokenNext(): void;
  /** The next successful token response grants exactly these scopes. */
  grantScopesNext(scopes: string[]): void;
  /** Next id token carries this nonce instead of the authorize request's. */
  nonceNext(nonce: string): void;
  /** Next token response's access token lives this many seconds. */
  tokenLifetimeNext(seconds: number): void;
  /** Makes every refresh token issued so far to the account fail with AADSTS50173. */
  revokeAccount(username: string): void;
  /** Adds a federated identity credential to the app; its name must be new on the app. */
  addFederatedCredential(
    clientId: string,
    credential: FederatedIdentityCredential,
  ): void;
  /** Removes the app's federated identity credential of this name; false when it had none. */
  removeFederatedCredential(clientId: string, name: string): boolean;
  /** Registers a PEM certificate on the app and returns its SHA-256 thumbprint in hex. */
  addCertificate(
    clientId: string,
    certificatePem: string,
  ): { thumbprintSha256: string };
  /** Removes the app's certificate with this hex SHA-256 thumbprint; false when it had none. */
  removeCertificate(clientId: string, thumbprintSha256: string): boolean;
  counts(): IdentityCounts;
  resetCounts(): void;
  /** Clears faults, latency, overrides and counts; issued tokens stay valid. */
  reset(): void;
  /** Forgets issued codes, refresh tokens and consents. */
  forgetTokens(): void;
  /**
   * Does what the sign-in page does when a person signs in as `username`, and returns
   * the redirect (redirect_uri?code=...&state=...). An authorize request with an
   * error that Entra ID redirects returns that redirect. Errors shown on a page, such
   * as AADSTS50011, and addresses that cannot sign in throw an Error.
   */
  signIn(request: {
    authorizeUrl: string;
    username: string;
  }): Promise<{ location: string }>;
}

export interface IdentityStandIn {
  /** "https://127.0.0.1:PORT"; the authority is `${url}/${tenant}`. */
  url: string;
  control: IdentityControl;
  /** PEM of the RS256 public key that signs ID and access tokens. */
  publicKeyPem(): string;
  keyId: string;
  jwksUrl: string;
  close(): Promise<void>;
}

export async function startIdentityStandIn(
  options: IdentityStandInOptions,
): Promise<IdentityStandIn> {
  const now = options.now ?? Date.now;
  const key = await loadSigningKey(options.dataDir);
  const certificate = issueServerCertificate(options.certificateAuthority, [
    "127.0.0.1",
    "localhost",
  ]);
  const server = createServer({
    key: certificate.privateKeyPem,
    cert: certificate.certificatePem,
  });

  const context: IdentityContext = {
    url: "",
    clients: new Map(
      options.clients.map((client) => [
        client.clientId,
        registerClient(client),
      ]),
    ),
    issuerKeys: new Map(),
    directory: new AccountDirectory(options.accounts ?? []),
    store: new StateStore(options.dataDir, now),
    key,
    control: new ControlState(),
    now,
    log: options.log ?? (() => undefined),
  };
  const control = createControl(context);

  server.on("request", (request: IncomingMessage, response: ServerResponse) => {
    routeRequest(context, control, request, response).catch(
      (error: unknown) => {
        // A client that gave up, for example after its timeout, is not a failure of the stand-in.
        if (request.destroyed && response.destroyed) return;
        console.error(
          `Identity stand-in failed on ${request.method ?? ""} ${request.url ?? ""}:`,
          error,
        );
        if (!response.headersSent) {
          sendJson(response, 500, {
            error: "server_error",
            error_description: String(error),
          });
        } else {
          response.destroy();
        }
      },
    );
  });

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, "127.0.0.1", () => {
      server.off("error", reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  context.url = `https://127.0.0.1:${port}`;

  return {
    url: context.url,
    control,
    publicKeyPem: () => key.publicKeyPem,
    keyId: key.keyId,
    jwksUrl: `${context.url}/common/discovery/v2.0/keys`,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        // Keep-alive connections from fetch would otherwise hold the server open.
        server.closeAllConnections();
      }),
  };
}

function createControl(context: IdentityContext): IdentityControl {
  const state = context.control;
  return {
    failNext: (fault) => state.addFault(fault),
    setLatency: (ms) => {
      if (!Number.isInteger(ms) || ms < 0) {
        throw new RangeError(
          `Latency must be a whole number of milliseconds, not ${ms}.`,
        );
      }
      state.latencyMilliseconds = ms;
    },
    resetConnectionNext: () => state.resetConnectionNext(),
    waitForIdle: () => state.waitForIdle(),
    maxConcurrentTokenRequests: () => state.maxConcurrentTokenRequests,
    omitRefreshTokenNext: () => state.omitRefreshTokenNext(),
    grantScopesNext: (scopes) => state.grantScopesNext(scopes),
    nonceNext: (nonce) => state.nonceNext(nonce),
    tokenLifetimeNext: (seconds) => state.tokenLifetimeNext(seconds),
    revokeAccount: (username) => {
      context.store.revokeAccount(username);
    },
    addFederatedCredential: (clientId, credential) => {
      const client = registeredClient(context, clientId);
      const parsed = federatedCredentialSchema.parse(credential);
      if (
        client.federatedCredentials.some(
          (existing) => existing.name === parsed.name,
        )
      ) {
        throw new RangeError(
          `The app ${clientId} already has a federated identity credential named '${parsed.name}'.`,
        );
      }
      if (client.federatedCredentials.length >= maxFederatedCredentials) {
        throw new RangeError(
          `An application has at most ${maxFederatedCredentials} federated identity credentials.`,
        );
      }
      client.federatedCredentials.push(parsed);
    },
    removeFederatedCredential: (clientId, name) => {
      const client = registeredClient(context, clientId);
      const before = client.federatedCredentials.length;
      client.federatedCredentials = client.federatedCredentials.filter(
        (credential) => credential.name !== name,
      );
      return client.federatedCredentials.length < before;
    },
    addCertificate: (clientId, certificatePem) => {
      const client = registeredClient(context, clientId);
      const certificate = registerCertificate(certificatePem);
      if (
        !client.certificates.some(
          (existing) => existing.thumbprintHex === certificate.thumbprintHex,
        )
      ) {
        client.certificates.push(certificate);
      }
      return { thumbprintSha256: certificate.thumbprintHex };
    },
    removeCertificate: (clientId, thumbprintSha256) => {
      const client = registeredClient(context, clientId);
      const before = client.certificates.length;
      client.certificates = client.certificates.filter(
        (certificate) =>
          certificate.thumbprintHex !== thumbprintSha256.toUpperCase(),
      );
      return client.certificates.length < before;
    },
    counts: () => ({ ...state.counts }),
    resetCounts: () => {
      state.resetCounts();
    },
    reset: () => {
      state.reset();
    },
    forgetTokens: () => {
      context.store.clear();
    },
    signIn: async ({ authorizeUrl, username }) =>
      signInWithoutBrowser(context, authorizeUrl, username),
  };
}

function registeredClient(
  context: IdentityContext,
  clientId: string,
): RegisteredClient {
  const client = context.clients.get(clientId);
  if (client === undefined) {
    throw new RangeError(`The stand-in has no app with client id ${clientId}.`);
  }
  return client;
}

function signInWithoutBrowser(
  context: IdentityContext,
  authorizeUrl: string,
  username: string,
): { location: string } {
  const target = new URL(authorizeUrl);
  const own = new URL(context.url);
  const isOwnHost =
    target.hostname === "127.0.0.1" || target.hostname === "localhost";
  if (target.protocol !== "https:" || !isOwnHost || target.port !== own.port) {
    throw new Error(
      `signIn needs an authorize URL of ${context.url}, not ${target.origin}.`,
    );
  }

  const match = /^\/([^/]+)\/oauth2\/v2\.0\/authorize$/.exec(target.pathname);
  if (match?.[1] === undefined) {
    throw new Error(
      `signIn needs a /{tenant}/oauth2/v2.0/authorize URL, not ${target.pathname}.`,
    );
  }

  context.control.counts.authorize += 1;
  const outcome = validateAuthorizationRequest(
    context,
    match[1],
    target.searchParams,
  );
  if (outcome.kind === "error-page") {
    throw new Error(
      `The sign-in page shows an error: ${outcome.error.description}`,
    );
  }
  if (outcome.kind === "redirect") {
    if (outcome.error !== undefined) {
      const trace = createRequestTrace(undefined);
      context.log(
        `signIn for client ${target.searchParams.get("client_id") ?? ""} redirected with ${describeFailure(outcome.error, trace)}.`,
      );
    }
    return { location: outcome.location };
  }

  const result = completeSignIn(context, outcome.request, username);
  if (result.kind === "invalid-account") {
    throw new Error(
      `Sign-in as '${username}' failed: ${result.error.description}`,
    );
  }
  return { location: result.location };
}

async function routeRequest(
  context: IdentityContext,
  control: IdentityControl,
  request: IncomingMessage,
  response: ServerResponse,
): Promise<void> {
  const url = new URL(request.url ?? "/", context.url);
  const segments = url.pathname.split("/").slice(1);
  const [first = "", ...rest] = segments;
  const trace = createRequestTrace(
    url.searchParams.get("client-request-id") ??
      headerValue(request, "client-request-id"),
  );

  if (first === "_control") {
    await handleControlRequest(control, rest.join("/"), request, response);
    return;
  }
  if (url.pathname === stylesheetPath) {
    sendText(response, 200, stylesheet, "text/css");
    return;
  }

  // A malformed escape leaves the segment as sent, which then fails as an unknown tenant.
  const tenantText = decodeSegment(first);
  switch (rest.join("/")) {
    case "v2.0/.well-known/openid-configuration":
      context.control.counts.metadata += 1;
      sendOpenIdConfiguration(context, tenantText, response, trace);
      return;
    case "discovery/instance":
      context.control.counts.metadata += 1;
      sendInstanceDiscovery(
        context,
        tenantText,
        url.searchParams,
        response,
        trace,
      );
      return;
    case "discovery/v2.0/keys":
    case "discovery/keys":
      context.control.counts.jwks += 1;
      sendJson(response, 200, jwksDocument(context.key, context.url));
      return;
    case "oauth2/v2.0/authorize":
      context.control.counts.authorize += 1;
      showAuthorizePage(context, tenantText, url.searchParams, response, trace);
      return;
    case "login":
      await handleSignInForm(context, request, response, trace);
      return;
    case "oauth2/v2.0/token":
      context.control.beginTokenRequest();
      try {
        await handleTokenRequest(context, tenantText, request, response, trace);
      } finally {
        context.control.endTokenRequest();
      }
      return;
    case "oauth2/v2.0/logout":
      handleLogout(context, url.searchParams, response);
      return;
    default:
      sendJson(response, 404, {
        error: "not_found",
        error_description: `No endpoint at ${url.pathname}.`,
      });
  }
}

function sendOpenIdConfiguration(
  context: IdentityContext,
  tenantText: string,
  response: ServerResponse,
  trace: RequestTrace,
): void {
  const tenant = context.directory.parseTenantSegment(tenantText);
  if (tenant instanceof EntraError) {
    sendJson(
      response,
      tenant.status,
      errorResponseBody(tenant, trace, context.now()),
    );
    return;
  }
  sendJson(response, 200, openIdConfiguration(context.url, tenant));
}

function sendInstanceDiscovery(
  context: IdentityContext,
  tenantText: string,
  parameters: URLSearchParams,
  response: ServerResponse,
  trace: RequestTrace,
): void {
  const authorizationEndpoint = parameters.get("authorization_endpoint");
  let tenantSegment = tenantText;
  if (authorizationEndpoint !== null) {
    let endpoint: URL | undefined;
    try {
      endpoint = new URL(authorizationEndpoint);
    } catch {
      endpoint = undefined;
    }
    if (endpoint === undefined || endpoint.host !== hostOf(context.url)) {
      const failure = new EntraError({
        error: "invalid_instance",
        code: 50049,
        description: "Unknown or invalid instance.",
      });
      sendJson(response, 400, errorResponseBody(failure, trace, context.now()));
      return;
    }
    tenantSegment = endpoint.pathname.split("/")[1] ?? tenantText;
  }
  sendJson(
    response,
    200,
    instanceDiscoveryDocument(context.url, tenantSegment),
  );
}

function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

function headerValue(
  request: IncomingMessage,
  name: string,
): string | undefined {
  const value = request.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

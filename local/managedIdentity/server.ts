// Local stand-in for the managed identity endpoint that App Service and Azure Functions give an app:
// GET {IDENTITY_ENDPOINT}?api-version=2019-08-01&resource=...[&client_id=...] with the header
// X-IDENTITY-HEADER: {IDENTITY_HEADER}, which @azure/identity 4.13 calls through MSAL Node 6
// (`AppService` managed identity source) when both variables are set. It serves http on
// 127.0.0.1 only, as the platform's endpoint listens on loopback.
//
// Its tokens are RS256 JWTs signed by a key that it publishes under its issuer, like a managed
// identity token of Entra ID: `iss` `{url}/{tenantId}/v2.0`, `sub` and `oid` the identity's object
// id, `aud` the requested resource. The identity stand-in trusts this issuer through a federated
// identity credential and fetches the keys from `{issuer}/.well-known/openid-configuration`.

import {
  createHash,
  randomBytes,
  randomUUID,
  timingSafeEqual,
} from "node:crypto";
import { createServer } from "node:http";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { SignJWT } from "jose";
import { z } from "zod";
import { sendJson } from "../identity/http.js";
import { jwksDocument, loadSigningKey } from "../identity/tokens.js";
import type { SigningKey } from "../identity/tokens.js";

export interface ManagedIdentity {
  /** Application (client) id, which a user-assigned identity is requested by. */
  clientId: string;
  /** Object (principal) id, the `sub` of its tokens. */
  objectId: string;
  /** A function app has at most one system-assigned identity, requested without an id. */
  kind: "system-assigned" | "user-assigned";
}

export interface ManagedIdentityStandInOptions {
  /** 0 or absent: a free port. */
  port?: number;
  /** Tenant of the identities, part of the issuer. */
  tenantId: string;
  identities: ManagedIdentity[];
  /** Clock in milliseconds since the epoch. */
  now?: () => number;
  /** Receives one line per error response, without any token. */
  log?: (message: string) => void;
}

export interface ManagedIdentityFault {
  status: number;
  message?: string;
  /** Number of token requests that fail, 1 by default. */
  count?: number;
}

export interface ManagedIdentityCounts {
  /** Token requests that got a token, by requested resource. */
  tokensByResource: Record<string, number>;
  /** Token requests that got an error response. */
  failures: number;
}

export interface ManagedIdentityControl {
  /** Makes the next token requests fail with this status and message. */
  failNext(fault: ManagedIdentityFault): void;
  /** Takes the identity off the app, as removing it from the function app does. */
  removeIdentity(clientId: string): void;
  /** Assigns an identity to the app. */
  addIdentity(identity: ManagedIdentity): void;
  /** Tokens issued from now on live this many seconds (24 hours by default). */
  setTokenLifetime(seconds: number): void;
  counts(): ManagedIdentityCounts;
  /** Clears faults, the lifetime override and counts; identities stay as they are. */
  reset(): void;
}

export interface ManagedIdentityStandIn {
  /** "http://127.0.0.1:PORT". */
  url: string;
  /** The token endpoint, the value of IDENTITY_ENDPOINT. */
  endpoint: string;
  /** The value of IDENTITY_HEADER that requests must send as X-IDENTITY-HEADER. */
  header: string;
  /** `iss` of the issued tokens. */
  issuer: string;
  /** IDENTITY_ENDPOINT and IDENTITY_HEADER, as App Service sets them for the app. */
  environment: { IDENTITY_ENDPOINT: string; IDENTITY_HEADER: string };
  control: ManagedIdentityControl;
  close(): Promise<void>;
}

const apiVersion = "2019-08-01";
const defaultLifetimeSeconds = 24 * 60 * 60;
const guidSchema = z.guid().transform((guid) => guid.toLowerCase());
const identitySchema = z.strictObject({
  clientId: guidSchema,
  objectId: guidSchema,
  kind: z.enum(["system-assigned", "user-assigned"]),
});
const faultSchema = z.strictObject({
  status: z.number().int().min(400).max(599),
  message: z.string().min(1).optional(),
  count: z.number().int().positive().optional(),
});

interface EndpointState {
  url: string;
  header: string;
  tenantId: string;
  key: SigningKey;
  identities: ManagedIdentity[];
  faults: Array<{ fault: ManagedIdentityFault; remaining: number }>;
  lifetimeSeconds: number;
  counts: ManagedIdentityCounts;
  now: () => number;
  log: (message: string) => void;
}

export async function startManagedIdentityStandIn(
  options: ManagedIdentityStandInOptions,
): Promise<ManagedIdentityStandIn> {
  const identities = options.identities.map((identity) =>
    identitySchema.parse(identity),
  );
  checkSingleSystemIdentity(identities);
  const state: EndpointState = {
    url: "",
    header: randomBytes(24).toString("base64url"),
    tenantId: guidSchema.parse(options.tenantId),
    key: await loadSigningKey(undefined),
    identities,
    faults: [],
    lifetimeSeconds: defaultLifetimeSeconds,
    counts: { tokensByResource: {}, failures: 0 },
    now: options.now ?? Date.now,
    log: options.log ?? (() => undefined),
  };

  const server = createServer((request, response) => {
    routeRequest(state, request, response).catch((error: unknown) => {
      console.error("Managed identity stand-in failed:", error);
      if (!response.headersSent) {
        sendError(
          state,
          response,
          500,
          "The managed identity stand-in failed.",
        );
      } else {
        response.destroy();
      }
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, "127.0.0.1", () => {
      server.off("error", reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  state.url = `http://127.0.0.1:${port}`;
  const endpoint = `${state.url}/msi/token`;

  return {
    url: state.url,
    endpoint,
    header: state.header,
    issuer: issuerOf(state),
    environment: { IDENTITY_ENDPOINT: endpoint, IDENTITY_HEADER: state.header },
    control: createControl(state),
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeAllConnections();
      }),
  };
}

function createControl(state: EndpointState): ManagedIdentityControl {
  return {
    failNext: (fault) => {
      const parsed = faultSchema.parse(fault);
      state.faults.push({ fault: parsed, remaining: parsed.count ?? 1 });
    },
    removeIdentity: (clientId) => {
      state.identities = state.identities.filter(
        (identity) => identity.clientId !== clientId,
      );
    },
    addIdentity: (identity) => {
      const parsed = identitySchema.parse(identity);
      const identities = [
        ...state.identities.filter(
          (existing) => existing.clientId !== parsed.clientId,
        ),
        parsed,
      ];
      checkSingleSystemIdentity(identities);
      state.identities = identities;
    },
    setTokenLifetime: (seconds) => {
      state.lifetimeSeconds = z
        .number()
        .int()
        .min(1)
        .max(86_400)
        .parse(seconds);
    },
    counts: () => ({
      tokensByResource: { ...state.counts.tokensByResource },
      failures: state.counts.failures,
    }),
    reset: () => {
      state.faults = [];
      state.lifetimeSeconds = defaultLifetimeSeconds;
      state.counts = { tokensByResource: {}, failures: 0 };
    },
  };
}

function checkSingleSystemIdentity(identities: ManagedIdentity[]): void {
  const system = identities.filter(
    (identity) => identity.kind === "system-assigned",
  );
  if (system.length > 1) {
    throw new RangeError("An app has at most one system-assigned identity.");
  }
}

function issuerOf(state: EndpointState): string {
  return `${state.url}/${state.tenantId}/v2.0`;
}

async function routeRequest(
  state: EndpointState,
  request: IncomingMessage,
  response: ServerResponse,
): Promise<void> {
  const url = new URL(request.url ?? "/", state.url);
  const tenantPath = `/${state.tenantId}`;
  if (url.pathname === "/msi/token") {
    await issueToken(state, request, url.searchParams, response);
    return;
  }
  if (url.pathname === `${tenantPath}/v2.0/.well-known/openid-configuration`) {
    sendJson(response, 200, {
      issuer: issuerOf(state),
      jwks_uri: `${state.url}${tenantPath}/discovery/v2.0/keys`,
      id_token_signing_alg_values_supported: ["RS256"],
      response_types_supported: ["id_token"],
      subject_types_supported: ["public"],
    });
    return;
  }
  if (url.pathname === `${tenantPath}/discovery/v2.0/keys`) {
    sendJson(response, 200, jwksDocument(state.key, state.url));
    return;
  }
  sendJson(response, 404, {
    statusCode: 404,
    message: `No endpoint at ${url.pathname}.`,
  });
}

async function issueToken(
  state: EndpointState,
  request: IncomingMessage,
  parameters: URLSearchParams,
  response: ServerResponse,
): Promise<void> {
  if (request.method !== "GET") {
    sendError(state, response, 405, "The token endpoint accepts only GET.");
    return;
  }
  const header = request.headers["x-identity-header"];
  if (typeof header !== "string" || !constantTimeEqual(header, state.header)) {
    // NOTE: the platform's wording and status for a wrong header are not documented; the
    // behaviour that matters is that no token is issued.
    sendError(
      state,
      response,
      401,
      "The X-IDENTITY-HEADER value is missing or wrong.",
    );
    return;
  }
  if (parameters.get("api-version") !== apiVersion) {
    sendError(
      state,
      response,
      400,
      `Only api-version ${apiVersion} is served.`,
    );
    return;
  }
  const resource = parameters.get("resource") ?? "";
  if (resource === "") {
    sendError(state, response, 400, "The resource parameter is required.");
    return;
  }
  const identity = selectIdentity(state, parameters);
  if (typeof identity === "string") {
    sendError(state, response, 400, identity);
    return;
  }
  const fault = takeFault(state);
  if (fault !== undefined) {
    sendError(
      state,
      response,
      fault.status,
      fault.message ??
        "The managed identity stand-in failed this request because its control asked it to.",
    );
    return;
  }

  const issuedAt = Math.floor(state.now() / 1000);
  const expiresOn = issuedAt + state.lifetimeSeconds;
  const token = await new SignJWT({
    ver: "2.0",
    iss: issuerOf(state),
    sub: identity.objectId,
    oid: identity.objectId,
    tid: state.tenantId,
    aud: resource,
    azp: identity.clientId,
    appid: identity.clientId,
    idtyp: "app",
    iat: issuedAt,
    nbf: issuedAt,
    exp: expiresOn,
    uti: randomBytes(16).toString("base64url"),
  })
    .setProtectedHeader({ alg: "RS256", typ: "JWT", kid: state.key.keyId })
    .sign(state.key.privateKey);
  state.counts.tokensByResource[resource] =
    (state.counts.tokensByResource[resource] ?? 0) + 1;

  // The 2019-08-01 response: expires_on in Unix seconds, as a string.
  sendJson(
    response,
    200,
    {
      access_token: token,
      expires_on: String(expiresOn),
      resource,
      token_type: "Bearer",
      client_id: identity.clientId,
    },
    { "Cache-Control": "no-store" },
  );
}

/** Returns the requested identity, or the message of the 400 response the platform sends instead. */
function selectIdentity(
  state: EndpointState,
  parameters: URLSearchParams,
): ManagedIdentity | string {
  const clientId = parameters.get("client_id");
  const objectId =
    parameters.get("object_id") ?? parameters.get("principal_id");
  if (parameters.has("mi_res_id")) {
    return "Requesting an identity by resource id is not served by this stand-in.";
  }
  if (clientId !== null || objectId !== null) {
    const found = state.identities.find(
      (identity) =>
        identity.kind === "user-assigned" &&
        (clientId === null || identity.clientId === clientId.toLowerCase()) &&
        (objectId === null || identity.objectId === objectId.toLowerCase()),
    );
    return (
      found ??
      "No User Assigned or Delegated Managed Identity found for specified ClientId/ResourceId/PrincipalId."
    );
  }
  return (
    state.identities.find((identity) => identity.kind === "system-assigned") ??
    "No system-assigned managed identity is enabled for this app."
  );
}

function takeFault(state: EndpointState): ManagedIdentityFault | undefined {
  const entry = state.faults[0];
  if (entry === undefined) return undefined;
  entry.remaining -= 1;
  if (entry.remaining === 0) state.faults.shift();
  return entry.fault;
}

function sendError(
  state: EndpointState,
  response: ServerResponse,
  status: number,
  message: string,
): void {
  state.counts.failures += 1;
  const correlationId = randomUUID();
  state.log(
    `Managed identity token request failed with ${status}: ${message} (correlation id ${correlationId})`,
  );
  sendJson(response, status, { statusCode: status, message, correlationId });
}

function constantTimeEqual(left: string, right: string): boolean {
  const leftHash = createHash("sha256").update(left).digest();
  const rightHash = createHash("sha256").update(right).digest();
  return timingSafeEqual(leftHash, rightHash);
}

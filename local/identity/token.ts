// The token endpoint: authorization_code and refresh_token grants, with a client secret or a
// client assertion as the client's credential.

import { createHash, randomInt, timingSafeEqual } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { setTimeout as delay } from "node:timers/promises";
import type { TenantSegment } from "./accounts.js";
import { checkAccountInTenant } from "./accounts.js";
import {
  checkClientAssertion,
  jwtBearerAssertionType,
} from "./clientAssertion.js";
import type { IdentityContext } from "./context.js";
import { faultError } from "./control.js";
import type { RequestTrace } from "./errors.js";
import {
  EntraError,
  consentRequired,
  describeFailure,
  errorResponseBody,
  malformedRequest,
  missingParameter,
  unknownClient,
} from "./errors.js";
import { findDuplicateParameter, readForm, sendJson } from "./http.js";
import type { ScopeRequest } from "./scopes.js";
import { fullScope, graphResource, parseScopes, splitScope } from "./scopes.js";
import type { IdentityAccount, IdentityClient } from "./server.js";
import {
  authorizationCodeLifetimeMilliseconds,
  refreshTokenInactivityMilliseconds,
} from "./store.js";
import { clientInfo, signAccessToken, signIdToken } from "./tokens.js";

const verifierPattern = /^[A-Za-z0-9._~-]{43,128}$/;

/** Account, client and permissions of a successful grant, the input of the token response. */
interface Grant {
  client: IdentityClient;
  account: IdentityAccount;
  resource: string;
  permissions: string[];
  openId: Set<string>;
  nonce: string | undefined;
  issueRefreshToken: boolean;
}

export async function handleTokenRequest(
  context: IdentityContext,
  tenantText: string,
  request: IncomingMessage,
  response: ServerResponse,
  trace: RequestTrace,
): Promise<void> {
  const { control } = context;
  control.counts.token += 1;
  if (control.latencyMilliseconds > 0) {
    await delay(control.latencyMilliseconds);
  }
  const headers = {
    "Cache-Control": "no-store",
    Pragma: "no-cache",
    "x-ms-request-id": trace.traceId,
    "client-request-id": trace.correlationId,
  };
  // Filled in once the body is read, for the log line of an error response.
  const logged: { grantType?: string; clientId?: string } = {};
  const sendError = (
    failure: EntraError,
    extraHeaders: Record<string, string> = {},
  ): void => {
    context.log(
      `Token request (${logged.grantType ?? "no grant_type"}) for client ${logged.clientId ?? ""} failed with ${describeFailure(failure, trace)}.`,
    );
    sendJson(
      response,
      failure.status,
      errorResponseBody(failure, trace, context.now()),
      {
        ...headers,
        ...extraHeaders,
      },
    );
  };

  if (request.method !== "POST") {
    sendError(
      new EntraError({
        error: "invalid_request",
        code: 900561,
        description: `The endpoint only accepts (POST, OPTIONS) requests. Received a ${request.method ?? "unknown"} request.`,
      }),
    );
    return;
  }
  const parameters = await readForm(request);
  const grantType = parameters.get("grant_type") ?? undefined;
  logged.grantType = grantType;
  logged.clientId = parameters.get("client_id") ?? undefined;
  if (grantType === "authorization_code") {
    control.counts.authorizationCode += 1;
  } else if (grantType === "refresh_token") {
    control.counts.refreshToken += 1;
  }

  if (control.takeConnectionReset()) {
    context.log(
      `Token request (${grantType ?? "no grant_type"}) for client ${logged.clientId ?? ""} reset by the control.`,
    );
    request.socket.destroy();
    return;
  }
  const fault = control.takeFault(
    "token",
    grantType,
    accountOfRequest(context, grantType, parameters)?.username,
  );
  if (fault !== undefined) {
    const retryAfter: Record<string, string> =
      fault.retryAfterSeconds === undefined
        ? {}
        : { "Retry-After": String(fault.retryAfterSeconds) };
    sendError(faultError(fault), retryAfter);
    return;
  }

  const result = await grantTokens(
    context,
    tenantText,
    parameters,
    request.headers.authorization,
  );
  if (result instanceof EntraError) {
    sendError(result);
    return;
  }
  sendJson(response, 200, result, headers);
}

/** Returns the account that the request's code or refresh token was issued to, when known. */
function accountOfRequest(
  context: IdentityContext,
  grantType: string | undefined,
  parameters: URLSearchParams,
): IdentityAccount | undefined {
  if (grantType === "authorization_code") {
    return context.store.findCode(parameters.get("code") ?? "")?.account;
  }
  if (grantType === "refresh_token") {
    const record = context.store.findRefreshToken(
      parameters.get("refresh_token") ?? "",
    );
    return record === "malformed" ? undefined : record?.account;
  }
  return undefined;
}

async function grantTokens(
  context: IdentityContext,
  tenantText: string,
  parameters: URLSearchParams,
  authorization: string | undefined,
): Promise<Record<string, unknown> | EntraError> {
  const tenant = context.directory.parseTenantSegment(tenantText);
  if (tenant instanceof EntraError) {
    return tenant;
  }

  const duplicate = findDuplicateParameter(parameters);
  if (duplicate !== undefined) {
    return malformedRequest(
      `The parameter '${duplicate}' occurs more than once.`,
    );
  }

  const grantType = parameters.get("grant_type");
  if (grantType === null || grantType === "") {
    return missingParameter("grant_type");
  }
  if (grantType !== "authorization_code" && grantType !== "refresh_token") {
    return new EntraError({
      error: "unsupported_grant_type",
      code: 70003,
      description: `The app requested an unsupported grant type '${grantType}'.`,
    });
  }

  const client = await authenticateClient(
    context,
    tenant,
    parameters,
    authorization,
  );
  if (client instanceof EntraError) {
    return client;
  }

  const grant =
    grantType === "authorization_code"
      ? redeemAuthorizationCode(context, tenant, client, parameters)
      : redeemRefreshToken(context, tenant, client, parameters);
  if (grant instanceof EntraError) {
    return grant;
  }
  return buildTokenResponse(
    context,
    grant,
    parameters.get("client_info") === "1",
  );
}

/**
 * Checks client_id and the client's credential: client_secret, from the body or from HTTP Basic
 * authentication, or client_assertion with its type.
 */
async function authenticateClient(
  context: IdentityContext,
  tenant: TenantSegment,
  parameters: URLSearchParams,
  authorization: string | undefined,
): Promise<IdentityClient | EntraError> {
  let clientId = parameters.get("client_id");
  let clientSecret = parameters.get("client_secret");
  if (authorization?.toLowerCase().startsWith("basic ")) {
    const decoded = Buffer.from(
      authorization.slice(6).trim(),
      "base64",
    ).toString("utf8");
    const separator = decoded.indexOf(":");
    if (separator >= 0) {
      clientId = decodeURIComponent(decoded.slice(0, separator));
      clientSecret = decodeURIComponent(decoded.slice(separator + 1));
    }
  }
  if (clientId === null || clientId === "") {
    return missingParameter("client_id");
  }
  const client = context.clients.get(clientId);
  if (client === undefined) {
    return unknownClient(clientId, tenant.segment);
  }
  const assertion = parameters.get("client_assertion");
  const assertionType = parameters.get("client_assertion_type");
  if (assertion !== null || assertionType !== null) {
    if (clientSecret !== null && clientSecret !== "") {
      return malformedRequest(
        "The request presents both a client_secret and a client_assertion; send one of them.",
      );
    }
    if (assertionType !== jwtBearerAssertionType) {
      return malformedRequest(
        `The client_assertion_type must be '${jwtBearerAssertionType}'.`,
      );
    }
    if (assertion === null || assertion === "") {
      return missingParameter("client_assertion");
    }
    const failure = await checkClientAssertion(
      context,
      client,
      tenant,
      assertion,
    );
    return failure ?? client;
  }
  if (clientSecret === null || clientSecret === "") {
    return new EntraError({
      error: "invalid_client",
      code: 7000218,
      description:
        "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
    });
  }
  if (
    client.clientSecret === undefined ||
    !constantTimeEqual(clientSecret, client.clientSecret)
  ) {
    return new EntraError({
      error: "invalid_client",
      code: 7000215,
      description: `Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '${clientId}'.`,
    });
  }
  return client;
}

function redeemAuthorizationCode(
  context: IdentityContext,
  tenant: TenantSegment,
  client: IdentityClient,
  parameters: URLSearchParams,
): Grant | EntraError {
  const code = parameters.get("code");
  if (code === null || code === "") {
    return missingParameter("code");
  }
  const record = context.store.findCode(code);
  if (record === undefined || record.clientId !== client.clientId) {
    return new EntraError({
      error: "invalid_grant",
      code: 9002313,
      description:
        "Invalid request. Request is malformed or invalid. The authorization code is not valid for this client.",
    });
  }
  if (record.redeemedAt !== undefined) {
    return new EntraError({
      error: "invalid_grant",
      code: 54005,
      description:
        "OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an existing refresh token.",
    });
  }
  if (context.now() - record.issuedAt > authorizationCodeLifetimeMilliseconds) {
    return new EntraError({
      error: "invalid_grant",
      code: 70008,
      description:
        "The provided authorization code or refresh token has expired due to inactivity. Send a new interactive authorization request for this user and resource.",
    });
  }
  // A code must be redeemed at the tenant it was issued for, or at the account's own tenant.
  const sameTenant =
    tenant.segment === record.tenantSegment ||
    (tenant.kind === "tenant" &&
      tenant.tenantId === record.account.tenantId.toLowerCase());
  if (!sameTenant) {
    return new EntraError({
      error: "invalid_grant",
      code: 700005,
      description: `Provided Authorization Code is intended to use against other tenant, thus rejected. It was issued at '/${record.tenantSegment}' and redeemed at '/${tenant.segment}'.`,
    });
  }
  const redirectUri = parameters.get("redirect_uri");
  if (redirectUri !== record.redirectUri) {
    return new EntraError({
      error: "invalid_grant",
      code: 50011,
      description: `The redirect URI '${redirectUri ?? ""}' specified in the request does not match the redirect URI '${record.redirectUri}' used to request the authorization code.`,
    });
  }
  const verifier = parameters.get("code_verifier") ?? "";
  const challenge = createHash("sha256").update(verifier).digest("base64url");
  if (!verifierPattern.test(verifier) || challenge !== record.codeChallenge) {
    // A failed verifier leaves the code unredeemed, so a stolen code cannot be burned.
    return new EntraError({
      error: "invalid_grant",
      code: 501481,
      description:
        "The Code_Verifier does not match the code_challenge supplied in the authorization request.",
    });
  }

  // The redemption may name other consented permissions than the authorize request did.
  let scopes: ScopeRequest = {
    openId: new Set(record.openId),
    resource: record.resource,
    permissions: record.permissions,
  };
  const scopeParameter = parameters.get("scope");
  if (scopeParameter !== null && scopeParameter.trim() !== "") {
    const parsed = parseScopes(scopeParameter, tenant.segment);
    if (parsed instanceof EntraError) {
      return parsed;
    }
    scopes = { ...parsed, openId: new Set(record.openId) };
  }
  const permissions = grantedPermissions(
    context,
    client,
    record.account,
    scopes,
  );
  if (permissions instanceof EntraError) {
    return permissions;
  }

  context.store.markCodeRedeemed(record);
  return {
    client,
    account: record.account,
    resource: scopes.resource,
    permissions,
    openId: scopes.openId,
    nonce: record.nonce,
    issueRefreshToken: scopes.openId.has("offline_access"),
  };
}

function redeemRefreshToken(
  context: IdentityContext,
  tenant: TenantSegment,
  client: IdentityClient,
  parameters: URLSearchParams,
): Grant | EntraError {
  const token = parameters.get("refresh_token");
  if (token === null || token === "") {
    return missingParameter("refresh_token");
  }
  const record = context.store.findRefreshToken(token);
  if (record === "malformed") {
    return new EntraError({
      error: "invalid_grant",
      code: 9002313,
      description:
        "Invalid request. Request is malformed or invalid. The refresh token is malformed.",
    });
  }
  if (record === undefined || record.clientId !== client.clientId) {
    return new EntraError({
      error: "invalid_grant",
      code: 70000,
      description: "Provided grant is invalid or malformed.",
    });
  }
  if (record.revokedAt !== undefined) {
    return new EntraError({
      error: "invalid_grant",
      code: 50173,
      description: `The provided grant has expired due to it being revoked, a fresh auth token is needed. The user might have changed or reset their password. The grant was issued on '${new Date(record.issuedAt).toISOString()}' and the TokensValidFrom date (before which tokens are not valid) for this user is '${new Date(record.revokedAt).toISOString()}'.`,
    });
  }
  if (context.now() - record.lastUsedAt > refreshTokenInactivityMilliseconds) {
    return new EntraError({
      error: "invalid_grant",
      code: 700082,
      description: `The refresh token has expired due to inactivity. The token was issued on ${new Date(record.issuedAt).toISOString()} and was inactive for 90.00:00:00.`,
    });
  }
  const tenantError = checkAccountInTenant(
    record.account,
    tenant,
    context.url,
    client.clientId,
  );
  if (tenantError !== undefined) {
    return new EntraError({
      error: "invalid_grant",
      code: tenantError.code,
      description: tenantError.detail,
    });
  }

  const scopes = parseScopes(parameters.get("scope"), tenant.segment);
  if (scopes instanceof EntraError) {
    return scopes;
  }
  const permissions = grantedPermissions(
    context,
    client,
    record.account,
    scopes,
  );
  if (permissions instanceof EntraError) {
    return permissions;
  }
  // Entra ID keeps the old refresh token valid after it issues a new one.
  context.store.markRefreshTokenUsed(record);
  return {
    client,
    account: record.account,
    resource: scopes.resource,
    permissions,
    openId: scopes.openId,
    nonce: undefined,
    issueRefreshToken: true,
  };
}

/**
 * Returns the permissions the token carries. As in Entra ID, every requested
 * permission must have consent, and the token carries all consented permissions of
 * the resource, not only the requested ones.
 */
function grantedPermissions(
  context: IdentityContext,
  client: IdentityClient,
  account: IdentityAccount,
  scopes: ScopeRequest,
): string[] | EntraError {
  const consented = [
    ...context.store.consentedScopes(client.clientId, account.objectId),
  ]
    .map((scope) => splitScope(scope))
    .filter((scope) => scope.resource === scopes.resource)
    .map((scope) => scope.permission);
  if (scopes.permissions.includes(".default")) {
    return consented.length > 0 ? consented : consentRequired(client.clientId);
  }
  // Graph User.Read is the sign-in permission, so OpenID-only requests need no consent for it.
  const implicit = scopes.resource === graphResource ? ["User.Read"] : [];
  const missing = scopes.permissions.filter(
    (permission) =>
      !consented.includes(permission) && !implicit.includes(permission),
  );
  if (missing.length > 0) {
    return consentRequired(client.clientId);
  }
  return [...new Set([...consented, ...scopes.permissions])];
}

async function buildTokenResponse(
  context: IdentityContext,
  grant: Grant,
  includeClientInfo: boolean,
): Promise<Record<string, unknown>> {
  const overrides = context.control.takeTokenOverrides();
  let { resource, permissions } = grant;
  if (overrides.grantScopes !== undefined) {
    const overridden = overrides.grantScopes.map((scope) =>
      scope.includes("/") ? splitScope(scope) : { resource, permission: scope },
    );
    resource = overridden[0]?.resource ?? resource;
    permissions = overridden.map((scope) => scope.permission);
  }

  // Entra ID access tokens last between 60 and 90 minutes, chosen at random.
  const expiresIn = overrides.tokenLifetimeSeconds ?? randomInt(3600, 5400);
  const issuedAt = Math.floor(context.now() / 1000);
  const common = {
    issuerUrl: context.url,
    clientId: grant.client.clientId,
    account: grant.account,
    issuedAt,
  };
  const body: Record<string, unknown> = {
    token_type: "Bearer",
    scope: permissions
      .map((permission) => fullScope(resource, permission))
      .join(" "),
    expires_in: expiresIn,
    ext_expires_in: expiresIn,
    access_token: await signAccessToken(context.key, {
      ...common,
      resource,
      permissions,
      expiresIn,
    }),
  };
  if (grant.issueRefreshToken && !overrides.omitRefreshToken) {
    body.refresh_token = context.store.issueRefreshToken(
      grant.client.clientId,
      grant.account,
    );
  }
  if (grant.openId.has("openid")) {
    body.id_token = await signIdToken(context.key, {
      ...common,
      nonce: overrides.nonce ?? grant.nonce,
    });
  }
  if (includeClientInfo) {
    body.client_info = clientInfo(grant.account);
  }
  return body;
}

function constantTimeEqual(left: string, right: string): boolean {
  const leftHash = createHash("sha256").update(left).digest();
  const rightHash = createHash("sha256").update(right).digest();
  return timingSafeEqual(leftHash, rightHash);
}

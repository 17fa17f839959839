// The authorization endpoint: request validation, sign-in and the redirect back.

import { randomUUID } from "node:crypto";
import type { TenantSegment } from "./accounts.js";
import { checkAccountInTenant } from "./accounts.js";
import type { IdentityContext } from "./context.js";
import { faultError } from "./control.js";
import {
  EntraError,
  malformedRequest,
  missingParameter,
  redirectUriMismatch,
  unknownClient,
  userDeclinedConsent,
} from "./errors.js";
import { findDuplicateParameter } from "./http.js";
import type { ScopeRequest } from "./scopes.js";
import { fullScope, parseScopes } from "./scopes.js";
import type { IdentityClient } from "./server.js";
import { clientInfo } from "./tokens.js";

/** A validated authorize request, waiting for a person to sign in. */
export interface AuthorizationRequest {
  tenant: TenantSegment;
  client: IdentityClient;
  redirectUri: string;
  state: string | undefined;
  nonce: string | undefined;
  loginHint: string | undefined;
  scopes: ScopeRequest;
  codeChallenge: string;
  /** Whether the request asked for `client_info=1`, which adds client_info to the redirect. */
  includeClientInfo: boolean;
}

export type AuthorizeOutcome =
  | { kind: "sign-in"; request: AuthorizationRequest }
  | { kind: "redirect"; location: string; error?: EntraError }
  | { kind: "error-page"; error: EntraError };

/** S256 challenges are base64url SHA-256 digests: 43 characters without padding. */
const s256ChallengePattern = /^[A-Za-z0-9_-]{43}$/;

/**
 * Validates an authorize request as Entra ID does. Errors in the tenant, client_id or
 * redirect_uri give an error page, because a redirect would go to an unverified
 * address. Later errors redirect to redirect_uri with `error` and `error_description`.
 */
export function validateAuthorizationRequest(
  context: IdentityContext,
  tenantText: string,
  parameters: URLSearchParams,
): AuthorizeOutcome {
  const tenant = context.directory.parseTenantSegment(tenantText);
  if (tenant instanceof EntraError) {
    return { kind: "error-page", error: tenant };
  }
  const duplicate = findDuplicateParameter(parameters);
  if (duplicate !== undefined) {
    return {
      kind: "error-page",
      error: malformedRequest(
        `The parameter '${duplicate}' occurs more than once.`,
      ),
    };
  }
  const clientId = parameters.get("client_id");
  if (clientId === null || clientId === "") {
    return { kind: "error-page", error: missingParameter("client_id") };
  }
  const client = context.clients.get(clientId);
  if (client === undefined) {
    return {
      kind: "error-page",
      error: unknownClient(clientId, tenant.segment),
    };
  }
  const redirectUri = parameters.get("redirect_uri");
  if (redirectUri === null || redirectUri === "") {
    return { kind: "error-page", error: missingParameter("redirect_uri") };
  }
  // A redirect URI must match a registered one byte for byte.
  if (!client.redirectUris.includes(redirectUri)) {
    return {
      kind: "error-page",
      error: redirectUriMismatch(redirectUri, clientId),
    };
  }

  const state = parameters.get("state") ?? undefined;
  const fail = (error: EntraError): AuthorizeOutcome => ({
    kind: "redirect",
    location: errorRedirect(redirectUri, error, state),
    error,
  });

  const fault = context.control.takeFault("authorize");
  if (fault !== undefined) {
    return fail(faultError(fault));
  }
  const responseType = parameters.get("response_type");
  if (responseType === null || responseType === "") {
    return fail(missingParameter("response_type"));
  }
  if (responseType !== "code") {
    return fail(
      new EntraError({
        error: "unsupported_response_type",
        code: 700051,
        description: `response_type '${responseType}' is not enabled for the application.`,
      }),
    );
  }
  const responseMode = parameters.get("response_mode");
  if (responseMode !== null && responseMode !== "query") {
    // NOTE: Entra ID also supports fragment and form_post; the stand-in redirects with a query only.
    return fail(
      new EntraError({
        error: "invalid_request",
        code: 70007,
        description: `The stand-in supports only response_mode 'query', not '${responseMode}'.`,
      }),
    );
  }

  const scopes = parseScopes(parameters.get("scope"), tenant.segment);
  if (scopes instanceof EntraError) {
    // NOTE: Entra ID lets an authorize request ask consent for several resources.
    // The stand-in rejects that, because each token request must name one resource.
    return fail(scopes);
  }

  // NOTE: Entra ID accepts confidential clients without PKCE and with the plain
  // method. The stand-in requires S256, because the broker must always send it.
  const codeChallenge = parameters.get("code_challenge");
  if (codeChallenge === null || codeChallenge === "") {
    return fail(missingParameter("code_challenge"));
  }
  const challengeMethod = parameters.get("code_challenge_method") ?? "plain";
  if (challengeMethod !== "S256") {
    return fail(
      new EntraError({
        error: "invalid_request",
        code: 50149,
        description: `Invalid Code_Challenge_method parameter '${challengeMethod}'. The stand-in accepts only S256.`,
      }),
    );
  }
  if (!s256ChallengePattern.test(codeChallenge)) {
    return fail(
      new EntraError({
        error: "invalid_request",
        code: 501491,
        description: "Invalid size of Code_Challenge parameter.",
      }),
    );
  }

  if (parameters.get("prompt") === "none") {
    // The stand-in keeps no browser session, so silent sign-in always needs interaction.
    return fail(
      new EntraError({
        error: "login_required",
        code: 50058,
        description:
          "A silent sign-in request was sent but no user is signed in.",
      }),
    );
  }

  return {
    kind: "sign-in",
    request: {
      tenant,
      client,
      redirectUri,
      state,
      nonce: parameters.get("nonce") ?? undefined,
      loginHint: parameters.get("login_hint") ?? undefined,
      scopes,
      codeChallenge,
      includeClientInfo: parameters.get("client_info") === "1",
    },
  };
}

/**
 * Signs the account in: records consent for the requested permissions, issues a code
 * and returns the redirect. Returns an error, without a redirect, when the address is
 * invalid or the account cannot sign in at the tenant, so the page can ask again.
 */
export function completeSignIn(
  context: IdentityContext,
  request: AuthorizationRequest,
  username: string,
):
  | { kind: "redirect"; location: string }
  | { kind: "invalid-account"; error: EntraError } {
  const account = context.directory.resolve(username);
  if (account === undefined) {
    return {
      kind: "invalid-account",
      error: new EntraError({
        error: "invalid_request",
        code: 90101,
        description: `'${username}' is not a valid email address. The address must look like someone@example.com.`,
      }),
    };
  }
  const tenantError = checkAccountInTenant(
    account,
    request.tenant,
    context.url,
    request.client.clientId,
  );
  if (tenantError !== undefined) {
    return { kind: "invalid-account", error: tenantError };
  }

  const { scopes } = request;
  const consented = scopes.permissions
    .filter((permission) => permission !== ".default")
    .map((permission) => fullScope(scopes.resource, permission));
  context.store.addConsent(
    request.client.clientId,
    account.objectId,
    consented,
  );

  const code = context.store.issueCode({
    clientId: request.client.clientId,
    redirectUri: request.redirectUri,
    tenantSegment: request.tenant.segment,
    account,
    resource: scopes.resource,
    permissions: scopes.permissions,
    openId: [...scopes.openId],
    codeChallenge: request.codeChallenge,
    nonce: request.nonce,
    issuedAt: context.now(),
  });

  const location = new URL(request.redirectUri);
  location.searchParams.set("code", code);
  if (request.includeClientInfo) {
    location.searchParams.set("client_info", clientInfo(account));
  }
  if (request.state !== undefined) {
    location.searchParams.set("state", request.state);
  }
  location.searchParams.set("session_state", randomUUID());
  return { kind: "redirect", location: location.toString() };
}

/** Returns the redirect for a person who pressed Cancel: access_denied AADSTS65004. */
export function cancelSignIn(request: AuthorizationRequest): string {
  return errorRedirect(
    request.redirectUri,
    userDeclinedConsent(),
    request.state,
  );
}

export function errorRedirect(
  redirectUri: string,
  failure: EntraError,
  state: string | undefined,
): string {
  const location = new URL(redirectUri);
  location.searchParams.set("error", failure.error);
  location.searchParams.set("error_description", failure.description);
  if (state !== undefined) {
    location.searchParams.set("state", state);
  }
  return location.toString();
}

// Routes of the pages shown in a browser: the sign-in page and its form, error pages
// and the logout page.

import type { IncomingMessage, ServerResponse } from "node:http";
import type { AuthorizationRequest } from "./authorize.js";
import {
  cancelSignIn,
  completeSignIn,
  validateAuthorizationRequest,
} from "./authorize.js";
import type { IdentityContext } from "./context.js";
import type { RequestTrace } from "./errors.js";
import { EntraError, describeFailure, entraTimestamp } from "./errors.js";
import { readForm, sendHtml, sendRedirect } from "./http.js";
import { fullScope } from "./scopes.js";
import {
  renderErrorPage,
  renderSignInPage,
  signInContentSecurityPolicy,
  stylesheetPath,
} from "./signInPage.js";

/** Serves GET /{tenant}/oauth2/v2.0/authorize: the sign-in page, an error redirect or an error page. */
export function showAuthorizePage(
  context: IdentityContext,
  tenantText: string,
  parameters: URLSearchParams,
  response: ServerResponse,
  trace: RequestTrace,
): void {
  const outcome = validateAuthorizationRequest(context, tenantText, parameters);
  switch (outcome.kind) {
    case "error-page":
      sendErrorPage(context, response, outcome.error, trace);
      return;
    case "redirect":
      if (outcome.error !== undefined) {
        context.log(
          `Authorize request for client ${parameters.get("client_id") ?? ""} redirected with ${describeFailure(outcome.error, trace)}.`,
        );
      }
      sendRedirect(response, outcome.location);
      return;
    case "sign-in": {
      const requestId = context.store.savePendingSignIn(outcome.request);
      sendSignInPage(
        context,
        response,
        outcome.request,
        requestId,
        outcome.request.loginHint ?? "",
      );
    }
  }
}

/**
 * Handles the form post to /{tenant}/login. Cancel redirects with access_denied, and
 * Sign in redirects with a code or shows the page again for an unusable address.
 */
export async function handleSignInForm(
  context: IdentityContext,
  request: IncomingMessage,
  response: ServerResponse,
  trace: RequestTrace,
): Promise<void> {
  if (request.method !== "POST") {
    const failure = new EntraError({
      error: "invalid_request",
      code: 900561,
      description: "The endpoint only accepts POST requests.",
    });
    sendErrorPage(context, response, failure, trace);
    return;
  }
  const form = await readForm(request);
  const requestId = form.get("request_id") ?? "";
  const pending = context.store.findPendingSignIn(requestId);
  if (pending === undefined) {
    const failure = new EntraError({
      error: "invalid_request",
      code: 50089,
      description:
        "Authentication failed due to flow token expired. Start the sign-in again from the application.",
    });
    sendErrorPage(context, response, failure, trace);
    return;
  }
  if (form.get("action") === "cancel") {
    context.store.deletePendingSignIn(requestId);
    context.log(`Sign-in for client ${pending.client.clientId} was cancelled.`);
    sendRedirect(response, cancelSignIn(pending));
    return;
  }
  const username = form.get("username") ?? "";
  const result = completeSignIn(context, pending, username);
  if (result.kind === "invalid-account") {
    context.log(
      `Sign-in as '${username}' for client ${pending.client.clientId} failed: ${describeFailure(result.error, trace)}.`,
    );
    sendSignInPage(
      context,
      response,
      pending,
      requestId,
      username,
      result.error.description,
    );
    return;
  }
  context.store.deletePendingSignIn(requestId);
  sendRedirect(response, result.location);
}

function sendSignInPage(
  context: IdentityContext,
  response: ServerResponse,
  request: AuthorizationRequest,
  requestId: string,
  username: string,
  errorMessage?: string,
): void {
  const { scopes } = request;
  const displayedScopes = [
    ...scopes.permissions.map((permission) =>
      fullScope(scopes.resource, permission),
    ),
    ...scopes.openId,
  ];
  const html = renderSignInPage({
    formAction: `/${encodeURIComponent(request.tenant.segment)}/login`,
    requestId,
    clientId: request.client.clientId,
    scopes: displayedScopes,
    username,
    knownUsernames: context.directory.knownUsernames(),
    ...(errorMessage === undefined ? {} : { errorMessage }),
  });
  sendHtml(response, 200, html, {
    "Content-Security-Policy": signInContentSecurityPolicy(request.redirectUri),
    "X-Frame-Options": "DENY",
  });
}

function sendErrorPage(
  context: IdentityContext,
  response: ServerResponse,
  failure: EntraError,
  trace: RequestTrace,
): void {
  context.log(
    `Sign-in page shows ${describeFailure(failure, trace)}: ${failure.description}`,
  );
  sendHtml(
    response,
    failure.status,
    renderErrorPage(failure, trace, entraTimestamp(context.now())),
    {
      "Content-Security-Policy": signInContentSecurityPolicy(undefined),
      "X-Frame-Options": "DENY",
    },
  );
}

/** Redirects to post_logout_redirect_uri when it is a registered redirect URI. */
export function handleLogout(
  context: IdentityContext,
  parameters: URLSearchParams,
  response: ServerResponse,
): void {
  const target = parameters.get("post_logout_redirect_uri");
  const registered = [...context.clients.values()].some(
    (client) => target !== null && client.redirectUris.includes(target),
  );
  if (target !== null && registered) {
    const location = new URL(target);
    const state = parameters.get("state");
    if (state !== null) {
      location.searchParams.set("state", state);
    }
    sendRedirect(response, location.toString());
    return;
  }
  const html = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Signed out</title><link rel="stylesheet" href="${stylesheetPath}"></head><body><main><h1>You signed out of your account</h1><p>You can close this window.</p></main></body></html>`;
  sendHtml(response, 200, html, {
    "Content-Security-Policy": signInContentSecurityPolicy(undefined),
  });
}

// Errors in the shape the Microsoft identity platform returns them.

import { randomUUID } from "node:crypto";

/** An OAuth error with its AADSTS code, as Entra ID reports it. */
export class EntraError extends Error {
  readonly error: string;
  readonly code: number | undefined;
  /** The description with its "AADSTS{code}: " prefix. */
  readonly description: string;
  /** The description without the prefix. */
  readonly detail: string;
  readonly status: number;
  readonly subError: string | undefined;

  constructor(options: {
    error: string;
    code?: number;
    description: string;
    status?: number;
    subError?: string;
  }) {
    const prefixed =
      options.code === undefined
        ? options.description
        : `AADSTS${options.code}: ${options.description}`;
    super(prefixed);
    this.name = "EntraError";
    this.error = options.error;
    this.code = options.code;
    this.description = prefixed;
    this.detail = options.description;
    this.status =
      options.status ?? (options.error === "invalid_client" ? 401 : 400);
    this.subError = options.subError;
  }
}

/** Identifiers that Entra ID attaches to every response, for support cases. */
export interface RequestTrace {
  traceId: string;
  correlationId: string;
}

export function createRequestTrace(
  clientRequestId: string | null | undefined,
): RequestTrace {
  const correlationId =
    clientRequestId && /^[0-9a-f-]{36}$/i.test(clientRequestId)
      ? clientRequestId
      : randomUUID();
  return { traceId: randomUUID(), correlationId };
}

/** Formats an error for a log line, for example "invalid_grant AADSTS54005 (trace id ...)". */
export function describeFailure(
  failure: EntraError,
  trace: RequestTrace,
): string {
  const code = failure.code === undefined ? "" : ` AADSTS${failure.code}`;
  return `${failure.error}${code} (trace id ${trace.traceId}, correlation id ${trace.correlationId})`;
}

/** Formats a time as Entra ID does in error bodies, for example "2016-01-09 02:02:12Z". */
export function entraTimestamp(milliseconds: number): string {
  return new Date(milliseconds)
    .toISOString()
    .replace("T", " ")
    .replace(/\.\d+Z$/, "Z");
}

/**
 * Builds the JSON error body of the token endpoint. Entra ID appends the trace id,
 * correlation id and timestamp to the description as well as giving them as fields.
 */
export function errorResponseBody(
  failure: EntraError,
  trace: RequestTrace,
  now: number,
): Record<string, unknown> {
  const timestamp = entraTimestamp(now);
  const body: Record<string, unknown> = {
    error: failure.error,
    error_description: `${failure.description}\r\nTrace ID: ${trace.traceId}\r\nCorrelation ID: ${trace.correlationId}\r\nTimestamp: ${timestamp}`,
  };
  if (failure.code !== undefined) {
    body.error_codes = [failure.code];
  }
  body.timestamp = timestamp;
  body.trace_id = trace.traceId;
  body.correlation_id = trace.correlationId;
  if (failure.subError !== undefined) {
    body.suberror = failure.subError;
  }
  return body;
}

// The descriptions below approximate Entra ID's wording. Microsoft's error code
// reference tells clients to act on `error`, never on the description text.

export function missingParameter(parameter: string): EntraError {
  return new EntraError({
    error: "invalid_request",
    code: 900144,
    description: `The request body must contain the following parameter: '${parameter}'.`,
  });
}

export function malformedRequest(detail: string): EntraError {
  return new EntraError({
    error: "invalid_request",
    code: 9002313,
    description: `Invalid request. Request is malformed or invalid. ${detail}`,
  });
}

export function tenantNotFound(tenant: string): EntraError {
  return new EntraError({
    error: "invalid_tenant",
    code: 90002,
    description: `Tenant '${tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud.`,
  });
}

export function unknownClient(clientId: string, tenant: string): EntraError {
  return new EntraError({
    error: "unauthorized_client",
    code: 700016,
    description: `Application with identifier '${clientId}' was not found in the directory '${tenant}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.`,
  });
}

export function redirectUriMismatch(
  redirectUri: string,
  clientId: string,
): EntraError {
  return new EntraError({
    error: "invalid_request",
    code: 50011,
    description: `The redirect URI '${redirectUri}' specified in the request does not match the redirect URIs configured for the application '${clientId}'. Make sure the redirect URI sent in the request matches one added to your application.`,
  });
}

export function invalidScope(scope: string): EntraError {
  return new EntraError({
    error: "invalid_scope",
    code: 70011,
    description: `The provided value for the input parameter 'scope' is not valid. The scope '${scope}' is not valid.`,
  });
}

export function multipleResources(scope: string): EntraError {
  return new EntraError({
    error: "invalid_scope",
    code: 28000,
    description: `Provided value for the input parameter scope is not valid because it contains more than one resource. Scope ${scope} is not valid.`,
  });
}

export function unknownResource(resource: string, tenant: string): EntraError {
  return new EntraError({
    error: "invalid_resource",
    code: 500011,
    description: `The resource principal named ${resource} was not found in the tenant named ${tenant}. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You might have sent your authentication request to the wrong tenant.`,
  });
}

export function consentRequired(clientId: string): EntraError {
  return new EntraError({
    error: "invalid_grant",
    code: 65001,
    description: `The user or administrator has not consented to use the application with ID '${clientId}' named '${clientId}'. Send an interactive authorization request for this user and resource.`,
    subError: "consent_required",
  });
}

export function userDeclinedConsent(): EntraError {
  return new EntraError({
    error: "access_denied",
    code: 65004,
    description: "User declined to consent to access the app.",
  });
}

export function accountNotInTenant(
  username: string,
  issuer: string,
  tenant: string,
  clientId: string,
): EntraError {
  return new EntraError({
    error: "invalid_request",
    code: 50020,
    description: `User account '${username}' from identity provider '${issuer}' does not exist in tenant '${tenant}' and cannot access the application '${clientId}' in that tenant. The account needs to be added as an external user in the tenant first.`,
  });
}

export function accountTypeNotAllowed(username: string): EntraError {
  return new EntraError({
    error: "invalid_request",
    code: 500208,
    description: `The domain of '${username}' is not a valid login domain for the account type this endpoint accepts.`,
  });
}

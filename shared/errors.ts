/**
 * The broker's one error type and the table of its codes. Every response that reports a failure,
 * from any function, is built from an entry here, so a code always has the same status.
 */

export const errorCatalogue = {
  invalid_body: {
    status: 400,
    message: "The request body must be a JSON object.",
  },
  body_too_large: {
    status: 413,
    message:
      "The request body is too large; send a JSON object of at most 16 KB.",
  },
  invalid_site_url: { status: 400, message: "The site URL is not valid." },
  site_not_allowed: {
    status: 400,
    message: "The site is not on this broker's list of allowed EQuIS sites.",
  },
  invalid_email: { status: 400, message: "The mailbox address is not valid." },
  missing_identifier: {
    status: 401,
    message:
      "Send the token identifier as 'Authorization: Bearer <identifier>'.",
  },
  malformed_identifier: {
    status: 401,
    message: "The token identifier is malformed.",
  },
  identifier_checksum_mismatch: {
    status: 401,
    message:
      "The token identifier has a bad checksum; it was probably copied incompletely.",
  },
  unknown_identifier: {
    status: 401,
    message: "The token identifier is not known to this broker.",
  },
  site_mismatch: {
    status: 403,
    message: "The token identifier was issued for another site.",
  },
  grant_revoked: {
    status: 410,
    message: "The mailbox connection was revoked.",
  },
  reauth_required: {
    status: 409,
    message: "The mailbox must be signed in again.",
  },
  result_not_found: {
    status: 404,
    message: "No finished sign-in was found in this browser.",
  },
  result_already_shown: {
    status: 410,
    message: "The identifier of this sign-in was already shown.",
  },
  result_expired: {
    status: 410,
    message: "The result of this sign-in has expired.",
  },
  not_found: { status: 404, message: "Not found." },
  method_not_allowed: { status: 405, message: "Method not allowed." },
  identity_unavailable: {
    status: 503,
    message: "The Microsoft identity platform could not be reached.",
  },
  rate_limited: {
    status: 429,
    message:
      "Too many requests; wait for the time in Retry-After and try again.",
  },
  refresh_in_progress: {
    status: 503,
    message: "Another request is refreshing this grant's token; retry shortly.",
  },
  storage_unavailable: {
    status: 503,
    message: "The broker's storage could not be reached.",
  },
  internal_error: {
    status: 500,
    message: "The broker failed to handle the request.",
  },
} as const satisfies Record<string, { status: number; message: string }>;

export type ErrorCode = keyof typeof errorCatalogue;

export interface BrokerErrorDetails {
  /** Request field the error is about, for example `siteUrl`. */
  field?: string;
  /** Stable snake_case reason from the failure catalogue, for example `expired_by_inactivity`. */
  reason?: string;
  /** AADSTS number reported by the Microsoft identity platform. */
  aadsts?: number;
  /** Next step for the caller. */
  remedy?: string;
  /** Seconds to wait before retrying; sent as Retry-After. */
  retryAfterSeconds?: number;
  /** The library error behind this one. Never sent to a caller or logged unfiltered. */
  cause?: unknown;
}

/** A failure with a stable snake_case code, an HTTP status and a message safe to show anyone. */
export class BrokerError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly field?: string;
  readonly reason?: string;
  readonly aadsts?: number;
  readonly remedy?: string;
  readonly retryAfterSeconds?: number;

  constructor(
    code: ErrorCode,
    message?: string,
    details: BrokerErrorDetails = {},
  ) {
    super(message ?? errorCatalogue[code].message, { cause: details.cause });
    this.name = "BrokerError";
    this.code = code;
    this.status = errorCatalogue[code].status;
    this.field = details.field;
    this.reason = details.reason;
    this.aadsts = details.aadsts;
    this.remedy = details.remedy;
    this.retryAfterSeconds = details.retryAfterSeconds;
  }
}

/** The JSON body of every error response. */
export interface ErrorBody {
  code: ErrorCode;
  message: string;
  field?: string;
  reason?: string;
  aadsts?: number;
  remedy?: string;
}

export function toErrorBody(error: BrokerError): ErrorBody {
  const body: ErrorBody = { code: error.code, message: error.message };
  if (error.field !== undefined) body.field = error.field;
  if (error.reason !== undefined) body.reason = error.reason;
  if (error.aadsts !== undefined) body.aadsts = error.aadsts;
  if (error.remedy !== undefined) body.remedy = error.remedy;
  return body;
}

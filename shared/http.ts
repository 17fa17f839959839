/**
 * Request parsing and response building shared by the HTTP functions: one error shape, security
 * headers on every response, `Cache-Control: no-store` on all of them, since most carry a secret.
 */
import type {
  HttpRequest,
  HttpResponseInit,
  InvocationContext,
} from "@azure/functions";
import { BrokerError, toErrorBody } from "./errors.js";

export const securityHeaders: Record<string, string> = {
  "Cache-Control": "no-store",
  "X-Content-Type-Options": "nosniff",
  "Referrer-Policy": "no-referrer",
};

export function jsonResponse(
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): HttpResponseInit {
  return {
    status,
    jsonBody: body,
    headers: { ...securityHeaders, ...headers },
  };
}

export function errorResponse(error: BrokerError): HttpResponseInit {
  const headers: Record<string, string> = {};
  if (error.retryAfterSeconds !== undefined)
    headers["Retry-After"] = String(error.retryAfterSeconds);
  if (error.status === 401)
    headers["WWW-Authenticate"] = 'Bearer realm="token-exchange"';
  return jsonResponse(error.status, toErrorBody(error), headers);
}

/** The largest JSON body accepted; every request body of the API is far smaller. */
export const maxBodyBytes = 16 * 1024;

/**
 * Reads the body once and parses it as a JSON object whatever its Content-Type. An empty body
 * is `undefined` when `optional`, otherwise `invalid_body`.
 */
export async function readJsonObject(
  request: HttpRequest,
  options: { optional?: boolean } = {},
): Promise<Record<string, unknown> | undefined> {
  const text = (await request.text()).trim();
  if (Buffer.byteLength(text, "utf8") > maxBodyBytes) {
    throw new BrokerError("body_too_large");
  }
  if (text === "") {
    if (options.optional) return undefined;
    throw new BrokerError(
      "invalid_body",
      "The request body is empty; send a JSON object.",
    );
  }

  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new BrokerError(
      "invalid_body",
      "The request body is not valid JSON; send a JSON object.",
    );
  }
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw new BrokerError(
      "invalid_body",
      "The request body must be a JSON object.",
    );
  }
  return body as Record<string, unknown>;
}

/**
 * Runs a handler and turns what it throws into the one error shape. A caller's mistake is logged at
 * info; a failure of ours or of a dependency at error, with the error's kind but never its message.
 */
export async function respondWithErrors(
  context: InvocationContext,
  handler: () => Promise<HttpResponseInit>,
): Promise<HttpResponseInit> {
  try {
    return await handler();
  } catch (error) {
    const brokerError =
      error instanceof BrokerError
        ? error
        : new BrokerError("internal_error", undefined, { cause: error });
    logFailure(context, brokerError);
    return errorResponse(brokerError);
  }
}

export function logFailure(
  context: InvocationContext,
  error: BrokerError,
): void {
  const fields = {
    code: error.code,
    status: error.status,
    cause: describeCause(error.cause),
  };
  // Waiting for another request's refresh is expected under load, not a failure of ours.
  if (error.status >= 500 && error.code !== "refresh_in_progress") {
    context.error("request failed", fields);
  } else {
    context.info("request rejected", fields);
  }
}

/** Names a library error by kind (name, code, status) without its message, which may quote input. */
export function describeCause(cause: unknown): string | undefined {
  if (cause === undefined) return undefined;
  if (!(cause instanceof Error)) return typeof cause;

  const details = cause as Error & {
    code?: unknown;
    errorCode?: unknown;
    statusCode?: unknown;
    status?: unknown;
  };
  const parts = [cause.name];
  const code = details.errorCode ?? details.code;
  if (typeof code === "string" || typeof code === "number")
    parts.push(String(code));
  const status = details.statusCode ?? details.status;
  if (typeof status === "number") parts.push(String(status));
  return parts.join(" ");
}

/**
 * Returns the bearer token of the Authorization header (header names are case-insensitive), or
 * undefined without a Bearer value. A Bearer value with spaces in it is returned whole, so that it
 * is rejected as a malformed identifier rather than as a missing one.
 */
export function readBearerToken(request: HttpRequest): string | undefined {
  const header = request.headers.get("authorization");
  const match = /^Bearer\s+(\S.*?)\s*$/i.exec(header ?? "");
  return match?.[1];
}

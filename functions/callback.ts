import type {
  HttpHandler,
  HttpRequest,
  HttpResponseInit,
  InvocationContext,
} from "@azure/functions";
import type { Broker } from "../shared/broker.js";
import {
  browserCookieName,
  readCookie,
  sessionCookie,
  signInCookieName,
  signInTag,
} from "../shared/cookies.js";
import { BrokerError } from "../shared/errors.js";
import { logFailure } from "../shared/http.js";
import {
  callbackFailureResponse,
  redirectResponse,
  signInPagePath,
} from "../shared/pages.js";
import { completeSignIn } from "../shared/signIn.js";
import type { RouteDefinition } from "./route.js";

/** Longer than the result's lifetime, so a late page hears that the result expired. */
const signInCookieMaxAgeSeconds = 15 * 60;

/**
 * GET /api/auth/callback: Microsoft's redirect after sign-in. On success the browser goes back to
 * the page, which fetches the identifier; it never travels in a URL. The query contains the code and
 * state, so neither the URL nor the query is ever logged.
 */
export function createCallbackHandler(broker: Broker): HttpHandler {
  return async function callback(
    request: HttpRequest,
    context: InvocationContext,
  ): Promise<HttpResponseInit> {
    try {
      const outcome = await completeSignIn(
        broker,
        context,
        {
          state: request.query.get("state"),
          code: request.query.get("code"),
          error: request.query.get("error"),
          errorDescription: request.query.get("error_description"),
        },
        readCookie(request, browserCookieName),
      );

      if (outcome.kind === "failed") {
        context.info("sign-in not completed", {
          reason: outcome.reason,
          aadsts: outcome.aadsts,
        });
        return callbackFailureResponse(outcome.reason, outcome);
      }
      const tag = signInTag(outcome.state);
      return {
        ...redirectResponse(`${signInPagePath}?signin=${tag}`),
        cookies: [
          sessionCookie(
            signInCookieName(tag) ?? "",
            outcome.state,
            signInCookieMaxAgeSeconds,
          ),
        ],
      };
    } catch (error) {
      const brokerError =
        error instanceof BrokerError
          ? error
          : new BrokerError("internal_error", undefined, { cause: error });
      logFailure(context, brokerError);
      return callbackFailureResponse(
        brokerError.code === "storage_unavailable"
          ? "storage_unavailable"
          : "unexpected_error",
      );
    }
  };
}

export const callbackRoute: RouteDefinition = {
  name: "callback",
  methods: ["GET"],
  route: "api/auth/callback",
  authLevel: "anonymous",
  createHandler: createCallbackHandler,
};

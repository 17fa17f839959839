import type {
  HttpHandler,
  HttpRequest,
  HttpResponseInit,
  InvocationContext,
} from "@azure/functions";
import type { Broker } from "../shared/broker.js";
import {
  browserCookieName,
  expiredCookie,
  readCookie,
  signInCookieName,
} from "../shared/cookies.js";
import { jsonResponse, respondWithErrors } from "../shared/http.js";
import { takeSignInResult } from "../shared/signIn.js";
import type { RouteDefinition } from "./route.js";

/**
 * POST /api/auth/result: hands the page the identifier of its finished sign-in, once. The sign-in
 * cookie expires by itself ten minutes after the callback.
 */
export function createAuthResultHandler(broker: Broker): HttpHandler {
  return async function authResult(
    request: HttpRequest,
    context: InvocationContext,
  ): Promise<HttpResponseInit> {
    return respondWithErrors(context, async () => {
      const result = await takeSignInResult(
        broker,
        readCookie(request, signInCookieName),
        readCookie(request, browserCookieName),
      );
      context.info("sign-in result shown", {
        already_connected: result.alreadyConnected,
      });
      // A restored grant may still get a new identifier from this sign-in, which needs the cookie.
      const cookies = result.alreadyConnected
        ? []
        : [expiredCookie(signInCookieName)];
      return { ...jsonResponse(200, result), cookies };
    });
  };
}

export const authResultRoute: RouteDefinition = {
  name: "authResult",
  methods: ["POST"],
  route: "api/auth/result",
  authLevel: "anonymous",
  createHandler: createAuthResultHandler,
};

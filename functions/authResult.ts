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

/** POST /api/auth/result: hands the page the identifier of its finished sign-in, once. */
export function createAuthResultHandler(broker: Broker): HttpHandler {
  return async function authResult(
    request: HttpRequest,
    context: InvocationContext,
  ): Promise<HttpResponseInit> {
    const response = await respondWithErrors(context, async () => {
      const result = await takeSignInResult(
        broker,
        readCookie(request, signInCookieName),
        readCookie(request, browserCookieName),
      );
      context.info("sign-in result shown", {
        already_connected: result.alreadyConnected,
      });
      return jsonResponse(200, result);
    });
    return { ...response, cookies: [expiredCookie(signInCookieName)] };
  };
}

export const authResultRoute: RouteDefinition = {
  name: "authResult",
  methods: ["POST"],
  route: "api/auth/result",
  authLevel: "anonymous",
  createHandler: createAuthResultHandler,
};

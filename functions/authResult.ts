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
  readSignInCookie,
  signInCookieName,
} from "../shared/cookies.js";
import {
  jsonResponse,
  readJsonObject,
  respondWithErrors,
} from "../shared/http.js";
import { takeSignInResult } from "../shared/signIn.js";
import type { RouteDefinition } from "./route.js";

/**
 * POST /api/auth/result with `{ "signin": "<tag>" }`, the tag from the page's address: hands the
 * page the identifier of that finished sign-in, once. The sign-in's cookie contains its state.
 */
export function createAuthResultHandler(broker: Broker): HttpHandler {
  return async function authResult(
    request: HttpRequest,
    context: InvocationContext,
  ): Promise<HttpResponseInit> {
    return respondWithErrors(context, async () => {
      const tag = (await readJsonObject(request, { optional: true }))?.signin;
      const result = await takeSignInResult(
        broker,
        readSignInCookie(request, tag),
        readCookie(request, browserCookieName),
      );
      context.info("sign-in result shown", {
        already_connected: result.alreadyConnected,
      });
      // A restored grant may still get a new identifier from this sign-in, which needs the cookie.
      const cookieName = signInCookieName(tag);
      const cookies =
        result.alreadyConnected || cookieName === undefined
          ? []
          : [expiredCookie(cookieName)];
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

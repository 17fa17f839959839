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
  signInCookieName,
} from "../shared/cookies.js";
import { jsonResponse, respondWithErrors } from "../shared/http.js";
import { issueNewIdentifier } from "../shared/signIn.js";
import type { RouteDefinition } from "./route.js";

/**
 * POST /api/auth/identifier: after a sign-in that restored an existing grant, issues a new
 * identifier for it; the old one stops working. Uses the sign-in cookies only.
 */
export function createNewIdentifierHandler(broker: Broker): HttpHandler {
  return async function newIdentifier(
    request: HttpRequest,
    context: InvocationContext,
  ): Promise<HttpResponseInit> {
    return respondWithErrors(context, async () => {
      const issued = await issueNewIdentifier(
        broker,
        readCookie(request, signInCookieName),
        readCookie(request, browserCookieName),
      );
      context.info("new identifier issued");
      return jsonResponse(200, issued);
    });
  };
}

export const newIdentifierRoute: RouteDefinition = {
  name: "newIdentifier",
  methods: ["POST"],
  route: "api/auth/identifier",
  authLevel: "anonymous",
  createHandler: createNewIdentifierHandler,
};

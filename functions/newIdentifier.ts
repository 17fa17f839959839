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
  readSignInCookie,
} from "../shared/cookies.js";
import {
  jsonResponse,
  readJsonObject,
  respondWithErrors,
} from "../shared/http.js";
import { issueNewIdentifier } from "../shared/signIn.js";
import type { RouteDefinition } from "./route.js";

/**
 * POST /api/auth/identifier: after a sign-in that restored an existing grant, issues a new
 * identifier for it; the old one stops working. The body is `{ "signin": "<tag>" }` as for the
 * result, and the sign-in cookies authorise it.
 */
export function createNewIdentifierHandler(broker: Broker): HttpHandler {
  return async function newIdentifier(
    request: HttpRequest,
    context: InvocationContext,
  ): Promise<HttpResponseInit> {
    return respondWithErrors(context, async () => {
      const issued = await issueNewIdentifier(
        broker,
        readSignInCookie(
          request,
          (await readJsonObject(request, { optional: true }))?.signin,
        ),
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

import type {
  HttpHandler,
  HttpRequest,
  HttpResponseInit,
  InvocationContext,
} from "@azure/functions";
import type { Broker } from "../shared/broker.js";
import {
  jsonResponse,
  readBearerToken,
  respondWithErrors,
} from "../shared/http.js";
import { describeGrantStatus } from "../shared/grantLifecycle.js";
import { authenticateGrant, readClientAddress } from "../shared/tokenBroker.js";
import type { RouteDefinition } from "./route.js";

/**
 * GET /api/token/status: `Authorization: Bearer <identifier>`. Reports the grant's status, when it
 * was connected and last refreshed, its last failure with the remedy, and when its refresh token
 * expires if never used again. Calls neither Key Vault nor Microsoft.
 */
export function createTokenStatusHandler(broker: Broker): HttpHandler {
  return async function tokenStatus(
    request: HttpRequest,
    context: InvocationContext,
  ): Promise<HttpResponseInit> {
    return respondWithErrors(context, async () => {
      const grant = await authenticateGrant(
        broker,
        readBearerToken(request),
        readClientAddress(request),
      );
      return jsonResponse(200, describeGrantStatus(grant));
    });
  };
}

export const tokenStatusRoute: RouteDefinition = {
  name: "tokenStatus",
  methods: ["GET"],
  route: "api/token/status",
  authLevel: "anonymous",
  createHandler: createTokenStatusHandler,
};

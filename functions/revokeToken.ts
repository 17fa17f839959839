import type {
  HttpHandler,
  HttpRequest,
  HttpResponseInit,
  InvocationContext,
} from "@azure/functions";
import type { Broker } from "../shared/broker.js";
import { describeGrantStatus, revokeGrant } from "../shared/grantLifecycle.js";
import {
  jsonResponse,
  readBearerToken,
  respondWithErrors,
} from "../shared/http.js";
import { authenticateGrant, readClientAddress } from "../shared/tokenBroker.js";
import type { RouteDefinition } from "./route.js";

/**
 * DELETE /api/token: `Authorization: Bearer <identifier>`. Ends the grant: its refresh token is
 * deleted from Key Vault and later exchanges get 410. Signing in again on the page for the same
 * site and mailbox connects it anew, with a new identifier.
 */
export function createRevokeTokenHandler(broker: Broker): HttpHandler {
  return async function revokeToken(
    request: HttpRequest,
    context: InvocationContext,
  ): Promise<HttpResponseInit> {
    return respondWithErrors(context, async () => {
      const grant = await authenticateGrant(
        broker,
        readBearerToken(request),
        readClientAddress(request),
      );
      const revoked = await revokeGrant(broker, grant, context);
      context.info("grant revoked", { grant_id: grant.grantId });
      return jsonResponse(200, describeGrantStatus(revoked));
    });
  };
}

export const revokeTokenRoute: RouteDefinition = {
  name: "revokeToken",
  methods: ["DELETE"],
  route: "api/token",
  authLevel: "anonymous",
  createHandler: createRevokeTokenHandler,
};

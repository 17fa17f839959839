import type {
  HttpHandler,
  HttpRequest,
  HttpResponseInit,
  InvocationContext,
} from "@azure/functions";
import type { Broker } from "../shared/broker.js";
import { BrokerError } from "../shared/errors.js";
import {
  jsonResponse,
  readBearerToken,
  readJsonObject,
  respondWithErrors,
} from "../shared/http.js";
import { exchangeToken, readClientAddress } from "../shared/tokenBroker.js";
import type { RouteDefinition } from "./route.js";

/**
 * POST /api/token: `Authorization: Bearer <identifier>`, optionally a JSON body `{ "siteUrl" }`
 * that must match the grant's site. Returns a current access token and the XOAUTH2 string.
 */
export function createTokenExchangeHandler(broker: Broker): HttpHandler {
  return async function tokenExchange(
    request: HttpRequest,
    context: InvocationContext,
  ): Promise<HttpResponseInit> {
    return respondWithErrors(context, async () => {
      const identifier = readBearerToken(request);
      if (identifier === undefined) throw new BrokerError("missing_identifier");
      const body = await readJsonObject(request, { optional: true });
      const token = await exchangeToken(
        broker,
        context,
        identifier,
        body?.siteUrl,
        readClientAddress(request),
      );
      return jsonResponse(200, token);
    });
  };
}

export const tokenExchangeRoute: RouteDefinition = {
  name: "tokenExchange",
  methods: ["POST"],
  route: "api/token",
  authLevel: "anonymous",
  createHandler: createTokenExchangeHandler,
};

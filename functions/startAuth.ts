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
} from "../shared/cookies.js";
import {
  jsonResponse,
  readJsonObject,
  respondWithErrors,
} from "../shared/http.js";
import { startSignIn } from "../shared/signIn.js";
import type { RouteDefinition } from "./route.js";

/** The browser-binding cookie outlives one sign-in so that several tabs can share it. */
const browserCookieMaxAgeSeconds = 60 * 60;

/** POST /api/auth/start: checks site and mailbox and returns Microsoft's authorize URL. */
export function createStartAuthHandler(broker: Broker): HttpHandler {
  return async function startAuth(
    request: HttpRequest,
    context: InvocationContext,
  ): Promise<HttpResponseInit> {
    return respondWithErrors(context, async () => {
      const body = await readJsonObject(request);
      const started = await startSignIn(
        broker,
        body ?? {},
        readCookie(request, browserCookieName),
      );

      context.info("sign-in started");
      return {
        ...jsonResponse(200, { authorizeUrl: started.authorizeUrl }),
        cookies: [
          sessionCookie(
            browserCookieName,
            started.browserSecret,
            browserCookieMaxAgeSeconds,
          ),
        ],
      };
    });
  };
}

export const startAuthRoute: RouteDefinition = {
  name: "startAuth",
  methods: ["POST"],
  route: "api/auth/start",
  authLevel: "anonymous",
  createHandler: createStartAuthHandler,
};

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
import { resultLifetimeMs, startSignIn } from "../shared/signIn.js";
import type { RouteDefinition } from "./route.js";

/**
 * Returns how long the browser-binding cookie lives: at least an hour, so that several tabs can
 * share it, and always the longest sign-in plus the time its result may still be fetched.
 */
function browserCookieMaxAgeSeconds(broker: Broker): number {
  const signInMs = broker.config.signInTimeoutMinutes * 60_000;
  return Math.max(60 * 60, Math.ceil((signInMs + resultLifetimeMs) / 1000));
}

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
            browserCookieMaxAgeSeconds(broker),
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

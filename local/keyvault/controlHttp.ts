// HTTP form of KeyVaultControl, for tests that drive the stand-in from another process.
// Control routes need no token and are never delayed, counted or faulted:
//   POST   /_control/faults   body like injectFaults: { status, count, retryAfterSeconds?, operation? }
//   POST   /_control/latency  body { ms }
//   GET    /_control/counts   returns counts()
//   DELETE /_control/counts   resetCounts()
//   POST   /_control/reset    reset()

import { z } from "zod";

import { faultSchema, latencySchema } from "./control.js";
import type { RequestControls } from "./control.js";
import type { Reply } from "./http.js";

export const controlPathPrefix = "/_control/";

function badRequest(message: string): Reply {
  return { status: 400, body: { error: { code: "BadParameter", message } } };
}

function noContent(): Reply {
  return { status: 204, body: undefined };
}

function parseJson(body: string): unknown {
  try {
    return JSON.parse(body);
  } catch {
    return undefined;
  }
}

/** Serves a request whose path starts with `controlPathPrefix`. */
export function replyToControlRequest(
  controls: RequestControls,
  method: string,
  pathname: string,
  body: string,
): Reply {
  const route = `${method} ${pathname.replace(/\/$/, "")}`;
  switch (route) {
    case "POST /_control/faults": {
      const result = faultSchema.safeParse(parseJson(body));
      if (!result.success) {
        return badRequest(`Invalid fault: ${z.prettifyError(result.error)}`);
      }
      controls.injectFaults(result.data);
      return noContent();
    }
    case "POST /_control/latency": {
      const result = latencySchema.safeParse(parseJson(body));
      if (!result.success) {
        return badRequest(`Invalid latency: ${z.prettifyError(result.error)}`);
      }
      controls.setLatency(result.data.ms);
      return noContent();
    }
    case "GET /_control/counts":
      return { status: 200, body: controls.counts() };
    case "DELETE /_control/counts":
      controls.resetCounts();
      return noContent();
    case "POST /_control/reset":
      controls.reset();
      return noContent();
    default:
      return {
        status: 404,
        body: {
          error: {
            code: "NotFound",
            message: `No control route matches ${route}.`,
          },
        },
      };
  }
}

import type {
  HttpHandler,
  HttpRequest,
  HttpResponseInit,
  InvocationContext,
} from "@azure/functions";
import type { Broker } from "../shared/broker.js";
import { describeCause, jsonResponse } from "../shared/http.js";
import { IdentityError } from "../shared/identityClient.js";
import { probeTables } from "../shared/tables.js";
import type { RouteDefinition } from "./route.js";

const probeTimeoutMs = 5_000;

interface CheckResult {
  ok: boolean;
  latencyMs: number;
}

/**
 * GET /api/health: liveness, whether Table Storage, Key Vault and the identity platform's metadata
 * respond, and whether the app credential can be obtained. A configured secret counts as obtained.
 * It reports no secret, setting or personal data.
 */
export function createHealthHandler(broker: Broker): HttpHandler {
  return async function health(
    _request: HttpRequest,
    context: InvocationContext,
  ): Promise<HttpResponseInit> {
    const [tableStorage, keyVault, identityPlatform, appCredential] =
      await Promise.all([
        runCheck(context, "table_storage", () => probeTables(broker.tables)),
        runCheck(context, "key_vault", () => broker.secrets.probe()),
        runCheck(context, "identity_platform", () =>
          fetchMetadata(broker.identity.metadataUrl),
        ),
        runCheck(context, "app_credential", () => broker.appCredential.probe()),
      ]);

    const healthy =
      tableStorage.ok && keyVault.ok && identityPlatform.ok && appCredential.ok;
    return jsonResponse(healthy ? 200 : 503, {
      status: healthy ? "healthy" : "unhealthy",
      checks: { tableStorage, keyVault, identityPlatform, appCredential },
    });
  };
}

async function runCheck(
  context: InvocationContext,
  name: string,
  probe: () => Promise<void>,
): Promise<CheckResult> {
  const started = performance.now();
  try {
    await withTimeout(probe(), probeTimeoutMs);
    return { ok: true, latencyMs: Math.round(performance.now() - started) };
  } catch (error) {
    context.warn("health check failed", {
      check: name,
      // An IdentityError's code names the app credential's problem, never its value.
      error: error instanceof IdentityError ? error.error : undefined,
      cause: describeCause(
        error instanceof IdentityError ? error.cause : error,
      ),
    });
    return { ok: false, latencyMs: Math.round(performance.now() - started) };
  }
}

async function fetchMetadata(url: string): Promise<void> {
  const response = await fetch(url, {
    signal: AbortSignal.timeout(probeTimeoutMs),
  });
  await response.body?.cancel();
  if (!response.ok)
    throw new Error(`metadata request failed with ${response.status}`);
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error("timed out")), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

export const healthRoute: RouteDefinition = {
  name: "health",
  methods: ["GET", "HEAD"],
  route: "api/health",
  authLevel: "anonymous",
  createHandler: createHealthHandler,
};

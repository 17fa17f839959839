import { request as httpRequest } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { routes } from "../../functions/routes.js";
import { startLocalHost } from "../../local/host.js";
import type { Broker } from "../../shared/broker.js";
import {
  handlerOf,
  invoke,
  startTestStack,
  type TestStack,
} from "../support/testStack.js";

let stack: TestStack;
let broker: Broker;

beforeAll(async () => {
  stack = await startTestStack();
  broker = stack.createBroker();
});

afterAll(async () => {
  await stack?.stop();
});

interface HealthBody {
  status: string;
  checks: Record<string, { ok: boolean; latencyMs: number }>;
}

describe("health", () => {
  it("health reports every dependency reachable", async () => {
    const health = await invoke(handlerOf(broker, "health"), {
      url: "/api/health",
    });
    const body = health.json() as HealthBody;

    expect(health.response.status).toBe(200);
    expect(body.status).toBe("healthy");
    expect(body.checks.tableStorage?.ok).toBe(true);
    expect(body.checks.keyVault?.ok).toBe(true);
    expect(body.checks.identityPlatform?.ok).toBe(true);
    expect(body.checks.appCredential?.ok).toBe(true);
  });

  it("health answers HEAD for monitoring probes", async () => {
    const host = await startLocalHost({ broker, routes });
    try {
      const { status, body } = await new Promise<{
        status: number;
        body: string;
      }>((resolve, reject) => {
        const outgoing = httpRequest(
          `${host.url}/api/health`,
          { method: "HEAD" },
          (incoming) => {
            let text = "";
            incoming.on("data", (chunk: Buffer) => (text += chunk.toString()));
            incoming.on("end", () =>
              resolve({ status: incoming.statusCode ?? 0, body: text }),
            );
          },
        );
        outgoing.on("error", reject);
        outgoing.end();
      });
      expect(status).toBe(200);
      expect(body).toBe("");
    } finally {
      await host.close();
    }
  });

  it("health reports an unreachable dependency with 503", async () => {
    const broken = stack.createBroker({ KEY_VAULT_URL: "http://127.0.0.1:9" });
    const health = await invoke(handlerOf(broken, "health"), {
      url: "/api/health",
    });
    const body = health.json() as HealthBody;

    expect(health.response.status).toBe(503);
    expect(body.status).toBe("unhealthy");
    expect(body.checks.keyVault?.ok).toBe(false);
    expect(body.checks.tableStorage?.ok).toBe(true);
  });

  it("health shows no setting or secret", async () => {
    const health = await invoke(handlerOf(broker, "health"), {
      url: "/api/health",
    });
    const config = broker.config;

    expect(config.clientCredential.kind).toBe("secret");
    for (const value of [
      config.clientId,
      config.clientCredential.kind === "secret"
        ? config.clientCredential.secret
        : "",
      config.keyVaultUrl,
      config.authorityHost,
    ]) {
      expect(health.text).not.toContain(value);
    }
  });

  it("health reports an app credential it cannot obtain", async () => {
    const broken = stack.createBroker({
      BROKER_CLIENT_CREDENTIAL: "certificate",
      BROKER_CLIENT_SECRET: "",
      BROKER_CLIENT_CERTIFICATE_NAME: "certificate-never-stored",
    });
    const health = await invoke(handlerOf(broken, "health"), {
      url: "/api/health",
    });
    const body = health.json() as HealthBody;

    expect(health.response.status).toBe(503);
    expect(body.status).toBe("unhealthy");
    expect(body.checks.appCredential?.ok).toBe(false);
    expect(body.checks.keyVault?.ok).toBe(true);
    expect(body.checks.tableStorage?.ok).toBe(true);
    expect(health.logs.join("\n")).toContain("client_certificate_missing");
    expect(health.text).not.toContain("certificate-never-stored");
  });
});

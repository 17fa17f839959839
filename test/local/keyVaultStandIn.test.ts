import { mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";

import { SecretClient } from "@azure/keyvault-secrets";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";

import { snapshotFileName } from "../../local/keyvault/persistence.js";
import {
  challengeTenantId,
  startKeyVaultStandIn,
} from "../../local/keyvault/server.js";
import type { KeyVaultStandIn } from "../../local/keyvault/server.js";

const apiVersion = "2025-07-01";

// Any token works, because the stand-in only checks that a bearer token is present.
const credential = {
  getToken: async () => ({
    token: "local-test-token",
    expiresOnTimestamp: Date.now() + 3_600_000,
  }),
};

function createClient(vaultUrl: string, maxRetries = 0): SecretClient {
  return new SecretClient(vaultUrl, credential, {
    disableChallengeResourceVerification: true,
    allowInsecureConnection: true,
    retryOptions: { maxRetries, retryDelayInMs: 10, maxRetryDelayInMs: 10 },
  });
}

/** Fields of the SDK's RestError that the tests inspect. */
interface ServiceError {
  statusCode?: number;
  code?: string;
  message: string;
  response?: { headers: { get(name: string): string | undefined } };
}

async function captureError(call: Promise<unknown>): Promise<ServiceError> {
  try {
    await call;
  } catch (error) {
    return error as ServiceError;
  }
  throw new Error("Expected the request to fail, but it succeeded");
}

async function deleteSecret(client: SecretClient, name: string): Promise<void> {
  const poller = await client.beginDeleteSecret(name, { intervalInMs: 10 });
  await poller.pollUntilDone();
}

async function listVersionIds(
  client: SecretClient,
  name: string,
): Promise<string[]> {
  const versions: string[] = [];
  for await (const properties of client.listPropertiesOfSecretVersions(name)) {
    versions.push(properties.version ?? "");
  }
  return versions;
}

describe("key vault stand-in", () => {
  let standIn: KeyVaultStandIn;
  let client: SecretClient;
  let nameCounter = 0;

  function uniqueName(prefix: string): string {
    nameCounter += 1;
    return `${prefix}-${nameCounter}`;
  }

  beforeAll(async () => {
    standIn = await startKeyVaultStandIn();
    client = createClient(standIn.url);
  });

  afterAll(async () => {
    await standIn.close();
  });

  afterEach(() => {
    standIn.control.reset();
  });

  it("listens on 127.0.0.1", () => {
    expect(standIn.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
  });

  it("get returns the latest version", async () => {
    const name = uniqueName("latest");
    const first = await client.setSecret(name, "value-1", {
      contentType: "text/plain",
      tags: { purpose: "test" },
    });
    const second = await client.setSecret(name, "value-2");

    expect(first.properties.id).toMatch(
      new RegExp(`^${standIn.url}/secrets/${name}/[0-9a-f]{32}$`),
    );
    expect(first.properties.version).not.toBe(second.properties.version);
    expect(first.properties.contentType).toBe("text/plain");
    expect(first.properties.tags).toEqual({ purpose: "test" });
    expect(first.properties.enabled).toBe(true);
    expect(first.properties.recoveryLevel).toBe("Recoverable+Purgeable");
    expect(first.properties.recoverableDays).toBe(90);
    expect(first.properties.createdOn).toBeInstanceOf(Date);
    expect(first.properties.updatedOn).toBeInstanceOf(Date);

    const latest = await client.getSecret(name);
    expect(latest.value).toBe("value-2");
    expect(latest.properties.version).toBe(second.properties.version);
    expect(latest.properties.contentType).toBeUndefined();
  });

  it("get by version returns that version", async () => {
    const name = uniqueName("by-version");
    const first = await client.setSecret(name, "old");
    await client.setSecret(name, "new");

    const fetched = await client.getSecret(name, {
      version: first.properties.version ?? "",
    });
    expect(fetched.value).toBe("old");
    expect(fetched.properties.id).toBe(first.properties.id);
  });

  it("missing secret returns 404", async () => {
    const name = uniqueName("missing");
    const missingSecret = await captureError(client.getSecret(name));
    expect(missingSecret.statusCode).toBe(404);
    expect(missingSecret.code).toBe("SecretNotFound");

    await client.setSecret(name, "value");
    const missingVersion = await captureError(
      client.getSecret(name, { version: "0123456789abcdef0123456789abcdef" }),
    );
    expect(missingVersion.statusCode).toBe(404);
    expect(missingVersion.code).toBe("SecretNotFound");

    const missingDeleted = await captureError(client.getDeletedSecret(name));
    expect(missingDeleted.statusCode).toBe(404);
    expect(missingDeleted.code).toBe("SecretNotFound");
  });

  it("version listing follows nextLink", async () => {
    const name = uniqueName("paged");
    const created: string[] = [];
    for (let index = 0; index < 5; index += 1) {
      const secret = await client.setSecret(name, `value-${index}`);
      created.push(secret.properties.version ?? "");
    }
    standIn.control.resetCounts();

    const pageSizes: number[] = [];
    const listed: string[] = [];
    const pages = client
      .listPropertiesOfSecretVersions(name)
      .byPage({ maxPageSize: 2 });
    for await (const page of pages) {
      pageSizes.push(page.length);
      listed.push(...page.map((properties) => properties.version ?? ""));
    }

    expect(pageSizes).toEqual([2, 2, 1]);
    expect([...listed].sort()).toEqual([...created].sort());
    expect(standIn.control.counts().listVersions).toBe(3);
  });

  it("secret listing skips deleted secrets", async () => {
    const prefix = uniqueName("listed");
    const kept = [`${prefix}-a`, `${prefix}-b`, `${prefix}-c`];
    for (const name of kept) {
      await client.setSecret(name, "value");
    }
    const deleted = `${prefix}-d`;
    await client.setSecret(deleted, "value");
    await deleteSecret(client, deleted);

    const names: string[] = [];
    const pageSizes: number[] = [];
    for await (const page of client
      .listPropertiesOfSecrets()
      .byPage({ maxPageSize: 1 })) {
      pageSizes.push(page.length);
      names.push(...page.map((properties) => properties.name));
    }

    expect(names.filter((name) => name.startsWith(prefix))).toEqual(kept);
    expect(pageSizes.every((size) => size === 1)).toBe(true);

    const deletedNames: string[] = [];
    for await (const secret of client.listDeletedSecrets()) {
      deletedNames.push(secret.name);
    }
    expect(deletedNames).toContain(deleted);
    expect(deletedNames).not.toContain(kept[0]);
  });

  it("names match case-insensitively", async () => {
    const name = `${uniqueName("Mixed")}-Case`;
    await client.setSecret(name, "first");
    await client.setSecret(name.toUpperCase(), "second");

    const fetched = await client.getSecret(name.toLowerCase());
    expect(fetched.value).toBe("second");
    expect(fetched.name).toBe(name);
    expect(await listVersionIds(client, name.toLowerCase())).toHaveLength(2);
  });

  it("disabled version returns 403", async () => {
    const name = uniqueName("disabled");
    const first = await client.setSecret(name, "first");
    const second = await client.setSecret(name, "second");
    const secondVersion = second.properties.version ?? "";

    const updated = await client.updateSecretProperties(name, secondVersion, {
      enabled: false,
      contentType: "application/json",
      tags: { state: "retired" },
    });
    expect(updated.enabled).toBe(false);
    expect(updated.contentType).toBe("application/json");
    expect(updated.tags).toEqual({ state: "retired" });

    const byVersion = await captureError(
      client.getSecret(name, { version: secondVersion }),
    );
    expect(byVersion.statusCode).toBe(403);
    expect(byVersion.code).toBe("Forbidden");

    // The current version is the newest one even when it is disabled.
    const latest = await captureError(client.getSecret(name));
    expect(latest.statusCode).toBe(403);

    const older = await client.getSecret(name, {
      version: first.properties.version ?? "",
    });
    expect(older.value).toBe("first");

    await client.updateSecretProperties(name, secondVersion, { enabled: true });
    expect((await client.getSecret(name)).value).toBe("second");
  });

  it("set on a soft-deleted name returns 409", async () => {
    const name = uniqueName("soft-deleted");
    await client.setSecret(name, "value");
    await deleteSecret(client, name);

    const deleted = await client.getDeletedSecret(name);
    expect(deleted.properties.recoveryId).toBe(
      `${standIn.url}/deletedsecrets/${name}`,
    );
    expect(deleted.properties.deletedOn).toBeInstanceOf(Date);
    expect(deleted.properties.scheduledPurgeDate).toBeInstanceOf(Date);

    const conflict = await captureError(client.setSecret(name, "again"));
    expect(conflict.statusCode).toBe(409);
    expect(conflict.code).toBe("Conflict");

    const gone = await captureError(client.getSecret(name));
    expect(gone.statusCode).toBe(404);
  });

  it("purge frees the name", async () => {
    const name = uniqueName("purged");
    await client.setSecret(name, "old");
    await deleteSecret(client, name);
    await client.purgeDeletedSecret(name);

    const purged = await captureError(client.getDeletedSecret(name));
    expect(purged.statusCode).toBe(404);

    await client.setSecret(name, "new");
    expect((await client.getSecret(name)).value).toBe("new");
    expect(await listVersionIds(client, name)).toHaveLength(1);
  });

  it("recover restores the secret", async () => {
    const name = uniqueName("recovered");
    await client.setSecret(name, "first");
    await client.setSecret(name, "second");
    await deleteSecret(client, name);

    const poller = await client.beginRecoverDeletedSecret(name, {
      intervalInMs: 10,
    });
    const recovered = await poller.pollUntilDone();
    expect(recovered.name).toBe(name);

    expect((await client.getSecret(name)).value).toBe("second");
    expect(await listVersionIds(client, name)).toHaveLength(2);
    const notDeleted = await captureError(client.getDeletedSecret(name));
    expect(notDeleted.statusCode).toBe(404);
  });

  it("invalid names return 400 BadParameter", async () => {
    for (const name of ["under_score", "dot.name", "a".repeat(128)]) {
      const error = await captureError(client.setSecret(name, "value"));
      expect(error.statusCode, name).toBe(400);
      expect(error.code, name).toBe("BadParameter");
    }

    const longest = "b".repeat(127);
    await client.setSecret(longest, "value");
    expect((await client.getSecret(longest)).value).toBe("value");
  });

  it("value limit is 25,600 bytes", async () => {
    const name = uniqueName("size");
    await client.setSecret(name, "x".repeat(25_600));
    expect((await client.getSecret(name)).value).toHaveLength(25_600);

    const tooLarge = await captureError(
      client.setSecret(name, "x".repeat(25_601)),
    );
    expect(tooLarge.statusCode).toBe(400);
    expect(tooLarge.code).toBe("BadParameter");

    // 12,801 two-byte characters are 25,602 bytes, so the limit must count bytes, not characters.
    const multibyte = await captureError(
      client.setSecret(name, "é".repeat(12_801)),
    );
    expect(multibyte.statusCode).toBe(400);
    expect(await listVersionIds(client, name)).toHaveLength(1);
  });

  it("request without a token gets the challenge", async () => {
    const response = await fetch(
      `${standIn.url}/secrets/anything?api-version=${apiVersion}`,
    );
    const body = (await response.json()) as { error: { code: string } };

    expect(response.status).toBe(401);
    expect(response.headers.get("www-authenticate")).toBe(
      `Bearer authorization="https://login.microsoftonline.com/${challengeTenantId}", ` +
        'resource="https://vault.azure.net"',
    );
    expect(body.error.code).toBe("Unauthorized");
    expect(standIn.control.counts().getSecret).toBe(0);
  });

  it("missing api-version returns 400", async () => {
    const headers = { Authorization: "Bearer local-test-token" };
    const missing = await fetch(`${standIn.url}/secrets/anything`, { headers });
    const body = (await missing.json()) as { error: { code: string } };
    expect(missing.status).toBe(400);
    expect(body.error.code).toBe("BadParameter");

    const encoded = await fetch(
      `${standIn.url}/secrets/anything?api%2Dversion=${apiVersion}`,
      {
        headers,
      },
    );
    expect(encoded.status).toBe(404);
  });

  it("maxresults above 25 returns 400", async () => {
    const response = await fetch(
      `${standIn.url}/secrets?api-version=${apiVersion}&maxresults=26`,
      {
        headers: { Authorization: "Bearer local-test-token" },
      },
    );
    expect(response.status).toBe(400);
  });

  it("injected 429 leaves data unchanged", async () => {
    const name = uniqueName("throttled");
    await client.setSecret(name, "before");
    standIn.control.injectFaults({
      status: 429,
      count: 1,
      retryAfterSeconds: 7,
      operation: "setSecret",
    });

    const throttled = await captureError(client.setSecret(name, "during"));
    expect(throttled.statusCode).toBe(429);
    expect(throttled.code).toBe("Throttled");
    expect(throttled.response?.headers.get("retry-after")).toBe("7");

    expect((await client.getSecret(name)).value).toBe("before");
    expect(await listVersionIds(client, name)).toHaveLength(1);

    await client.setSecret(name, "after");
    expect((await client.getSecret(name)).value).toBe("after");
  });

  it("fault applies only to its operation", async () => {
    const name = uniqueName("scoped-fault");
    await client.setSecret(name, "value");
    standIn.control.injectFaults({
      status: 500,
      count: 1,
      operation: "deleteSecret",
    });

    expect((await client.getSecret(name)).value).toBe("value");
    const failed = await captureError(client.beginDeleteSecret(name));
    expect(failed.statusCode).toBe(500);
    expect((await client.getSecret(name)).value).toBe("value");
  });

  it("SDK retries an injected 503", async () => {
    const name = uniqueName("unavailable");
    await client.setSecret(name, "value");
    const retryingClient = createClient(standIn.url, 3);
    await retryingClient.getSecret(name);
    standIn.control.resetCounts();
    standIn.control.injectFaults({
      status: 503,
      count: 2,
      retryAfterSeconds: 0,
    });

    expect((await retryingClient.getSecret(name)).value).toBe("value");
    expect(standIn.control.counts().getSecret).toBe(3);
  });

  it("counts exclude the challenge", async () => {
    const freshClient = createClient(standIn.url);
    standIn.control.resetCounts();
    const name = uniqueName("counted");

    await freshClient.setSecret(name, "value");
    await freshClient.getSecret(name);
    await freshClient.getSecret(name);

    const counts = standIn.control.counts();
    expect(counts.setSecret).toBe(1);
    expect(counts.getSecret).toBe(2);
    expect(counts.deleteSecret).toBe(0);
  });

  it("latency delays responses", async () => {
    const name = uniqueName("slow");
    await client.setSecret(name, "value");
    standIn.control.setLatency(250);

    const started = performance.now();
    await client.getSecret(name);
    expect(performance.now() - started).toBeGreaterThanOrEqual(200);
  });

  it("invalid control values are rejected", () => {
    expect(() => standIn.control.setLatency(-1)).toThrow(TypeError);
    expect(() =>
      standIn.control.injectFaults({ status: 404 as 429, count: 1 }),
    ).toThrow(TypeError);
    expect(() =>
      standIn.control.injectFaults({ status: 429, count: 0 }),
    ).toThrow(TypeError);
  });

  it("control routes work over HTTP", async () => {
    const name = uniqueName("remote");
    await client.setSecret(name, "value");
    const post = (route: string, body: unknown) =>
      fetch(`${standIn.url}/_control/${route}`, {
        method: "POST",
        body: JSON.stringify(body),
      });

    const injected = await post("faults", {
      status: 503,
      count: 1,
      operation: "getSecret",
    });
    expect(injected.status).toBe(204);
    const unavailable = await captureError(client.getSecret(name));
    expect(unavailable.statusCode).toBe(503);
    expect(unavailable.code).toBe("ServiceUnavailable");

    const counts = await fetch(`${standIn.url}/_control/counts`);
    const countsBody = (await counts.json()) as Record<string, number>;
    expect(countsBody["getSecret"]).toBe(1);
    expect(countsBody["setSecret"]).toBe(1);

    expect((await post("latency", { ms: 50 })).status).toBe(204);
    expect((await post("reset", {})).status).toBe(204);
    expect(standIn.control.counts().getSecret).toBe(0);
    expect((await client.getSecret(name)).value).toBe("value");

    const invalid = await post("faults", { status: 418, count: 1 });
    expect(invalid.status).toBe(400);
    const unknown = await post("nothing", {});
    expect(unknown.status).toBe(404);
  });
});

describe("key vault stand-in persistence", () => {
  let temporaryRoot: string;

  beforeAll(async () => {
    temporaryRoot = await mkdtemp(path.join(tmpdir(), "keyvault-stand-in-"));
  });

  afterAll(async () => {
    await rm(temporaryRoot, { recursive: true, force: true });
  });

  it("state survives a restart", async () => {
    // The stand-in creates the data directory when it is missing.
    const dataDir = path.join(temporaryRoot, "restart");
    const first = await startKeyVaultStandIn({ dataDir });
    try {
      const firstClient = createClient(first.url);
      await firstClient.setSecret("kept", "one");
      await firstClient.setSecret("kept", "two");
      await firstClient.setSecret("removed", "value");
      await deleteSecret(firstClient, "removed");
    } finally {
      await first.close();
    }

    expect(await readdir(dataDir)).toEqual([snapshotFileName]);

    const second = await startKeyVaultStandIn({ dataDir });
    try {
      const secondClient = createClient(second.url);
      const kept = await secondClient.getSecret("kept");
      expect(kept.value).toBe("two");
      expect(
        kept.properties.id?.startsWith(`${second.url}/secrets/kept/`),
      ).toBe(true);
      expect(await listVersionIds(secondClient, "kept")).toHaveLength(2);

      const conflict = await captureError(
        secondClient.setSecret("removed", "again"),
      );
      expect(conflict.statusCode).toBe(409);
      expect((await secondClient.getDeletedSecret("removed")).name).toBe(
        "removed",
      );
    } finally {
      await second.close();
    }
  });

  it("invalid state file fails the start", async () => {
    const corruptDir = path.join(temporaryRoot, "corrupt");
    await mkdir(corruptDir);
    await writeFile(path.join(corruptDir, snapshotFileName), "{", "utf8");

    await expect(startKeyVaultStandIn({ dataDir: corruptDir })).rejects.toThrow(
      /Invalid Key Vault stand-in state/,
    );
  });
});

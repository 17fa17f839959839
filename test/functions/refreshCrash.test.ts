import { spawn, type ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { SecretClient } from "@azure/keyvault-secrets";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { Broker } from "../../shared/broker.js";
import type { StoredGrant } from "../../shared/grantStore.js";
import { parseIdentifier } from "../../shared/identifier.js";
import { refreshTokenSecretName } from "../../shared/keys.js";
import { crashMarker } from "../support/refreshCrashChild.js";
import {
  connectMailbox,
  exchange,
  startTestStack,
  type TestStack,
} from "../support/testStack.js";

const siteUrl = "https://mysite.equisonline.com";
const repositoryRoot = fileURLToPath(new URL("../..", import.meta.url));
const childScript = fileURLToPath(
  new URL("../support/refreshCrashChild.ts", import.meta.url),
);
/** Lease of the killed refresh in ms. The next refresh waits for it to end. */
const leaseMs = 1500;

let stack: TestStack;
let broker: Broker;
let vault: SecretClient;
const children = new Set<ChildProcess>();

beforeAll(async () => {
  stack = await startTestStack();
  broker = stack.createBroker();
  vault = new SecretClient(
    stack.keyVault.url,
    {
      getToken: async () => ({
        token: "local-test-token",
        expiresOnTimestamp: Date.now() + 3_600_000,
      }),
    },
    {
      allowInsecureConnection: true,
      disableChallengeResourceVerification: true,
    },
  );
});

afterAll(async () => {
  for (const child of children) {
    if (child.exitCode !== null || child.signalCode !== null) continue;
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.kill("SIGKILL");
    await exited;
  }
  await stack?.stop();
});

beforeEach(() => {
  stack.identity.control.reset();
  stack.keyVault.control.reset();
});

/**
 * Runs a refresh of the grant in another process and kills that process with SIGKILL once the
 * refresh reaches `step`.
 */
async function refreshUntilKilled(
  grantId: string,
  step: "token_received" | "secret_saved",
): Promise<void> {
  const child = spawn(process.execPath, ["--import", "tsx", childScript], {
    cwd: repositoryRoot,
    env: {
      ...process.env,
      ...stack.settings,
      TABLE_NAME_PREFIX: stack.config().tableNamePrefix,
      CRASH_GRANT_ID: grantId,
      CRASH_STEP: step,
      CRASH_LEASE_MS: String(leaseMs),
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.add(child);

  let stderr = "";
  child.stderr?.on("data", (chunk: Buffer) => {
    stderr += chunk.toString("utf8");
  });
  const exited = new Promise<NodeJS.Signals | number | null>((resolve) =>
    child.once("exit", (code, signal) => resolve(signal ?? code)),
  );
  await new Promise<void>((resolve, reject) => {
    if (child.stdout === null) throw new Error("the child has no stdout");
    createInterface({ input: child.stdout }).on("line", (line) => {
      if (line === `${crashMarker} ${step}`) resolve();
    });
    void exited.then((status) =>
      reject(
        new Error(
          `the refresh process exited (${String(status)}) before ${step}:\n${stderr}`,
        ),
      ),
    );
  });

  child.kill("SIGKILL");
  expect(await exited).toBe("SIGKILL");
}

/** A broker instance that records each refresh token it sends to the identity platform. */
function recordingBroker(): { broker: Broker; sentTokens: string[] } {
  const instance = stack.createBroker();
  const identity = instance.identity;
  const sentTokens: string[] = [];
  return {
    broker: {
      ...instance,
      identity: {
        ...identity,
        refresh: (grant) => {
          sentTokens.push(grant.refreshToken);
          return identity.refresh(grant);
        },
      },
    },
    sentTokens,
  };
}

async function listVersions(grantId: string): Promise<string[]> {
  const versions: string[] = [];
  const name = refreshTokenSecretName(grantId);
  for await (const properties of vault.listPropertiesOfSecretVersions(name)) {
    versions.push(properties.version ?? "");
  }
  return versions.sort();
}

async function readGrant(grantId: string): Promise<StoredGrant> {
  const grant = await broker.grants.get(grantId);
  if (grant === undefined) throw new Error(`grant ${grantId} not found`);
  return grant;
}

async function connectNewMailbox(
  label: string,
): Promise<{ identifier: string; grantId: string }> {
  const identifier = await connectMailbox(stack, broker, {
    siteUrl,
    email: `${label}.${Date.now()}@contoso.example`,
  });
  return { identifier, grantId: parseIdentifier(identifier).grantId };
}

describe("refresh crash", () => {
  it("crash before the vault write", async () => {
    const { identifier, grantId } = await connectNewMailbox("beforewrite");
    const before = await readGrant(grantId);
    const storedToken = await broker.secrets.readRefreshToken(
      grantId,
      before.secretVersion,
    );
    const versionsBefore = await listVersions(grantId);
    stack.identity.control.resetCounts();
    stack.keyVault.control.resetCounts();

    await refreshUntilKilled(grantId, "token_received");

    expect(stack.identity.control.counts().refreshToken).toBe(1);
    expect(stack.keyVault.control.counts().setSecret).toBe(0);
    expect(await listVersions(grantId)).toEqual(versionsBefore);
    const crashed = await readGrant(grantId);
    expect(crashed.secretVersion).toBe(before.secretVersion);
    expect(crashed.leaseId).not.toBe("");

    const next = recordingBroker();
    const exchanged = await exchange(next.broker, identifier);

    expect(exchanged.response.status).toBe(200);
    expect(next.sentTokens).toEqual([storedToken]);
    expect(stack.identity.control.counts().refreshToken).toBe(2);
    const after = await readGrant(grantId);
    expect(after.status).toBe("active");
    expect(after.leaseId).toBe("");
    expect(after.secretVersion).not.toBe(before.secretVersion);
    expect(await listVersions(grantId)).toHaveLength(2);
  });

  it("crash after the vault write", async () => {
    const { identifier, grantId } = await connectNewMailbox("afterwrite");
    const before = await readGrant(grantId);
    const storedToken = await broker.secrets.readRefreshToken(
      grantId,
      before.secretVersion,
    );
    stack.identity.control.resetCounts();
    stack.keyVault.control.resetCounts();

    await refreshUntilKilled(grantId, "secret_saved");

    expect(stack.identity.control.counts().refreshToken).toBe(1);
    expect(stack.keyVault.control.counts().setSecret).toBe(1);
    const latest = await vault.getSecret(refreshTokenSecretName(grantId));
    const unindexedVersion = latest.properties.version ?? "";
    expect(unindexedVersion).not.toBe(before.secretVersion);
    expect(latest.value).not.toBe(storedToken);
    expect(await listVersions(grantId)).toEqual(
      [before.secretVersion, unindexedVersion].sort(),
    );
    const crashed = await readGrant(grantId);
    expect(crashed.secretVersion).toBe(before.secretVersion);
    expect(crashed.refreshTokenIssuedAt).toEqual(before.refreshTokenIssuedAt);

    const next = recordingBroker();
    const exchanged = await exchange(next.broker, identifier);

    expect(exchanged.response.status).toBe(200);
    expect(next.sentTokens).toEqual([latest.value]);
    expect(stack.identity.control.counts().refreshToken).toBe(2);
    const after = await readGrant(grantId);
    expect(after.status).toBe("active");
    expect(after.leaseId).toBe("");
    expect(after.secretVersion).not.toBe(before.secretVersion);
    expect(after.secretVersion).not.toBe(unindexedVersion);
    expect(after.refreshTokenIssuedAt.getTime()).toBeGreaterThan(
      Date.parse(latest.properties.tags?.issuedAt ?? ""),
    );
    expect(await listVersions(grantId)).toHaveLength(3);
  });
});

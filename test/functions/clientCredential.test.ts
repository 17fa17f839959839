import { X509Certificate, randomBytes } from "node:crypto";
import type { AccessToken, TokenCredential } from "@azure/core-auth";
import { InvocationContext } from "@azure/functions";
import { ManagedIdentityCredential } from "@azure/identity";
import { SecretClient } from "@azure/keyvault-secrets";
import { generate } from "selfsigned";
import {
  afterAll,
  beforeAll,
  beforeEach,
  describe,
  expect,
  it,
  vi,
} from "vitest";
import {
  createClientCertificate,
  type ClientCertificateFiles,
} from "../../local/identity/clientCertificates.js";
import { localClient, localManagedIdentities } from "../../local/stack.js";
import type { Broker } from "../../shared/broker.js";
import {
  certificateRefreshMs,
  certificateRetryMs,
  createAppCredential,
  parseClientCertificate,
} from "../../shared/clientCredential.js";
import { catalogueByAadsts } from "../../shared/failureCatalogue.js";
import { IdentityError } from "../../shared/identityClient.js";
import { grantKey } from "../../shared/keys.js";
import {
  runRefreshSweep,
  type SweepSummary,
} from "../../shared/refreshSweep.js";
import { readFailure } from "../../shared/tokenBroker.js";
import {
  connectMailbox,
  exchange,
  fetchResult,
  handlerOf,
  invoke,
  signInWithoutBrowser,
  startTestStack,
  type Invocation,
  type TestStack,
} from "../support/testStack.js";

const siteUrl = "https://mysite.equisonline.com";
const dayMs = 24 * 60 * 60_000;
const tokenExchangeScope = "api://AzureADTokenExchange/.default";
const { userAssigned, systemAssigned } = localManagedIdentities;
const functionAppTrust = "broker-function-app";

let stack: TestStack;
let vault: SecretClient;
let certificateA: ClientCertificateFiles;
let certificateB: ClientCertificateFiles;

beforeAll(async () => {
  stack = await startTestStack({ managedIdentity: true });
  // @azure/identity finds the managed identity endpoint through these, as on App Service.
  Object.assign(process.env, managedIdentityStandIn().environment);
  stack.identity.control.addFederatedCredential(
    localClient.clientId,
    trustOf(userAssigned, functionAppTrust),
  );
  const anyToken: TokenCredential = {
    getToken: async (): Promise<AccessToken> => ({
      token: "local-stand-in",
      expiresOnTimestamp: Date.now() + 3_600_000,
    }),
  };
  vault = new SecretClient(stack.keyVault.url, anyToken, {
    allowInsecureConnection: true,
    disableChallengeResourceVerification: true,
  });
  [certificateA, certificateB] = await Promise.all([
    createClientCertificate("broker-client-a"),
    createClientCertificate("broker-client-b"),
  ]);
});

afterAll(async () => {
  delete process.env.IDENTITY_ENDPOINT;
  delete process.env.IDENTITY_HEADER;
  await stack?.stop();
});

beforeEach(async () => {
  await stack.identity.control.waitForIdle();
  stack.identity.control.reset();
  stack.keyVault.control.reset();
  managedIdentityStandIn().control.reset();
});

function managedIdentityStandIn() {
  const managedIdentity = stack.managedIdentity;
  if (managedIdentity === undefined)
    throw new Error("the stack runs no managed identity stand-in");
  return managedIdentity.standIn;
}

function trustOf(
  identity: typeof userAssigned | typeof systemAssigned,
  name: string,
) {
  const managedIdentity = stack.managedIdentity;
  if (managedIdentity === undefined)
    throw new Error("the stack runs no managed identity stand-in");
  return managedIdentity.federatedCredential(identity, name);
}

function tablePrefix(): string {
  return `c${randomBytes(5).toString("hex")}`;
}

function federatedSettings(prefix: string): Record<string, string> {
  return {
    TABLE_NAME_PREFIX: prefix,
    BROKER_CLIENT_CREDENTIAL: "federated",
    BROKER_CLIENT_SECRET: "",
    MANAGED_IDENTITY_CLIENT_ID: userAssigned.clientId,
  };
}

function certificateSettings(
  prefix: string,
  certificateName: string,
): Record<string, string> {
  return {
    TABLE_NAME_PREFIX: prefix,
    BROKER_CLIENT_CREDENTIAL: "certificate",
    BROKER_CLIENT_SECRET: "",
    BROKER_CLIENT_CERTIFICATE_NAME: certificateName,
  };
}

function uniqueName(label: string): string {
  return `${label}-${randomBytes(4).toString("hex")}`;
}

/** Stores a certificate as Key Vault exposes one: a PEM secret of the certificate's name. */
async function storeCertificate(
  name: string,
  files: ClientCertificateFiles,
): Promise<void> {
  await vault.setSecret(name, files.keyVaultPem, {
    contentType: "application/x-pem-file",
  });
}

interface LogEntry {
  level: string;
  message: string;
  fields: Record<string, unknown>;
}

interface Sweep {
  summary: SweepSummary;
  logs: LogEntry[];
  text: string;
}

async function sweep(broker: Broker): Promise<Sweep> {
  const logs: LogEntry[] = [];
  const context = new InvocationContext({
    functionName: "refreshTimer",
    invocationId: randomBytes(8).toString("hex"),
    logHandler: (level, ...args) => {
      const [message, fields] = args as [string, Record<string, unknown>?];
      logs.push({ level, message, fields: fields ?? {} });
    },
  });
  const summary = await runRefreshSweep(broker, context, {
    pastDue: false,
    backoffBaseMs: 1,
    maxDelayMs: 20,
    sleep: () => Promise.resolve(),
  });
  const text = logs
    .map(
      (entry) =>
        `${entry.level} ${entry.message} ${JSON.stringify(entry.fields)}`,
    )
    .join("\n");
  return { summary, logs, text };
}

let mailboxCounter = 0;
function newEmail(): string {
  mailboxCounter += 1;
  return `credential${mailboxCounter}.${randomBytes(3).toString("hex")}@contoso.example`;
}

interface Mailbox {
  identifier: string;
  grantId: string;
}

async function connect(broker: Broker): Promise<Mailbox> {
  const identifier = await connectMailbox(stack, broker, {
    siteUrl,
    email: newEmail(),
  });
  return { identifier, grantId: identifier.slice(6, 38) };
}

/** Backdates the grants' refresh tokens, so the next timer run refreshes them. */
async function makeDue(broker: Broker, mailboxes: Mailbox[]): Promise<void> {
  const past = new Date(Date.now() - 2 * dayMs);
  for (const mailbox of mailboxes) {
    await broker.tables.grants.updateEntity(
      {
        partitionKey: grantKey(mailbox.grantId),
        rowKey: "grant",
        refreshTokenIssuedAt: past,
        lastRefreshAt: past,
      },
      "Merge",
    );
  }
}

async function health(broker: Broker): Promise<Invocation> {
  return invoke(handlerOf(broker, "health"), { url: "/api/health" });
}

function healthChecks(invocation: Invocation): Record<string, { ok: boolean }> {
  return (invocation.json() as { checks: Record<string, { ok: boolean }> })
    .checks;
}

function tokenCalls(): number {
  return stack.identity.control.counts().token;
}

/** Returns the managed identity's token for the token exchange audience, the assertion MSAL sends. */
async function federatedAssertion(): Promise<string> {
  const credential = new ManagedIdentityCredential({
    clientId: userAssigned.clientId,
  });
  return (await credential.getToken(tokenExchangeScope)).token;
}

function expectAppCredentialStop(
  run: Sweep,
  reason: string,
  description: string,
): void {
  expect(run.summary.operatorFailure).toBe(reason);
  expect(run.summary.refreshed).toBe(0);
  expect(run.summary.reauthRequired).toBe(0);
  const errors = run.logs.filter((entry) => entry.level === "error");
  expect(errors).toHaveLength(1);
  expect(errors[0]?.message).toContain(description);
  expect(errors[0]?.fields.reason).toBe(reason);
  expect(
    run.logs.filter((entry) => entry.message === "grant refresh failed"),
  ).toHaveLength(0);
}

async function expectUnmarked(broker: Broker, mailboxes: Mailbox[]) {
  for (const mailbox of mailboxes) {
    const grant = await broker.grants.get(mailbox.grantId);
    expect(grant?.status).toBe("active");
    expect(
      grant === undefined ? "missing" : readFailure(grant),
    ).toBeUndefined();
  }
}

describe("federated app credential", () => {
  it("federated broker signs in, exchanges and refreshes", async () => {
    const prefix = tablePrefix();
    const startBroker = stack.createBroker(federatedSettings(prefix));
    const callbackBroker = stack.createBroker(federatedSettings(prefix));

    const steps = await signInWithoutBrowser(
      stack,
      startBroker,
      { siteUrl, email: newEmail() },
      callbackBroker,
    );
    expect(steps.callback.response.status).toBe(303);
    const result = await fetchResult(callbackBroker, steps.cookies);
    const identifier = (result.json() as { identifier: string }).identifier;
    const mailbox = { identifier, grantId: identifier.slice(6, 38) };

    // A new instance has no cached access token, so the exchange refreshes with the assertion.
    const exchanged = await exchange(
      stack.createBroker(federatedSettings(prefix)),
      identifier,
    );
    expect(exchanged.response.status).toBe(200);
    expect(
      (exchanged.json() as { access_token: string }).access_token,
    ).toBeTruthy();

    await makeDue(startBroker, [mailbox]);
    const run = await sweep(startBroker);
    expect(run.summary.refreshed).toBe(1);
    expect(run.summary.operatorFailure).toBeUndefined();

    const counts = managedIdentityStandIn().control.counts();
    // The user-assigned identity also reached Key Vault: MANAGED_IDENTITY_CLIENT_ID is its client ID.
    expect(counts.tokensByResource["https://vault.azure.net"]).toBeGreaterThan(
      0,
    );
    const assertion = await federatedAssertion();
    const visible = [
      steps.start.text,
      steps.callback.text,
      ...steps.start.logs,
      ...steps.callback.logs,
      exchanged.text,
      ...exchanged.logs,
      run.text,
    ].join("\n");
    expect(visible).not.toContain(assertion);
  });

  it("federated broker sends an assertion and no secret", async () => {
    const prefix = tablePrefix();
    const broker = stack.createBroker(federatedSettings(prefix));
    const bodies: string[] = [];
    const originalFetch = globalThis.fetch;
    const spy = vi
      .spyOn(globalThis, "fetch")
      .mockImplementation(async (input, init) => {
        const url = input instanceof Request ? input.url : String(input);
        if (new URL(url).pathname.endsWith("/oauth2/v2.0/token"))
          bodies.push(String(init?.body));
        return originalFetch(input, init);
      });
    try {
      const mailbox = await connect(broker);
      await exchange(
        stack.createBroker(federatedSettings(prefix)),
        mailbox.identifier,
      );
    } finally {
      spy.mockRestore();
    }

    const assertion = await federatedAssertion();
    expect(bodies).toHaveLength(2);
    for (const body of bodies) {
      const form = new URLSearchParams(body);
      expect(form.get("client_assertion_type")).toBe(
        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
      );
      expect(form.get("client_assertion")).toBe(assertion);
      expect(form.has("client_secret")).toBe(false);
    }
    expect(new URLSearchParams(bodies[0]).get("grant_type")).toBe(
      "authorization_code",
    );
    expect(new URLSearchParams(bodies[1]).get("grant_type")).toBe(
      "refresh_token",
    );
  });

  it("federated health reports the assertion at hand", async () => {
    const broker = stack.createBroker(federatedSettings(tablePrefix()));
    const checked = await health(broker);

    expect(checked.response.status).toBe(200);
    expect(healthChecks(checked).appCredential?.ok).toBe(true);
    expect(checked.text).not.toContain(await federatedAssertion());
  });

  it("removed federated credential stops the run", async () => {
    const prefix = tablePrefix();
    const broker = stack.createBroker({
      ...federatedSettings(prefix),
      REFRESH_CONCURRENCY: "2",
    });
    const mailboxes = [
      await connect(broker),
      await connect(broker),
      await connect(broker),
      await connect(broker),
    ];
    await makeDue(broker, mailboxes);
    stack.identity.control.removeFederatedCredential(
      localClient.clientId,
      functionAppTrust,
    );
    stack.identity.control.resetCounts();

    try {
      const run = await sweep(broker);
      const entry = catalogueByAadsts[70021];

      expectAppCredentialStop(
        run,
        "federated_credential_not_found",
        entry?.description ?? "",
      );
      expect(
        run.logs.find((line) => line.level === "error")?.message,
      ).toContain(entry?.remedy ?? "");
      expect(
        run.logs.find((line) => line.level === "error")?.fields.aadsts,
      ).toBe(70021);
      expect(tokenCalls()).toBeLessThanOrEqual(2);
      expect(run.summary.notAttempted).toBe(4 - tokenCalls());
      expect(run.text).not.toContain(await federatedAssertion());
      await expectUnmarked(broker, mailboxes);

      const exchanged = await exchange(
        stack.createBroker(federatedSettings(prefix)),
        mailboxes[0]?.identifier ?? "",
      );
      expect(exchanged.response.status).toBe(503);
      expect(exchanged.json()).toMatchObject({
        code: "identity_unavailable",
        reason: "federated_credential_not_found",
        aadsts: 70021,
      });
      await expectUnmarked(broker, mailboxes);
    } finally {
      stack.identity.control.addFederatedCredential(
        localClient.clientId,
        trustOf(userAssigned, functionAppTrust),
      );
    }

    const next = await sweep(broker);
    expect(next.summary.refreshed).toBe(4);
  });

  it("removed federated credential stops a sign-in with the fix logged", async () => {
    const broker = stack.createBroker(federatedSettings(tablePrefix()));
    stack.identity.control.removeFederatedCredential(
      localClient.clientId,
      functionAppTrust,
    );
    try {
      const steps = await signInWithoutBrowser(stack, broker, {
        siteUrl,
        email: newEmail(),
      });
      const entry = catalogueByAadsts[70021];

      expect(steps.callback.text).toContain(
        "This service is not set up correctly",
      );
      const logged = steps.callback.logs.filter((line) =>
        line.startsWith("error code redemption failed"),
      );
      expect(logged).toHaveLength(1);
      expect(logged[0]).toContain(entry?.remedy ?? "missing remedy");
      expect(logged[0]).toContain("federated_credential_not_found");
      expect(steps.callback.logs.join("\n")).not.toContain(
        await federatedAssertion(),
      );
    } finally {
      stack.identity.control.addFederatedCredential(
        localClient.clientId,
        trustOf(userAssigned, functionAppTrust),
      );
    }
  });

  it("managed identity without a token stops the run", async () => {
    const prefix = tablePrefix();
    const working = stack.createBroker(federatedSettings(prefix));
    const mailboxes = [await connect(working), await connect(working)];
    await makeDue(working, mailboxes);
    // Without MANAGED_IDENTITY_CLIENT_ID the assertion comes from the system-assigned identity,
    // which this function app no longer has.
    managedIdentityStandIn().control.removeIdentity(systemAssigned.clientId);
    const broker = stack.createBroker({
      ...federatedSettings(prefix),
      MANAGED_IDENTITY_CLIENT_ID: "",
    });
    stack.identity.control.resetCounts();

    try {
      const run = await sweep(broker);

      expectAppCredentialStop(
        run,
        "managed_identity_unavailable",
        "managed identity gave no token",
      );
      expect(
        run.logs.find((line) => line.level === "error")?.message,
      ).toContain("MANAGED_IDENTITY_CLIENT_ID");
      expect(tokenCalls()).toBe(0);
      await expectUnmarked(working, mailboxes);

      const checked = await health(broker);
      expect(checked.response.status).toBe(503);
      expect(healthChecks(checked).appCredential?.ok).toBe(false);
      expect(checked.logs.join("\n")).toContain("managed_identity_unavailable");
    } finally {
      managedIdentityStandIn().control.addIdentity(systemAssigned);
    }
  });

  it("system-assigned identity signs when trusted", async () => {
    stack.identity.control.addFederatedCredential(
      localClient.clientId,
      trustOf(systemAssigned, "system-assigned"),
    );
    try {
      const broker = stack.createBroker({
        ...federatedSettings(tablePrefix()),
        MANAGED_IDENTITY_CLIENT_ID: "",
      });
      const mailbox = await connect(broker);
      const exchanged = await exchange(
        stack.createBroker({
          ...federatedSettings(broker.config.tableNamePrefix),
          MANAGED_IDENTITY_CLIENT_ID: "",
        }),
        mailbox.identifier,
      );

      expect(exchanged.response.status).toBe(200);
    } finally {
      stack.identity.control.removeFederatedCredential(
        localClient.clientId,
        "system-assigned",
      );
    }
  });
});

describe("certificate app credential", () => {
  it("certificate broker signs in, exchanges and refreshes", async () => {
    const name = uniqueName("broker-client");
    await storeCertificate(name, certificateA);
    const { thumbprintSha256 } = stack.identity.control.addCertificate(
      localClient.clientId,
      certificateA.certificatePem,
    );
    try {
      const prefix = tablePrefix();
      const broker = stack.createBroker(certificateSettings(prefix, name));
      const mailbox = await connect(broker);

      const exchanged = await exchange(
        stack.createBroker(certificateSettings(prefix, name)),
        mailbox.identifier,
      );
      expect(exchanged.response.status).toBe(200);

      await makeDue(broker, [mailbox]);
      stack.keyVault.control.resetCounts();
      const run = await sweep(broker);
      expect(run.summary.refreshed).toBe(1);
      // One read of the grant's refresh token; the certificate comes from the cache.
      expect(stack.keyVault.control.counts().getSecret).toBe(1);

      const privateKeyLine = certificateA.keyVaultPem.split("\n")[1] ?? "";
      expect(privateKeyLine.length).toBeGreaterThan(40);
      for (const text of [run.text, exchanged.text, ...exchanged.logs]) {
        expect(text).not.toContain(privateKeyLine);
        expect(text).not.toContain("PRIVATE KEY");
      }
      const checked = await health(broker);
      expect(healthChecks(checked).appCredential?.ok).toBe(true);
      expect(checked.text).not.toContain(privateKeyLine);
    } finally {
      stack.identity.control.removeCertificate(
        localClient.clientId,
        thumbprintSha256,
      );
    }
  });

  it("rotated certificate is picked up without a restart", async () => {
    const name = uniqueName("broker-rotating");
    await storeCertificate(name, certificateA);
    stack.identity.control.addCertificate(
      localClient.clientId,
      certificateA.certificatePem,
    );
    let offset = 0;
    const prefix = tablePrefix();
    const broker = stack.createBroker(certificateSettings(prefix, name), {
      now: () => Date.now() + offset,
    });
    try {
      const mailbox = await connect(broker);

      // The operator registers the new certificate and stores it as the secret's next version.
      stack.identity.control.addCertificate(
        localClient.clientId,
        certificateB.certificatePem,
      );
      await storeCertificate(name, certificateB);
      stack.keyVault.control.resetCounts();
      await makeDue(broker, [mailbox]);
      const beforeRefresh = await sweep(broker);
      expect(beforeRefresh.summary.refreshed).toBe(1);
      expect(stack.keyVault.control.counts().getSecret).toBe(1);

      // Once the refresh period has passed, the new version is read; the old one can go.
      offset = certificateRefreshMs + 1_000;
      stack.identity.control.removeCertificate(
        localClient.clientId,
        certificateA.thumbprintSha256,
      );
      await makeDue(broker, [mailbox]);
      const afterRefresh = await sweep(broker);
      expect(afterRefresh.summary.refreshed).toBe(1);
      expect(afterRefresh.summary.operatorFailure).toBeUndefined();
    } finally {
      stack.identity.control.removeCertificate(
        localClient.clientId,
        certificateA.thumbprintSha256,
      );
      stack.identity.control.removeCertificate(
        localClient.clientId,
        certificateB.thumbprintSha256,
      );
    }
  });

  it("rejected certificate is read again a minute later", async () => {
    const name = uniqueName("broker-rejected");
    await storeCertificate(name, certificateA);
    stack.identity.control.addCertificate(
      localClient.clientId,
      certificateA.certificatePem,
    );
    let offset = 0;
    const broker = stack.createBroker(
      certificateSettings(tablePrefix(), name),
      {
        now: () => Date.now() + offset,
      },
    );
    try {
      const mailbox = await connect(broker);
      // Rotated out of order: the old certificate is removed before the broker read the new one.
      stack.identity.control.addCertificate(
        localClient.clientId,
        certificateB.certificatePem,
      );
      await storeCertificate(name, certificateB);
      stack.identity.control.removeCertificate(
        localClient.clientId,
        certificateA.thumbprintSha256,
      );

      await makeDue(broker, [mailbox]);
      const rejected = await sweep(broker);
      expectAppCredentialStop(
        rejected,
        "client_assertion_signature_invalid",
        catalogueByAadsts[700027]?.description ?? "",
      );
      await expectUnmarked(broker, [mailbox]);

      offset = certificateRetryMs + 1_000;
      const recovered = await sweep(broker);
      expect(recovered.summary.refreshed).toBe(1);
    } finally {
      stack.identity.control.removeCertificate(
        localClient.clientId,
        certificateB.thumbprintSha256,
      );
    }
  });

  it("certificate is not read for each token call", async () => {
    const name = uniqueName("broker-cached");
    await storeCertificate(name, certificateA);
    stack.identity.control.addCertificate(
      localClient.clientId,
      certificateA.certificatePem,
    );
    let offset = 0;
    const prefix = tablePrefix();
    const broker = stack.createBroker(certificateSettings(prefix, name), {
      now: () => Date.now() + offset,
    });
    try {
      const mailboxes = [await connect(broker), await connect(broker)];
      const poller = await vault.beginDeleteSecret(name);
      await poller.pollUntilDone();

      // The cached certificate still signs while the vault no longer has it.
      await makeDue(broker, mailboxes);
      const cached = await sweep(broker);
      expect(cached.summary.refreshed).toBe(2);

      // After the refresh period the read fails; the still valid certificate stays in use, and
      // health reports the missing secret.
      offset = certificateRefreshMs + 1_000;
      await makeDue(broker, mailboxes);
      const stale = await sweep(broker);
      expect(stale.summary.refreshed).toBe(2);
      const checked = await health(broker);
      expect(healthChecks(checked).appCredential?.ok).toBe(false);
      expect(checked.logs.join("\n")).toContain("client_certificate_missing");
    } finally {
      stack.identity.control.removeCertificate(
        localClient.clientId,
        certificateA.thumbprintSha256,
      );
    }
  });

  it("missing certificate stops sign-in and the run", async () => {
    const name = uniqueName("broker-missing");
    await storeCertificate(name, certificateA);
    stack.identity.control.addCertificate(
      localClient.clientId,
      certificateA.certificatePem,
    );
    const prefix = tablePrefix();
    try {
      const working = stack.createBroker(certificateSettings(prefix, name));
      const mailboxes = [await connect(working), await connect(working)];
      await makeDue(working, mailboxes);
      const broken = stack.createBroker(
        certificateSettings(prefix, uniqueName("never-stored")),
      );
      stack.identity.control.resetCounts();

      const run = await sweep(broken);
      expectAppCredentialStop(
        run,
        "client_certificate_missing",
        "client certificate is not in the key vault",
      );
      expect(tokenCalls()).toBe(0);
      await expectUnmarked(working, mailboxes);

      const started = await invoke(handlerOf(broken, "startAuth"), {
        method: "POST",
        url: "/api/auth/start",
        body: { string: JSON.stringify({ siteUrl, email: newEmail() }) },
      });
      expect(started.response.status).toBe(503);
      expect(started.json()).toMatchObject({
        code: "identity_unavailable",
        reason: "client_certificate_missing",
      });
      expect(stack.identity.control.counts().authorize).toBe(0);
    } finally {
      stack.identity.control.removeCertificate(
        localClient.clientId,
        certificateA.thumbprintSha256,
      );
    }
  });
});

describe("client certificate parsing", () => {
  const now = new Date();

  function errorOf(call: () => unknown): IdentityError {
    try {
      call();
    } catch (error) {
      expect(error).toBeInstanceOf(IdentityError);
      return error as IdentityError;
    }
    throw new Error("Expected an IdentityError, but the call succeeded");
  }

  it("parses Key Vault's PEM of key and certificate", () => {
    const parsed = parseClientCertificate(
      certificateA.keyVaultPem,
      "application/x-pem-file",
      now,
    );

    expect(parsed.thumbprintSha256).toBe(certificateA.thumbprintSha256);
    expect(parsed.privateKey).toMatch(/^-----BEGIN PRIVATE KEY-----/);
    expect(parsed.x5c).toContain("-----BEGIN CERTIFICATE-----");
    expect(parsed.validTo.getTime()).toBeGreaterThan(now.getTime());
  });

  it("puts the certificate of the key first", () => {
    const pem = `${certificateB.certificatePem}\n${certificateA.keyVaultPem}`;
    const parsed = parseClientCertificate(pem, undefined, now);

    expect(parsed.thumbprintSha256).toBe(certificateA.thumbprintSha256);
    expect(
      parsed.x5c.startsWith(
        new X509Certificate(certificateA.certificatePem).toString(),
      ),
    ).toBe(true);
    expect(parsed.x5c).toContain(
      new X509Certificate(certificateB.certificatePem).toString(),
    );
  });

  it.each([
    {
      label: "a PKCS#12 secret",
      pem: () => certificateA.keyVaultPem,
      type: "application/x-pkcs12",
    },
    {
      label: "a certificate without key",
      pem: () => certificateA.certificatePem,
      type: undefined,
    },
    {
      label: "a key without certificate",
      pem: () =>
        certificateA.keyVaultPem.slice(
          0,
          certificateA.keyVaultPem.indexOf("-----BEGIN CERTIFICATE-----"),
        ),
      type: undefined,
    },
    {
      label: "a key of another certificate",
      pem: () =>
        `${certificateA.keyVaultPem.slice(0, certificateA.keyVaultPem.indexOf("-----BEGIN CERTIFICATE-----"))}${certificateB.certificatePem}`,
      type: undefined,
    },
    {
      label: "text that is no PEM",
      pem: () => "not a certificate",
      type: undefined,
    },
  ])("rejects $label as invalid", ({ pem, type }) => {
    const error = errorOf(() => parseClientCertificate(pem(), type, now));

    expect(error.error).toBe("client_certificate_invalid");
    expect(error.transient).toBe(false);
    expect(error.message).not.toContain("PRIVATE KEY");
  });

  it("rejects an EC certificate as invalid", async () => {
    const ec = await generate([{ name: "commonName", value: "broker-ec" }], {
      keyType: "ec",
      algorithm: "sha256",
    });
    const error = errorOf(() =>
      parseClientCertificate(`${ec.private}\n${ec.cert}`, undefined, now),
    );

    expect(error.error).toBe("client_certificate_invalid");
  });

  it("rejects an expired certificate", () => {
    const later = new Date(now.getTime() + 400 * dayMs);
    const error = errorOf(() =>
      parseClientCertificate(certificateA.keyVaultPem, undefined, later),
    );

    expect(error.error).toBe("client_certificate_expired");
  });
});

describe("federated assertion source", () => {
  function recordingCredential(answer: () => Promise<AccessToken | null>): {
    credential: TokenCredential;
    scopes: string[];
  } {
    const scopes: string[] = [];
    return {
      scopes,
      credential: {
        getToken: async (scope) => {
          scopes.push(String(scope));
          return answer();
        },
      },
    };
  }

  function federatedConfig(overrides: Record<string, string> = {}) {
    return stack.config({
      BROKER_CLIENT_CREDENTIAL: "federated",
      BROKER_CLIENT_SECRET: "",
      ...overrides,
    });
  }

  async function assertionOf(
    credential: Awaited<ReturnType<typeof createAppCredential>>,
  ): Promise<string> {
    const options = await credential.msalOptions();
    const callback = options.clientAssertion;
    if (typeof callback !== "function")
      throw new Error("the federated credential has no assertion callback");
    return callback({ clientId: localClient.clientId, tokenEndpoint: "" });
  }

  it.each([
    { cloud: "public", audience: "api://AzureADTokenExchange/.default" },
    { cloud: "usgov", audience: "api://AzureADTokenExchangeUSGov/.default" },
  ])(
    "assertion uses the $cloud cloud's audience",
    async ({ cloud, audience }) => {
      const recorder = recordingCredential(async () => ({
        token: "managed-identity-token",
        expiresOnTimestamp: Date.now() + 3_600_000,
      }));
      const config = federatedConfig({
        BROKER_CLOUD: cloud,
        BROKER_MAIL_SCOPES: "",
      });
      const credential = createAppCredential(config, {
        managedIdentity: recorder.credential,
        vaultCredential: recorder.credential,
      });

      expect(await assertionOf(credential)).toBe("managed-identity-token");
      expect(recorder.scopes).toEqual([audience]);
    },
  );

  it("assertion failure is the operator's problem", async () => {
    const recorder = recordingCredential(async () => {
      throw new Error("no identity");
    });
    const credential = createAppCredential(federatedConfig(), {
      managedIdentity: recorder.credential,
      vaultCredential: recorder.credential,
    });
    const error = await assertionOf(credential).catch(
      (caught: unknown) => caught,
    );

    expect(error).toBeInstanceOf(IdentityError);
    expect((error as IdentityError).error).toBe("managed_identity_unavailable");
    expect((error as IdentityError).transient).toBe(false);
  });

  it("assertion that times out is transient", async () => {
    const recorder = recordingCredential(() => new Promise(() => undefined));
    const credential = createAppCredential(
      federatedConfig({ IDENTITY_TIMEOUT_SECONDS: "1" }),
      {
        managedIdentity: recorder.credential,
        vaultCredential: recorder.credential,
      },
    );
    const error = await assertionOf(credential).catch(
      (caught: unknown) => caught,
    );

    expect(error).toBeInstanceOf(IdentityError);
    expect((error as IdentityError).error).toBe("network_error");
    expect((error as IdentityError).transient).toBe(true);
  });
});

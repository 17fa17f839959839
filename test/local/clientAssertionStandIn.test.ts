import { generateKeyPairSync, randomUUID, type KeyObject } from "node:crypto";
import { fileURLToPath } from "node:url";

import { ManagedIdentityCredential } from "@azure/identity";
import {
  ConfidentialClientApplication,
  CryptoProvider,
  ServerError,
} from "@azure/msal-node";
import type { Configuration, NodeAuthOptions } from "@azure/msal-node";
import {
  SignJWT,
  createRemoteJWKSet,
  decodeJwt,
  decodeProtectedHeader,
  importPKCS8,
  jwtVerify,
} from "jose";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";

import {
  createClientCertificate,
  type ClientCertificateFiles,
} from "../../local/identity/clientCertificates.js";
import { connectIdentityControl } from "../../local/identity/controlClient.js";
import { localMsalAuthorityOptions } from "../../local/identity/msalOptions.js";
import {
  startIdentityStandIn,
  type IdentityStandIn,
} from "../../local/identity/server.js";
import {
  startManagedIdentityStandIn,
  type ManagedIdentityStandIn,
} from "../../local/managedIdentity/server.js";
import { ensureLocalCertificateAuthority } from "../../local/tls.js";

const federatedClientId = "8d2f4a6c-1e3b-4c5d-9a7f-0b1c2d3e4f50";
const certificateClientId = "5a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";
const bareClientId = "2c4e6a8b-0d1f-4e3a-9b5c-7d9f1b3d5e7a";
const redirectUri = "http://localhost:7071/api/auth/callback";
const tokenExchangeScope = "api://AzureADTokenExchange/.default";
const mailScopes = [
  "https://outlook.office.com/IMAP.AccessAsUser.All",
  "https://outlook.office.com/SMTP.Send",
];
const account = {
  username: "grace@fabrikam.example",
  tenantId: "4b6d8f0a-2c4e-4a6b-8d0f-1a3c5e7b9d2f",
  objectId: "e1f2a3b4-c5d6-4e7f-8a9b-0c1d2e3f4a5b",
  name: "Grace Hopper",
};
const managedIdentityTenant = "9f8e7d6c-5b4a-4938-a7b6-c5d4e3f2a1b0";
const systemIdentity = {
  clientId: "11111111-2222-4333-8444-555555555555",
  objectId: "66666666-7777-4888-9999-aaaaaaaaaaaa",
  kind: "system-assigned" as const,
};
const userIdentity = {
  clientId: "bbbbbbbb-cccc-4ddd-8eee-ffffffffffff",
  objectId: "12345678-90ab-4cde-8f01-234567890abc",
  kind: "user-assigned" as const,
};

let identity: IdentityStandIn;
let managedIdentity: ManagedIdentityStandIn;
let registered: ClientCertificateFiles;
let unregistered: ClientCertificateFiles;
let clockOffset = 0;
const cryptoProvider = new CryptoProvider();
const logLines: string[] = [];
let resourceCounter = 0;

beforeAll(async () => {
  const certificateAuthority = ensureLocalCertificateAuthority(
    fileURLToPath(new URL("../../.local/tls", import.meta.url)),
  );
  managedIdentity = await startManagedIdentityStandIn({
    tenantId: managedIdentityTenant,
    identities: [systemIdentity, userIdentity],
    log: (line) => logLines.push(line),
  });
  // @azure/identity reads these when it first looks for a managed identity endpoint.
  Object.assign(process.env, managedIdentity.environment);

  [registered, unregistered] = await Promise.all([
    createClientCertificate("broker-registered"),
    createClientCertificate("broker-unregistered"),
  ]);
  identity = await startIdentityStandIn({
    certificateAuthority,
    clients: [
      {
        clientId: federatedClientId,
        redirectUris: [redirectUri],
        federatedCredentials: [systemTrust("function-app")],
      },
      {
        clientId: certificateClientId,
        redirectUris: [redirectUri],
        certificatePems: [registered.certificatePem],
      },
      {
        clientId: bareClientId,
        clientSecret: "bare-secret",
        redirectUris: [redirectUri],
      },
    ],
    accounts: [account],
    now: () => Date.now() + clockOffset,
    log: (line) => logLines.push(line),
  });
});

afterEach(() => {
  clockOffset = 0;
  identity.control.reset();
  managedIdentity.control.reset();
});

afterAll(async () => {
  await identity?.close();
  await managedIdentity?.close();
});

function systemTrust(name: string) {
  return {
    name,
    issuer: managedIdentity.issuer,
    subject: systemIdentity.objectId,
    audiences: ["api://AzureADTokenExchange"],
  };
}

function application(
  credential: Omit<NodeAuthOptions, "clientId">,
  clientId: string,
  authority = `${identity.url}/organizations`,
): ConfidentialClientApplication {
  const configuration: Configuration = {
    auth: {
      clientId,
      ...credential,
      authority,
      ...localMsalAuthorityOptions(identity.url),
    },
  };
  return new ConfidentialClientApplication(configuration);
}

function federatedCredential(
  source: ManagedIdentityCredential = new ManagedIdentityCredential(),
  scope = tokenExchangeScope,
): Omit<NodeAuthOptions, "clientId"> {
  return {
    clientAssertion: async () => {
      const token = await source.getToken(scope);
      return token.token;
    },
  };
}

function certificateCredential(
  files: ClientCertificateFiles,
): Omit<NodeAuthOptions, "clientId"> {
  const key = files.keyVaultPem.slice(
    0,
    files.keyVaultPem.indexOf("-----BEGIN CERTIFICATE-----"),
  );
  return {
    clientCertificate: {
      thumbprintSha256: files.thumbprintSha256,
      privateKey: key,
      x5c: files.certificatePem,
    },
  };
}

/** Signs in as the test account, redeems the code and refreshes with the rotated token. */
async function signInRedeemAndRefresh(
  credential: Omit<NodeAuthOptions, "clientId">,
  clientId: string,
): Promise<{ accessToken: string; refreshedToken: string }> {
  const app = application(credential, clientId);
  const { verifier, challenge } = await cryptoProvider.generatePkceCodes();
  const authorizeUrl = await app.getAuthCodeUrl({
    scopes: [...mailScopes, "offline_access"],
    redirectUri,
    codeChallenge: challenge,
    codeChallengeMethod: "S256",
    loginHint: account.username,
  });
  const { location } = await identity.control.signIn({
    authorizeUrl,
    username: account.username,
  });
  const code = new URL(location).searchParams.get("code") ?? "";
  const redeemed = await app.acquireTokenByCode({
    code,
    codeVerifier: verifier,
    redirectUri,
    scopes: [...mailScopes, "offline_access"],
  });
  const cache = JSON.parse(app.getTokenCache().serialize()) as {
    RefreshToken?: Record<string, { secret: string }>;
  };
  const refreshToken = Object.values(cache.RefreshToken ?? {})[0]?.secret;
  expect(refreshToken).toBeTruthy();

  const refreshApp = application(
    credential,
    clientId,
    `${identity.url}/${account.tenantId}`,
  );
  const refreshed = await refreshApp.acquireTokenByRefreshToken({
    refreshToken: refreshToken ?? "",
    scopes: mailScopes,
    forceCache: true,
  });
  return {
    accessToken: redeemed.accessToken,
    refreshedToken: refreshed?.accessToken ?? "",
  };
}

async function captureError(call: Promise<unknown>): Promise<Error> {
  try {
    await call;
  } catch (error) {
    return error as Error;
  }
  throw new Error("Expected the call to fail, but it succeeded");
}

interface TokenAnswer {
  status: number;
  body: {
    error?: string;
    error_description?: string;
    error_codes?: number[];
    trace_id?: string;
  };
}

/** Posts a refresh_token grant with this client authentication, as a raw form. */
async function tokenRequest(
  clientId: string,
  authentication: Record<string, string>,
  tenant = "organizations",
): Promise<TokenAnswer> {
  const response = await fetch(`${identity.url}/${tenant}/oauth2/v2.0/token`, {
    method: "POST",
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({
      grant_type: "refresh_token",
      client_id: clientId,
      refresh_token: "not-a-refresh-token",
      scope: mailScopes.join(" "),
      ...authentication,
    }).toString(),
  });
  return {
    status: response.status,
    body: (await response.json()) as TokenAnswer["body"],
  };
}

function assertionForm(assertion: string): Record<string, string> {
  return {
    client_assertion_type:
      "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
    client_assertion: assertion,
  };
}

function expectEntraError(
  answer: TokenAnswer,
  expected: { status: number; error: string; code: number },
): void {
  expect(answer.status).toBe(expected.status);
  expect(answer.body.error).toBe(expected.error);
  expect(answer.body.error_codes).toEqual([expected.code]);
  expect(answer.body.error_description).toMatch(
    new RegExp(`^AADSTS${expected.code}: `),
  );
  expect(answer.body.error_description).toContain(
    `Trace ID: ${answer.body.trace_id ?? ""}`,
  );
}

/** Returns the managed identity's token for `scope`, from the library's cache when it has one. */
async function managedIdentityToken(
  source = new ManagedIdentityCredential(),
  scope = tokenExchangeScope,
): Promise<string> {
  return (await source.getToken(scope)).token;
}

function freshScope(): string {
  resourceCounter += 1;
  return `api://test-resource-${resourceCounter}/.default`;
}

/** Re-signs a token's header and payload with another key, keeping its `kid`. */
async function resign(token: string, key: KeyObject): Promise<string> {
  const header = decodeProtectedHeader(token);
  return new SignJWT(decodeJwt(token))
    .setProtectedHeader({ ...header, alg: "RS256" })
    .sign(key);
}

async function certificateAssertion(
  files: ClientCertificateFiles,
  claims: Record<string, unknown>,
  options: { thumbprint?: string; key?: KeyObject } = {},
): Promise<string> {
  const key =
    options.key ??
    (await importPKCS8(
      files.keyVaultPem.slice(
        0,
        files.keyVaultPem.indexOf("-----BEGIN CERTIFICATE-----"),
      ),
      "PS256",
    ));
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({
    aud: `${identity.url}/organizations/oauth2/v2.0/token`,
    iss: certificateClientId,
    sub: certificateClientId,
    jti: randomUUID(),
    nbf: now,
    exp: now + 600,
    ...claims,
  })
    .setProtectedHeader({
      alg: "PS256",
      typ: "JWT",
      "x5t#S256": Buffer.from(
        options.thumbprint ?? files.thumbprintSha256,
        "hex",
      ).toString("base64url"),
    })
    .sign(key);
}

function otherRsaKey(): KeyObject {
  return generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey;
}

describe("managed identity stand-in", () => {
  it("issues a system-assigned token @azure/identity accepts", async () => {
    const token = await managedIdentityToken(
      new ManagedIdentityCredential(),
      freshScope(),
    );
    const claims = decodeJwt(token);

    expect(claims.iss).toBe(
      `${managedIdentity.url}/${managedIdentityTenant}/v2.0`,
    );
    expect(claims.sub).toBe(systemIdentity.objectId);
    expect(claims.oid).toBe(systemIdentity.objectId);
    expect(claims.aud).toBe(`api://test-resource-${resourceCounter}`);
    expect(claims.tid).toBe(managedIdentityTenant);
    expect(managedIdentity.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
  });

  it("signs tokens with the key it publishes", async () => {
    const token = await managedIdentityToken(
      new ManagedIdentityCredential(),
      freshScope(),
    );
    const configuration = (await (
      await fetch(`${managedIdentity.issuer}/.well-known/openid-configuration`)
    ).json()) as { issuer: string; jwks_uri: string };

    expect(configuration.issuer).toBe(managedIdentity.issuer);
    const verified = await jwtVerify(
      token,
      createRemoteJWKSet(new URL(configuration.jwks_uri)),
      { issuer: managedIdentity.issuer },
    );
    expect(verified.protectedHeader.alg).toBe("RS256");
  });

  it("issues a user-assigned token by client id", async () => {
    const token = await managedIdentityToken(
      new ManagedIdentityCredential({ clientId: userIdentity.clientId }),
      freshScope(),
    );

    expect(decodeJwt(token).sub).toBe(userIdentity.objectId);
    expect(decodeJwt(token).azp).toBe(userIdentity.clientId);
  });

  it("rejects an identity the app does not have", async () => {
    const error = await captureError(
      managedIdentityToken(
        new ManagedIdentityCredential({ clientId: randomUUID() }),
        freshScope(),
      ),
    );

    expect(error.name).toBe("CredentialUnavailableError");
    expect(error.message).toContain("No User Assigned");
  });

  it("rejects a request without the identity header", async () => {
    const url = `${managedIdentity.endpoint}?api-version=2019-08-01&resource=api://x`;
    const missing = await fetch(url);
    const wrong = await fetch(url, {
      headers: { "X-IDENTITY-HEADER": "not-the-header" },
    });
    const right = await fetch(url, {
      headers: { "X-IDENTITY-HEADER": managedIdentity.header },
    });

    expect(missing.status).toBe(401);
    expect(JSON.stringify(await missing.json())).not.toContain("access_token");
    expect(wrong.status).toBe(401);
    expect(right.status).toBe(200);
    const body = (await right.json()) as Record<string, string>;
    expect(body.token_type).toBe("Bearer");
    expect(body.resource).toBe("api://x");
    expect(Number(body.expires_on)).toBeGreaterThan(Date.now() / 1000 + 3600);
  });

  it("rejects another api-version and a missing resource", async () => {
    const headers = { "X-IDENTITY-HEADER": managedIdentity.header };
    const oldVersion = await fetch(
      `${managedIdentity.endpoint}?api-version=2017-09-01&resource=api://x`,
      { headers },
    );
    const noResource = await fetch(
      `${managedIdentity.endpoint}?api-version=2019-08-01`,
      { headers },
    );

    expect(oldVersion.status).toBe(400);
    expect(noResource.status).toBe(400);
  });

  it("fails a token request on request", async () => {
    managedIdentity.control.failNext({
      status: 400,
      message: "The identity is being reassigned.",
    });
    const error = await captureError(
      managedIdentityToken(new ManagedIdentityCredential(), freshScope()),
    );

    expect(error.message).toContain("The identity is being reassigned.");
    expect(managedIdentity.control.counts().failures).toBe(1);
  });
});

describe("identity stand-in federated assertions", () => {
  it("accepts a federated assertion for both grants", async () => {
    const tokens = await signInRedeemAndRefresh(
      federatedCredential(),
      federatedClientId,
    );

    expect(decodeJwt(tokens.accessToken).appid).toBe(federatedClientId);
    expect(decodeJwt(tokens.refreshedToken).appid).toBe(federatedClientId);
    expect(identity.control.counts().authorizationCode).toBe(1);
    expect(identity.control.counts().refreshToken).toBe(1);
  });

  it("accepts a user-assigned identity it trusts", async () => {
    identity.control.addFederatedCredential(federatedClientId, {
      name: "user-assigned",
      issuer: managedIdentity.issuer,
      subject: userIdentity.objectId,
      audiences: ["api://AzureADTokenExchange"],
    });
    try {
      const tokens = await signInRedeemAndRefresh(
        federatedCredential(
          new ManagedIdentityCredential({ clientId: userIdentity.clientId }),
        ),
        federatedClientId,
      );
      expect(tokens.refreshedToken).toBeTruthy();
    } finally {
      identity.control.removeFederatedCredential(
        federatedClientId,
        "user-assigned",
      );
    }
  });

  it("rejects an app without federated credentials with AADSTS70021", async () => {
    const answer = await tokenRequest(
      bareClientId,
      assertionForm(await managedIdentityToken()),
    );

    expectEntraError(answer, {
      status: 400,
      error: "invalid_request",
      code: 70021,
    });
    expect(answer.body.error_description).toContain(
      `Assertion Issuer: '${managedIdentity.issuer}'`,
    );
  });

  it("rejects a removed federated credential", async () => {
    expect(
      identity.control.removeFederatedCredential(
        federatedClientId,
        "function-app",
      ),
    ).toBe(true);
    try {
      const error = await captureError(
        signInRedeemAndRefresh(federatedCredential(), federatedClientId),
      );
      expect(error).toBeInstanceOf(ServerError);
      expect(String((error as ServerError).errorNo)).toBe("70021");
    } finally {
      identity.control.addFederatedCredential(
        federatedClientId,
        systemTrust("function-app"),
      );
    }
  });

  it("rejects an untrusted issuer with AADSTS700211", async () => {
    identity.control.removeFederatedCredential(
      federatedClientId,
      "function-app",
    );
    identity.control.addFederatedCredential(federatedClientId, {
      ...systemTrust("other-issuer"),
      issuer: `http://127.0.0.1:9/${managedIdentityTenant}/v2.0`,
    });
    try {
      const answer = await tokenRequest(
        federatedClientId,
        assertionForm(await managedIdentityToken()),
      );
      expectEntraError(answer, {
        status: 401,
        error: "invalid_client",
        code: 700211,
      });
    } finally {
      identity.control.removeFederatedCredential(
        federatedClientId,
        "other-issuer",
      );
      identity.control.addFederatedCredential(
        federatedClientId,
        systemTrust("function-app"),
      );
    }
  });

  it("rejects another subject with AADSTS700213", async () => {
    const userToken = await managedIdentityToken(
      new ManagedIdentityCredential({ clientId: userIdentity.clientId }),
    );
    const answer = await tokenRequest(
      federatedClientId,
      assertionForm(userToken),
    );

    expectEntraError(answer, {
      status: 401,
      error: "invalid_client",
      code: 700213,
    });
    expect(answer.body.error_description).toContain(userIdentity.objectId);
  });

  it("rejects another audience with AADSTS700212", async () => {
    const answer = await tokenRequest(
      federatedClientId,
      assertionForm(
        await managedIdentityToken(
          new ManagedIdentityCredential(),
          "api://AzureADTokenExchangeUSGov/.default",
        ),
      ),
    );

    expectEntraError(answer, {
      status: 401,
      error: "invalid_client",
      code: 700212,
    });
  });

  it("rejects an expired assertion with AADSTS700024", async () => {
    const token = await managedIdentityToken();
    clockOffset = 25 * 60 * 60_000;
    const answer = await tokenRequest(federatedClientId, assertionForm(token));

    expectEntraError(answer, {
      status: 401,
      error: "invalid_client",
      code: 700024,
    });
  });

  it("rejects a not yet valid assertion with AADSTS700024", async () => {
    const token = await managedIdentityToken();
    clockOffset = -60 * 60_000;
    const answer = await tokenRequest(federatedClientId, assertionForm(token));

    expectEntraError(answer, {
      status: 401,
      error: "invalid_client",
      code: 700024,
    });
  });

  it("rejects a forged signature with AADSTS700027", async () => {
    const forged = await resign(await managedIdentityToken(), otherRsaKey());
    const answer = await tokenRequest(federatedClientId, assertionForm(forged));

    expectEntraError(answer, {
      status: 401,
      error: "invalid_client",
      code: 700027,
    });
  });

  it("rejects a key id the issuer does not publish", async () => {
    const token = await managedIdentityToken();
    const forged = await new SignJWT(decodeJwt(token))
      .setProtectedHeader({ alg: "RS256", kid: "unknown-key" })
      .sign(otherRsaKey());
    const answer = await tokenRequest(federatedClientId, assertionForm(forged));

    expectEntraError(answer, {
      status: 401,
      error: "invalid_client",
      code: 700027,
    });
  });

  it("rejects a malformed assertion with AADSTS50027", async () => {
    const answer = await tokenRequest(
      federatedClientId,
      assertionForm("not.a-jwt"),
    );

    expectEntraError(answer, {
      status: 401,
      error: "invalid_client",
      code: 50027,
    });
  });

  it("rejects a wrong assertion type and a missing assertion", async () => {
    const token = await managedIdentityToken();
    const wrongType = await tokenRequest(federatedClientId, {
      client_assertion_type:
        "urn:ietf:params:oauth:client-assertion-type:saml2-bearer",
      client_assertion: token,
    });
    const missing = await tokenRequest(federatedClientId, {
      client_assertion_type:
        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
    });
    const both = await tokenRequest(bareClientId, {
      ...assertionForm(token),
      client_secret: "bare-secret",
    });

    expectEntraError(wrongType, {
      status: 400,
      error: "invalid_request",
      code: 9002313,
    });
    expectEntraError(missing, {
      status: 400,
      error: "invalid_request",
      code: 900144,
    });
    expectEntraError(both, {
      status: 400,
      error: "invalid_request",
      code: 9002313,
    });
  });

  it("rejects a secret the app lacks", async () => {
    const answer = await tokenRequest(federatedClientId, {
      client_secret: "guessed",
    });

    expectEntraError(answer, {
      status: 401,
      error: "invalid_client",
      code: 7000215,
    });
  });

  it("logs failures without the assertion", async () => {
    logLines.length = 0;
    const token = await managedIdentityToken(
      new ManagedIdentityCredential({ clientId: userIdentity.clientId }),
    );
    await tokenRequest(federatedClientId, assertionForm(token));

    expect(logLines.join("\n")).toContain("AADSTS700213");
    expect(logLines.join("\n")).not.toContain(token);
  });
});

describe("identity stand-in certificate assertions", () => {
  it("accepts MSAL's certificate assertion for both grants", async () => {
    const tokens = await signInRedeemAndRefresh(
      certificateCredential(registered),
      certificateClientId,
    );

    expect(decodeJwt(tokens.accessToken).appid).toBe(certificateClientId);
    expect(tokens.refreshedToken).toBeTruthy();
  });

  it("rejects an unregistered certificate with AADSTS700027", async () => {
    const error = await captureError(
      signInRedeemAndRefresh(
        certificateCredential(unregistered),
        certificateClientId,
      ),
    );

    expect(error).toBeInstanceOf(ServerError);
    expect(String((error as ServerError).errorNo)).toBe("700027");
    expect((error as ServerError).errorMessage).toContain(
      unregistered.thumbprintSha256,
    );
  });

  it("accepts a certificate once registered and not after removal", async () => {
    const { thumbprintSha256 } = identity.control.addCertificate(
      certificateClientId,
      unregistered.certificatePem,
    );
    expect(thumbprintSha256).toBe(unregistered.thumbprintSha256);
    const accepted = await signInRedeemAndRefresh(
      certificateCredential(unregistered),
      certificateClientId,
    );
    expect(accepted.refreshedToken).toBeTruthy();

    expect(
      identity.control.removeCertificate(certificateClientId, thumbprintSha256),
    ).toBe(true);
    const answer = await tokenRequest(
      certificateClientId,
      assertionForm(await certificateAssertion(unregistered, {})),
    );
    expectEntraError(answer, {
      status: 401,
      error: "invalid_client",
      code: 700027,
    });
  });

  it("rejects a signature of another key with AADSTS700027", async () => {
    const assertion = await certificateAssertion(
      registered,
      {},
      { key: otherRsaKey() },
    );
    const answer = await tokenRequest(
      certificateClientId,
      assertionForm(assertion),
    );

    expectEntraError(answer, {
      status: 401,
      error: "invalid_client",
      code: 700027,
    });
    expect(answer.body.error_description).toContain("signature validation");
  });

  it("rejects another audience with AADSTS700023", async () => {
    const assertion = await certificateAssertion(registered, {
      aud: "https://login.microsoftonline.com/organizations/oauth2/v2.0/token",
    });
    const answer = await tokenRequest(
      certificateClientId,
      assertionForm(assertion),
    );

    expectEntraError(answer, {
      status: 401,
      error: "invalid_client",
      code: 700023,
    });
  });

  it("accepts the tenant's token endpoint as audience", async () => {
    const assertion = await certificateAssertion(registered, {
      aud: `${identity.url}/${account.tenantId}/oauth2/v2.0/token`,
    });
    const answer = await tokenRequest(
      certificateClientId,
      assertionForm(assertion),
      account.tenantId,
    );

    // The client is authenticated; the fake refresh token fails next.
    expect(answer.body.error).toBe("invalid_grant");
  });

  it("rejects another subject with AADSTS700021", async () => {
    const assertion = await certificateAssertion(registered, {
      sub: bareClientId,
    });
    const answer = await tokenRequest(
      certificateClientId,
      assertionForm(assertion),
    );

    expectEntraError(answer, {
      status: 401,
      error: "invalid_client",
      code: 700021,
    });
  });

  it("rejects an expired certificate assertion with AADSTS700024", async () => {
    const now = Math.floor(Date.now() / 1000);
    const assertion = await certificateAssertion(registered, {
      nbf: now - 3600,
      exp: now - 1800,
    });
    const answer = await tokenRequest(
      certificateClientId,
      assertionForm(assertion),
    );

    expectEntraError(answer, {
      status: 401,
      error: "invalid_client",
      code: 700024,
    });
  });

  it("rejects an assertion without jti or exp with AADSTS50027", async () => {
    const withoutJti = await certificateAssertion(registered, {
      jti: undefined,
    });
    const withoutExp = await certificateAssertion(registered, {
      exp: undefined,
    });

    for (const assertion of [withoutJti, withoutExp]) {
      const answer = await tokenRequest(
        certificateClientId,
        assertionForm(assertion),
      );
      expectEntraError(answer, {
        status: 401,
        error: "invalid_client",
        code: 50027,
      });
    }
  });

  it("rejects an assertion that names no certificate", async () => {
    const now = Math.floor(Date.now() / 1000);
    const assertion = await new SignJWT({
      aud: `${identity.url}/organizations/oauth2/v2.0/token`,
      iss: certificateClientId,
      sub: certificateClientId,
      jti: randomUUID(),
      exp: now + 600,
    })
      .setProtectedHeader({ alg: "RS256" })
      .sign(otherRsaKey());
    const answer = await tokenRequest(
      certificateClientId,
      assertionForm(assertion),
    );

    expectEntraError(answer, {
      status: 401,
      error: "invalid_client",
      code: 50027,
    });
  });

  it("rejects an expired registered certificate", async () => {
    clockOffset = 400 * 24 * 60 * 60_000;
    const answer = await tokenRequest(
      certificateClientId,
      assertionForm(await certificateAssertion(registered, {})),
    );

    expectEntraError(answer, {
      status: 401,
      error: "invalid_client",
      code: 700027,
    });
    expect(answer.body.error_description).toContain("expired");
  });
});

describe("identity stand-in credential control", () => {
  it("registers and removes credentials over HTTP", async () => {
    const remote = connectIdentityControl(identity.url);
    await remote.addFederatedCredential(bareClientId, systemTrust("over-http"));
    const accepted = await tokenRequest(
      bareClientId,
      assertionForm(await managedIdentityToken()),
    );
    expect(accepted.body.error).toBe("invalid_grant");

    expect(
      await remote.removeFederatedCredential(bareClientId, "over-http"),
    ).toBe(true);
    expect(
      await remote.removeFederatedCredential(bareClientId, "over-http"),
    ).toBe(false);
    const { thumbprintSha256 } = await remote.addCertificate(
      bareClientId,
      unregistered.certificatePem,
    );
    expect(thumbprintSha256).toBe(unregistered.thumbprintSha256);
    expect(await remote.removeCertificate(bareClientId, thumbprintSha256)).toBe(
      true,
    );
  });

  it("rejects invalid federated credentials", () => {
    const valid = systemTrust("checked");
    expect(() =>
      identity.control.addFederatedCredential(bareClientId, {
        ...valid,
        issuer: "https://login.microsoftonline.com/tenant/v2.0",
      }),
    ).toThrow(/127\.0\.0\.1 or localhost/);
    expect(() =>
      identity.control.addFederatedCredential(bareClientId, {
        ...valid,
        audiences: ["api://AzureADTokenExchange", "api://other"],
      }),
    ).toThrow(/exactly one audience/);
    expect(() =>
      identity.control.addFederatedCredential(randomUUID(), valid),
    ).toThrow(/no app with client id/);
    expect(() =>
      identity.control.addFederatedCredential(
        federatedClientId,
        systemTrust("function-app"),
      ),
    ).toThrow(/already has/);
  });

  it("rejects an invalid certificate over HTTP", async () => {
    const remote = connectIdentityControl(identity.url);
    const error = await captureError(
      remote.addCertificate(bareClientId, "not a certificate"),
    );

    expect(error.message).toContain("HTTP 400");
  });
});

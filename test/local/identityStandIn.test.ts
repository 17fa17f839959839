import { X509Certificate } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

import {
  ConfidentialClientApplication,
  CryptoProvider,
  InteractionRequiredAuthError,
  ServerError,
} from "@azure/msal-node";
import type { AuthenticationResult, Configuration } from "@azure/msal-node";
import { createRemoteJWKSet, decodeJwt, importSPKI, jwtVerify } from "jose";
import {
  afterAll,
  afterEach,
  beforeAll,
  describe,
  expect,
  it,
  vi,
} from "vitest";

import { connectIdentityControl } from "../../local/identity/controlClient.js";
import { localMsalAuthorityOptions } from "../../local/identity/msalOptions.js";
import { startIdentityStandIn } from "../../local/identity/server.js";
import type {
  IdentityStandIn,
  IdentityStandInOptions,
} from "../../local/identity/server.js";
import {
  ensureLocalCertificateAuthority,
  issueServerCertificate,
} from "../../local/tls.js";
import type { LocalCertificateAuthority } from "../../local/tls.js";

const clientId = "3f1c5e2a-8b4d-4c6e-9a7f-1d2e3f4a5b6c";
const clientSecret = "local-client-secret";
const redirectUri = "http://localhost:7071/api/auth/callback";
const mailScopes = [
  "https://outlook.office.com/IMAP.AccessAsUser.All",
  "https://outlook.office.com/SMTP.Send",
];
const requestScopes = [...mailScopes, "offline_access"];
const knownAccount = {
  username: "ada@contoso.example",
  tenantId: "7a3e9c1b-2d4f-4e6a-8b0c-1f2e3d4c5b6a",
  objectId: "c4b3a291-0f1e-4d2c-9b8a-7e6f5d4c3b2a",
  name: "Ada Lovelace",
  email: "ada.lovelace@contoso.example",
};

interface RecordedRequest {
  url: string;
  method: string;
  status?: number;
}

interface SignInResult {
  code: string;
  verifier: string;
  state: string;
  nonce: string;
  redirect: URL;
  authorizeUrl: string;
}

let certificateAuthority: LocalCertificateAuthority;
let standIn: IdentityStandIn;
let clockOffset = 0;
const logLines: string[] = [];
const recordedRequests: RecordedRequest[] = [];
const temporaryDirectories: string[] = [];
const cryptoProvider = new CryptoProvider();

beforeAll(async () => {
  // The same CA that vitest.config.ts names in NODE_EXTRA_CA_CERTS.
  certificateAuthority = ensureLocalCertificateAuthority(
    fileURLToPath(new URL("../../.local/tls", import.meta.url)),
  );
  standIn = await startIdentityStandIn({
    certificateAuthority,
    clients: [{ clientId, clientSecret, redirectUris: [redirectUri] }],
    accounts: [knownAccount],
    now: () => Date.now() + clockOffset,
    log: (line) => logLines.push(line),
  });

  // Records every fetch in this worker, MSAL's included, before it is sent.
  const originalFetch = globalThis.fetch;
  vi.spyOn(globalThis, "fetch").mockImplementation(async (input, init) => {
    const url = input instanceof Request ? input.url : String(input);
    const entry: RecordedRequest = { url, method: init?.method ?? "GET" };
    recordedRequests.push(entry);
    const response = await originalFetch(input, init);
    entry.status = response.status;
    return response;
  });
});

afterEach(() => {
  clockOffset = 0;
  standIn.control.reset();
});

afterAll(async () => {
  vi.restoreAllMocks();
  await standIn.close();
  for (const directory of temporaryDirectories) {
    await rm(directory, { recursive: true, force: true });
  }
});

function createApplication(
  authority = `${standIn.url}/organizations`,
  secret = clientSecret,
  id = clientId,
): ConfidentialClientApplication {
  const configuration: Configuration = {
    auth: {
      clientId: id,
      clientSecret: secret,
      authority,
      ...localMsalAuthorityOptions(standIn.url),
    },
  };
  return new ConfidentialClientApplication(configuration);
}

async function signIn(
  application: ConfidentialClientApplication,
  username = knownAccount.username,
  scopes = requestScopes,
): Promise<SignInResult> {
  const { verifier, challenge } = await cryptoProvider.generatePkceCodes();
  const state = cryptoProvider.createNewGuid();
  const nonce = cryptoProvider.createNewGuid();
  const authorizeUrl = await application.getAuthCodeUrl({
    scopes,
    redirectUri,
    codeChallenge: challenge,
    codeChallengeMethod: "S256",
    state,
    nonce,
    loginHint: username,
    responseMode: "query",
  });
  const { location } = await standIn.control.signIn({ authorizeUrl, username });
  const redirect = new URL(location);
  return {
    code: redirect.searchParams.get("code") ?? "",
    verifier,
    state,
    nonce,
    redirect,
    authorizeUrl,
  };
}

async function redeem(
  application: ConfidentialClientApplication,
  signInResult: SignInResult,
  codeVerifier = signInResult.verifier,
): Promise<AuthenticationResult> {
  return application.acquireTokenByCode(
    {
      code: signInResult.code,
      codeVerifier,
      redirectUri,
      scopes: requestScopes,
      nonce: signInResult.nonce,
      state: signInResult.state,
    },
    {
      code: signInResult.code,
      state: signInResult.redirect.searchParams.get("state") ?? "",
    },
  );
}

function cachedRefreshTokens(
  application: ConfidentialClientApplication,
): string[] {
  const cache = JSON.parse(application.getTokenCache().serialize()) as {
    RefreshToken?: Record<string, { secret: string }>;
  };
  return Object.values(cache.RefreshToken ?? {}).map((entry) => entry.secret);
}

async function captureError(call: Promise<unknown>): Promise<Error> {
  try {
    await call;
  } catch (error) {
    return error as Error;
  }
  throw new Error("Expected the call to fail, but it succeeded");
}

/** Returns the AADSTS number that MSAL reads from error_codes. */
function errorNumber(error: Error): string {
  return String((error as ServerError).errorNo);
}

async function postForm(
  url: string,
  form: Record<string, string>,
): Promise<Response> {
  return fetch(url, {
    method: "POST",
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams(form).toString(),
    redirect: "manual",
  });
}

async function authorizeUrlFor(
  parameters: Record<string, string>,
  tenant = "organizations",
): Promise<string> {
  const { challenge } = await cryptoProvider.generatePkceCodes();
  const url = new URL(`${standIn.url}/${tenant}/oauth2/v2.0/authorize`);
  const defaults: Record<string, string> = {
    client_id: clientId,
    redirect_uri: redirectUri,
    response_type: "code",
    response_mode: "query",
    scope: requestScopes.join(" "),
    code_challenge: challenge,
    code_challenge_method: "S256",
    state: "state-1",
  };
  for (const [name, value] of Object.entries({ ...defaults, ...parameters })) {
    if (value !== "") {
      url.searchParams.set(name, value);
    }
  }
  return url.toString();
}

describe("local TLS", () => {
  it("issues a server certificate for 127.0.0.1 and localhost", () => {
    const certificate = new X509Certificate(
      issueServerCertificate(certificateAuthority, ["127.0.0.1", "localhost"])
        .certificatePem,
    );
    const authority = new X509Certificate(certificateAuthority.certificatePem);
    expect(authority.ca).toBe(true);
    expect(certificate.ca).toBe(false);
    expect(certificate.checkIP("127.0.0.1")).toBe("127.0.0.1");
    expect(certificate.checkHost("localhost")).toBe("localhost");
    expect(certificate.verify(authority.publicKey)).toBe(true);
    expect(certificate.keyUsage).toEqual(["1.3.6.1.5.5.7.3.1"]);
  });

  it("reuses the CA files on a second call", async () => {
    const directory = await mkdtemp(path.join(tmpdir(), "identity-ca-"));
    temporaryDirectories.push(directory);
    const first = ensureLocalCertificateAuthority(directory);
    const second = ensureLocalCertificateAuthority(directory);
    expect(second.certificatePem).toBe(first.certificatePem);
    expect(second.privateKeyPem).toBe(first.privateKeyPem);
    expect(await readFile(path.join(directory, "ca.pem"), "utf8")).toBe(
      first.certificatePem,
    );
  });

  it("worker process trusts the local CA", async () => {
    expect(process.env.NODE_EXTRA_CA_CERTS).toBe(
      certificateAuthority.certificatePath,
    );
    // Plain fetch with Node's default trust store, no custom agent.
    const response = await fetch(
      `${standIn.url}/common/v2.0/.well-known/openid-configuration`,
    );
    expect(response.status).toBe(200);
  });
});

describe("identity stand-in through MSAL", () => {
  it("signs in, redeems the code and refreshes", async () => {
    recordedRequests.length = 0;
    const application = createApplication();
    const signInResult = await signIn(application);
    expect(signInResult.redirect.origin + signInResult.redirect.pathname).toBe(
      redirectUri,
    );
    expect(signInResult.redirect.searchParams.get("state")).toBe(
      signInResult.state,
    );

    const result = await redeem(application, signInResult);
    expect(result.scopes).toEqual(mailScopes);
    expect(result.tenantId).toBe(knownAccount.tenantId);
    expect(result.uniqueId).toBe(knownAccount.objectId);
    expect(result.account?.username).toBe(knownAccount.username);
    expect(result.account?.homeAccountId).toBe(
      `${knownAccount.objectId}.${knownAccount.tenantId}`,
    );
    const idClaims = result.idTokenClaims as Record<string, unknown>;
    expect(idClaims.iss).toBe(`${standIn.url}/${knownAccount.tenantId}/v2.0`);
    expect(idClaims.aud).toBe(clientId);
    expect(idClaims.tid).toBe(knownAccount.tenantId);
    expect(idClaims.oid).toBe(knownAccount.objectId);
    expect(idClaims.preferred_username).toBe(knownAccount.username);
    expect(idClaims.email).toBe(knownAccount.email);
    expect(idClaims.name).toBe(knownAccount.name);
    expect(idClaims.nonce).toBe(signInResult.nonce);
    expect(idClaims.ver).toBe("2.0");
    expect(typeof idClaims.sub).toBe("string");
    const lifetime = (result.expiresOn?.getTime() ?? 0) - Date.now();
    expect(lifetime).toBeGreaterThan(3500 * 1000);
    expect(lifetime).toBeLessThan(5400 * 1000);

    const [firstRefreshToken] = cachedRefreshTokens(application);
    expect(firstRefreshToken).toMatch(/^1\.[A-Za-z0-9_-]+$/);

    const refreshApplication = createApplication(
      `${standIn.url}/${knownAccount.tenantId}`,
    );
    const refreshed = await refreshApplication.acquireTokenByRefreshToken({
      refreshToken: firstRefreshToken ?? "",
      scopes: mailScopes,
      forceCache: true,
    });
    expect(refreshed?.accessToken).toBeTruthy();
    expect(refreshed?.accessToken).not.toBe(result.accessToken);
    expect(refreshed?.scopes).toEqual(mailScopes);
    const rotated = cachedRefreshTokens(refreshApplication);
    expect(rotated).toHaveLength(1);
    expect(rotated[0]).not.toBe(firstRefreshToken);

    // The old refresh token stays valid after rotation, as in Entra ID.
    const again = await createApplication(
      `${standIn.url}/${knownAccount.tenantId}`,
    ).acquireTokenByRefreshToken({
      refreshToken: firstRefreshToken ?? "",
      scopes: mailScopes,
      forceCache: true,
    });
    expect(again?.accessToken).toBeTruthy();

    const standInHost = new URL(standIn.url).host;
    expect(recordedRequests.length).toBeGreaterThan(0);
    expect(
      recordedRequests.map((request) => new URL(request.url).host),
    ).toEqual(recordedRequests.map(() => standInHost));
    const tokenRequests = recordedRequests.filter((request) =>
      request.url.includes("/oauth2/v2.0/token"),
    );
    expect(
      tokenRequests.map((request) => new URL(request.url).pathname),
    ).toEqual([
      "/organizations/oauth2/v2.0/token",
      `/${knownAccount.tenantId}/oauth2/v2.0/token`,
      `/${knownAccount.tenantId}/oauth2/v2.0/token`,
    ]);
    expect(standIn.control.counts()).toEqual({
      token: 3,
      authorizationCode: 1,
      refreshToken: 2,
      authorize: 1,
      metadata: 0,
      jwks: 0,
    });
  });

  it("access token verifies against the JWKS", async () => {
    const application = createApplication();
    const result = await redeem(application, await signIn(application));
    const keys = createRemoteJWKSet(new URL(standIn.jwksUrl));
    const { payload, protectedHeader } = await jwtVerify(
      result.accessToken,
      keys,
      {
        audience: "https://outlook.office.com",
        issuer: `https://sts.windows.net/${knownAccount.tenantId}/`,
        algorithms: ["RS256"],
      },
    );
    expect(protectedHeader.kid).toBe(standIn.keyId);
    expect(payload.scp).toBe("IMAP.AccessAsUser.All SMTP.Send");
    expect(payload.upn).toBe(knownAccount.username);
    expect(payload.preferred_username).toBe(knownAccount.username);
    expect(payload.unique_name).toBe(knownAccount.username);
    expect(payload.tid).toBe(knownAccount.tenantId);
    expect(payload.oid).toBe(knownAccount.objectId);
    expect(payload.azp).toBe(clientId);
    expect(payload.appid).toBe(clientId);
    const lifetime = Number(payload.exp) - Number(payload.iat);
    expect(lifetime).toBeGreaterThanOrEqual(3600);
    expect(lifetime).toBeLessThanOrEqual(5399);
    expect(payload.nbf).toBe(payload.iat);
    expect(standIn.control.counts().jwks).toBe(1);

    const publicKey = await importSPKI(standIn.publicKeyPem(), "RS256");
    await expect(
      jwtVerify(result.accessToken, publicKey),
    ).resolves.toBeTruthy();
    await expect(
      jwtVerify(result.idToken, keys, { audience: clientId }),
    ).resolves.toBeTruthy();
  });

  it("rejects a reused code", async () => {
    const application = createApplication();
    const signInResult = await signIn(application);
    await redeem(application, signInResult);
    const error = await captureError(redeem(createApplication(), signInResult));
    expect(error).toBeInstanceOf(ServerError);
    expect((error as ServerError).errorCode).toBe("invalid_grant");
    expect(errorNumber(error)).toBe("54005");
    expect(logLines.at(-1)).toMatch(
      /^Token request \(authorization_code\) for client 3f1c5e2a-\S+ failed with invalid_grant AADSTS54005 \(trace id /,
    );
  });

  it("rejects a wrong code verifier", async () => {
    const application = createApplication();
    const signInResult = await signIn(application);
    const { verifier: otherVerifier } =
      await cryptoProvider.generatePkceCodes();
    const error = await captureError(
      redeem(application, signInResult, otherVerifier),
    );
    expect(error).toBeInstanceOf(ServerError);
    expect((error as ServerError).errorCode).toBe("invalid_grant");
    expect(errorNumber(error)).toBe("501481");
  });

  it("rejects an expired code", async () => {
    const application = createApplication();
    const signInResult = await signIn(application);
    clockOffset = 10 * 60 * 1000 + 1000;
    const error = await captureError(redeem(application, signInResult));
    expect((error as ServerError).errorCode).toBe("invalid_grant");
    expect(errorNumber(error)).toBe("70008");
  });

  it("rejects a wrong client secret", async () => {
    const signInResult = await signIn(createApplication());
    const error = await captureError(
      redeem(createApplication(undefined, "wrong-secret"), signInResult),
    );
    expect(error).toBeInstanceOf(ServerError);
    expect((error as ServerError).errorCode).toBe("invalid_client");
    expect(errorNumber(error)).toBe("7000215");
    expect(recordedRequests.at(-1)?.status).toBe(401);
  });

  it("rejects an unknown client id", async () => {
    const signInResult = await signIn(createApplication());
    const unknownId = "00000000-1111-2222-3333-444444444444";
    const error = await captureError(
      redeem(
        createApplication(undefined, clientSecret, unknownId),
        signInResult,
      ),
    );
    expect((error as ServerError).errorCode).toBe("unauthorized_client");
    expect(errorNumber(error)).toBe("700016");
  });

  it("rejects a code redeemed at another tenant", async () => {
    const application = createApplication();
    const signInResult = await signIn(application);
    const otherTenant = createApplication(
      `${standIn.url}/11111111-2222-3333-4444-555555555555`,
    );
    const error = await captureError(redeem(otherTenant, signInResult));
    expect((error as ServerError).errorCode).toBe("invalid_grant");
    expect(errorNumber(error)).toBe("700005");
  });

  it("fails refresh for a revoked account", async () => {
    const application = createApplication();
    await redeem(application, await signIn(application));
    const [refreshToken] = cachedRefreshTokens(application);
    standIn.control.revokeAccount(knownAccount.username);
    const error = await captureError(
      createApplication().acquireTokenByRefreshToken({
        refreshToken: refreshToken ?? "",
        scopes: mailScopes,
      }),
    );
    expect(error).toBeInstanceOf(ServerError);
    expect((error as ServerError).errorCode).toBe("invalid_grant");
    expect(errorNumber(error)).toBe("50173");

    // A new sign-in after the revocation gets a working refresh token.
    const newApplication = createApplication();
    await redeem(newApplication, await signIn(newApplication));
    const [newRefreshToken] = cachedRefreshTokens(newApplication);
    const refreshed = await createApplication().acquireTokenByRefreshToken({
      refreshToken: newRefreshToken ?? "",
      scopes: mailScopes,
    });
    expect(refreshed?.accessToken).toBeTruthy();
  });

  it("rejects a malformed refresh token", async () => {
    const error = await captureError(
      createApplication().acquireTokenByRefreshToken({
        refreshToken: "not-a-refresh-token",
        scopes: mailScopes,
      }),
    );
    expect((error as ServerError).errorCode).toBe("invalid_grant");
    expect(errorNumber(error)).toBe("9002313");
  });

  it("requires consent for a scope not granted", async () => {
    const application = createApplication();
    await redeem(application, await signIn(application));
    const [refreshToken] = cachedRefreshTokens(application);
    const error = await captureError(
      createApplication().acquireTokenByRefreshToken({
        refreshToken: refreshToken ?? "",
        scopes: ["https://outlook.office.com/Mail.Send"],
      }),
    );
    expect(error).toBeInstanceOf(InteractionRequiredAuthError);
    expect((error as InteractionRequiredAuthError).errorCode).toBe(
      "invalid_grant",
    );
    expect((error as InteractionRequiredAuthError).subError).toBe(
      "consent_required",
    );
    expect(errorNumber(error)).toBe("65001");
  });

  it("rejects scopes of two resources at the token endpoint", async () => {
    const application = createApplication();
    await redeem(application, await signIn(application));
    const [refreshToken] = cachedRefreshTokens(application);
    const error = await captureError(
      createApplication().acquireTokenByRefreshToken({
        refreshToken: refreshToken ?? "",
        scopes: [...mailScopes, "https://graph.microsoft.com/User.Read"],
      }),
    );
    expect((error as ServerError).errorCode).toBe("invalid_scope");
    expect(errorNumber(error)).toBe("28000");
  });

  it("surfaces a 503 fault as ServerError", async () => {
    const application = createApplication();
    const signInResult = await signIn(application);
    standIn.control.failNext({
      endpoint: "token",
      grantType: "authorization_code",
      status: 503,
      error: "temporarily_unavailable",
      aadsts: 90033,
      description: "A transient error has occurred. Please try again.",
      retryAfterSeconds: 7,
    });
    const error = await captureError(redeem(application, signInResult));
    expect(error).toBeInstanceOf(ServerError);
    expect((error as ServerError).errorCode).toBe("temporarily_unavailable");
    expect(errorNumber(error)).toBe("90033");
    expect(recordedRequests.at(-1)?.status).toBe(503);

    // The fault was used up, so the same code still redeems.
    const result = await redeem(createApplication(), signInResult);
    expect(result.accessToken).toBeTruthy();
  });

  it("applies a fault only to its grant type", async () => {
    const application = createApplication();
    const signInResult = await signIn(application);
    standIn.control.failNext({
      endpoint: "token",
      grantType: "refresh_token",
      error: "invalid_grant",
      aadsts: 50173,
    });
    await redeem(application, signInResult);
    const [refreshToken] = cachedRefreshTokens(application);
    const error = await captureError(
      createApplication().acquireTokenByRefreshToken({
        refreshToken: refreshToken ?? "",
        scopes: mailScopes,
      }),
    );
    expect(errorNumber(error)).toBe("50173");
  });

  it("omits the refresh token when told", async () => {
    const application = createApplication();
    const signInResult = await signIn(application);
    standIn.control.omitRefreshTokenNext();
    const result = await redeem(application, signInResult);
    expect(result.accessToken).toBeTruthy();
    expect(cachedRefreshTokens(application)).toEqual([]);
  });

  it("issues no refresh token without offline_access", async () => {
    const { verifier, challenge } = await cryptoProvider.generatePkceCodes();
    const authorizeUrl = await authorizeUrlFor({
      scope: `openid profile ${mailScopes.join(" ")}`,
      code_challenge: challenge,
    });
    const { location } = await standIn.control.signIn({
      authorizeUrl,
      username: knownAccount.username,
    });
    const code = new URL(location).searchParams.get("code") ?? "";

    const tokenResponse = await postForm(
      `${standIn.url}/organizations/oauth2/v2.0/token`,
      {
        grant_type: "authorization_code",
        client_id: clientId,
        client_secret: clientSecret,
        code,
        code_verifier: verifier,
        redirect_uri: redirectUri,
        scope: mailScopes.join(" "),
      },
    );
    const body = (await tokenResponse.json()) as Record<string, unknown>;

    expect(tokenResponse.status).toBe(200);
    expect(body.refresh_token).toBeUndefined();
    expect(body.id_token).toBeTruthy();
    expect(body.scope).toBe(mailScopes.join(" "));
    expect(body.token_type).toBe("Bearer");
    expect(body.ext_expires_in).toBe(body.expires_in);

    const claims = decodeJwt(String(body.access_token));
    expect(Number(claims.exp) - Number(claims.iat)).toBe(body.expires_in);
    expect(body.client_info).toBeUndefined();
  });

  it("grants exactly the scopes it is told", async () => {
    const application = createApplication();
    const signInResult = await signIn(application);
    standIn.control.grantScopesNext([
      "https://outlook.office.com/IMAP.AccessAsUser.All",
    ]);
    const result = await redeem(application, signInResult);
    expect(result.scopes).toEqual([
      "https://outlook.office.com/IMAP.AccessAsUser.All",
    ]);
    expect(decodeJwt(result.accessToken).scp).toBe("IMAP.AccessAsUser.All");
  });

  it("discovers metadata over the network", async () => {
    recordedRequests.length = 0;
    const configuration: Configuration = {
      auth: {
        clientId,
        clientSecret,
        authority: `${standIn.url}/organizations`,
        knownAuthorities: [new URL(standIn.url).host],
      },
    };
    const application = new ConfidentialClientApplication(configuration);
    const signInResult = await signIn(application);
    const result = await redeem(application, signInResult);
    expect(result.accessToken).toBeTruthy();
    expect(standIn.control.counts().metadata).toBe(1);
    const paths = recordedRequests.map(
      (request) => new URL(request.url).pathname,
    );
    expect(paths).toEqual([
      "/organizations/v2.0/.well-known/openid-configuration",
      "/organizations/oauth2/v2.0/token",
    ]);
    expect(
      recordedRequests.every(
        (request) => new URL(request.url).host === new URL(standIn.url).host,
      ),
    ).toBe(true);
  });
});

describe("identity stand-in endpoints", () => {
  it("serves OpenID configuration per tenant", async () => {
    const common = (await (
      await fetch(`${standIn.url}/common/v2.0/.well-known/openid-configuration`)
    ).json()) as Record<string, unknown>;
    expect(common.issuer).toBe(`${standIn.url}/{tenantid}/v2.0`);
    expect(common.authorization_endpoint).toBe(
      `${standIn.url}/common/oauth2/v2.0/authorize`,
    );
    expect(common.token_endpoint).toBe(
      `${standIn.url}/common/oauth2/v2.0/token`,
    );
    expect(common.jwks_uri).toBe(`${standIn.url}/common/discovery/v2.0/keys`);

    const byDomain = (await (
      await fetch(
        `${standIn.url}/contoso.example/v2.0/.well-known/openid-configuration`,
      )
    ).json()) as Record<string, unknown>;
    expect(byDomain.issuer).toBe(
      `${standIn.url}/${knownAccount.tenantId}/v2.0`,
    );
    expect(byDomain.token_endpoint).toBe(
      `${standIn.url}/${knownAccount.tenantId}/oauth2/v2.0/token`,
    );

    const invalid = await fetch(
      `${standIn.url}/not_a_tenant/v2.0/.well-known/openid-configuration`,
    );
    expect(invalid.status).toBe(400);
    const invalidBody = (await invalid.json()) as Record<string, unknown>;
    expect(invalidBody.error_codes).toEqual([90002]);
    expect(standIn.control.counts().metadata).toBe(3);
  });

  it("serves instance discovery for this host only", async () => {
    const authorizationEndpoint = `${standIn.url}/organizations/oauth2/v2.0/authorize`;
    const response = await fetch(
      `${standIn.url}/common/discovery/instance?api-version=1.1&authorization_endpoint=${encodeURIComponent(authorizationEndpoint)}`,
    );
    const body = (await response.json()) as {
      tenant_discovery_endpoint: string;
      metadata: unknown[];
    };
    const host = new URL(standIn.url).host;
    expect(body.tenant_discovery_endpoint).toBe(
      `${standIn.url}/organizations/v2.0/.well-known/openid-configuration`,
    );
    expect(body.metadata).toEqual([
      { preferred_network: host, preferred_cache: host, aliases: [host] },
    ]);

    const foreign = await fetch(
      `${standIn.url}/common/discovery/instance?authorization_endpoint=${encodeURIComponent("https://127.0.0.2/common/oauth2/v2.0/authorize")}`,
    );
    expect(foreign.status).toBe(400);
    expect(((await foreign.json()) as Record<string, unknown>).error).toBe(
      "invalid_instance",
    );
  });

  it("publishes the signing key in the JWKS", async () => {
    const body = (await (await fetch(standIn.jwksUrl)).json()) as {
      keys: Array<Record<string, unknown>>;
    };
    expect(body.keys).toHaveLength(1);
    const [key] = body.keys;
    expect(key?.kid).toBe(standIn.keyId);
    expect(key?.use).toBe("sig");
    expect(key?.alg).toBe("RS256");
    expect(key?.kty).toBe("RSA");
    expect(typeof key?.n).toBe("string");
    expect(key?.e).toBe("AQAB");
  });

  it("returns Entra-shaped token errors", async () => {
    const response = await postForm(
      `${standIn.url}/organizations/oauth2/v2.0/token`,
      {
        grant_type: "authorization_code",
        client_id: clientId,
        client_secret: clientSecret,
        code: "unknown-code",
        code_verifier: "x".repeat(43),
        redirect_uri: redirectUri,
      },
    );
    expect(response.status).toBe(400);
    expect(response.headers.get("cache-control")).toBe("no-store");
    const body = (await response.json()) as Record<string, unknown>;
    expect(body.error).toBe("invalid_grant");
    expect(body.error_codes).toEqual([9002313]);
    expect(String(body.error_description)).toMatch(/^AADSTS9002313: /);
    expect(String(body.error_description)).toContain(
      `Trace ID: ${String(body.trace_id)}`,
    );
    expect(body.timestamp).toMatch(/^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}Z$/);
    expect(body.correlation_id).toMatch(/^[0-9a-f-]{36}$/);
  });

  it("answers 429 with Retry-After", async () => {
    standIn.control.failNext({
      endpoint: "token",
      status: 429,
      error: "temporarily_unavailable",
      retryAfterSeconds: 30,
      count: 2,
    });
    const form = {
      grant_type: "refresh_token",
      client_id: clientId,
      client_secret: clientSecret,
      refresh_token: "x",
    };
    const url = `${standIn.url}/organizations/oauth2/v2.0/token`;
    const first = await postForm(url, form);
    const second = await postForm(url, form);
    const third = await postForm(url, form);
    expect(first.status).toBe(429);
    expect(first.headers.get("retry-after")).toBe("30");
    expect(second.status).toBe(429);
    expect(third.status).toBe(400);
  });

  it("rejects a GET on the token endpoint", async () => {
    const response = await fetch(`${standIn.url}/common/oauth2/v2.0/token`);
    expect(response.status).toBe(400);
    expect(
      ((await response.json()) as Record<string, unknown>).error_codes,
    ).toEqual([900561]);
  });
});

describe("identity stand-in sign-in page", () => {
  it("renders with the login hint and a strict CSP", async () => {
    const response = await fetch(
      await authorizeUrlFor({ login_hint: knownAccount.username }),
      { redirect: "manual" },
    );
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toBe(
      "text/html; charset=utf-8",
    );
    const policy = response.headers.get("content-security-policy") ?? "";
    expect(policy).toContain("default-src 'none'");
    expect(policy).toContain("style-src 'self'");
    expect(policy).toContain("form-action 'self' http://localhost:7071");
    const html = await response.text();
    expect(html).toContain(`value="${knownAccount.username}"`);
    expect(html).toContain(">Sign in</button>");
    expect(html).toContain(">Cancel</button>");
    expect(html).not.toMatch(/<script/i);
    // Every asset and form target is on the stand-in itself.
    const references = [...html.matchAll(/(?:href|src|action)="([^"]*)"/g)].map(
      (match) => match[1],
    );
    expect(references).toEqual([
      "/_static/sign-in.css",
      "/organizations/login",
    ]);

    const stylesheet = await fetch(`${standIn.url}/_static/sign-in.css`);
    expect(stylesheet.headers.get("content-type")).toBe(
      "text/css; charset=utf-8",
    );
    expect(standIn.control.counts().authorize).toBe(1);
  });

  it("redirects with code and state after sign-in", async () => {
    const page = await fetch(
      await authorizeUrlFor({ login_hint: knownAccount.username }),
      { redirect: "manual" },
    );
    const html = await page.text();
    const action = /<form method="post" action="([^"]+)"/.exec(html)?.[1] ?? "";
    const requestId = /name="request_id" value="([^"]+)"/.exec(html)?.[1] ?? "";
    expect(action).toBe("/organizations/login");

    const response = await postForm(`${standIn.url}${action}`, {
      request_id: requestId,
      username: "grace.hopper@fabrikam.example",
      action: "sign_in",
    });
    expect(response.status).toBe(302);
    const location = new URL(response.headers.get("location") ?? "");
    expect(`${location.origin}${location.pathname}`).toBe(redirectUri);
    expect(location.searchParams.get("code")).toBeTruthy();
    expect(location.searchParams.get("state")).toBe("state-1");

    // The pending request is single use.
    const replay = await postForm(`${standIn.url}${action}`, {
      request_id: requestId,
      username: "x@y.example",
      action: "sign_in",
    });
    expect(replay.status).toBe(400);
    expect(await replay.text()).toContain("AADSTS50089");
  });

  it("redirects with access_denied on cancel", async () => {
    const page = await fetch(await authorizeUrlFor({}), { redirect: "manual" });
    const requestId =
      /name="request_id" value="([^"]+)"/.exec(await page.text())?.[1] ?? "";
    const response = await postForm(`${standIn.url}/organizations/login`, {
      request_id: requestId,
      username: "",
      action: "cancel",
    });
    expect(response.status).toBe(302);
    const location = new URL(response.headers.get("location") ?? "");
    expect(location.searchParams.get("error")).toBe("access_denied");
    expect(location.searchParams.get("error_description")).toMatch(
      /^AADSTS65004: /,
    );
    expect(location.searchParams.get("state")).toBe("state-1");
    expect(location.searchParams.get("code")).toBeNull();
  });

  it("asks again for an invalid address", async () => {
    const page = await fetch(await authorizeUrlFor({}), { redirect: "manual" });
    const requestId =
      /name="request_id" value="([^"]+)"/.exec(await page.text())?.[1] ?? "";
    const response = await postForm(`${standIn.url}/organizations/login`, {
      request_id: requestId,
      username: "not an address",
      action: "sign_in",
    });
    expect(response.status).toBe(200);
    const html = await response.text();
    expect(html).toContain("AADSTS90101");
    expect(html).toContain(`value="${requestId}"`);
  });

  it("shows an error page for a wrong redirect URI", async () => {
    const response = await fetch(
      await authorizeUrlFor({ redirect_uri: `${redirectUri}/` }),
      { redirect: "manual" },
    );
    expect(response.status).toBe(400);
    expect(response.headers.get("location")).toBeNull();
    expect(await response.text()).toContain("AADSTS50011");
    await expect(
      standIn.control.signIn({
        authorizeUrl: await authorizeUrlFor({
          redirect_uri: "http://localhost:7071/other",
        }),
        username: knownAccount.username,
      }),
    ).rejects.toThrow(/AADSTS50011/);
  });

  it("shows an error page for an unknown client", async () => {
    const response = await fetch(
      await authorizeUrlFor({
        client_id: "00000000-0000-0000-0000-000000000000",
      }),
      { redirect: "manual" },
    );
    expect(response.status).toBe(400);
    expect(await response.text()).toContain("AADSTS700016");
  });

  it.each([
    [
      "scopes of two resources",
      {
        scope: `https://graph.microsoft.com/User.Read ${mailScopes.join(" ")}`,
      },
      "invalid_scope",
      "AADSTS28000",
    ],
    [
      "a Graph short name with Outlook",
      { scope: `User.Read ${mailScopes.join(" ")}` },
      "invalid_scope",
      "AADSTS28000",
    ],
    [
      "an unknown Outlook permission",
      { scope: "https://outlook.office.com/IMAP.Access" },
      "invalid_scope",
      "AADSTS70011",
    ],
    [
      "an unknown resource",
      { scope: "https://example.invalid/Read" },
      "invalid_resource",
      "AADSTS500011",
    ],
    [
      "the plain PKCE method",
      { code_challenge_method: "plain" },
      "invalid_request",
      "AADSTS50149",
    ],
    [
      "a missing code challenge",
      { code_challenge: "", code_challenge_method: "" },
      "invalid_request",
      "AADSTS900144",
    ],
    [
      "a short code challenge",
      { code_challenge: "short" },
      "invalid_request",
      "AADSTS501491",
    ],
    [
      "response_type token",
      { response_type: "token" },
      "unsupported_response_type",
      "AADSTS700051",
    ],
    [
      "response_mode fragment",
      { response_mode: "fragment" },
      "invalid_request",
      "AADSTS70007",
    ],
    ["prompt none", { prompt: "none" }, "login_required", "AADSTS50058"],
  ])(
    "redirects with an error for %s",
    async (_case, parameters, error, code) => {
      const response = await fetch(await authorizeUrlFor(parameters), {
        redirect: "manual",
      });
      expect(response.status).toBe(302);
      const location = new URL(response.headers.get("location") ?? "");
      expect(`${location.origin}${location.pathname}`).toBe(redirectUri);
      expect(location.searchParams.get("error")).toBe(error);
      expect(location.searchParams.get("error_description")).toMatch(
        new RegExp(`^${code}: `),
      );
      expect(location.searchParams.get("state")).toBe("state-1");
    },
  );

  it("redirects with an injected authorize fault", async () => {
    standIn.control.failNext({
      endpoint: "authorize",
      error: "server_error",
      aadsts: 90033,
      description: "Directory unavailable.",
    });
    const { location } = await standIn.control.signIn({
      authorizeUrl: await authorizeUrlFor({}),
      username: knownAccount.username,
    });
    const redirect = new URL(location);
    expect(redirect.searchParams.get("error")).toBe("server_error");
    expect(redirect.searchParams.get("error_description")).toBe(
      "AADSTS90033: Directory unavailable.",
    );
    expect(redirect.searchParams.get("code")).toBeNull();
  });

  it("creates accounts in a tenant of their domain", async () => {
    const first = await redeemAs("lin@northwind.example");
    const second = await redeemAs("max@northwind.example");
    const other = await redeemAs("lin@tailspin.example");
    expect(first.tenantId).toBe(second.tenantId);
    expect(first.tenantId).not.toBe(other.tenantId);
    expect(first.uniqueId).not.toBe(second.uniqueId);
    expect((first.idTokenClaims as Record<string, unknown>).name).toBe("Lin");
    expect((await redeemAs("lin@northwind.example")).uniqueId).toBe(
      first.uniqueId,
    );
    const sameDomainAsKnown = await redeemAs("bob@contoso.example");
    expect(sameDomainAsKnown.tenantId).toBe(knownAccount.tenantId);
  });

  it("rejects an account from another tenant", async () => {
    const application = createApplication(
      `${standIn.url}/${knownAccount.tenantId}`,
    );
    const authorizeUrl = await application.getAuthCodeUrl({
      scopes: requestScopes,
      redirectUri,
      codeChallenge: (await cryptoProvider.generatePkceCodes()).challenge,
      codeChallengeMethod: "S256",
    });
    await expect(
      standIn.control.signIn({
        authorizeUrl,
        username: "lin@northwind.example",
      }),
    ).rejects.toThrow(/AADSTS50020/);
  });
});

async function redeemAs(username: string): Promise<AuthenticationResult> {
  const application = createApplication();
  return redeem(application, await signIn(application, username));
}

describe("identity stand-in control", () => {
  it("works over HTTP", async () => {
    const remote = connectIdentityControl(standIn.url);
    await remote.failNext({
      endpoint: "token",
      grantType: "authorization_code",
      error: "invalid_grant",
      aadsts: 54005,
    });
    const application = createApplication();
    const signInResult = await signIn(application);
    const error = await captureError(redeem(application, signInResult));
    expect(errorNumber(error)).toBe("54005");
    expect(await remote.counts()).toEqual(standIn.control.counts());

    const authorizeUrl = await authorizeUrlFor({});
    const { location } = await remote.signIn({
      authorizeUrl,
      username: knownAccount.username,
    });
    expect(new URL(location).searchParams.get("code")).toBeTruthy();

    await remote.resetCounts();
    expect(standIn.control.counts().token).toBe(0);

    const invalid = await fetch(`${standIn.url}/_control/failNext`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ endpoint: "nowhere", error: "x" }),
    });
    expect(invalid.status).toBe(400);
  });

  it("rejects invalid settings", () => {
    expect(() => standIn.control.setLatency(-1)).toThrow(RangeError);
    expect(() =>
      standIn.control.failNext({ endpoint: "token", error: "" }),
    ).toThrow();
    expect(() => standIn.control.grantScopesNext([])).toThrow();
  });

  it("forgetTokens forgets issued refresh tokens", async () => {
    const application = createApplication();
    await redeem(application, await signIn(application));
    const [refreshToken] = cachedRefreshTokens(application);
    standIn.control.reset();
    standIn.control.forgetTokens();
    expect(standIn.control.counts().token).toBe(0);
    const error = await captureError(
      createApplication().acquireTokenByRefreshToken({
        refreshToken: refreshToken ?? "",
        scopes: mailScopes,
      }),
    );
    expect(errorNumber(error)).toBe("70000");
  });
});

describe("identity stand-in persistence", () => {
  it("accepts refresh tokens after a restart", async () => {
    const dataDir = await mkdtemp(path.join(tmpdir(), "identity-data-"));
    temporaryDirectories.push(dataDir);
    const options = {
      certificateAuthority,
      clients: [{ clientId, clientSecret, redirectUris: [redirectUri] }],
      dataDir,
    };
    const first = await withStandIn(options, async (instance) => {
      const refreshToken = await persistedRefreshToken(
        instance,
        "kim@persist.example",
      );
      const revokedToken = await persistedRefreshToken(
        instance,
        "lee@persist.example",
      );
      instance.control.revokeAccount("lee@persist.example");
      return { keyId: instance.keyId, refreshToken, revokedToken };
    });
    const { refreshToken, revokedToken } = first;

    await withStandIn(options, async (second) => {
      expect(second.keyId).toBe(first.keyId);
      const state = await readFile(path.join(dataDir, "state.json"), "utf8");
      expect(state).not.toContain(refreshToken);
      const application = new ConfidentialClientApplication({
        auth: {
          clientId,
          clientSecret,
          authority: `${second.url}/organizations`,
          ...localMsalAuthorityOptions(second.url),
        },
      });
      const refreshed = await application.acquireTokenByRefreshToken({
        refreshToken,
        scopes: mailScopes,
      });
      expect(refreshed?.account?.username).toBe("kim@persist.example");
      const keys = createRemoteJWKSet(new URL(second.jwksUrl));
      await expect(
        jwtVerify(refreshed?.accessToken ?? "", keys, {
          audience: "https://outlook.office.com",
        }),
      ).resolves.toBeTruthy();
      const error = await captureError(
        application.acquireTokenByRefreshToken({
          refreshToken: revokedToken,
          scopes: mailScopes,
        }),
      );
      expect(errorNumber(error)).toBe("50173");
    });
  });
});

/** Runs the body against a new stand-in and closes it afterwards. */
async function withStandIn<T>(
  options: IdentityStandInOptions,
  body: (instance: IdentityStandIn) => Promise<T>,
): Promise<T> {
  const instance = await startIdentityStandIn(options);
  try {
    return await body(instance);
  } finally {
    await instance.close();
  }
}

async function persistedRefreshToken(
  instance: IdentityStandIn,
  username: string,
): Promise<string> {
  const application = new ConfidentialClientApplication({
    auth: {
      clientId,
      clientSecret,
      authority: `${instance.url}/organizations`,
      ...localMsalAuthorityOptions(instance.url),
    },
  });
  const { verifier, challenge } = await cryptoProvider.generatePkceCodes();
  const authorizeUrl = await application.getAuthCodeUrl({
    scopes: requestScopes,
    redirectUri,
    codeChallenge: challenge,
    codeChallengeMethod: "S256",
  });
  const { location } = await instance.control.signIn({
    authorizeUrl,
    username,
  });
  await application.acquireTokenByCode({
    code: new URL(location).searchParams.get("code") ?? "",
    codeVerifier: verifier,
    redirectUri,
    scopes: requestScopes,
  });
  const [refreshToken] = cachedRefreshTokens(application);
  return refreshToken ?? "";
}

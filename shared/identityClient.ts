/**
 * The broker's client of the Microsoft identity platform, on MSAL's ConfidentialClientApplication.
 *
 * Each operation uses a new client with an empty token cache, so refresh tokens of different grants
 * never share a cache, and nothing depends on process memory: a sign-in started on one instance can
 * finish on another. Authority and cloud discovery metadata are given inline, built from the cloud
 * profile, so MSAL makes no discovery request and the only calls are to the token endpoint. The
 * app credential (secret, certificate or federated assertion) comes from `clientCredential.ts`.
 */
import { createHash, randomBytes } from "node:crypto";
import {
  AuthError,
  ConfidentialClientApplication,
  LogLevel,
  type AuthenticationResult,
  type Configuration,
} from "@azure/msal-node";
import type { AppCredential } from "./clientCredential.js";
import { cloudProfiles, type CloudName } from "./cloud.js";
import type { BrokerConfig } from "./config.js";
import { BrokerError } from "./errors.js";
import {
  createNetworkClient,
  type RecordingNetworkClient,
} from "./identityNetwork.js";

export interface AuthorizeRequest {
  state: string;
  nonce: string;
  codeChallenge: string;
  loginHint: string;
}

export interface CodeRedemption {
  code: string;
  codeVerifier: string;
  nonce: string;
}

export interface SignInResult {
  tenantId: string;
  objectId: string;
  /** `preferred_username`, else `email`, of the account that signed in. */
  username: string | undefined;
  grantedScopes: string[];
  /** Absent when the token response carried none. */
  refreshToken: string | undefined;
}

export interface RefreshResult {
  accessToken: string;
  /** When the access token expires, from the response's `expires_in` at request time. */
  expiresOn: Date;
  grantedScopes: string[];
  /** The rotated refresh token; absent when the response carried none. */
  refreshToken: string | undefined;
}

/** A failure reported by the identity platform or on the way to it, without any token. */
export class IdentityError extends Error {
  readonly error: string;
  readonly aadsts: number | undefined;
  readonly transient: boolean;
  /** Seconds the token endpoint asked to wait, from its Retry-After header. */
  readonly retryAfterSeconds: number | undefined;

  constructor(
    error: string,
    aadsts: number | undefined,
    transient: boolean,
    options?: { cause?: unknown; retryAfterSeconds?: number },
  ) {
    super(
      aadsts === undefined
        ? `identity platform error ${error}`
        : `identity platform error ${error} AADSTS${aadsts}`,
      options,
    );
    this.name = "IdentityError";
    this.error = error;
    this.aadsts = aadsts;
    this.transient = transient;
    this.retryAfterSeconds = options?.retryAfterSeconds;
  }
}

/** PKCE pair: the verifier stays with the pending sign-in, the S256 challenge goes to Microsoft. */
export function createPkcePair(): { verifier: string; challenge: string } {
  const verifier = randomBytes(32).toString("base64url");
  const challenge = createHash("sha256").update(verifier).digest("base64url");
  return { verifier, challenge };
}

export interface IdentityClient {
  buildAuthorizeUrl(request: AuthorizeRequest): Promise<string>;
  redeemCode(redemption: CodeRedemption): Promise<SignInResult>;
  /** Refreshes with the grant's own cloud, tenant and consented scopes. */
  refresh(grant: {
    cloud: string;
    tenantId: string;
    scopes: string[];
    refreshToken: string;
  }): Promise<RefreshResult>;
  /** The OpenID metadata URL of the sign-in authority, for the health function. */
  metadataUrl: string;
}

export function createIdentityClient(
  config: BrokerConfig,
  credential: AppCredential,
): IdentityClient {
  const signInAuthority = `${config.authorityHost}/${config.signInTenant}`;
  const requestedScopes = [...config.mailScopes, "offline_access"];

  return {
    metadataUrl: `${signInAuthority}/v2.0/.well-known/openid-configuration`,

    async buildAuthorizeUrl(request) {
      // MSAL's client needs a credential even though the authorize URL uses none. A certificate is
      // cached, and one that cannot be read stops the sign-in before the person signs in.
      let client: ConfidentialClientApplication;
      try {
        client = await newClient(config, credential, signInAuthority);
      } catch (error) {
        if (!(error instanceof IdentityError)) throw error;
        throw new BrokerError(
          "identity_unavailable",
          "The broker could not obtain its own app credential.",
          { reason: error.error, retryAfterSeconds: 300, cause: error },
        );
      }
      return client.getAuthCodeUrl({
        scopes: requestedScopes,
        redirectUri: config.redirectUri,
        state: request.state,
        nonce: request.nonce,
        codeChallenge: request.codeChallenge,
        codeChallengeMethod: "S256",
        loginHint: request.loginHint,
        responseMode: "query",
      });
    },

    async redeemCode(redemption) {
      const network = createNetworkClient(config.identityTimeoutMs);
      const client = await newClient(
        config,
        credential,
        signInAuthority,
        network,
      );
      const result = await callIdentity(network, credential, () =>
        client.acquireTokenByCode({
          code: redemption.code,
          codeVerifier: redemption.codeVerifier,
          nonce: redemption.nonce,
          redirectUri: config.redirectUri,
          scopes: requestedScopes,
        }),
      );
      const claims = (result.idTokenClaims ?? {}) as Record<string, unknown>;

      return {
        tenantId: stringClaim(claims, "tid") ?? result.tenantId,
        objectId: stringClaim(claims, "oid") ?? result.uniqueId,
        username:
          stringClaim(claims, "preferred_username") ??
          stringClaim(claims, "email"),
        grantedScopes: result.scopes,
        refreshToken: readRefreshToken(client),
      };
    },

    async refresh(grant) {
      const network = createNetworkClient(config.identityTimeoutMs);
      const client = await newClient(
        config,
        credential,
        `${authorityHostOf(config, grant.cloud)}/${grant.tenantId}`,
        network,
      );
      const result = await callIdentity(network, credential, () =>
        client.acquireTokenByRefreshToken({
          refreshToken: grant.refreshToken,
          scopes: grant.scopes,
          // Without forceCache a new client does not cache the rotated refresh token.
          forceCache: true,
        }),
      );

      return {
        accessToken: result.accessToken,
        expiresOn: result.expiresOn ?? new Date(),
        grantedScopes: result.scopes,
        refreshToken: readRefreshToken(client),
      };
    },
  };
}

async function newClient(
  config: BrokerConfig,
  credential: AppCredential,
  authority: string,
  networkClient: RecordingNetworkClient = createNetworkClient(
    config.identityTimeoutMs,
  ),
): Promise<ConfidentialClientApplication> {
  const configuration: Configuration = {
    auth: {
      clientId: config.clientId,
      ...(await credential.msalOptions()),
      authority,
      knownAuthorities: [new URL(authority).host],
      authorityMetadata: JSON.stringify(authorityMetadata(authority)),
      cloudDiscoveryMetadata: JSON.stringify(
        cloudDiscoveryMetadata(new URL(authority).origin),
      ),
    },
    system: {
      networkClient,
      loggerOptions: {
        logLevel: LogLevel.Error,
        piiLoggingEnabled: false,
        loggerCallback: () => undefined,
      },
    },
  };
  return new ConfidentialClientApplication(configuration);
}

/**
 * Returns the authority host of a grant's cloud. The deployment's own cloud uses the configured host,
 * which differs only for a local stand-in; a grant recorded in another cloud keeps that cloud's.
 */
export function authorityHostOf(config: BrokerConfig, cloud: string): string {
  if (cloud === config.cloud.name) return config.authorityHost;
  return (
    cloudProfiles[cloud as CloudName]?.authorityHost ?? config.authorityHost
  );
}

/** OpenID metadata as the Microsoft identity platform publishes it for one authority. */
function authorityMetadata(authority: string): Record<string, unknown> {
  const tenant = new URL(authority).pathname.slice(1);
  return {
    token_endpoint: `${authority}/oauth2/v2.0/token`,
    authorization_endpoint: `${authority}/oauth2/v2.0/authorize`,
    end_session_endpoint: `${authority}/oauth2/v2.0/logout`,
    jwks_uri: `${authority}/discovery/v2.0/keys`,
    issuer: `${new URL(authority).origin}/${tenant === "organizations" || tenant === "common" ? "{tenantid}" : tenant}/v2.0`,
    response_types_supported: [
      "code",
      "id_token",
      "code id_token",
      "id_token token",
    ],
    response_modes_supported: ["query", "fragment", "form_post"],
    scopes_supported: ["openid", "profile", "email", "offline_access"],
  };
}

function cloudDiscoveryMetadata(
  authorityHost: string,
): Record<string, unknown> {
  const host = new URL(authorityHost).host;
  return {
    tenant_discovery_endpoint: `${authorityHost}/common/v2.0/.well-known/openid-configuration`,
    "api-version": "1.1",
    metadata: [
      { preferred_network: host, preferred_cache: host, aliases: [host] },
    ],
  };
}

/** Reads the refresh token from MSAL's cache; MSAL never returns it on the result. */
function readRefreshToken(
  client: ConfidentialClientApplication,
): string | undefined {
  const cache = JSON.parse(client.getTokenCache().serialize()) as {
    RefreshToken?: Record<string, { secret?: string }>;
  };
  const entries = Object.values(cache.RefreshToken ?? {});
  return entries.find(
    (entry) => typeof entry.secret === "string" && entry.secret !== "",
  )?.secret;
}

function stringClaim(
  claims: Record<string, unknown>,
  name: string,
): string | undefined {
  const value = claims[name];
  return typeof value === "string" && value !== "" ? value : undefined;
}

/** AADSTS700027: the assertion's signature failed, or its certificate is not on the app. */
const rejectedAssertionCodes = new Set([700027]);

async function callIdentity(
  networkClient: RecordingNetworkClient,
  credential: AppCredential,
  call: () => Promise<AuthenticationResult | null>,
): Promise<AuthenticationResult> {
  let result: AuthenticationResult | null;
  try {
    result = await call();
  } catch (error) {
    const failure = toIdentityError(error, networkClient.retryAfterSeconds());
    if (rejectedAssertionCodes.has(failure.aadsts ?? 0))
      credential.reportRejected();
    throw failure;
  }
  if (result === null)
    throw new IdentityError("empty_response", undefined, true);
  return result;
}

const transientErrors = new Set([
  "temporarily_unavailable",
  "server_error",
  "endpoints_resolution_error",
]);

/** Translates an MSAL error into an IdentityError, keeping MSAL's error only as the cause. */
export function toIdentityError(
  error: unknown,
  retryAfterSeconds?: number,
): IdentityError {
  if (error instanceof IdentityError) return error;
  if (!(error instanceof AuthError))
    return new IdentityError("network_error", undefined, true, {
      cause: error,
      retryAfterSeconds,
    });

  const serverError = (error as AuthError & { errorNo?: string | number })
    .errorNo;
  const aadsts =
    serverError !== undefined && serverError !== ""
      ? Number(serverError)
      : aadstsFromMessage(error.errorMessage);
  const code = error.errorCode || "unknown_error";
  const status = (error as AuthError & { status?: number }).status;
  const transient =
    transientErrors.has(code) ||
    (status !== undefined && (status >= 500 || status === 429)) ||
    code.includes("network") ||
    code === "post_request_failed";
  return new IdentityError(
    code,
    Number.isFinite(aadsts) ? aadsts : undefined,
    transient,
    { cause: error, retryAfterSeconds },
  );
}

function aadstsFromMessage(message: string): number | undefined {
  const match = /AADSTS(\d{4,9})/.exec(message);
  return match?.[1] === undefined ? undefined : Number(match[1]);
}

// Client assertions at the token endpoint (client_assertion_type
// urn:ietf:params:oauth:client-assertion-type:jwt-bearer), checked as Entra ID checks them:
//
// - An assertion whose `iss` is the client id is signed by the app itself with a certificate
//   registered on the app registration. Its `x5t#S256` (or SHA-1 `x5t`) header names the
//   certificate, `aud` is the token endpoint, `sub` is the client id, and `exp` and `jti` are
//   required.
// - Any other `iss` makes it a federated assertion: a token of an external issuer. One of the
//   app's federated identity credentials must trust it by exact issuer, subject and audience, and
//   its signature is verified against the keys the issuer publishes in its OpenID configuration.
//
// Each failure is an EntraError with the AADSTS code Entra ID returns.

import { X509Certificate, createHash } from "node:crypto";
import type { KeyObject } from "node:crypto";
import {
  createLocalJWKSet,
  decodeJwt,
  decodeProtectedHeader,
  errors,
  jwtVerify,
} from "jose";
import type { JSONWebKeySet, JWTPayload, JWTVerifyGetKey } from "jose";
import { z } from "zod";
import type { TenantSegment } from "./accounts.js";
import type { IdentityContext } from "./context.js";
import { EntraError } from "./errors.js";
import type { IdentityClient } from "./server.js";

export const jwtBearerAssertionType =
  "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/** A trust of an external issuer's tokens, as Entra ID keeps it on an app registration. */
export interface FederatedIdentityCredential {
  /** Unique per app registration. */
  name: string;
  /** Compared exactly with the assertion's `iss`. Loopback only, because the stand-in fetches its keys. */
  issuer: string;
  /** Compared exactly with the assertion's `sub`. */
  subject: string;
  /** The one audience the assertion's `aud` must contain. */
  audiences: string[];
}

/** A certificate registered on an app registration (a key credential). */
export interface RegisteredCertificate {
  certificate: X509Certificate;
  /** Upper-case hex SHA-256 thumbprint, as the portal shows it. */
  thumbprintHex: string;
  /** Base64url SHA-256 of the DER encoding, as in `x5t#S256`. */
  thumbprintSha256: string;
  /** Base64url SHA-1 of the DER encoding, as in `x5t`. */
  thumbprintSha1: string;
}

/** Entra ID accepts at most 20 federated identity credentials on one application. */
export const maxFederatedCredentials = 20;

const loopbackHosts = new Set(["127.0.0.1", "localhost", "[::1]"]);

export const federatedCredentialSchema = z.strictObject({
  name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_-]{0,119}$/, {
    error: "must be 1 to 120 letters, digits, dashes or underscores",
  }),
  issuer: z
    .url({ protocol: /^https?$/ })
    .refine((issuer) => loopbackHosts.has(new URL(issuer).hostname), {
      error:
        "must be on 127.0.0.1 or localhost, because the stand-in fetches the issuer's keys",
    }),
  subject: z.string().min(1).max(600),
  audiences: z
    .array(z.string().min(1).max(600))
    .length(1, { error: "must hold exactly one audience" }),
});

/** An app registration of the stand-in with its credentials in checked form. */
export interface RegisteredClient extends IdentityClient {
  federatedCredentials: FederatedIdentityCredential[];
  certificates: RegisteredCertificate[];
}

/** Builds the stand-in's record of a client from its options; throws on an invalid credential. */
export function registerClient(client: IdentityClient): RegisteredClient {
  const federatedCredentials = (client.federatedCredentials ?? []).map(
    (credential) => federatedCredentialSchema.parse(credential),
  );
  if (federatedCredentials.length > maxFederatedCredentials) {
    throw new RangeError(
      `An application has at most ${maxFederatedCredentials} federated identity credentials.`,
    );
  }
  return {
    ...client,
    federatedCredentials,
    certificates: (client.certificatePems ?? []).map(registerCertificate),
  };
}

/** Parses a PEM certificate for registration; throws a RangeError for anything else. */
export function registerCertificate(pem: string): RegisteredCertificate {
  let certificate: X509Certificate;
  try {
    certificate = new X509Certificate(pem);
  } catch {
    throw new RangeError("The certificate is not a PEM X.509 certificate.");
  }
  const sha256 = createHash("sha256").update(certificate.raw).digest();
  return {
    certificate,
    thumbprintHex: sha256.toString("hex").toUpperCase(),
    thumbprintSha256: sha256.toString("base64url"),
    thumbprintSha1: createHash("sha1")
      .update(certificate.raw)
      .digest("base64url"),
  };
}

/**
 * Checks a client assertion for `client` at the token endpoint of `tenant`. Returns undefined when
 * Entra ID would accept it, otherwise the error Entra ID would return.
 */
export async function checkClientAssertion(
  context: IdentityContext,
  client: RegisteredClient,
  tenant: TenantSegment,
  assertion: string,
): Promise<EntraError | undefined> {
  let payload: JWTPayload;
  let header: Record<string, unknown>;
  try {
    payload = decodeJwt(assertion);
    header = decodeProtectedHeader(assertion);
  } catch {
    return malformedAssertion("The client assertion is not a JWT.");
  }
  if (typeof payload.iss !== "string" || payload.iss === "") {
    return malformedAssertion("The client assertion has no 'iss' claim.");
  }
  if (payload.iss === client.clientId) {
    return checkCertificateAssertion(
      context,
      client,
      tenant,
      assertion,
      header,
      payload,
    );
  }
  return checkFederatedAssertion(context, client, assertion, payload);
}

async function checkCertificateAssertion(
  context: IdentityContext,
  client: RegisteredClient,
  tenant: TenantSegment,
  assertion: string,
  header: Record<string, unknown>,
  payload: JWTPayload,
): Promise<EntraError | undefined> {
  const sha256 = header["x5t#S256"];
  const sha1 = header.x5t;
  if (typeof sha256 !== "string" && typeof sha1 !== "string") {
    return malformedAssertion(
      "The client assertion's header names no certificate in 'x5t#S256' or 'x5t'.",
    );
  }
  const registered = client.certificates.find(
    (candidate) =>
      candidate.thumbprintSha256 === sha256 ||
      candidate.thumbprintSha1 === sha1,
  );
  const presented = Buffer.from(String(sha256 ?? sha1), "base64url")
    .toString("hex")
    .toUpperCase();
  if (registered === undefined) {
    return new EntraError({
      error: "invalid_client",
      code: 700027,
      description: `The certificate with identifier used to sign the client assertion is not registered on application. [Reason - The key was not found., Thumbprint of key used by client: '${presented}', Please visit the Azure Portal, Graph Explorer or directly use MS Graph to see configured keys for app Id '${client.clientId}'.]`,
    });
  }
  if (new Date(registered.certificate.validTo).getTime() <= context.now()) {
    return new EntraError({
      error: "invalid_client",
      code: 700027,
      description: `Client assertion failed signature validation. [Reason - The key used is expired., Thumbprint of key used by client: '${presented}']`,
    });
  }

  const verified = await verifyAssertion(
    context,
    assertion,
    registered.certificate.publicKey,
    ["RS256", "PS256"],
  );
  if (verified instanceof EntraError) return verified;

  if (payload.sub !== client.clientId) {
    return new EntraError({
      error: "invalid_client",
      code: 700021,
      description:
        "Client assertion application identifier doesn't match 'client_id' parameter. Review the documentation at https://learn.microsoft.com/entra/identity-platform/certificate-credentials.",
    });
  }
  if (
    !audiences(payload).some((audience) =>
      tokenEndpoints(context, tenant).has(audience.toLowerCase()),
    )
  ) {
    return new EntraError({
      error: "invalid_client",
      code: 700023,
      description:
        "Client assertion audience claim does not match Realm issuer. Review the documentation at https://learn.microsoft.com/entra/identity-platform/certificate-credentials.",
    });
  }
  if (typeof payload.jti !== "string" || payload.jti === "") {
    return malformedAssertion("The client assertion has no 'jti' claim.");
  }
  return undefined;
}

async function checkFederatedAssertion(
  context: IdentityContext,
  client: RegisteredClient,
  assertion: string,
  payload: JWTPayload,
): Promise<EntraError | undefined> {
  const issuer = payload.iss ?? "";
  const subject = payload.sub ?? "";
  const presentedAudiences = audiences(payload);
  const trusts = client.federatedCredentials;
  const summary = `Assertion Issuer: '${issuer}'. Assertion Subject: '${subject}'. Assertion Audience: '${presentedAudiences.join(",")}'.`;
  const check =
    "Please check your federated identity credential Subject, Audience and Issuer against the presented assertion. https://learn.microsoft.com/entra/workload-id/workload-identity-federation";

  if (trusts.length === 0) {
    return new EntraError({
      error: "invalid_request",
      code: 70021,
      description: `No matching federated identity record found for presented assertion. ${summary}`,
    });
  }
  const byIssuer = trusts.filter((trust) => trust.issuer === issuer);
  if (byIssuer.length === 0) {
    return new EntraError({
      error: "invalid_client",
      code: 700211,
      description: `No matching federated identity record found for presented assertion issuer '${issuer}'. ${check}`,
    });
  }
  const bySubject = byIssuer.filter((trust) => trust.subject === subject);
  if (bySubject.length === 0) {
    return new EntraError({
      error: "invalid_client",
      code: 700213,
      description: `No matching federated identity record found for presented assertion subject '${subject}'. ${check}`,
    });
  }
  const byAudience = bySubject.filter((trust) =>
    trust.audiences.some((audience) => presentedAudiences.includes(audience)),
  );
  if (byAudience.length === 0) {
    return new EntraError({
      error: "invalid_client",
      code: 700212,
      description: `No matching federated identity record found for presented assertion audience '${presentedAudiences.join(",")}'. ${check}`,
    });
  }

  const keys = await issuerKeys(context, issuer);
  if (keys instanceof EntraError) return keys;
  const verified = await verifyAssertion(context, assertion, keys, ["RS256"]);
  return verified instanceof EntraError ? verified : undefined;
}

/**
 * Verifies the signature, then `exp` and `nbf` against the stand-in's clock. `exp` is required.
 * Entra ID allows some clock skew, and the five minutes used here are an estimate of it.
 */
async function verifyAssertion(
  context: IdentityContext,
  assertion: string,
  key: KeyObject | JWTVerifyGetKey,
  algorithms: string[],
): Promise<JWTPayload | EntraError> {
  const options = {
    algorithms,
    currentDate: new Date(context.now()),
    clockTolerance: 300,
    requiredClaims: ["exp"],
  };
  try {
    const result =
      typeof key === "function"
        ? await jwtVerify(assertion, key, options)
        : await jwtVerify(assertion, key, options);
    return result.payload;
  } catch (error) {
    if (
      error instanceof errors.JWTExpired ||
      (error instanceof errors.JWTClaimValidationFailed &&
        error.claim === "nbf")
    ) {
      const payload = decodeJwt(assertion);
      return new EntraError({
        error: "invalid_client",
        code: 700024,
        description: `Client assertion is not within its valid time range. Current time: ${new Date(context.now()).toISOString()}, assertion valid from ${secondsToIso(payload.nbf)}, expiry time of assertion ${secondsToIso(payload.exp)}.`,
      });
    }
    if (error instanceof errors.JWTClaimValidationFailed) {
      return malformedAssertion(
        `The client assertion has no valid '${error.claim}' claim.`,
      );
    }
    if (
      error instanceof errors.JWSSignatureVerificationFailed ||
      error instanceof errors.JWKSNoMatchingKey ||
      error instanceof errors.JOSEAlgNotAllowed
    ) {
      return new EntraError({
        error: "invalid_client",
        code: 700027,
        description: "Client assertion failed signature validation.",
      });
    }
    return malformedAssertion("The client assertion cannot be parsed.");
  }
}

/**
 * Returns the keys of a trusted issuer from its OpenID configuration, cached per issuer so that each
 * assertion does not fetch them again. A key id the cached set lacks fetches the set once more, as
 * after a key rotation.
 */
async function issuerKeys(
  context: IdentityContext,
  issuer: string,
): Promise<JWTVerifyGetKey | EntraError> {
  let keySet = context.issuerKeys.get(issuer);
  const fromCache = keySet !== undefined;
  if (keySet === undefined) {
    try {
      keySet = await fetchKeySet(issuer);
    } catch {
      // NOTE: Entra ID's code for an issuer whose keys cannot be fetched is not documented. The
      // signature failure code is used instead, because the assertion cannot be verified.
      return new EntraError({
        error: "invalid_client",
        code: 700027,
        description: `Client assertion failed signature validation. [Reason - The keys of issuer '${issuer}' could not be retrieved.]`,
      });
    }
    context.issuerKeys.set(issuer, keySet);
  }
  const known = keySet;
  return async (protectedHeader, token) => {
    try {
      return await createLocalJWKSet(known)(protectedHeader, token);
    } catch (error) {
      if (!(error instanceof errors.JWKSNoMatchingKey) || !fromCache)
        throw error;
    }
    let fresh: JSONWebKeySet;
    try {
      fresh = await fetchKeySet(issuer);
    } catch {
      throw new errors.JWKSNoMatchingKey();
    }
    context.issuerKeys.set(issuer, fresh);
    return createLocalJWKSet(fresh)(protectedHeader, token);
  };
}

async function fetchKeySet(issuer: string): Promise<JSONWebKeySet> {
  const configuration = (await fetchJson(
    `${issuer.replace(/\/+$/, "")}/.well-known/openid-configuration`,
  )) as { jwks_uri?: unknown };
  if (typeof configuration.jwks_uri !== "string") {
    throw new Error(`The OpenID configuration of ${issuer} has no jwks_uri.`);
  }
  const jwksUri = new URL(configuration.jwks_uri);
  if (!loopbackHosts.has(jwksUri.hostname)) {
    throw new Error(`The jwks_uri of ${issuer} is not on loopback.`);
  }
  return (await fetchJson(jwksUri.toString())) as JSONWebKeySet;
}

async function fetchJson(url: string): Promise<unknown> {
  const response = await fetch(url, { signal: AbortSignal.timeout(5_000) });
  if (!response.ok) {
    await response.body?.cancel();
    throw new Error(`${url} returned status ${response.status}.`);
  }
  return response.json();
}

/** Token endpoints an assertion may name as `aud` for a request at `tenant`, lower-cased. */
function tokenEndpoints(
  context: IdentityContext,
  tenant: TenantSegment,
): Set<string> {
  const segments = new Set([tenant.segment]);
  if (tenant.kind === "tenant") segments.add(tenant.tenantId);
  const endpoints = new Set<string>();
  for (const segment of segments) {
    const base = `${context.url}/${segment}`.toLowerCase();
    endpoints.add(`${base}/oauth2/v2.0/token`);
    endpoints.add(`${base}/oauth2/token`);
    endpoints.add(`${base}/v2.0`);
  }
  return endpoints;
}

function audiences(payload: JWTPayload): string[] {
  if (typeof payload.aud === "string") return [payload.aud];
  return Array.isArray(payload.aud) ? payload.aud : [];
}

function malformedAssertion(detail: string): EntraError {
  return new EntraError({
    error: "invalid_client",
    code: 50027,
    description: `JWT token is invalid or malformed. ${detail}`,
  });
}

function secondsToIso(value: number | undefined): string {
  return value === undefined ? "(none)" : new Date(value * 1000).toISOString();
}

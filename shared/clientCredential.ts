/**
 * The broker's app credential: what MSAL presents at the token endpoint to prove that it is the
 * broker's app registration. BROKER_CLIENT_CREDENTIAL selects one of three kinds:
 *
 * - `federated`: a client assertion that is the managed identity's token for the cloud's token
 *   exchange audience. The app registration trusts the identity through a federated identity
 *   credential, so nothing expires and nothing is rotated by hand.
 * - `certificate`: a certificate in Key Vault, read through the secrets API as a PEM secret of the
 *   same name (private key and certificate chain). MSAL signs each assertion with it.
 * - `secret`: a client secret.
 *
 * Failures to obtain the credential are IdentityErrors with their own codes, which the failure
 * catalogue classifies as the operator's problem (or as transient, for an unreachable vault).
 */
import { X509Certificate, createPrivateKey } from "node:crypto";
import type { TokenCredential } from "@azure/core-auth";
import { RestError } from "@azure/core-rest-pipeline";
import { ManagedIdentityCredential } from "@azure/identity";
import { SecretClient } from "@azure/keyvault-secrets";
import type { NodeAuthOptions } from "@azure/msal-node";
import type { BrokerConfig, ClientCredentialKind } from "./config.js";
import { IdentityError } from "./identityClient.js";

/** The credential fields of MSAL's `auth` configuration; exactly one is set. */
export type MsalCredentialOptions = Pick<
  NodeAuthOptions,
  "clientSecret" | "clientAssertion" | "clientCertificate"
>;

export interface AppCredential {
  kind: ClientCredentialKind;
  /** Returns MSAL's credential options, reading the certificate first when a read is due. */
  msalOptions(): Promise<MsalCredentialOptions>;
  /**
   * Records that the token endpoint rejected the credential, so that a certificate is read again
   * after `certificateRetryMs` instead of waiting for `certificateRefreshMs`.
   */
  reportRejected(): void;
  /** Obtains the credential without a token call; rejects with an IdentityError when it cannot. */
  probe(): Promise<void>;
}

export interface AppCredentialOptions {
  /** The user-assigned managed identity. Absent: the system-assigned one signs the assertion. */
  managedIdentity?: TokenCredential;
  /** Credential for the key vault that contains the certificate. */
  vaultCredential: TokenCredential;
  /** Milliseconds since the epoch; tests move it past the certificate's refresh period. */
  now?: () => number;
}

/**
 * A certificate read from Key Vault is used for this long before it is read again, so a new
 * version takes effect without a restart while token calls cost no Key Vault read.
 */
export const certificateRefreshMs = 5 * 60_000;

/** After a failed read, or a rejection by the token endpoint, the next read waits this long. */
export const certificateRetryMs = 60_000;

/** The certificate as MSAL takes it. */
export interface ClientCertificate {
  /** Hex SHA-256 thumbprint of the leaf certificate's DER encoding. */
  thumbprintSha256: string;
  /** The private key as PKCS#8 PEM. */
  privateKey: string;
  /** PEM of the chain, leaf first, sent as the assertion's `x5c` header. */
  x5c: string;
  validTo: Date;
}

export function createAppCredential(
  config: BrokerConfig,
  options: AppCredentialOptions,
): AppCredential {
  const credential = config.clientCredential;
  if (credential.kind === "secret") {
    return {
      kind: "secret",
      msalOptions: async () => ({ clientSecret: credential.secret }),
      reportRejected: () => undefined,
      // A configured secret is always at hand, and only the token endpoint can tell if it is valid.
      probe: async () => undefined,
    };
  }
  if (credential.kind === "federated") {
    return createFederatedCredential(config, options);
  }
  return createCertificateCredential(
    config,
    credential.certificateName,
    options,
  );
}

function createFederatedCredential(
  config: BrokerConfig,
  options: AppCredentialOptions,
): AppCredential {
  // Created on first use, because it inspects the environment for a managed identity endpoint.
  let source = options.managedIdentity;
  const scope = `${config.cloud.tokenExchangeAudience}/.default`;

  async function assertion(): Promise<string> {
    source ??= new ManagedIdentityCredential();
    let token;
    try {
      token = await withTimeout(
        source.getToken(scope),
        config.identityTimeoutMs,
      );
    } catch (error) {
      if (error instanceof TimeoutError) {
        throw new IdentityError("network_error", undefined, true, {
          cause: error,
        });
      }
      throw new IdentityError(
        "managed_identity_unavailable",
        undefined,
        false,
        {
          cause: error,
        },
      );
    }
    if (token === null || token.token === "") {
      throw new IdentityError("managed_identity_unavailable", undefined, false);
    }
    return token.token;
  }

  return {
    kind: "federated",
    // MSAL calls this for each token request, and the managed identity library caches its token.
    msalOptions: async () => ({ clientAssertion: () => assertion() }),
    reportRejected: () => undefined,
    probe: async () => {
      await assertion();
    },
  };
}

function createCertificateCredential(
  config: BrokerConfig,
  certificateName: string,
  options: AppCredentialOptions,
): AppCredential {
  const now = options.now ?? Date.now;
  const loopback = /^http:\/\/(127\.0\.0\.1|localhost)[:/]/.test(
    config.keyVaultUrl,
  );
  const client = new SecretClient(config.keyVaultUrl, options.vaultCredential, {
    // A local stand-in serves http on loopback and cannot prove it is vault.azure.net.
    allowInsecureConnection: loopback,
    disableChallengeResourceVerification: loopback,
  });

  let certificate: ClientCertificate | undefined;
  let lastFailure: IdentityError | undefined;
  let lastReadAt = Number.NEGATIVE_INFINITY;
  let nextReadAt = Number.NEGATIVE_INFINITY;
  let reading: Promise<void> | undefined;

  async function read(): Promise<void> {
    const startedAt = now();
    lastReadAt = startedAt;
    try {
      const secret = await client.getSecret(certificateName);
      certificate = parseClientCertificate(
        secret.value ?? "",
        secret.properties.contentType,
        new Date(startedAt),
      );
      lastFailure = undefined;
      nextReadAt = startedAt + certificateRefreshMs;
    } catch (error) {
      lastFailure = toCertificateError(error);
      nextReadAt = startedAt + certificateRetryMs;
    }
  }

  /** Returns the newest usable certificate; an older one stays in use while a newer read fails. */
  async function current(): Promise<ClientCertificate> {
    if (now() >= nextReadAt) {
      reading ??= read().finally(() => {
        reading = undefined;
      });
      await reading;
    }
    if (certificate !== undefined && certificate.validTo.getTime() > now()) {
      return certificate;
    }
    throw (
      lastFailure ??
      new IdentityError("client_certificate_expired", undefined, false)
    );
  }

  return {
    kind: "certificate",
    msalOptions: async () => {
      const { thumbprintSha256, privateKey, x5c } = await current();
      return { clientCertificate: { thumbprintSha256, privateKey, x5c } };
    },
    reportRejected: () => {
      nextReadAt = Math.min(nextReadAt, lastReadAt + certificateRetryMs);
    },
    probe: async () => {
      await current();
      // A certificate still in use after a failed read is reported, so the operator sees it.
      if (lastFailure !== undefined) throw lastFailure;
    },
  };
}

const pemKeyPattern =
  /-----BEGIN ((?:RSA |EC |ENCRYPTED )?PRIVATE KEY)-----[\s\S]+?-----END \1-----/;
const pemCertificatePattern =
  /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/**
 * Parses the PEM that Key Vault returns for a certificate created with content type
 * `application/x-pem-file`: the private key and the certificate chain. Throws an IdentityError
 * `client_certificate_invalid` or `client_certificate_expired`, never with key material.
 */
export function parseClientCertificate(
  pem: string,
  contentType: string | undefined,
  now: Date,
): ClientCertificate {
  const invalid = (reason: string) =>
    new IdentityError("client_certificate_invalid", undefined, false, {
      cause: new Error(reason),
    });
  if (contentType !== undefined && /pkcs12/i.test(contentType)) {
    throw invalid(
      "the certificate's secret is PKCS#12; create the certificate with content type application/x-pem-file",
    );
  }

  const keyBlock = pemKeyPattern.exec(pem);
  if (keyBlock === null || keyBlock[1] === "ENCRYPTED PRIVATE KEY") {
    throw invalid("the secret contains no unencrypted PEM private key");
  }
  let key;
  try {
    key = createPrivateKey(keyBlock[0]);
  } catch {
    throw invalid("the private key in the secret cannot be parsed");
  }
  // MSAL signs the assertion with PS256, which takes an RSA key.
  if (key.asymmetricKeyType !== "rsa") {
    throw invalid("the certificate's key is not an RSA key");
  }

  const certificates: X509Certificate[] = [];
  for (const block of pem.match(pemCertificatePattern) ?? []) {
    try {
      certificates.push(new X509Certificate(block));
    } catch {
      throw invalid("a certificate in the secret cannot be parsed");
    }
  }
  const leaf = certificates.find((candidate) => candidate.checkPrivateKey(key));
  if (leaf === undefined) {
    throw invalid("no certificate in the secret matches its private key");
  }
  if (new Date(leaf.validFrom) > now) {
    throw invalid("the certificate is not valid yet");
  }
  const validTo = new Date(leaf.validTo);
  if (validTo <= now) {
    throw new IdentityError("client_certificate_expired", undefined, false);
  }

  const chain = [leaf, ...certificates.filter((other) => other !== leaf)];
  return {
    thumbprintSha256: leaf.fingerprint256.replaceAll(":", ""),
    privateKey: key.export({ type: "pkcs8", format: "pem" }).toString(),
    x5c: chain.map((certificate) => certificate.toString()).join("\n"),
    validTo,
  };
}

function toCertificateError(error: unknown): IdentityError {
  if (error instanceof IdentityError) return error;
  if (error instanceof RestError) {
    if (error.statusCode === 404) {
      return new IdentityError("client_certificate_missing", undefined, false, {
        cause: error,
      });
    }
    if (error.statusCode === 401 || error.statusCode === 403) {
      return new IdentityError(
        "client_certificate_access_denied",
        undefined,
        false,
        { cause: error },
      );
    }
  }
  return new IdentityError("key_vault_unavailable", undefined, true, {
    cause: error,
  });
}

class TimeoutError extends Error {
  constructor(ms: number) {
    super(`timed out after ${ms} ms`);
    this.name = "TimeoutError";
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new TimeoutError(ms)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

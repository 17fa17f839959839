// The RS256 signing key, its JWKS, and the ID and access tokens signed with it.

import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  randomBytes,
} from "node:crypto";
import type { KeyObject } from "node:crypto";
import {
  existsSync,
  mkdirSync,
  readFileSync,
  renameSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { SignJWT, calculateJwkThumbprint, exportJWK } from "jose";
import type { JWK } from "jose";
import type { IdentityAccount } from "./server.js";

export interface SigningKey {
  privateKey: KeyObject;
  publicKey: KeyObject;
  /** RFC 7638 thumbprint of the public JWK. */
  keyId: string;
  publicKeyPem: string;
  jwk: JWK;
}

/**
 * Loads the signing key from `dataDir/signing-key.pem`, or creates one. Without a
 * data directory the key lives only in memory.
 */
export async function loadSigningKey(
  dataDir: string | undefined,
): Promise<SigningKey> {
  const privateKey = readOrCreatePrivateKey(dataDir);
  const publicKey = createPublicKey(privateKey);
  const publicJwk = await exportJWK(publicKey);
  const keyId = await calculateJwkThumbprint(publicJwk, "sha256");
  return {
    privateKey,
    publicKey,
    keyId,
    publicKeyPem: publicKey.export({ type: "spki", format: "pem" }).toString(),
    jwk: { ...publicJwk, kid: keyId, use: "sig", alg: "RS256" },
  };
}

function readOrCreatePrivateKey(dataDir: string | undefined): KeyObject {
  const path =
    dataDir === undefined ? undefined : join(dataDir, "signing-key.pem");
  if (path !== undefined && existsSync(path)) {
    return createPrivateKey(readFileSync(path, "utf8"));
  }
  const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  if (dataDir !== undefined && path !== undefined) {
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    const temporaryPath = `${path}.${process.pid}.tmp`;
    writeFileSync(
      temporaryPath,
      privateKey.export({ type: "pkcs8", format: "pem" }),
      { mode: 0o600 },
    );
    renameSync(temporaryPath, path);
  }
  return privateKey;
}

export function jwksDocument(
  key: SigningKey,
  issuerUrl: string,
): { keys: JWK[] } {
  // Entra ID lists the issuer template with each key.
  return {
    keys: [{ ...key.jwk, issuer: `${issuerUrl}/{tenantid}/v2.0` } as JWK],
  };
}

export interface IssuedTokenClaims {
  issuerUrl: string;
  clientId: string;
  account: IdentityAccount;
  /** Seconds since the epoch. */
  issuedAt: number;
}

/**
 * Signs a v2.0 ID token. `sub` is pairwise, one value per account and application,
 * as in Entra ID.
 */
export async function signIdToken(
  key: SigningKey,
  claims: IssuedTokenClaims & { nonce: string | undefined },
): Promise<string> {
  const { account } = claims;
  const payload: Record<string, unknown> = {
    ver: "2.0",
    iss: `${claims.issuerUrl}/${account.tenantId}/v2.0`,
    sub: pairwiseSubject(account, claims.clientId),
    aud: claims.clientId,
    iat: claims.issuedAt,
    nbf: claims.issuedAt,
    exp: claims.issuedAt + 3600,
    tid: account.tenantId,
    oid: account.objectId,
    preferred_username: account.username,
    name: account.name,
    uti: randomBytes(16).toString("base64url"),
  };
  if (account.email !== undefined) {
    payload.email = account.email;
  }
  if (claims.nonce !== undefined) {
    payload.nonce = claims.nonce;
  }
  return new SignJWT(payload)
    .setProtectedHeader({ alg: "RS256", typ: "JWT", kid: key.keyId })
    .sign(key.privateKey);
}

/**
 * Signs a v1.0 access token like those Entra ID issues for Exchange Online: issuer
 * `https://sts.windows.net/{tid}/`, audience the resource URI, `scp` the short
 * permission names.
 */
export async function signAccessToken(
  key: SigningKey,
  claims: IssuedTokenClaims & {
    resource: string;
    permissions: string[];
    expiresIn: number;
  },
): Promise<string> {
  const { account } = claims;
  const payload = {
    ver: "1.0",
    aud: claims.resource,
    iss: `https://sts.windows.net/${account.tenantId}/`,
    iat: claims.issuedAt,
    nbf: claims.issuedAt,
    exp: claims.issuedAt + claims.expiresIn,
    acct: 0,
    amr: ["pwd"],
    appid: claims.clientId,
    azp: claims.clientId,
    appidacr: "1",
    idtyp: "user",
    name: account.name,
    oid: account.objectId,
    scp: claims.permissions.join(" "),
    sub: pairwiseSubject(account, `${claims.clientId} ${claims.resource}`),
    tid: account.tenantId,
    unique_name: account.username,
    upn: account.username,
    preferred_username: account.username,
    uti: randomBytes(16).toString("base64url"),
  };
  return new SignJWT(payload)
    .setProtectedHeader({ alg: "RS256", typ: "JWT", kid: key.keyId })
    .sign(key.privateKey);
}

/** Returns `client_info` as Entra ID sends it: base64url JSON with the object and tenant ids. */
export function clientInfo(account: IdentityAccount): string {
  return Buffer.from(
    JSON.stringify({ uid: account.objectId, utid: account.tenantId }),
  ).toString("base64url");
}

function pairwiseSubject(account: IdentityAccount, audience: string): string {
  return createHash("sha256")
    .update(`${account.objectId} ${audience}`)
    .digest("base64url");
}

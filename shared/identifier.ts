/**
 * Token identifiers: what an EQuIS site keeps as its mail password and sends to token-exchange.
 *
 * Format: `m365b_` + grant id (32 hex digits) + secret (32 random bytes, base64url, 43 characters)
 * + checksum (CRC-32 of everything before it, base64url, 6 characters): 87 characters of
 * `[A-Za-z0-9_-]`. The prefix lets secret scanners find leaked identifiers, and the checksum tells a
 * copy-paste error apart from an unknown identifier without any storage call. Only a SHA-256 hash
 * of the secret is stored.
 */
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { crc32 } from "node:zlib";
import { BrokerError } from "./errors.js";

export const identifierPrefix = "m365b_";
const grantIdLength = 32;
const secretLength = 43;
const checksumLength = 6;
export const identifierLength =
  identifierPrefix.length + grantIdLength + secretLength + checksumLength;

const identifierPattern = new RegExp(
  `^${identifierPrefix}([0-9a-f]{${grantIdLength}})([A-Za-z0-9_-]{${secretLength}})([A-Za-z0-9_-]{${checksumLength}})$`,
);

export interface IssuedIdentifier {
  identifier: string;
  grantId: string;
  secretHash: string;
}

export interface ParsedIdentifier {
  grantId: string;
  secret: string;
}

/** Creates a random grant id: 128 bits as 32 hex digits, valid in Table keys and secret names. */
export function newGrantId(): string {
  return randomBytes(16).toString("hex");
}

/** Issues a new identifier for a grant; the caller stores only `secretHash`. */
export function issueIdentifier(grantId: string): IssuedIdentifier {
  if (!/^[0-9a-f]{32}$/.test(grantId))
    throw new Error("grant id must be 32 hex digits");

  const secret = randomBytes(32).toString("base64url");
  const body = `${identifierPrefix}${grantId}${secret}`;
  return {
    identifier: body + checksumOf(body),
    grantId,
    secretHash: hashSecret(secret),
  };
}

/**
 * Parses an identifier without any storage call; throws `malformed_identifier` for the wrong shape
 * and `identifier_checksum_mismatch` when the checksum does not match.
 */
export function parseIdentifier(text: string): ParsedIdentifier {
  const match = identifierPattern.exec(text);
  if (match === null) {
    throw new BrokerError("malformed_identifier", undefined, {
      remedy: `Copy the whole identifier from the sign-in page: ${identifierLength} characters starting with ${identifierPrefix}.`,
    });
  }

  const [, grantId = "", secret = "", checksum = ""] = match;
  if (checksumOf(text.slice(0, -checksumLength)) !== checksum) {
    throw new BrokerError("identifier_checksum_mismatch", undefined, {
      remedy:
        "Copy the identifier again with the page's copy button, or sign in again for a new one.",
    });
  }
  return { grantId, secret };
}

export function hashSecret(secret: string): string {
  return createHash("sha256").update(secret, "utf8").digest("hex");
}

/** Compares a presented secret with a stored hash in constant time. */
export function secretMatchesHash(secret: string, storedHash: string): boolean {
  const presented = Buffer.from(hashSecret(secret), "hex");
  const stored = Buffer.from(storedHash, "hex");
  return (
    presented.length === stored.length && timingSafeEqual(presented, stored)
  );
}

function checksumOf(body: string): string {
  const checksum = Buffer.alloc(4);
  checksum.writeUInt32BE(crc32(body));
  return checksum.toString("base64url");
}

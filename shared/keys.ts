/**
 * Table keys and Key Vault secret names. Every one is derived (a hash or a random id), never an
 * input. Each is also checked before any call, because Azurite does not enforce the rules of the
 * real services. Table keys forbid `/ \ # ?` and control characters. Secret names are 1-127
 * letters, digits and dashes.
 */
import { createHash } from "node:crypto";

// eslint-disable-next-line no-control-regex -- control characters are what this rejects
const forbiddenKeyCharacters = /[/\\#?\u0000-\u001f\u007f-\u009f]/;
const secretNamePattern = /^[0-9A-Za-z-]{1,127}$/;

export function assertValidTableKey(key: string): string {
  if (
    key.length === 0 ||
    key.length > 512 ||
    forbiddenKeyCharacters.test(key)
  ) {
    throw new Error("derived Table key is invalid");
  }
  return key;
}

export function assertValidSecretName(name: string): string {
  if (!secretNamePattern.test(name))
    throw new Error("derived secret name is invalid");
  return name;
}

function sha256Hex(text: string): string {
  return createHash("sha256").update(text, "utf8").digest("hex");
}

/** Partition key of a grant: `grant-` and the grant id (32 hex digits). */
export function grantKey(grantId: string): string {
  return assertValidTableKey(`grant-${grantId}`);
}

/** Partition key of the row that maps a site and mailbox to their grant. */
export function mailboxKey(siteUrl: string, mailbox: string): string {
  return assertValidTableKey(
    `mailbox-${sha256Hex(`${siteUrl}\n${mailbox.toLowerCase()}`)}`,
  );
}

/** Partition key of a pending sign-in, from its state value. */
export function signInKey(state: string): string {
  return assertValidTableKey(`signin-${sha256Hex(state)}`);
}

/** Key Vault secret name of a grant's refresh token, which contains no personal data. */
export function refreshTokenSecretName(grantId: string): string {
  return assertValidSecretName(`refresh-token-${grantId}`);
}

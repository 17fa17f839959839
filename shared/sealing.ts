/**
 * Sealing of a finished sign-in's identifier while it waits for the page to fetch it. The key is
 * derived from the browser-binding cookie, whose value is never stored, so the stored ciphertext is
 * useless without the browser that signed in.
 */
import {
  createCipheriv,
  createDecipheriv,
  hkdfSync,
  randomBytes,
} from "node:crypto";

function deriveKey(bindingSecret: string, state: string): Buffer {
  return Buffer.from(
    hkdfSync("sha256", bindingSecret, state, "sign-in result", 32),
  );
}

export function sealIdentifier(
  identifier: string,
  bindingSecret: string,
  state: string,
): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv(
    "aes-256-gcm",
    deriveKey(bindingSecret, state),
    iv,
  );
  const ciphertext = Buffer.concat([
    cipher.update(identifier, "utf8"),
    cipher.final(),
  ]);
  return Buffer.concat([iv, cipher.getAuthTag(), ciphertext]).toString(
    "base64url",
  );
}

/** Returns the identifier, or undefined when the key is wrong or the sealed text was altered. */
export function tryUnsealIdentifier(
  sealed: string,
  bindingSecret: string,
  state: string,
): string | undefined {
  const bytes = Buffer.from(sealed, "base64url");
  if (bytes.length < 29) return undefined;

  try {
    const decipher = createDecipheriv(
      "aes-256-gcm",
      deriveKey(bindingSecret, state),
      bytes.subarray(0, 12),
    );
    decipher.setAuthTag(bytes.subarray(12, 28));
    return Buffer.concat([
      decipher.update(bytes.subarray(28)),
      decipher.final(),
    ]).toString("utf8");
  } catch {
    return undefined;
  }
}

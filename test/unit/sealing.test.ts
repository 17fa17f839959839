import { describe, expect, it } from "vitest";

import { sealIdentifier, tryUnsealIdentifier } from "../../shared/sealing.js";

const identifier = `m365b_${"0123456789abcdef".repeat(2)}${"S".repeat(43)}AAAAAA`;
const bindingSecret = "browser-binding-secret-value-0123456789abc";
const state = "state-value-0123456789";

// The sealed form is base64url of IV (12 bytes), GCM tag (16 bytes) and ciphertext.
const ciphertextStart = 28;

function sealedBytes(): Buffer {
  return Buffer.from(
    sealIdentifier(identifier, bindingSecret, state),
    "base64url",
  );
}

function flipByte(bytes: Buffer, index: number): string {
  const copy = Buffer.from(bytes);
  copy[index] = (copy[index] ?? 0) ^ 0x01;
  return copy.toString("base64url");
}

describe("sealing", () => {
  it("sealing round trips", () => {
    const sealed = sealIdentifier(identifier, bindingSecret, state);

    expect(tryUnsealIdentifier(sealed, bindingSecret, state)).toBe(identifier);
  });

  it("sealed text hides the identifier", () => {
    const sealed = sealIdentifier(identifier, bindingSecret, state);

    expect(sealed).not.toContain(identifier);
    expect(Buffer.from(sealed, "base64url").toString("latin1")).not.toContain(
      "m365b_",
    );
  });

  it("sealing uses a fresh IV each time", () => {
    expect(sealIdentifier(identifier, bindingSecret, state)).not.toBe(
      sealIdentifier(identifier, bindingSecret, state),
    );
  });

  it("unseal rejects wrong binding secret", () => {
    const sealed = sealIdentifier(identifier, bindingSecret, state);

    expect(
      tryUnsealIdentifier(sealed, `${bindingSecret}x`, state),
    ).toBeUndefined();
  });

  it("unseal rejects wrong state", () => {
    const sealed = sealIdentifier(identifier, bindingSecret, state);

    expect(
      tryUnsealIdentifier(sealed, bindingSecret, `${state}x`),
    ).toBeUndefined();
  });

  it("unseal rejects altered ciphertext", () => {
    const bytes = sealedBytes();

    for (let index = ciphertextStart; index < bytes.length; index += 1) {
      expect(
        tryUnsealIdentifier(flipByte(bytes, index), bindingSecret, state),
        `byte ${index}`,
      ).toBeUndefined();
    }
  });

  it("unseal rejects altered IV or tag", () => {
    const bytes = sealedBytes();

    for (let index = 0; index < ciphertextStart; index += 1) {
      expect(
        tryUnsealIdentifier(flipByte(bytes, index), bindingSecret, state),
        `byte ${index}`,
      ).toBeUndefined();
    }
  });

  it("unseal rejects truncated input", () => {
    const bytes = sealedBytes();

    for (let length = 0; length < bytes.length; length += 1) {
      const truncated = bytes.subarray(0, length).toString("base64url");
      expect(
        tryUnsealIdentifier(truncated, bindingSecret, state),
        `${length} bytes`,
      ).toBeUndefined();
    }
  });

  it("unseal rejects appended bytes", () => {
    const extended = Buffer.concat([sealedBytes(), Buffer.from([0])]);

    expect(
      tryUnsealIdentifier(extended.toString("base64url"), bindingSecret, state),
    ).toBeUndefined();
  });

  it("unseal rejects text that is not base64url", () => {
    expect(
      tryUnsealIdentifier("not sealed at all!", bindingSecret, state),
    ).toBeUndefined();
  });
});

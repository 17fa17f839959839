import fc from "fast-check";
import { describe, expect, it } from "vitest";

import { BrokerError, type ErrorCode } from "../../shared/errors.js";
import {
  hashSecret,
  identifierLength,
  identifierPrefix,
  issueIdentifier,
  newGrantId,
  parseIdentifier,
  secretMatchesHash,
} from "../../shared/identifier.js";

const grantId = "0123456789abcdef0123456789abcdef";
const secretStart = identifierPrefix.length + 32;
const checksumStart = secretStart + 43;

/** Runs parseIdentifier and returns the BrokerError it throws. */
function captureIdentifierError(text: string): BrokerError {
  try {
    parseIdentifier(text);
  } catch (error) {
    expect(error).toBeInstanceOf(BrokerError);
    return error as BrokerError;
  }
  throw new Error(`Expected ${text} to be rejected, but it parsed`);
}

function rejectionCode(text: string): ErrorCode {
  return captureIdentifierError(text).code;
}

function replaceAt(text: string, index: number, character: string): string {
  return text.slice(0, index) + character + text.slice(index + 1);
}

/** Returns another character of the same alphabet, so that only the checksum catches the change. */
function otherCharacter(character: string): string {
  return character === "A" ? "B" : "A";
}

describe("identifier", () => {
  it("identifier has prefix, length and alphabet", () => {
    const { identifier } = issueIdentifier(grantId);

    expect(identifier.startsWith("m365b_")).toBe(true);
    expect(identifier).toHaveLength(87);
    expect(identifierLength).toBe(87);
    expect(identifier).toMatch(/^[A-Za-z0-9_-]+$/);
  });

  it("identifier round trips through parseIdentifier", () => {
    const issued = issueIdentifier(grantId);

    const parsed = parseIdentifier(issued.identifier);

    expect(parsed.grantId).toBe(grantId);
    expect(parsed.secret).toHaveLength(43);
    expect(issued.identifier).toContain(parsed.secret);
    expect(hashSecret(parsed.secret)).toBe(issued.secretHash);
  });

  it("identifier returns grant id and stores only a hash", () => {
    const issued = issueIdentifier(grantId);
    const { secret } = parseIdentifier(issued.identifier);

    expect(issued.grantId).toBe(grantId);
    expect(issued.secretHash).toMatch(/^[0-9a-f]{64}$/);
    expect(issued.secretHash).not.toContain(secret);
  });

  it("identifier rejects a bad checksum", () => {
    const { identifier } = issueIdentifier(grantId);
    const index = secretStart + 10;
    const altered = replaceAt(
      identifier,
      index,
      otherCharacter(identifier[index] ?? ""),
    );

    expect(rejectionCode(altered)).toBe("identifier_checksum_mismatch");
  });

  it("identifier rejects an altered checksum", () => {
    const { identifier } = issueIdentifier(grantId);
    const altered = replaceAt(
      identifier,
      checksumStart,
      otherCharacter(identifier[checksumStart] ?? ""),
    );

    expect(rejectionCode(altered)).toBe("identifier_checksum_mismatch");
  });

  it("identifier rejects a malformed shape", () => {
    const { identifier } = issueIdentifier(grantId);
    const cases: Record<string, string> = {
      empty: "",
      "one character short": identifier.slice(0, -1),
      "one character long": `${identifier}A`,
      "other prefix": `m365x_${identifier.slice(identifierPrefix.length)}`,
      "no prefix": identifier.slice(identifierPrefix.length),
      "uppercase prefix": `M365B_${identifier.slice(identifierPrefix.length)}`,
      "character outside alphabet": replaceAt(identifier, secretStart, "+"),
      "padding character": replaceAt(identifier, checksumStart + 5, "="),
      "uppercase hex grant id": replaceAt(
        identifier,
        identifierPrefix.length,
        "A",
      ),
      "non-hex grant id": replaceAt(identifier, identifierPrefix.length, "g"),
      "surrounding whitespace": ` ${identifier} `,
    };

    for (const [name, text] of Object.entries(cases)) {
      expect(rejectionCode(text), name).toBe("malformed_identifier");
    }
  });

  it("identifier errors have status 401 and a remedy", () => {
    const { identifier } = issueIdentifier(grantId);
    const malformed = "";
    const mismatched = replaceAt(
      identifier,
      secretStart,
      otherCharacter(identifier[secretStart] ?? ""),
    );

    for (const text of [malformed, mismatched]) {
      const error = captureIdentifierError(text);
      expect(error.status, text).toBe(401);
      expect(error.remedy, text).toBeTruthy();
    }
  });

  it("identifier rejects any single-character change", () => {
    const { identifier } = issueIdentifier(grantId);
    const replacement = fc.string({
      unit: "binary",
      minLength: 1,
      maxLength: 1,
    });

    fc.assert(
      fc.property(
        fc.nat({ max: identifier.length - 1 }),
        replacement,
        (index, character) => {
          fc.pre(identifier[index] !== character);
          const code = rejectionCode(replaceAt(identifier, index, character));
          expect([
            "malformed_identifier",
            "identifier_checksum_mismatch",
          ]).toContain(code);
        },
      ),
      { numRuns: 2000 },
    );
  });

  it("identifier rejects any change within the alphabet", () => {
    const alphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-";

    fc.assert(
      fc.property(
        fc.nat({ max: identifierLength - 1 }),
        fc.constantFrom(...alphabet),
        (index, character) => {
          const { identifier } = issueIdentifier(newGrantId());
          fc.pre(identifier[index] !== character);
          expect(() =>
            parseIdentifier(replaceAt(identifier, index, character)),
          ).toThrow(BrokerError);
        },
      ),
      { numRuns: 2000 },
    );
  });

  it("identifier rejects random strings", () => {
    fc.assert(
      fc.property(fc.string({ unit: "binary", maxLength: 120 }), (text) => {
        expect(() => parseIdentifier(text)).toThrow(BrokerError);
      }),
    );
  });

  it("identifier rejects random well-shaped strings", () => {
    const hexDigit = fc.constantFrom(..."0123456789abcdef");
    const base64urlCharacter = fc.constantFrom(
      ..."ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-",
    );
    const wellShaped = fc
      .tuple(
        fc.string({ unit: hexDigit, minLength: 32, maxLength: 32 }),
        fc.string({ unit: base64urlCharacter, minLength: 49, maxLength: 49 }),
      )
      .map(([grant, rest]) => `${identifierPrefix}${grant}${rest}`);

    fc.assert(
      fc.property(wellShaped, (text) => {
        expect(rejectionCode(text)).toBe("identifier_checksum_mismatch");
      }),
    );
  });

  it("secretMatchesHash accepts only the right secret", () => {
    const issued = issueIdentifier(grantId);
    const { secret } = parseIdentifier(issued.identifier);
    const other = parseIdentifier(issueIdentifier(grantId).identifier).secret;

    expect(secretMatchesHash(secret, issued.secretHash)).toBe(true);
    expect(secretMatchesHash(other, issued.secretHash)).toBe(false);
  });

  it("secretMatchesHash rejects a hash of another length", () => {
    const issued = issueIdentifier(grantId);
    const { secret } = parseIdentifier(issued.identifier);

    expect(secretMatchesHash(secret, issued.secretHash.slice(0, 62))).toBe(
      false,
    );
    expect(secretMatchesHash(secret, `${issued.secretHash}00`)).toBe(false);
    expect(secretMatchesHash(secret, "")).toBe(false);
  });

  it("newGrantId is 32 hex digits", () => {
    expect(newGrantId()).toMatch(/^[0-9a-f]{32}$/);
  });

  it("newGrantId is unique", () => {
    const ids = new Set(Array.from({ length: 10_000 }, () => newGrantId()));

    expect(ids.size).toBe(10_000);
  });

  it("issueIdentifier rejects a bad grant id", () => {
    for (const bad of [
      "",
      grantId.slice(1),
      `${grantId}0`,
      grantId.toUpperCase(),
      "g".repeat(32),
      `${grantId.slice(0, 31)}/`,
    ]) {
      expect(() => issueIdentifier(bad), bad).toThrow();
    }
  });

  it("issueIdentifier never repeats", () => {
    const identifiers = new Set(
      Array.from({ length: 1_000 }, () => issueIdentifier(grantId).identifier),
    );

    expect(identifiers.size).toBe(1_000);
  });
});

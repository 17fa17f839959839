import fc from "fast-check";
import { describe, expect, it } from "vitest";

import { newGrantId } from "../../shared/identifier.js";
import {
  assertValidSecretName,
  assertValidTableKey,
  grantKey,
  mailboxKey,
  refreshTokenSecretName,
  signInKey,
} from "../../shared/keys.js";

/** Characters that Azure Table Storage forbids in PartitionKey and RowKey values. */
const forbiddenCharacters = [
  "/",
  "\\",
  "#",
  "?",
  ...range(0x00, 0x1f),
  ...range(0x7f, 0x9f),
];

const forbiddenSet = new Set(forbiddenCharacters);

/** Lists the forbidden characters in a key, so a failure shows which ones. */
function forbiddenIn(key: string): string[] {
  return [...key].filter((character) => forbiddenSet.has(character));
}

function range(first: number, last: number): string[] {
  return Array.from({ length: last - first + 1 }, (_, offset) =>
    String.fromCharCode(first + offset),
  );
}

function describeCharacter(character: string): string {
  return `U+${character.charCodeAt(0).toString(16).padStart(4, "0")}`;
}

const secretNamePattern = /^[0-9A-Za-z-]{1,127}$/;

// Standard base64 with `+` and `/`, the shape a state value would have if it were not base64url.
const standardBase64State = "ab+/cd//ef++gh==";

describe("derived Table keys", () => {
  it("forbidden set has 69 characters", () => {
    expect(forbiddenCharacters).toHaveLength(4 + 32 + 33);
    expect(forbiddenIn("a/b\u0000c\u009fd")).toEqual(["/", "\u0000", "\u009f"]);
  });

  it("mailboxKey has no forbidden characters", () => {
    const key = mailboxKey(
      "https://site.contoso.example/",
      "a/b#c?d@contoso.example",
    );

    expect(forbiddenIn(key)).toEqual([]);
    expect(key).toMatch(/^mailbox-[0-9a-f]{64}$/);
  });

  it("signInKey has no forbidden characters", () => {
    const key = signInKey(standardBase64State);

    expect(forbiddenIn(key)).toEqual([]);
    expect(key).toMatch(/^signin-[0-9a-f]{64}$/);
  });

  it("grantKey has no forbidden characters", () => {
    const key = grantKey(newGrantId());

    expect(forbiddenIn(key)).toEqual([]);
    expect(key).toMatch(/^grant-[0-9a-f]{32}$/);
  });

  it("derived keys never contain forbidden characters", () => {
    const anyText = fc.string({ unit: "binary" });

    fc.assert(
      fc.property(anyText, anyText, anyText, (site, mailbox, state) => {
        expect(forbiddenIn(mailboxKey(site, mailbox))).toEqual([]);
        expect(forbiddenIn(signInKey(state))).toEqual([]);
      }),
      { numRuns: 500 },
    );
  });

  it("derived keys hide forbidden input characters", () => {
    const forbiddenHeavyText = fc.string({
      unit: fc.constantFrom(...forbiddenCharacters, "a", "@", "."),
    });

    fc.assert(
      fc.property(
        forbiddenHeavyText,
        forbiddenHeavyText,
        forbiddenHeavyText,
        (site, mailbox, state) => {
          expect(forbiddenIn(mailboxKey(site, mailbox))).toEqual([]);
          expect(forbiddenIn(signInKey(state))).toEqual([]);
        },
      ),
      { numRuns: 500 },
    );
  });

  it("grantKey never returns a forbidden character", () => {
    fc.assert(
      fc.property(fc.string({ unit: "binary" }), (grantId) => {
        let key: string;
        try {
          key = grantKey(grantId);
        } catch {
          return;
        }
        expect(forbiddenIn(key)).toEqual([]);
      }),
      { numRuns: 500 },
    );
  });

  it("grantKey accepts every grant id", () => {
    fc.assert(
      fc.property(
        fc.string({
          unit: fc.constantFrom(..."0123456789abcdef"),
          minLength: 32,
          maxLength: 32,
        }),
        (grantId) => {
          expect(grantKey(grantId)).toBe(`grant-${grantId}`);
        },
      ),
    );
  });

  it("mailboxKey ignores mailbox case", () => {
    const site = "https://site.contoso.example";

    expect(mailboxKey(site, "First.Last@Contoso.Example")).toBe(
      mailboxKey(site, "first.last@contoso.example"),
    );
  });

  it("mailboxKey distinguishes sites", () => {
    const mailbox = "equis@contoso.example";

    expect(mailboxKey("https://a.equisonline.com", mailbox)).not.toBe(
      mailboxKey("https://b.equisonline.com", mailbox),
    );
  });

  it("mailboxKey distinguishes mailboxes", () => {
    const site = "https://site.contoso.example";

    expect(mailboxKey(site, "a@contoso.example")).not.toBe(
      mailboxKey(site, "b@contoso.example"),
    );
  });

  it("signInKey distinguishes states", () => {
    expect(signInKey("state-one")).not.toBe(signInKey("state-two"));
  });
});

describe("assertValidTableKey", () => {
  it("table key rejects each forbidden character", () => {
    for (const character of forbiddenCharacters) {
      expect(
        () => assertValidTableKey(`key${character}value`),
        describeCharacter(character),
      ).toThrow();
    }
  });

  it("table key accepts neighbours of forbidden ranges", () => {
    for (const character of [" ", "~", "\u00a0", "+", "=", "-", "_", "é"]) {
      expect(
        assertValidTableKey(`key${character}value`),
        describeCharacter(character),
      ).toBe(`key${character}value`);
    }
  });

  it("table key rejects empty key", () => {
    expect(() => assertValidTableKey("")).toThrow();
  });

  it("table key rejects over 512 characters", () => {
    expect(assertValidTableKey("a".repeat(512))).toHaveLength(512);
    expect(() => assertValidTableKey("a".repeat(513))).toThrow();
  });
});

describe("Key Vault secret names", () => {
  it("refreshTokenSecretName fits the secret name rules", () => {
    for (let run = 0; run < 100; run += 1) {
      const name = refreshTokenSecretName(newGrantId());
      expect(name).toMatch(secretNamePattern);
    }
  });

  it("refreshTokenSecretName contains only the grant id", () => {
    const grantId = newGrantId();

    expect(refreshTokenSecretName(grantId)).toBe(`refresh-token-${grantId}`);
  });

  it("refreshTokenSecretName rejects a mailbox as grant id", () => {
    expect(() =>
      refreshTokenSecretName("first.last+tag@contoso.example"),
    ).toThrow();
  });

  it("secret name rejects a name built from a mailbox", () => {
    expect(() =>
      assertValidSecretName("refresh-token-first.last+tag@contoso.example"),
    ).toThrow();
  });

  it("secret name rejects a name built from a long site URL", () => {
    const siteUrl = `https://${"a".repeat(200 - "https://.example".length)}.example`;
    expect(siteUrl).toHaveLength(200);

    expect(() => assertValidSecretName(`refresh-token-${siteUrl}`)).toThrow();
    expect(() =>
      assertValidSecretName(siteUrl.replace(/[^0-9A-Za-z-]/g, "-")),
    ).toThrow();
  });

  it("secret name allows 1 to 127 characters", () => {
    expect(assertValidSecretName("a")).toBe("a");
    expect(assertValidSecretName("a".repeat(127))).toHaveLength(127);
    expect(() => assertValidSecretName("")).toThrow();
    expect(() => assertValidSecretName("a".repeat(128))).toThrow();
  });

  it("secret name rejects other characters", () => {
    for (const character of ["_", ".", "+", "@", "/", " ", "é"]) {
      expect(
        () => assertValidSecretName(`name${character}x`),
        character,
      ).toThrow();
    }
  });
});

import { describe, expect, it } from "vitest";

import { BrokerError } from "../../shared/errors.js";
import { parseMailbox } from "../../shared/validation.js";

/** Runs parseMailbox and returns the BrokerError it throws. */
function captureMailboxError(input: unknown): BrokerError {
  try {
    parseMailbox(input);
  } catch (error) {
    expect(error).toBeInstanceOf(BrokerError);
    return error as BrokerError;
  }
  throw new Error(`Expected ${String(input)} to be rejected, but it passed`);
}

describe("parseMailbox", () => {
  it("mailbox keeps typed form and lower-cases normalised form", () => {
    const mailbox = parseMailbox("EQuIS@Contoso.Example");

    expect(mailbox.address).toBe("EQuIS@Contoso.Example");
    expect(mailbox.normalized).toBe("equis@contoso.example");
  });

  it("mailbox trims surrounding whitespace", () => {
    const mailbox = parseMailbox("  equis@contoso.example \n");

    expect(mailbox.address).toBe("equis@contoso.example");
  });

  it("mailbox accepts special local parts", () => {
    for (const address of [
      "a/b#c?d@contoso.example",
      "first.last+tag@contoso.example",
      "o'brien@mail.contoso.example",
    ]) {
      expect(parseMailbox(address).address, address).toBe(address);
    }
  });

  it("mailbox accepts 254 characters", () => {
    const domain = "@contoso.example";
    const address = `${"a".repeat(254 - domain.length)}${domain}`;

    expect(parseMailbox(address).address).toBe(address);
  });

  it("mailbox rejects invalid addresses", () => {
    const domain = "@contoso.example";
    const inputs: unknown[] = [
      "equis.contoso.example",
      "a@b@contoso.example",
      "eq uis@contoso.example",
      "equis@contoso .example",
      "",
      "   ",
      "equis@localhost",
      "equis@contoso.",
      "@contoso.example",
      "equis@",
      `${"a".repeat(255 - domain.length)}${domain}`,
      42,
      null,
      undefined,
      ["equis@contoso.example"],
    ];

    for (const input of inputs) {
      const error = captureMailboxError(input);
      expect(error.code, String(input)).toBe("invalid_email");
      expect(error.field, String(input)).toBe("email");
      expect(error.status, String(input)).toBe(400);
    }
  });

  it("mailbox error shortens long input", () => {
    const input = `${"a".repeat(300)}@contoso.example`;

    const error = captureMailboxError(input);

    expect(error.message).not.toContain(input);
    expect(error.message.length).toBeLessThan(200);
  });
});

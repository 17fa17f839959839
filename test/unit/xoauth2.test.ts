import { describe, expect, it } from "vitest";

import { buildXoauth2String } from "../../shared/tokenBroker.js";

const user = "equis@contoso.example";
const token = "ya29.a0AfH6SMB~test?token>valuex";

const standardBase64 = /^[A-Za-z0-9+/]*={0,2}$/;

function expectedBytes(accessToken: string): Buffer {
  return Buffer.concat([
    Buffer.from(`user=${user}`, "utf8"),
    Buffer.from([0x01]),
    Buffer.from(`auth=Bearer ${accessToken}`, "utf8"),
    Buffer.from([0x01, 0x01]),
  ]);
}

describe("buildXoauth2String", () => {
  it("xoauth2 decodes to the SASL initial response", () => {
    const decoded = Buffer.from(buildXoauth2String(user, token), "base64");

    expect(decoded.equals(expectedBytes(token))).toBe(true);
  });

  it("xoauth2 is standard padded base64", () => {
    const encoded = buildXoauth2String(user, token);

    expect(encoded).toMatch(standardBase64);
    expect(encoded.length % 4).toBe(0);
    expect(encoded.endsWith("==")).toBe(true);
    expect(encoded).toContain("+");
    expect(encoded).not.toMatch(/[-_]/);
  });

  it("xoauth2 uses slash, not underscore", () => {
    const encoded = buildXoauth2String(user, "EwBwA8l6BAAU?>?>x");

    expect(encoded).toBe(
      "dXNlcj1lcXVpc0Bjb250b3NvLmV4YW1wbGUBYXV0aD1CZWFyZXIgRXdCd0E4bDZCQUFVPz4/PngBAQ==",
    );
  });

  it("xoauth2 pads every length", () => {
    for (const accessToken of ["a", "ab", "abc"]) {
      const encoded = buildXoauth2String(user, accessToken);
      expect(encoded.length % 4, accessToken).toBe(0);
      expect(encoded, accessToken).toMatch(standardBase64);
    }
  });

  it("xoauth2 has no literal caret A", () => {
    const encoded = buildXoauth2String(user, token);
    const decoded = Buffer.from(encoded, "base64").toString("utf8");

    expect(decoded).not.toContain("^A");
    expect(encoded).not.toContain("^A");
  });

  it("xoauth2 keeps a long token whole", () => {
    const longToken = "x".repeat(4_990) + "0123456789";
    expect(longToken).toHaveLength(5_000);

    const decoded = Buffer.from(buildXoauth2String(user, longToken), "base64");

    expect(decoded.equals(expectedBytes(longToken))).toBe(true);
    expect(decoded.toString("utf8")).toContain(longToken);
  });
});

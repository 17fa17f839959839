import { describe, expect, it } from "vitest";
import { BrokerError } from "../../shared/errors.js";
import { parseSiteAllowlist } from "../../shared/siteAllowlist.js";
import { normalizeSiteUrl } from "../../shared/validation.js";

const { allowlist } = parseSiteAllowlist("*.equisonline.com");

function rejection(input: string): BrokerError | undefined {
  try {
    normalizeSiteUrl(input, allowlist);
    return undefined;
  } catch (error) {
    return error as BrokerError;
  }
}

describe("site host names", () => {
  const invalid = [
    "https://.equisonline.com",
    "https://a..equisonline.com",
    "https://-a.equisonline.com",
    "https://a-.equisonline.com",
    "https://a_b.equisonline.com",
    `https://${"a".repeat(64)}.equisonline.com`,
    "https://mysite.equisonline.com:0",
  ];

  for (const input of invalid) {
    it(`site URL rejects ${input.slice(0, 40)}`, () => {
      const error = rejection(input);
      expect(error?.code).toBe("invalid_site_url");
      expect(error?.field).toBe("siteUrl");
    });
  }

  it("site URL accepts international names as punycode", () => {
    expect(normalizeSiteUrl("https://bücher.equisonline.com", allowlist)).toBe(
      "https://xn--bcher-kva.equisonline.com",
    );
  });
});

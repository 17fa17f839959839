import { describe, expect, it } from "vitest";

import { BrokerError } from "../../shared/errors.js";
import {
  isSiteAllowed,
  parseSiteAllowlist,
  type SiteAllowlist,
} from "../../shared/siteAllowlist.js";
import { normalizeSiteUrl } from "../../shared/validation.js";

function allowlistOf(text: string): SiteAllowlist {
  const { allowlist, invalid } = parseSiteAllowlist(text);
  expect(invalid).toEqual([]);
  return allowlist;
}

const defaultAllowlist = allowlistOf("*.equisonline.com");

/** Runs normalizeSiteUrl and returns the BrokerError it throws. */
function captureSiteError(
  input: unknown,
  allowlist: SiteAllowlist = defaultAllowlist,
): BrokerError {
  try {
    normalizeSiteUrl(input, allowlist);
  } catch (error) {
    expect(error).toBeInstanceOf(BrokerError);
    return error as BrokerError;
  }
  throw new Error(`Expected ${String(input)} to be rejected, but it passed`);
}

describe("parseSiteAllowlist", () => {
  it("allowlist separates suffixes and hosts", () => {
    const { allowlist, invalid } = parseSiteAllowlist(
      "*.equisonline.com, Site.Contoso.Example ,,",
    );

    expect(allowlist.suffixes).toEqual(["equisonline.com"]);
    expect(allowlist.hosts).toEqual(["site.contoso.example"]);
    expect(invalid).toEqual([]);
  });

  it("allowlist returns entries it cannot parse", () => {
    const { invalid } = parseSiteAllowlist(
      "*.equisonline.com, bad_host!, https://site.example, *.",
    );

    expect(invalid).toEqual(["bad_host!", "https://site.example", "*."]);
  });
});

describe("isSiteAllowed", () => {
  it("suffix matches subdomains", () => {
    expect(isSiteAllowed(defaultAllowlist, "mysite.equisonline.com")).toBe(
      true,
    );
    expect(isSiteAllowed(defaultAllowlist, "a.b.equisonline.com")).toBe(true);
  });

  it("suffix does not match the suffix itself", () => {
    expect(isSiteAllowed(defaultAllowlist, "equisonline.com")).toBe(false);
  });

  it("suffix does not match lookalike hosts", () => {
    expect(
      isSiteAllowed(defaultAllowlist, "equisonline.com.evil.example"),
    ).toBe(false);
    expect(isSiteAllowed(defaultAllowlist, "evilequisonline.com")).toBe(false);
  });

  it("exact host matches only itself", () => {
    const allowlist = allowlistOf("site.contoso.example");

    expect(isSiteAllowed(allowlist, "site.contoso.example")).toBe(true);
    expect(isSiteAllowed(allowlist, "sub.site.contoso.example")).toBe(false);
    expect(isSiteAllowed(allowlist, "contoso.example")).toBe(false);
  });

  it("allowlist ignores case", () => {
    const allowlist = allowlistOf("*.EQuISonline.com, Site.Contoso.Example");

    expect(isSiteAllowed(allowlist, "MySite.EQUISONLINE.com")).toBe(true);
    expect(isSiteAllowed(allowlist, "SITE.contoso.EXAMPLE")).toBe(true);
  });
});

describe("normalizeSiteUrl", () => {
  it("site URL keeps only scheme and host", () => {
    expect(
      normalizeSiteUrl(
        "https://mysite.equisonline.com/path/page?query=1#fragment",
        defaultAllowlist,
      ),
    ).toBe("https://mysite.equisonline.com");
  });

  it("site URL drops trailing slash", () => {
    expect(
      normalizeSiteUrl("https://mysite.equisonline.com/", defaultAllowlist),
    ).toBe("https://mysite.equisonline.com");
  });

  it("site URL drops default port", () => {
    expect(
      normalizeSiteUrl("https://mysite.equisonline.com:443/", defaultAllowlist),
    ).toBe("https://mysite.equisonline.com");
  });

  it("site URL keeps other port", () => {
    expect(
      normalizeSiteUrl(
        "https://mysite.equisonline.com:8443/x",
        defaultAllowlist,
      ),
    ).toBe("https://mysite.equisonline.com:8443");
  });

  it("site URL is lower-cased", () => {
    expect(
      normalizeSiteUrl("HTTPS://MySite.EQuISonline.COM/", defaultAllowlist),
    ).toBe("https://mysite.equisonline.com");
  });

  it("site URL drops trailing dot", () => {
    expect(
      normalizeSiteUrl("https://mysite.equisonline.com./", defaultAllowlist),
    ).toBe("https://mysite.equisonline.com");
  });

  it("site URL trims whitespace", () => {
    expect(
      normalizeSiteUrl("  https://mysite.equisonline.com  ", defaultAllowlist),
    ).toBe("https://mysite.equisonline.com");
  });

  it("site URL matches exact hosts", () => {
    const allowlist = allowlistOf("site.contoso.example");

    expect(normalizeSiteUrl("https://site.contoso.example/", allowlist)).toBe(
      "https://site.contoso.example",
    );
  });

  it("site URL rejects invalid inputs", () => {
    const inputs: unknown[] = [
      "http://mysite.equisonline.com",
      "ftp://mysite.equisonline.com",
      "https://user:pass@mysite.equisonline.com",
      "https://user@mysite.equisonline.com",
      "https://10.0.0.1",
      "https://10.0.0.1./",
      "https://[::1]/",
      "https://[2001:db8::1]:8443/",
      "mysite.equisonline.com",
      "not a url",
      "",
      "   ",
      42,
      null,
      undefined,
      { url: "https://mysite.equisonline.com" },
    ];

    for (const input of inputs) {
      const error = captureSiteError(input);
      expect(error.code, String(input)).toBe("invalid_site_url");
      expect(error.field, String(input)).toBe("siteUrl");
      expect(error.status, String(input)).toBe(400);
    }
  });

  it("site URL names a custom field", () => {
    try {
      normalizeSiteUrl("", defaultAllowlist, "site");
      expect.unreachable("empty site URL was accepted");
    } catch (error) {
      expect((error as BrokerError).field).toBe("site");
    }
  });

  it("site URL rejects hosts not on the allowlist", () => {
    for (const input of [
      "https://equisonline.com",
      "https://equisonline.com.evil.example",
      "https://evilequisonline.com",
      "https://example.com",
    ]) {
      const error = captureSiteError(input);
      expect(error.code, input).toBe("site_not_allowed");
      expect(error.field, input).toBe("siteUrl");
    }
  });

  it("site URL errors never echo a password", () => {
    const password = "Hunter2Secret";
    for (const input of [
      `https://user:${password}@mysite.equisonline.com`,
      `http://user:${password}@mysite.equisonline.com`,
      `https://user:${password}@10.0.0.1`,
      `https://user:${password}@example.com`,
    ]) {
      const error = captureSiteError(input);
      expect(error.message, input).not.toContain(password);
    }
  });

  it("site URL error hides password of unparseable URL", () => {
    const password = "Hunter2Secret";
    const input = `https://user:${password}@my site.equisonline.com`;

    const error = captureSiteError(input);

    expect(error.code).toBe("invalid_site_url");
    expect(error.message).not.toContain(password);
  });
});

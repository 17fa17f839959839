/**
 * Validation of what the page sends: the EQuIS site URL and the mailbox address. Each failure is a
 * BrokerError naming the field and saying how to fix it.
 */
import { isIP } from "node:net";
import { z } from "zod";
import { BrokerError } from "./errors.js";
import {
  isHostname,
  isSiteAllowed,
  type SiteAllowlist,
} from "./siteAllowlist.js";

export interface Mailbox {
  /** As typed, for display. */
  address: string;
  /** Lower-cased, for comparison with the signed-in account. */
  normalized: string;
}

const siteExample = "https://mysite.equisonline.com";

/**
 * Checks a site URL and returns its normalised form, `https://host` (with `:port` when not 443),
 * lower-cased, with no path, query or fragment.
 */
export function normalizeSiteUrl(
  input: unknown,
  allowlist: SiteAllowlist,
  field = "siteUrl",
): string {
  if (typeof input !== "string" || input.trim() === "") {
    throw siteError(
      `Enter the URL of your EQuIS site, for example ${siteExample}.`,
      field,
    );
  }

  const text = input.trim();
  if (!URL.canParse(text)) {
    throw siteError(
      `The site URL is not a valid URL. Enter it like ${siteExample}.`,
      field,
    );
  }

  const url = new URL(text);
  if (url.protocol !== "https:") {
    throw siteError(
      `The site URL must start with https://, like ${siteExample}.`,
      field,
    );
  }
  if (url.username !== "" || url.password !== "") {
    throw siteError(
      "The site URL must not contain a user name or password.",
      field,
    );
  }

  const hostname = url.hostname.replace(/\.$/, "");
  if (isIP(hostname.replace(/^\[|\]$/g, "")) !== 0) {
    throw siteError(
      "The site URL must use the site's host name, not an IP address.",
      field,
    );
  }
  if (!isHostname(hostname)) {
    throw siteError(
      `${abbreviate(hostname)} is not a valid host name. Check the site URL, for example ${siteExample}.`,
      field,
    );
  }
  if (url.port === "0") {
    throw siteError("The site URL has port 0, which no site can use.", field);
  }
  if (!isSiteAllowed(allowlist, hostname)) {
    throw new BrokerError(
      "site_not_allowed",
      `${hostname} is not an EQuIS site this service connects to. Check the address, or ask the operator of this service to add it.`,
      { field },
    );
  }

  return url.port === ""
    ? `https://${hostname}`
    : `https://${hostname}:${url.port}`;
}

// Addresses as HTML forms accept them (WHATWG), which is what mail administrators type.
const emailSchema = z.email({ pattern: z.regexes.html5Email });

export function parseMailbox(input: unknown, field = "email"): Mailbox {
  if (typeof input !== "string" || input.trim() === "") {
    throw new BrokerError(
      "invalid_email",
      "Enter the full address of the mailbox, for example EQuIS@mycompany.com.",
      {
        field,
      },
    );
  }

  const address = input.trim();
  if (
    address.length > 254 ||
    !emailSchema.safeParse(address).success ||
    !/@[^@]+\.[^@.]+$/.test(address)
  ) {
    throw new BrokerError(
      "invalid_email",
      `"${abbreviate(address)}" is not a mail address. Enter the full address, for example EQuIS@mycompany.com.`,
      { field },
    );
  }
  return { address, normalized: address.toLowerCase() };
}

function siteError(message: string, field: string): BrokerError {
  return new BrokerError("invalid_site_url", message, { field });
}

/** Shortens echoed input so an error message stays readable. */
function abbreviate(text: string): string {
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

/**
 * The list of EQuIS sites a broker deployment serves: `*.suffix` entries match any subdomain of the
 * suffix (not the suffix itself), and plain entries match one host exactly.
 */

export interface SiteAllowlist {
  suffixes: string[];
  hosts: string[];
}

const hostnamePattern =
  /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)+$/;

/** Parses a comma-separated allowlist; returns the entries it could not parse in `invalid`. */
export function parseSiteAllowlist(text: string): {
  allowlist: SiteAllowlist;
  invalid: string[];
} {
  const allowlist: SiteAllowlist = { suffixes: [], hosts: [] };
  const invalid: string[] = [];

  for (const raw of text.split(",")) {
    const entry = raw.trim().toLowerCase();
    if (entry === "") continue;

    const isSuffix = entry.startsWith("*.");
    const host = isSuffix ? entry.slice(2) : entry;
    if (!hostnamePattern.test(host)) {
      invalid.push(raw.trim());
    } else if (isSuffix) {
      allowlist.suffixes.push(host);
    } else {
      allowlist.hosts.push(host);
    }
  }

  return { allowlist, invalid };
}

/**
 * Checks a DNS host name: labels of 1 to 63 letters, digits and hyphens, not starting or ending
 * with a hyphen, at least two labels, 253 characters at most.
 */
export function isHostname(host: string): boolean {
  return hostnamePattern.test(host.toLowerCase());
}

export function isSiteAllowed(
  allowlist: SiteAllowlist,
  hostname: string,
): boolean {
  const host = hostname.toLowerCase();
  if (allowlist.hosts.includes(host)) return true;
  return allowlist.suffixes.some((suffix) => host.endsWith(`.${suffix}`));
}

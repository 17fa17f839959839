// Accounts, tenants and the tenant segment of endpoint paths.

import { createHash } from "node:crypto";
import type { IdentityAccount } from "./server.js";
import {
  EntraError,
  accountNotInTenant,
  accountTypeNotAllowed,
  tenantNotFound,
} from "./errors.js";

/** Tenant id of personal Microsoft accounts in Entra ID. */
export const consumersTenantId = "9188040d-6c67-4c5b-b112-36a304b66dad";

// Namespace of the name-based UUIDs below, fixed so ids stay stable across restarts.
const uuidNamespace = "5b0f7c7e-3f57-4c1e-9d2a-6a4e0d1f8b21";

const guidPattern =
  /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const domainPattern =
  /^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)+$/i;
const emailPattern =
  /^[^\s@]+@([a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)+)$/i;

/** The tenant segment of a path such as `/{tenant}/oauth2/v2.0/token`. */
export type TenantSegment =
  | { kind: "common" | "organizations" | "consumers"; segment: string }
  | { kind: "tenant"; segment: string; tenantId: string };

/** Name-based UUID (RFC 9562 version 5) of a value in this module's namespace. */
export function nameBasedUuid(value: string): string {
  const namespaceBytes = Buffer.from(uuidNamespace.replaceAll("-", ""), "hex");
  const hash = createHash("sha1")
    .update(namespaceBytes)
    .update(value, "utf8")
    .digest();
  const bytes = hash.subarray(0, 16);
  bytes[6] = ((bytes[6] ?? 0) & 0x0f) | 0x50;
  bytes[8] = ((bytes[8] ?? 0) & 0x3f) | 0x80;
  const hex = bytes.toString("hex");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

export function isGuid(value: string): boolean {
  return guidPattern.test(value);
}

/** Returns the domain of an email address, or undefined when the value is not one. */
export function emailDomain(username: string): string | undefined {
  return emailPattern.exec(username.trim())?.[1]?.toLowerCase();
}

/**
 * Known accounts plus accounts created on first sign-in. A created account lives in
 * the tenant of its domain: the tenant of a known account with that domain, else a
 * tenant id derived from the domain. Its object id is derived from the address, so
 * the same address gets the same ids after a restart.
 */
export class AccountDirectory {
  private readonly known = new Map<string, IdentityAccount>();
  private readonly domainTenants = new Map<string, string>();

  constructor(accounts: IdentityAccount[]) {
    for (const account of accounts) {
      this.known.set(account.username.toLowerCase(), account);
      const domain = emailDomain(account.username);
      if (domain !== undefined && !this.domainTenants.has(domain)) {
        this.domainTenants.set(domain, account.tenantId);
      }
    }
  }

  knownUsernames(): string[] {
    return [...this.known.values()].map((account) => account.username);
  }

  tenantIdForDomain(domain: string): string {
    const normalized = domain.toLowerCase();
    return (
      this.domainTenants.get(normalized) ??
      nameBasedUuid(`tenant:${normalized}`)
    );
  }

  /** Returns the account for an email address, or undefined when it is not an address. */
  resolve(username: string): IdentityAccount | undefined {
    const trimmed = username.trim();
    const knownAccount = this.known.get(trimmed.toLowerCase());
    if (knownAccount) {
      return knownAccount;
    }
    const domain = emailDomain(trimmed);
    if (domain === undefined) {
      return undefined;
    }
    const tenantId = this.tenantIdForDomain(domain);
    return {
      username: trimmed,
      tenantId,
      objectId: nameBasedUuid(`object:${tenantId}:${trimmed.toLowerCase()}`),
      name: displayNameFromAddress(trimmed),
      email: trimmed,
    };
  }

  /** Parses the tenant segment of a path, or returns the AADSTS90002 error. */
  parseTenantSegment(segment: string): TenantSegment | EntraError {
    const lower = segment.toLowerCase();
    if (
      lower === "common" ||
      lower === "organizations" ||
      lower === "consumers"
    ) {
      return { kind: lower, segment: lower };
    }
    if (isGuid(segment)) {
      return { kind: "tenant", segment: lower, tenantId: lower };
    }
    if (domainPattern.test(segment)) {
      return {
        kind: "tenant",
        segment: lower,
        tenantId: this.tenantIdForDomain(lower),
      };
    }
    return tenantNotFound(segment);
  }
}

/** Returns the error Entra ID gives when the account cannot sign in at this tenant segment. */
export function checkAccountInTenant(
  account: IdentityAccount,
  tenant: TenantSegment,
  issuerUrl: string,
  clientId: string,
): EntraError | undefined {
  const isPersonal = account.tenantId.toLowerCase() === consumersTenantId;
  switch (tenant.kind) {
    case "common":
      return undefined;
    case "organizations":
      return isPersonal ? accountTypeNotAllowed(account.username) : undefined;
    case "consumers":
      return isPersonal ? undefined : accountTypeNotAllowed(account.username);
    case "tenant":
      if (account.tenantId.toLowerCase() === tenant.tenantId) {
        return undefined;
      }
      return accountNotInTenant(
        account.username,
        `${issuerUrl}/${account.tenantId}/v2.0`,
        tenant.tenantId,
        clientId,
      );
  }
}

/** Makes "Ada Lovelace" from "ada.lovelace@contoso.example". */
function displayNameFromAddress(address: string): string {
  const localPart = address.split("@")[0] ?? address;
  const words = localPart.split(/[._+-]+/).filter((word) => word.length > 0);
  if (words.length === 0) {
    return address;
  }
  return words
    .map((word) => word.charAt(0).toUpperCase() + word.slice(1))
    .join(" ");
}

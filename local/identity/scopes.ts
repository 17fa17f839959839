// Scope parsing and the resources the stand-in issues tokens for.

import {
  EntraError,
  invalidScope,
  missingParameter,
  multipleResources,
  unknownResource,
} from "./errors.js";

/** OpenID Connect scopes, which name no resource. */
export const openIdScopes = [
  "openid",
  "profile",
  "email",
  "offline_access",
] as const;

export const graphResource = "https://graph.microsoft.com";

/**
 * Delegated permissions of Exchange Online, by resource URI. Entra ID matches
 * permission names case-insensitively, and the table gives the canonical spelling.
 */
const exchangePermissions = [
  "IMAP.AccessAsUser.All",
  "POP.AccessAsUser.All",
  "SMTP.Send",
  "EWS.AccessAsUser.All",
  "Mail.Read",
  "Mail.ReadWrite",
  "Mail.Send",
  "Calendars.Read",
  "Calendars.ReadWrite",
  "Contacts.Read",
  "Contacts.ReadWrite",
  "User.Read",
];

// NOTE: Graph permission names are not checked, because Graph has hundreds of them.
const knownResources = new Map<string, string[] | undefined>([
  ["https://outlook.office.com", exchangePermissions],
  ["https://outlook.office365.com", exchangePermissions],
  [graphResource, undefined],
]);

/** A parsed `scope` parameter: OpenID scopes plus the permissions of at most one resource. */
export interface ScopeRequest {
  openId: Set<string>;
  /** Resource URI such as https://outlook.office.com; Graph when only OpenID scopes are given. */
  resource: string;
  /** Permission names on the resource, such as SMTP.Send. A ".default" is never combined with others. */
  permissions: string[];
}

/**
 * Parses a space-separated `scope` value. Returns invalid_scope AADSTS28000 when the
 * scopes name more than one resource, AADSTS70011 for an unknown permission or a
 * `.default` mixed with other permissions, and invalid_resource AADSTS500011 for a
 * resource the stand-in does not know.
 */
export function parseScopes(
  value: string | null,
  tenant: string,
): ScopeRequest | EntraError {
  if (value === null || value.trim() === "") {
    return missingParameter("scope");
  }
  const openId = new Set<string>();
  const permissionsByResource = new Map<string, string[]>();
  for (const scope of value.trim().split(/\s+/)) {
    const lower = scope.toLowerCase();
    if ((openIdScopes as readonly string[]).includes(lower)) {
      openId.add(lower);
      continue;
    }
    const parsed = splitScope(scope);
    const permissions = permissionsByResource.get(parsed.resource) ?? [];
    permissions.push(parsed.permission);
    permissionsByResource.set(parsed.resource, permissions);
  }

  if (permissionsByResource.size > 1) {
    return multipleResources(value.trim());
  }
  const [entry] = permissionsByResource;
  if (entry === undefined) {
    // Entra ID issues a Graph token when only OpenID scopes are requested.
    return { openId, resource: graphResource, permissions: ["User.Read"] };
  }
  const [resource, requested] = entry;
  if (!knownResources.has(resource)) {
    return unknownResource(resource, tenant);
  }
  const permissions = canonicalPermissions(resource, requested);
  if (permissions instanceof EntraError) {
    return permissions;
  }
  return { openId, resource, permissions };
}

/** Returns the full scope URI, for example https://outlook.office.com/SMTP.Send. */
export function fullScope(resource: string, permission: string): string {
  return `${resource}/${permission}`;
}

/**
 * Splits a full scope URI into resource and permission. A scope without a "/" is a
 * Graph permission, as in Entra ID.
 */
export function splitScope(scope: string): {
  resource: string;
  permission: string;
} {
  const slash = scope.lastIndexOf("/");
  if (slash < 0) {
    return { resource: graphResource, permission: scope };
  }
  const resource = scope.slice(0, slash).replace(/\/+$/, "");
  return {
    resource: normalizeResource(resource),
    permission: scope.slice(slash + 1),
  };
}

function normalizeResource(resource: string): string {
  try {
    const url = new URL(resource);
    const path = url.pathname === "/" ? "" : url.pathname.replace(/\/+$/, "");
    return `${url.protocol}//${url.host}${path}`.toLowerCase();
  } catch {
    return resource.toLowerCase();
  }
}

function canonicalPermissions(
  resource: string,
  requested: string[],
): string[] | EntraError {
  const table = knownResources.get(resource);
  const permissions: string[] = [];
  for (const permission of requested) {
    if (permission.toLowerCase() === ".default") {
      permissions.push(".default");
      continue;
    }
    if (table === undefined) {
      permissions.push(permission);
      continue;
    }
    const canonical = table.find(
      (name) => name.toLowerCase() === permission.toLowerCase(),
    );
    if (canonical === undefined) {
      return invalidScope(fullScope(resource, permission));
    }
    permissions.push(canonical);
  }
  if (permissions.includes(".default") && permissions.length > 1) {
    return invalidScope(
      requested.map((permission) => fullScope(resource, permission)).join(" "),
    );
  }
  return [...new Set(permissions)];
}

// OpenID Connect discovery and cloud instance discovery documents.

import type { TenantSegment } from "./accounts.js";
import { consumersTenantId } from "./accounts.js";

/** Returns "127.0.0.1:PORT" for "https://127.0.0.1:PORT". */
export function hostOf(url: string): string {
  return new URL(url).host;
}

/**
 * Endpoint metadata with the `{tenantid}` placeholder, the form MSAL 16 keeps built in
 * for login.microsoftonline.com. MSAL puts the tenant of each authority in its place.
 */
export function templateEndpointMetadata(url: string): Record<string, string> {
  return {
    authorization_endpoint: `${url}/{tenantid}/oauth2/v2.0/authorize`,
    token_endpoint: `${url}/{tenantid}/oauth2/v2.0/token`,
    end_session_endpoint: `${url}/{tenantid}/oauth2/v2.0/logout`,
    jwks_uri: `${url}/{tenantid}/discovery/v2.0/keys`,
    issuer: `${url}/{tenantid}/v2.0`,
  };
}

/**
 * Returns `/{tenant}/v2.0/.well-known/openid-configuration`. As in Entra ID, a domain
 * segment is replaced by its tenant id in the endpoints, and the multi-tenant segments
 * keep `{tenantid}` in the issuer.
 */
export function openIdConfiguration(
  url: string,
  tenant: TenantSegment,
): Record<string, unknown> {
  const pathTenant =
    tenant.kind === "tenant" ? tenant.tenantId : tenant.segment;
  let issuerTenant = "{tenantid}";
  if (tenant.kind === "tenant") {
    issuerTenant = tenant.tenantId;
  } else if (tenant.kind === "consumers") {
    issuerTenant = consumersTenantId;
  }
  return {
    token_endpoint: `${url}/${pathTenant}/oauth2/v2.0/token`,
    token_endpoint_auth_methods_supported: [
      "client_secret_post",
      "private_key_jwt",
      "client_secret_basic",
    ],
    jwks_uri: `${url}/${pathTenant}/discovery/v2.0/keys`,
    response_modes_supported: ["query"],
    subject_types_supported: ["pairwise"],
    id_token_signing_alg_values_supported: ["RS256"],
    response_types_supported: ["code"],
    scopes_supported: ["openid", "profile", "email", "offline_access"],
    issuer: `${url}/${issuerTenant}/v2.0`,
    request_uri_parameter_supported: false,
    authorization_endpoint: `${url}/${pathTenant}/oauth2/v2.0/authorize`,
    http_logout_supported: true,
    frontchannel_logout_supported: true,
    end_session_endpoint: `${url}/${pathTenant}/oauth2/v2.0/logout`,
    claims_supported: [
      "sub",
      "iss",
      "aud",
      "exp",
      "iat",
      "nbf",
      "nonce",
      "name",
      "preferred_username",
      "email",
      "oid",
      "tid",
      "ver",
    ],
    code_challenge_methods_supported: ["S256"],
    grant_types_supported: ["authorization_code", "refresh_token"],
    tenant_region_scope: null,
  };
}

/**
 * Returns the cloud instance discovery document of `/common/discovery/instance`,
 * listing this host as the only alias.
 */
export function instanceDiscoveryDocument(
  url: string,
  tenantSegment: string,
): Record<string, unknown> {
  const host = hostOf(url);
  return {
    tenant_discovery_endpoint: `${url}/${tenantSegment}/v2.0/.well-known/openid-configuration`,
    "api-version": "1.1",
    metadata: [
      { preferred_network: host, preferred_cache: host, aliases: [host] },
    ],
  };
}

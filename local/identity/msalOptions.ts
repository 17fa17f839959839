// MSAL configuration that points a ConfidentialClientApplication at the identity stand-in.

import type { NodeAuthOptions } from "@azure/msal-node";
import {
  hostOf,
  instanceDiscoveryDocument,
  templateEndpointMetadata,
} from "./metadata.js";

export type LocalMsalAuthorityOptions = Required<
  Pick<
    NodeAuthOptions,
    "knownAuthorities" | "cloudDiscoveryMetadata" | "authorityMetadata"
  >
>;

/**
 * Returns the `auth` fields that make MSAL Node use the stand-in at `url` without any
 * discovery request. Merge them into the configuration and set `authority` to
 * `${url}/organizations`, `${url}/common` or `${url}/${tenantId}`.
 *
 * MSAL's default AAD protocol mode stays on, so requests look as they do against
 * Entra ID. The inline cloud discovery metadata stops MSAL from asking
 * login.microsoftonline.com about the unknown host. The inline endpoint metadata uses
 * the `{tenantid}` placeholder, as MSAL's built-in metadata for Entra ID does, so one
 * configuration serves every tenant, including a per-tenant authority for refresh.
 * `knownAuthorities` is a second guard against instance discovery in case the
 * inline metadata does not match the authority host.
 */
export function localMsalAuthorityOptions(
  url: string,
): LocalMsalAuthorityOptions {
  return {
    knownAuthorities: [hostOf(url)],
    cloudDiscoveryMetadata: JSON.stringify(
      instanceDiscoveryDocument(url, "common"),
    ),
    authorityMetadata: JSON.stringify(templateEndpointMetadata(url)),
  };
}

/**
 * Token exchange: turns an EQuIS site's identifier into a current access token for its mailbox,
 * with everything the site needs to authenticate by IMAP or SMTP with SASL XOAUTH2.
 */
import type { InvocationContext } from "@azure/functions";
import type { Broker } from "./broker.js";
import { cloudProfiles, type CloudName, type MailEndpoint } from "./cloud.js";
import { BrokerError } from "./errors.js";
import type { StoredGrant } from "./grantStore.js";
import { parseIdentifier, secretMatchesHash } from "./identifier.js";
import { IdentityError, type RefreshResult } from "./identityClient.js";
import { describeCause } from "./http.js";
import { normalizeSiteUrl } from "./validation.js";

export interface TokenResponse {
  access_token: string;
  token_type: "Bearer";
  /** Seconds the token has left. */
  expires_in: number;
  /** When the token expires, in Unix seconds. */
  expires_on: number;
  /** The user name for XOAUTH2: the mailbox. */
  xoauth2_user: string;
  /** Base64 SASL XOAUTH2 initial response, ready for `AUTHENTICATE XOAUTH2` or `AUTH XOAUTH2`. */
  sasl_xoauth2: string;
  imap: MailEndpoint;
  smtp: MailEndpoint;
  status: "active";
}

/**
 * Builds the SASL XOAUTH2 initial response: `user=` mailbox, byte 0x01, `auth=Bearer ` token,
 * bytes 0x01 0x01, as standard padded base64.
 */
export function buildXoauth2String(user: string, accessToken: string): string {
  return Buffer.from(
    `user=${user}\x01auth=Bearer ${accessToken}\x01\x01`,
    "utf8",
  ).toString("base64");
}

/** Finds the grant an identifier names; a malformed identifier is rejected with no storage call. */
export async function authenticateGrant(
  broker: Broker,
  identifierText: string | undefined,
): Promise<StoredGrant> {
  if (identifierText === undefined) throw new BrokerError("missing_identifier");
  const { grantId, secret } = parseIdentifier(identifierText);

  const grant = await broker.grants.get(grantId);
  if (grant === undefined || !secretMatchesHash(secret, grant.identifierHash)) {
    throw new BrokerError("unknown_identifier", undefined, {
      remedy:
        "Check the identifier entered as the mail password in EQuIS, or sign in again on the sign-in page for a new one.",
    });
  }
  return grant;
}

export async function exchangeToken(
  broker: Broker,
  context: InvocationContext,
  identifierText: string | undefined,
  siteUrlInput: unknown,
): Promise<TokenResponse> {
  const grant = await authenticateGrant(broker, identifierText);
  if (siteUrlInput !== undefined) {
    const siteUrl = normalizeSiteUrl(siteUrlInput, broker.config.siteAllowlist);
    if (siteUrl !== grant.siteUrl)
      throw new BrokerError("site_mismatch", undefined, { field: "siteUrl" });
  }
  if (grant.status === "revoked") {
    throw new BrokerError("grant_revoked", undefined, {
      remedy: "Sign in again on the sign-in page to connect the mailbox.",
    });
  }

  const refreshed = await refreshGrant(broker, context, grant);
  const cloud = cloudProfiles[grant.cloud as CloudName] ?? broker.config.cloud;
  const nowSeconds = Math.floor(Date.now() / 1000);
  const expiresOn = Math.floor(refreshed.expiresOn.getTime() / 1000);

  return {
    access_token: refreshed.accessToken,
    token_type: "Bearer",
    expires_in: Math.max(0, expiresOn - nowSeconds),
    expires_on: expiresOn,
    xoauth2_user: grant.mailbox,
    sasl_xoauth2: buildXoauth2String(grant.mailbox, refreshed.accessToken),
    imap: cloud.imap,
    smtp: cloud.smtp,
    status: "active",
  };
}

// NOTE: every exchange refreshes through Microsoft; no access token is cached between requests yet.
async function refreshGrant(
  broker: Broker,
  context: InvocationContext,
  grant: StoredGrant,
): Promise<RefreshResult> {
  const refreshToken = await broker.secrets.readRefreshToken(
    grant.grantId,
    grant.secretVersion || undefined,
  );

  let result: RefreshResult;
  try {
    result = await broker.identity.refresh({
      tenantId: grant.tenantId,
      scopes: grant.scopes.split(" "),
      refreshToken,
    });
  } catch (error) {
    throw translateRefreshError(context, grant, error);
  }

  if (
    result.refreshToken !== undefined &&
    result.refreshToken !== refreshToken
  ) {
    await saveRotatedRefreshToken(broker, context, grant, result.refreshToken);
  }
  return result;
}

/** Saves a rotated refresh token as a new secret version, then points the grant at it. */
async function saveRotatedRefreshToken(
  broker: Broker,
  context: InvocationContext,
  grant: StoredGrant,
  refreshToken: string,
): Promise<void> {
  const secretVersion = await broker.secrets.saveRefreshToken(
    grant.grantId,
    refreshToken,
  );
  const now = new Date();
  const updated = await broker.grants.tryUpdate(grant.grantId, grant.etag, {
    secretVersion,
    refreshTokenIssuedAt: now,
    updatedAt: now,
  });
  if (!updated) {
    // Another request rotated it first; its token is as new as this one and stays in use.
    context.info("rotated refresh token not indexed", {
      grant_id: grant.grantId,
      reason: "grant_changed",
    });
  }
}

function translateRefreshError(
  context: InvocationContext,
  grant: StoredGrant,
  error: unknown,
): BrokerError {
  if (!(error instanceof IdentityError))
    return error instanceof BrokerError
      ? error
      : new BrokerError("internal_error", undefined, { cause: error });

  const fields = {
    grant_id: grant.grantId,
    error: error.error,
    aadsts: error.aadsts,
  };
  if (error.transient) {
    context.error("refresh failed", {
      ...fields,
      cause: describeCause(error.cause),
    });
    return new BrokerError("identity_unavailable", undefined, {
      retryAfterSeconds: 30,
      cause: error,
    });
  }
  if (
    error.error === "invalid_grant" ||
    error.error === "interaction_required" ||
    error.error === "consent_required"
  ) {
    context.warn("refresh rejected", fields);
    return new BrokerError("reauth_required", undefined, {
      aadsts: error.aadsts,
      remedy:
        "Sign in again on the sign-in page for this site and mailbox; the identifier in EQuIS keeps working.",
      cause: error,
    });
  }

  context.error("refresh failed", fields);
  return new BrokerError(
    "identity_unavailable",
    "Microsoft rejected the broker's token request.",
    {
      aadsts: error.aadsts,
      retryAfterSeconds: 60,
      cause: error,
    },
  );
}

/**
 * The catalogue of refresh failures: one table that the timer, token-exchange and the page use to
 * decide what a failure of the Microsoft identity platform means and what to tell people.
 *
 * - `customer`: the mailbox's sign-in is no longer usable (expired, revoked, MFA or Conditional
 *   Access now required, consent missing). The grant becomes `reauth_required`.
 * - `operator`: Microsoft rejected the broker's own app credential, or the broker could not obtain
 *   it (the managed identity gave no token, the certificate in Key Vault is missing or unusable).
 *   No grant is marked, the run stops calling the token endpoint, and one error line gives the
 *   operator the cause and the fix.
 * - `transient`: network, timeout, 5xx, 429 and `temporarily_unavailable`. Nothing changes, and
 *   the refresh is retried. Unknown AADSTS numbers are transient too and logged once, except under
 *   `interaction_required` or `consent_required`, which always mean a new sign-in.
 */
import type { IdentityError } from "./identityClient.js";

export type FailureKind = "customer" | "operator" | "transient";

export interface FailureEntry {
  kind: FailureKind;
  /** Stable snake_case reason code, stored on the grant and returned to callers. */
  reason: string;
  /** Plain-language account of the failure. */
  description: string;
  /** Next step for the mail administrator, or for the broker's operator when `kind` is `operator`. */
  remedy: string;
}

const federatedAudiences =
  "api://AzureADTokenExchange, or api://AzureADTokenExchangeUSGov when BROKER_CLOUD is usgov";

const signInAgain =
  "Sign in again on the sign-in page for this site and mailbox; the identifier in EQuIS keeps working.";

/** Entries by AADSTS number. The numbers and meanings are those Microsoft documents for Entra ID. */
export const catalogueByAadsts: Record<number, FailureEntry> = {
  700082: {
    kind: "customer",
    reason: "expired_by_inactivity",
    description: "The sign-in expired after 90 days without use.",
    remedy: signInAgain,
  },
  70008: {
    kind: "customer",
    reason: "refresh_token_expired",
    description: "The sign-in expired because it was not used for too long.",
    remedy: signInAgain,
  },
  50173: {
    kind: "customer",
    reason: "grant_revoked_by_microsoft",
    description:
      "Microsoft revoked the sign-in, often after a password change or a revocation of sessions.",
    remedy: signInAgain,
  },
  50132: {
    kind: "customer",
    reason: "password_changed",
    description:
      "The sign-in is no longer valid because the mailbox's password expired or was changed.",
    remedy: signInAgain,
  },
  54005: {
    kind: "customer",
    reason: "code_already_redeemed",
    description: "The sign-in code was already used.",
    remedy: signInAgain,
  },
  70000: {
    kind: "customer",
    reason: "refresh_token_invalid",
    description: "Microsoft no longer accepts the stored sign-in.",
    remedy: signInAgain,
  },
  50076: {
    kind: "customer",
    reason: "mfa_required",
    description:
      "The mailbox's organisation now requires multi-factor authentication for this sign-in.",
    remedy: `${signInAgain} Complete the multi-factor prompt when it appears.`,
  },
  50079: {
    kind: "customer",
    reason: "mfa_registration_required",
    description:
      "The mailbox account must register for multi-factor authentication.",
    remedy: `Register the account for multi-factor authentication, then ${lowerFirst(signInAgain)}`,
  },
  53003: {
    kind: "customer",
    reason: "conditional_access_blocked",
    description:
      "A Conditional Access policy of the mailbox's organisation blocks this sign-in.",
    remedy:
      "Ask a Microsoft 365 administrator to allow this app in Conditional Access, then sign in again.",
  },
  70043: {
    kind: "customer",
    reason: "sign_in_frequency_expired",
    description:
      "A Conditional Access sign-in frequency policy requires the mailbox to sign in again.",
    remedy: `${signInAgain} Ask a Microsoft 365 administrator to exclude this app from the sign-in frequency policy to stop this repeating.`,
  },
  65001: {
    kind: "customer",
    reason: "consent_missing",
    description:
      "Consent for this app's mail permissions is missing or was removed.",
    remedy:
      "Ask a Microsoft 365 administrator to grant consent for this app, then sign in again.",
  },
  50057: {
    kind: "customer",
    reason: "account_disabled",
    description: "The mailbox account is disabled.",
    remedy:
      "Ask a Microsoft 365 administrator to enable the account, then sign in again.",
  },
  50053: {
    kind: "customer",
    reason: "account_locked",
    description:
      "The mailbox account is locked after too many failed sign-ins.",
    remedy:
      "Wait for the lock to end or ask a Microsoft 365 administrator to unlock it, then sign in again.",
  },
  50034: {
    kind: "customer",
    reason: "account_not_found",
    description: "The mailbox account no longer exists in its organisation.",
    remedy:
      "Check the mailbox with a Microsoft 365 administrator, then sign in again with an existing account.",
  },
  7000215: {
    kind: "operator",
    reason: "client_secret_invalid",
    description: "Microsoft rejected the broker's client secret.",
    remedy:
      "Set BROKER_CLIENT_SECRET to a current secret of the app registration.",
  },
  7000222: {
    kind: "operator",
    reason: "client_secret_expired",
    description: "The broker's client secret has expired.",
    remedy:
      "Create a new client secret on the app registration and set BROKER_CLIENT_SECRET to it.",
  },
  700016: {
    kind: "operator",
    reason: "app_not_found",
    description:
      "The broker's app registration was not found in the mailbox's tenant.",
    remedy:
      "Check BROKER_CLIENT_ID, and that the app is multi-tenant and consented in that tenant.",
  },
  70021: {
    kind: "operator",
    reason: "federated_credential_not_found",
    description:
      "No federated identity credential on the broker's app registration matches the managed identity's token.",
    remedy: `Add a federated identity credential to the app registration with the managed identity's issuer (https://login.microsoftonline.com/<tenant ID>/v2.0), its object ID as subject and the audience ${federatedAudiences}.`,
  },
  700211: {
    kind: "operator",
    reason: "federated_credential_issuer_mismatch",
    description:
      "No federated identity credential on the broker's app registration trusts the issuer of the managed identity's token.",
    remedy:
      "Set the issuer of the app registration's federated identity credential to https://login.microsoftonline.com/<tenant ID>/v2.0 of the managed identity's tenant.",
  },
  700212: {
    kind: "operator",
    reason: "federated_credential_audience_mismatch",
    description:
      "The federated identity credential on the broker's app registration does not accept the audience of the managed identity's token.",
    remedy: `Set the audience of the federated identity credential to ${federatedAudiences}.`,
  },
  700213: {
    kind: "operator",
    reason: "federated_credential_subject_mismatch",
    description:
      "The federated identity credential on the broker's app registration names a subject other than the function app's managed identity.",
    remedy:
      "Set the subject of the federated identity credential to the object (principal) ID of the managed identity whose client ID is MANAGED_IDENTITY_CLIENT_ID, or of the system-assigned identity when that setting is empty.",
  },
  700024: {
    kind: "operator",
    reason: "client_assertion_expired",
    description:
      "Microsoft rejected the broker's client assertion because it is outside its valid time range.",
    remedy:
      "Check the clock of the function app's host: managed identity tokens and certificate assertions are valid for a limited time only.",
  },
  700027: {
    kind: "operator",
    reason: "client_assertion_signature_invalid",
    description:
      "Microsoft could not verify the signature of the broker's client assertion, or the certificate that signed it is not registered on the app registration.",
    remedy:
      "Upload the current version of the Key Vault certificate named by BROKER_CLIENT_CERTIFICATE_NAME to the app registration; the broker reads a new version within five minutes.",
  },
  700023: {
    kind: "operator",
    reason: "client_assertion_audience_invalid",
    description:
      "The audience of the broker's client assertion is not the token endpoint it was sent to.",
    remedy:
      "Check BROKER_CLOUD and BROKER_AUTHORITY_HOST: the broker makes each assertion for the token endpoint of the authority it calls.",
  },
  700021: {
    kind: "operator",
    reason: "client_assertion_client_mismatch",
    description:
      "The issuer or subject of the broker's client assertion is not its application (client) ID.",
    remedy:
      "Check that BROKER_CLIENT_ID is the application (client) ID of the app registration that holds the certificate.",
  },
  50027: {
    kind: "operator",
    reason: "client_assertion_malformed",
    description:
      "Microsoft rejected the broker's client assertion as an invalid or malformed JWT.",
    remedy:
      "Check that BROKER_CLIENT_CREDENTIAL matches how the app registration authenticates, and that the certificate in Key Vault has an RSA key.",
  },
};

const transientEntry: FailureEntry = {
  kind: "transient",
  reason: "identity_platform_unavailable",
  description:
    "The Microsoft identity platform did not answer or was temporarily unavailable.",
  remedy: "Nothing to do: the broker retries.",
};

const unknownEntry: FailureEntry = {
  kind: "transient",
  reason: "unknown_failure",
  description:
    "The Microsoft identity platform reported an error this broker does not know yet.",
  remedy:
    "Nothing to do yet: the broker retries. If it persists, the operator should look up the AADSTS code.",
};

const operatorErrors: Record<string, FailureEntry> = {
  invalid_client: {
    kind: "operator",
    reason: "client_credential_rejected",
    description: "Microsoft rejected the broker's app credential.",
    remedy:
      "Check BROKER_CLIENT_ID, and the credential that BROKER_CLIENT_CREDENTIAL selects, against the app registration.",
  },
  unauthorized_client: {
    kind: "operator",
    reason: "client_not_authorized",
    description:
      "The broker's app is not allowed to use this grant type in the tenant.",
    remedy:
      "Check the app registration's platform (Web) and that it is enabled in the tenant.",
  },
  // The entries below are raised by the broker itself when it cannot obtain its app credential.
  managed_identity_unavailable: {
    kind: "operator",
    reason: "managed_identity_unavailable",
    description:
      "The function app's managed identity gave no token for the broker's federated credential.",
    remedy:
      "Assign the managed identity to the function app: set MANAGED_IDENTITY_CLIENT_ID to the client ID of a user-assigned identity, or leave it empty and turn on the system-assigned identity.",
  },
  client_certificate_missing: {
    kind: "operator",
    reason: "client_certificate_missing",
    description: "The broker's client certificate is not in the key vault.",
    remedy:
      "Create the certificate named by BROKER_CLIENT_CERTIFICATE_NAME in the key vault at KEY_VAULT_URL, with content type application/x-pem-file.",
  },
  client_certificate_access_denied: {
    kind: "operator",
    reason: "client_certificate_access_denied",
    description:
      "The key vault refused to give the broker its client certificate.",
    remedy:
      "Give the broker's identity the Key Vault Secrets User role on the vault, because the certificate's private key is read as a secret.",
  },
  client_certificate_invalid: {
    kind: "operator",
    reason: "client_certificate_invalid",
    description:
      "The broker's client certificate in the key vault is not a valid PEM certificate with an RSA private key.",
    remedy:
      "Create a new version of the certificate with an RSA key and content type application/x-pem-file, and register it on the app registration.",
  },
  client_certificate_expired: {
    kind: "operator",
    reason: "client_certificate_expired",
    description: "The broker's client certificate has expired.",
    remedy:
      "Create a new version of the certificate in the key vault, register it on the app registration, and remove the expired one.",
  },
};

const customerErrors: Record<string, FailureEntry> = {
  interaction_required: {
    kind: "customer",
    reason: "interaction_required",
    description:
      "Microsoft requires the mailbox to sign in again interactively.",
    remedy: signInAgain,
  },
  consent_required: catalogueByAadsts[65001]!,
  // Raised by the broker itself when Key Vault has no refresh token for an active grant.
  refresh_token_missing: {
    kind: "customer",
    reason: "refresh_token_missing",
    description:
      "The stored sign-in for this mailbox is missing from the broker's key vault.",
    remedy: signInAgain,
  },
};

/** Error codes of OAuth and MSAL that mean the request never got a usable response. */
const transientErrors = new Set([
  "temporarily_unavailable",
  "server_error",
  "network_error",
  "empty_response",
  "endpoints_resolution_error",
  "post_request_failed",
]);

/**
 * Classifies a failure of the identity platform. An AADSTS number in the catalogue decides first,
 * then the OAuth error code; anything not recognised is transient. `known` is false when an AADSTS
 * number or an error code is not in the catalogue, so that the caller can report it.
 */
export function classifyFailure(
  error: Pick<IdentityError, "error" | "aadsts" | "transient">,
): {
  entry: FailureEntry;
  known: boolean;
} {
  if (error.transient || transientErrors.has(error.error))
    return { entry: transientEntry, known: true };

  const byNumber =
    error.aadsts === undefined ? undefined : catalogueByAadsts[error.aadsts];
  if (byNumber !== undefined) return { entry: byNumber, known: true };

  // The error code decides for a number not in the catalogue too: `interaction_required` never
  // succeeds until the mailbox signs in again, and `invalid_client` until the operator acts.
  const byCode = operatorErrors[error.error] ?? customerErrors[error.error];
  if (byCode !== undefined)
    return { entry: byCode, known: error.aadsts === undefined };

  return { entry: unknownEntry, known: false };
}

/** Finds the entry of a stored reason code, for status responses and the page. */
export function entryForReason(reason: string): FailureEntry | undefined {
  const entries = [
    ...Object.values(catalogueByAadsts),
    ...Object.values(operatorErrors),
    ...Object.values(customerErrors),
  ];
  return entries.find((entry) => entry.reason === reason);
}

/** Lists every catalogue row, for documentation. */
export function catalogueRows(): Array<
  { aadsts: number | undefined; error?: string } & FailureEntry
> {
  return [
    ...Object.entries(catalogueByAadsts).map(([aadsts, entry]) => ({
      aadsts: Number(aadsts),
      ...entry,
    })),
    ...Object.entries(operatorErrors).map(([error, entry]) => ({
      aadsts: undefined,
      error,
      ...entry,
    })),
    {
      aadsts: undefined,
      error: "interaction_required",
      ...customerErrors.interaction_required!,
    },
    {
      aadsts: undefined,
      error: "(Key Vault has no refresh token for the grant)",
      ...customerErrors.refresh_token_missing!,
    },
    {
      aadsts: undefined,
      error: "(network, timeout, 5xx, 429, temporarily_unavailable)",
      ...transientEntry,
    },
    { aadsts: undefined, error: "(anything else)", ...unknownEntry },
  ];
}

function lowerFirst(text: string): string {
  return text.charAt(0).toLowerCase() + text.slice(1);
}

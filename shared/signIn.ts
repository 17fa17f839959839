/**
 * The sign-in flow: start (pending sign-in and authorize URL), completion in the callback (every
 * check, then the grant stored), and the one-time fetch of the result by the page.
 */
import { randomBytes } from "node:crypto";
import type { InvocationContext } from "@azure/functions";
import type { Broker } from "./broker.js";
import type { CallbackFailureReason } from "./callbackFailures.js";
import { BrokerError } from "./errors.js";
import { classifyFailure } from "./failureCatalogue.js";
import { hashSecret, secretMatchesHash } from "./identifier.js";
import { replaceIdentifier } from "./grantLifecycle.js";
import { connectGrant } from "./grants.js";
import {
  createPkcePair,
  IdentityError,
  type SignInResult,
} from "./identityClient.js";
import { describeCause } from "./http.js";
import { sealIdentifier, tryUnsealIdentifier } from "./sealing.js";
import type { StoredSignIn } from "./signInStore.js";
import { normalizeSiteUrl, parseMailbox } from "./validation.js";

/** How long the page may take to fetch the result after the callback. */
export const resultLifetimeMs = 10 * 60_000;

export function newRandomToken(): string {
  return randomBytes(32).toString("base64url");
}

/** Checks the browser-binding cookie against the hash stored with the sign-in. */
function bindingMatches(
  signIn: StoredSignIn,
  browserSecret: string | undefined,
): boolean {
  return (
    browserSecret !== undefined &&
    secretMatchesHash(browserSecret, signIn.bindingHash)
  );
}

export interface StartedSignIn {
  authorizeUrl: string;
  browserSecret: string;
}

/** Checks the page's input, records a pending sign-in and returns Microsoft's authorize URL. */
export async function startSignIn(
  broker: Broker,
  input: Record<string, unknown>,
  existingBrowserSecret: string | undefined,
): Promise<StartedSignIn> {
  const siteUrl = normalizeSiteUrl(input.siteUrl, broker.config.siteAllowlist);
  const mailbox = parseMailbox(input.email);

  const browserSecret = existingBrowserSecret ?? newRandomToken();
  const state = newRandomToken();
  const nonce = newRandomToken();
  const pkce = createPkcePair();

  const authorizeUrl = await broker.identity.buildAuthorizeUrl({
    state,
    nonce,
    codeChallenge: pkce.challenge,
    loginHint: mailbox.address,
  });

  await broker.signIns.create(state, {
    codeVerifier: pkce.verifier,
    nonce,
    siteUrl,
    mailbox: mailbox.address,
    mailboxNormalized: mailbox.normalized,
    cloud: broker.config.cloud.name,
    bindingHash: hashSecret(browserSecret),
    expiresAt: new Date(
      Date.now() + broker.config.signInTimeoutMinutes * 60_000,
    ),
    status: "pending",
  });

  return { authorizeUrl, browserSecret };
}

export interface CallbackQuery {
  state: string | null;
  code: string | null;
  error: string | null;
  errorDescription: string | null;
}

export type CallbackOutcome =
  | { kind: "connected"; state: string }
  | {
      kind: "failed";
      reason: CallbackFailureReason;
      signedInAs?: string;
      expected?: string;
      aadsts?: number;
    };

type FailedOutcome = Extract<CallbackOutcome, { kind: "failed" }>;

function failed(
  reason: CallbackFailureReason,
  details: Omit<FailedOutcome, "kind" | "reason"> = {},
): FailedOutcome {
  return { ...details, kind: "failed", reason };
}

/** Blank values for the verifier and nonce, secrets a used sign-in no longer needs. */
const usedSecrets = { codeVerifier: "", nonce: "" };

/**
 * Finishes a sign-in. Every check that needs no token call comes first. The pending sign-in is then
 * claimed with its ETag, so of two deliveries of one code only one redeems it.
 */
export async function completeSignIn(
  broker: Broker,
  context: InvocationContext,
  query: CallbackQuery,
  browserSecret: string | undefined,
): Promise<CallbackOutcome> {
  if (query.state === null || query.state === "")
    return failed("missing_state");
  const state = query.state;

  const signIn = await broker.signIns.get(state);
  if (signIn === undefined) return failed("unknown_state");
  if (signIn.status === "completed" || signIn.status === "shown")
    return failed("already_connected");
  if (signIn.status === "redeeming") return failed("state_in_progress");
  if (signIn.status !== "pending") return failed("state_already_used");
  if (signIn.expiresAt.getTime() < Date.now()) return failed("expired_state");
  if (!bindingMatches(signIn, browserSecret)) return failed("other_browser");

  if (query.error !== null) {
    await broker.signIns.tryUpdate(state, signIn.etag, {
      status: "failed",
      ...usedSecrets,
    });
    return failedAtMicrosoft(query.error, query.errorDescription);
  }
  if (query.code === null || query.code === "") return failed("missing_state");

  const claimedEtag = await broker.signIns.tryUpdate(state, signIn.etag, {
    status: "redeeming",
  });
  if (claimedEtag === undefined) return failed("state_in_progress");

  const outcome = await redeemAndStore(broker, context, signIn, query.code);
  if (outcome.kind === "failed") {
    await broker.signIns.tryUpdate(state, claimedEtag, {
      status: "failed",
      ...usedSecrets,
    });
    return outcome;
  }

  const { grantId, alreadyConnected, identifier } = outcome.connection;
  const completed = await broker.signIns.tryUpdate(state, claimedEtag, {
    status: "completed",
    ...usedSecrets,
    grantId,
    alreadyConnected,
    sealedIdentifier:
      identifier === undefined
        ? undefined
        : sealIdentifier(identifier, browserSecret ?? "", state),
    completedAt: new Date(),
  });
  if (completed === undefined) throw new BrokerError("storage_unavailable");

  context.info("sign-in completed", {
    grant_id: grantId,
    already_connected: alreadyConnected,
  });
  return { kind: "connected", state };
}

async function redeemAndStore(
  broker: Broker,
  context: InvocationContext,
  signIn: StoredSignIn,
  code: string,
): Promise<
  | { kind: "connected"; connection: Awaited<ReturnType<typeof connectGrant>> }
  | FailedOutcome
> {
  let result: SignInResult;
  try {
    result = await broker.identity.redeemCode({
      code,
      codeVerifier: signIn.codeVerifier,
      nonce: signIn.nonce,
    });
  } catch (error) {
    return failedRedemption(context, error);
  }

  if (result.username?.toLowerCase() !== signIn.mailboxNormalized) {
    context.warn("sign-in rejected", { reason: "identity_mismatch" });
    return {
      kind: "failed",
      reason: "identity_mismatch",
      signedInAs: result.username ?? "an account without a user name",
      expected: signIn.mailbox,
    };
  }

  const granted = new Set(
    result.grantedScopes.map((scope) => scope.toLowerCase()),
  );
  const missing = broker.config.mailScopes.filter(
    (scope) => !granted.has(scope.toLowerCase()),
  );
  if (missing.length > 0) {
    context.warn("sign-in rejected", {
      reason: "wrong_scopes",
      missing_scopes: missing.join(" "),
    });
    return { kind: "failed", reason: "wrong_scopes" };
  }

  if (result.refreshToken === undefined) {
    context.warn("sign-in rejected", { reason: "no_refresh_token" });
    return { kind: "failed", reason: "no_refresh_token" };
  }

  const connection = await connectGrant(
    broker,
    {
      siteUrl: signIn.siteUrl,
      mailbox: signIn.mailbox,
      mailboxNormalized: signIn.mailboxNormalized,
      cloud: signIn.cloud,
      tenantId: result.tenantId,
      objectId: result.objectId,
      scopes: [...broker.config.mailScopes, "offline_access"].join(" "),
      refreshToken: result.refreshToken,
    },
    context,
  );
  return { kind: "connected", connection };
}

const deniedErrors = new Set(["access_denied"]);
const consentErrors = new Set(["consent_required", "admin_consent_required"]);

function failedAtMicrosoft(
  error: string,
  description: string | null,
): FailedOutcome {
  const aadsts = /AADSTS(\d+)/.exec(description ?? "")?.[1];
  const details = aadsts === undefined ? {} : { aadsts: Number(aadsts) };
  // AADSTS65001 and 90094: consent is missing and only an administrator may grant it.
  if (consentErrors.has(error) || aadsts === "65001" || aadsts === "90094")
    return failed("consent_required", details);
  if (deniedErrors.has(error)) return failed("access_denied", details);
  return failed("microsoft_error", details);
}

function failedRedemption(
  context: InvocationContext,
  error: unknown,
): FailedOutcome {
  if (!(error instanceof IdentityError)) throw error;

  const details = error.aadsts === undefined ? {} : { aadsts: error.aadsts };
  // The failure catalogue lists every rejection of the broker's own credential (secret,
  // certificate or federated) with its fix. No sign-in can succeed until the operator fixes it.
  const { entry } = classifyFailure(error);
  if (entry.kind === "operator") {
    context.error(
      `code redemption failed: the app's credential was rejected. ${entry.description} ${entry.remedy}`,
      { reason: entry.reason, error: error.error, aadsts: error.aadsts },
    );
    return failed("service_misconfigured", details);
  }
  if (error.transient) {
    context.error("code redemption failed", {
      error: error.error,
      cause: describeCause(error.cause),
    });
    return failed("microsoft_unavailable", details);
  }

  context.warn("code redemption rejected", {
    error: error.error,
    aadsts: error.aadsts,
  });
  // AADSTS54005: the code was already redeemed; AADSTS70008: it expired.
  if (error.aadsts === 54005) return failed("state_already_used", details);
  if (error.aadsts === 70008) return failed("code_expired", details);
  return failed("microsoft_error", details);
}

export interface SignInResultBody {
  siteUrl: string;
  email: string;
  /** Null when the mailbox was already connected: the identifier issued then keeps working. */
  identifier: string | null;
  alreadyConnected: boolean;
  settings: {
    username: string;
    imap: { host: string; port: number; security: string };
    smtp: { host: string; port: number; security: string };
  };
}

/** Hands the page the result of its finished sign-in, once. */
export async function takeSignInResult(
  broker: Broker,
  state: string | undefined,
  browserSecret: string | undefined,
): Promise<SignInResultBody> {
  const notFound = new BrokerError("result_not_found", undefined, {
    remedy: "Sign in again from this page, in this browser.",
  });
  if (state === undefined || browserSecret === undefined) throw notFound;

  const signIn = await broker.signIns.get(state);
  if (signIn === undefined || !bindingMatches(signIn, browserSecret))
    throw notFound;
  if (signIn.status === "shown") {
    throw new BrokerError("result_already_shown", undefined, {
      remedy:
        "If you did not copy the identifier, sign in again for this site and mailbox.",
    });
  }
  if (signIn.status !== "completed") throw notFound;
  if ((signIn.completedAt?.getTime() ?? 0) + resultLifetimeMs < Date.now()) {
    throw new BrokerError("result_expired", undefined, {
      remedy: "Sign in again for this site and mailbox.",
    });
  }

  let identifier: string | null = null;
  if (!signIn.alreadyConnected) {
    identifier =
      tryUnsealIdentifier(
        signIn.sealedIdentifier ?? "",
        browserSecret,
        state,
      ) ?? null;
    if (identifier === null) throw notFound;
  }

  const shown = await broker.signIns.tryUpdate(state, signIn.etag, {
    status: "shown",
    sealedIdentifier: "",
  });
  if (shown === undefined) {
    throw new BrokerError("result_already_shown", undefined, {
      remedy:
        "If you did not copy the identifier, sign in again for this site and mailbox.",
    });
  }

  const { imap, smtp } = broker.config.cloud;
  return {
    siteUrl: signIn.siteUrl,
    email: signIn.mailbox,
    identifier,
    alreadyConnected: signIn.alreadyConnected === true,
    settings: { username: signIn.mailbox, imap, smtp },
  };
}

/**
 * Issues a new identifier for the grant a finished sign-in restored, once per sign-in, within the
 * result's lifetime and only in the browser that signed in. The old identifier stops working.
 */
export async function issueNewIdentifier(
  broker: Broker,
  state: string | undefined,
  browserSecret: string | undefined,
): Promise<{ identifier: string }> {
  const notFound = new BrokerError("result_not_found", undefined, {
    remedy:
      "Sign in again from this page, in this browser, then ask for a new identifier.",
  });
  if (state === undefined || browserSecret === undefined) throw notFound;

  const signIn = await broker.signIns.get(state);
  if (signIn === undefined || !bindingMatches(signIn, browserSecret))
    throw notFound;
  if (
    signIn.status !== "shown" ||
    signIn.alreadyConnected !== true ||
    signIn.grantId === undefined
  ) {
    throw notFound;
  }
  if ((signIn.completedAt?.getTime() ?? 0) + resultLifetimeMs < Date.now()) {
    throw new BrokerError("result_expired", undefined, {
      remedy: "Sign in again, then ask for a new identifier.",
    });
  }
  const alreadyIssued = new BrokerError(
    "result_already_shown",
    "A new identifier was already issued after this sign-in.",
    { remedy: "Sign in again if you need another one." },
  );
  if (signIn.newIdentifierIssued === true) throw alreadyIssued;

  const marked = await broker.signIns.tryUpdate(state, signIn.etag, {
    newIdentifierIssued: true,
  });
  if (marked === undefined) throw alreadyIssued;
  const grant = await broker.grants.get(signIn.grantId);
  if (grant === undefined || grant.status === "revoked") throw notFound;
  return { identifier: await replaceIdentifier(broker, grant) };
}

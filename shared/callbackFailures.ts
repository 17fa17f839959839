/**
 * Pages shown when a sign-in cannot finish: every reason the callback can stop for, with a
 * status, a title, what happened and the next step, in words a mail administrator understands.
 */

export interface CallbackFailure {
  status: number;
  title: string;
  message: string;
  nextStep: string;
}

const startAgain =
  "Go back to the sign-in page and click Sign in with Microsoft again.";

export const callbackFailures = {
  missing_state: {
    status: 400,
    title: "This sign-in link is incomplete",
    message:
      "The address Microsoft sent you back to is missing part of the sign-in.",
    nextStep: startAgain,
  },
  unknown_state: {
    status: 400,
    title: "This sign-in is not known",
    message:
      "This service has no record of the sign-in. It may be older than this service's records, or the link was copied from elsewhere.",
    nextStep: startAgain,
  },
  expired_state: {
    status: 400,
    title: "This sign-in took too long",
    message:
      "A sign-in must be finished within a few minutes of clicking Sign in with Microsoft, and this one was not.",
    nextStep: startAgain,
  },
  state_in_progress: {
    status: 409,
    title: "This sign-in is already being finished",
    message:
      "The same sign-in arrived twice, for example after a double click or a page reload, and the first is still being finished.",
    nextStep:
      "Wait a moment, then open the sign-in page; if no identifier appears there, sign in again.",
  },
  state_already_used: {
    status: 400,
    title: "This sign-in has already ended",
    message:
      "Each sign-in can be used once, and this one has already been used or has failed.",
    nextStep: startAgain,
  },
  already_connected: {
    status: 200,
    title: "This sign-in has already finished",
    message:
      "This sign-in was finished before, and the mailbox is connected. The same sign-in arrived again, for example after pressing Back or reloading, so nothing was changed.",
    nextStep:
      "If you copied the identifier, you are done. If not, sign in again on the sign-in page; it then offers to issue a new identifier.",
  },
  other_browser: {
    status: 400,
    title: "This sign-in was started in another browser",
    message:
      "For your security, a sign-in must finish in the same browser where Sign in with Microsoft was clicked.",
    nextStep:
      "Start the sign-in again in this browser, and finish it without switching to another browser.",
  },
  access_denied: {
    status: 400,
    title: "Permission was not granted",
    message:
      "The sign-in was cancelled, or the permission request to read and send mail was declined.",
    nextStep:
      "Sign in again and accept the request. If your organisation requires an administrator to approve apps, ask a Microsoft 365 administrator to grant consent for this app first.",
  },
  consent_required: {
    status: 400,
    title: "An administrator must approve this app",
    message:
      "Your organisation does not let users approve this app themselves.",
    nextStep:
      "Ask a Microsoft 365 administrator to grant consent for this app, then sign in again.",
  },
  microsoft_error: {
    status: 400,
    title: "Microsoft stopped the sign-in",
    message: "Microsoft reported a problem with this sign-in.",
    nextStep:
      "Sign in again. If the same error comes back, give its code to your Microsoft 365 administrator.",
  },
  code_expired: {
    status: 400,
    title: "This sign-in took too long",
    message: "Microsoft's sign-in code expired before it could be used.",
    nextStep: startAgain,
  },
  identity_mismatch: {
    status: 403,
    title: "You signed in with another account",
    message:
      "The account that signed in is not the mailbox this sign-in was started for, so nothing was stored.",
    nextStep:
      "Sign out of Microsoft, or use an InPrivate or Incognito window, then sign in as the mailbox you typed.",
  },
  wrong_scopes: {
    status: 400,
    title: "Microsoft did not grant mail access",
    message:
      "The token Microsoft issued does not allow IMAP and SMTP access to the mailbox; it was issued for the wrong resource or without those permissions, so nothing was stored.",
    nextStep:
      "Sign in again and accept all requested permissions. If an administrator restricted them, ask for IMAP.AccessAsUser.All and SMTP.Send on Office 365 Exchange Online to be granted.",
  },
  no_refresh_token: {
    status: 502,
    title: "Microsoft did not allow lasting access",
    message:
      "Microsoft did not return the long-lived token this service needs to keep the mailbox connected, so nothing was stored.",
    nextStep:
      "Sign in again. If this repeats, ask the operator of this service to check that the app may request offline access.",
  },
  service_misconfigured: {
    status: 500,
    title: "This service is not set up correctly",
    message:
      "Microsoft rejected this service's own credentials. This is not a problem with your account.",
    nextStep:
      "Tell the operator of this service; signing in again will not help until they fix it.",
  },
  microsoft_unavailable: {
    status: 503,
    title: "Microsoft could not be reached",
    message: "The Microsoft sign-in service did not respond in time.",
    nextStep: "Wait a minute, then sign in again.",
  },
  unexpected_error: {
    status: 500,
    title: "The sign-in could not be finished",
    message:
      "This service failed while finishing the sign-in, and nothing was stored.",
    nextStep:
      "Sign in again. If this repeats, tell the operator of this service.",
  },
  storage_unavailable: {
    status: 503,
    title: "The sign-in could not be saved",
    message: "This service could not reach its storage, so nothing was stored.",
    nextStep: "Wait a minute, then sign in again.",
  },
} as const satisfies Record<string, CallbackFailure>;

export type CallbackFailureReason = keyof typeof callbackFailures;

// HTML of the sign-in and error pages. The pages load nothing but their own
// stylesheet and run no script, so the Content-Security-Policy allows only self.

import type { EntraError, RequestTrace } from "./errors.js";

export const stylesheetPath = "/_static/sign-in.css";

export const stylesheet = `
body { font-family: system-ui, sans-serif; background: #f2f2f2; margin: 0; color: #1b1b1b; }
main { max-width: 26rem; margin: 4rem auto; background: #fff; padding: 2rem 2.5rem; box-shadow: 0 2px 6px rgba(0,0,0,.2); }
h1 { font-size: 1.5rem; font-weight: 600; margin: 0 0 1rem; }
.notice { background: #fff4ce; padding: .5rem .75rem; font-size: .875rem; }
.error { background: #fde7e9; padding: .5rem .75rem; font-size: .875rem; overflow-wrap: anywhere; }
label { display: block; margin: 1rem 0 .25rem; }
input[type=email] { width: 100%; box-sizing: border-box; padding: .5rem; font-size: 1rem; }
.buttons { display: flex; flex-direction: row-reverse; gap: .5rem; margin-top: 1.5rem; }
button { padding: .5rem 1.5rem; font-size: 1rem; border: 1px solid #8a8a8a; background: #ccc; cursor: pointer; }
button[value=sign_in] { background: #0067b8; color: #fff; border-color: #0067b8; }
code { overflow-wrap: anywhere; }
`;

export interface SignInPageOptions {
  /** Path the form posts to, such as /organizations/login. */
  formAction: string;
  requestId: string;
  clientId: string;
  scopes: string[];
  username: string;
  knownUsernames: string[];
  errorMessage?: string;
}

/**
 * Renders the page where a person types or confirms the account that signs in.
 * "Sign in" comes first in the form so that the Enter key signs in.
 */
export function renderSignInPage(options: SignInPageOptions): string {
  const scopeItems = options.scopes
    .map((scope) => `<li><code>${escapeHtml(scope)}</code></li>`)
    .join("");
  const accountOptions = options.knownUsernames
    .map((username) => `<option value="${escapeHtml(username)}"></option>`)
    .join("");
  const error =
    options.errorMessage === undefined
      ? ""
      : `<p class="error" role="alert">${escapeHtml(options.errorMessage)}</p>`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign in to your account</title>
<link rel="stylesheet" href="${stylesheetPath}">
</head>
<body>
<main>
<h1>Sign in</h1>
<p class="notice">Local identity stand-in: no password is checked, and any email address signs in.</p>
<p>Application <code>${escapeHtml(options.clientId)}</code> requests these permissions:</p>
<ul>${scopeItems}</ul>
${error}
<form method="post" action="${escapeHtml(options.formAction)}">
<input type="hidden" name="request_id" value="${escapeHtml(options.requestId)}">
<label for="username">Email address</label>
<input id="username" name="username" type="email" required autofocus autocomplete="username" list="known-accounts" value="${escapeHtml(options.username)}">
<datalist id="known-accounts">${accountOptions}</datalist>
<div class="buttons">
<button type="submit" name="action" value="sign_in">Sign in</button>
<button type="submit" name="action" value="cancel" formnovalidate>Cancel</button>
</div>
</form>
</main>
</body>
</html>
`;
}

/** Renders the page Entra ID shows when it cannot redirect back, such as AADSTS50011. */
export function renderErrorPage(
  failure: EntraError,
  trace: RequestTrace,
  timestamp: string,
): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Sign in error</title>
<link rel="stylesheet" href="${stylesheetPath}">
</head>
<body>
<main>
<h1>Sorry, but we're having trouble signing you in.</h1>
<p class="error" role="alert">${escapeHtml(failure.description)}</p>
<p>Error: <code>${escapeHtml(failure.error)}</code><br>
Trace ID: <code>${trace.traceId}</code><br>
Correlation ID: <code>${trace.correlationId}</code><br>
Timestamp: <code>${escapeHtml(timestamp)}</code></p>
</main>
</body>
</html>
`;
}

/**
 * Returns the Content-Security-Policy of the sign-in page. Browsers apply
 * `form-action` to the redirect that follows a form post, so the origin of the
 * registered redirect URI is allowed next to self.
 */
export function signInContentSecurityPolicy(
  redirectUri: string | undefined,
): string {
  let formAction = "'self'";
  if (redirectUri !== undefined) {
    const target = new URL(redirectUri);
    // A custom scheme such as msal1234:// has the opaque origin "null", so allow the scheme.
    formAction += ` ${target.origin === "null" ? target.protocol : target.origin}`;
  }
  return `default-src 'none'; style-src 'self'; img-src 'self'; form-action ${formAction}; frame-ancestors 'none'; base-uri 'none'`;
}

export function escapeHtml(value: string): string {
  return value
    .replaceAll("&", "&amp;")
    .replaceAll("<", "&lt;")
    .replaceAll(">", "&gt;")
    .replaceAll('"', "&quot;")
    .replaceAll("'", "&#39;");
}

/**
 * Server-rendered pages: the static sign-in page's files, and the page the callback shows when a
 * sign-in cannot finish. Both go out with a Content-Security-Policy that allows no inline script.
 */
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { HttpResponseInit } from "@azure/functions";
import {
  callbackFailures,
  type CallbackFailureReason,
} from "./callbackFailures.js";
import { securityHeaders } from "./http.js";

export const contentSecurityPolicy =
  "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; " +
  "form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

const pageHeaders = {
  ...securityHeaders,
  "Content-Security-Policy": contentSecurityPolicy,
  "X-Frame-Options": "DENY",
};

export const signInPagePath = "/microsoft365_oauth.html";

/** Finds the app's root folder, the one with host.json, from the source tree or the compiled one. */
function findAppRoot(): string {
  let folder = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(folder, "host.json"))) {
    const parent = dirname(folder);
    if (parent === folder)
      throw new Error("host.json not found above the broker's code");
    folder = parent;
  }
  return folder;
}

const pageFolder = join(findAppRoot(), "page");
const pageFiles = new Map<string, { type: string; content: Buffer }>();

/** The files of the page, by the name the page links them with. */
const servedFiles: Record<string, string> = {
  "microsoft365_oauth.html": "text/html; charset=utf-8",
  "page.js": "text/javascript; charset=utf-8",
  "page.css": "text/css; charset=utf-8",
  "callback.js": "text/javascript; charset=utf-8",
};

export function pageFileResponse(name: string): HttpResponseInit | undefined {
  const type = servedFiles[name];
  if (type === undefined) return undefined;

  let file = pageFiles.get(name);
  if (file === undefined) {
    file = { type, content: readFileSync(join(pageFolder, name)) };
    pageFiles.set(name, file);
  }
  return {
    status: 200,
    body: file.content,
    headers: { ...pageHeaders, "Content-Type": file.type },
  };
}

export function redirectResponse(location: string): HttpResponseInit {
  return { status: 303, headers: { ...securityHeaders, Location: location } };
}

const htmlEscapes: Record<string, string> = {
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
  '"': "&quot;",
  "'": "&#39;",
};

export function escapeHtml(text: string): string {
  return text.replace(
    /[&<>"']/g,
    (character) => htmlEscapes[character] ?? character,
  );
}

export interface FailureDetails {
  signedInAs?: string;
  expected?: string;
  aadsts?: number;
}

/** Renders the page shown when a sign-in cannot finish: what happened and what to do next. */
export function callbackFailureResponse(
  reason: CallbackFailureReason,
  details: FailureDetails = {},
): HttpResponseInit {
  const failure = callbackFailures[reason];
  const lines = [`<p>${escapeHtml(failure.message)}</p>`];

  if (details.signedInAs !== undefined && details.expected !== undefined) {
    lines.unshift(
      `<p>You signed in as <strong>${escapeHtml(details.signedInAs)}</strong>; this page was started for <strong>${escapeHtml(details.expected)}</strong>.</p>`,
    );
  }
  if (details.aadsts !== undefined) {
    lines.push(
      `<p>Microsoft's error code: <code>AADSTS${details.aadsts}</code></p>`,
    );
  }
  lines.push(
    `<p><strong>Next step:</strong> ${escapeHtml(failure.nextStep)}</p>`,
  );

  const html = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(failure.title)}</title>
<link rel="stylesheet" href="/api/auth/assets/page.css">
<script src="/api/auth/assets/callback.js"></script>
</head>
<body>
<main class="page">
<h1>${escapeHtml(failure.title)}</h1>
<section class="callback-message" id="callback-${reason.replace(/_/g, "-")}" data-reason="${reason}">
${lines.join("\n")}
</section>
<p><a class="button-link" href="${signInPagePath}">Back to the sign-in page</a></p>
</main>
</body>
</html>
`;
  return {
    status: failure.status,
    body: html,
    headers: { ...pageHeaders, "Content-Type": "text/html; charset=utf-8" },
  };
}

/**
 * The sign-in cookies. `m365b_browser` binds a sign-in to the browser that started it (only its
 * hash is stored). `m365b_signin_<tag>` contains the state of one finished sign-in whose result the
 * page fetches after the return; the page learns the tag from its address, so several tabs of one
 * browser keep their own results. All are HttpOnly, Secure and SameSite=Lax (Microsoft's redirect
 * back is a cross-site top-level GET, which Lax allows), scoped to /api/auth.
 */
import { createHash } from "node:crypto";
import type { Cookie, HttpRequest } from "@azure/functions";

export const browserCookieName = "m365b_browser";
export const signInCookiePrefix = "m365b_signin_";
const tagPattern = /^[0-9a-f]{16}$/;

/** Derives a sign-in's tag: the first 16 hex digits of a SHA-256 of its state, which reveal nothing of it. */
export function signInTag(state: string): string {
  return createHash("sha256").update(state).digest("hex").slice(0, 16);
}

/** Returns the cookie name of a sign-in tag, or undefined when the tag is malformed. */
export function signInCookieName(tag: unknown): string | undefined {
  return typeof tag === "string" && tagPattern.test(tag)
    ? `${signInCookiePrefix}${tag}`
    : undefined;
}

/** Reads the state of the sign-in a tag names from its cookie. */
export function readSignInCookie(
  request: HttpRequest,
  tag: unknown,
): string | undefined {
  const name = signInCookieName(tag);
  return name === undefined ? undefined : readCookie(request, name);
}
const tokenPattern = /^[A-Za-z0-9_-]{43}$/;

export function readCookie(
  request: HttpRequest,
  name: string,
): string | undefined {
  const header = request.headers.get("cookie") ?? "";
  for (const part of header.split(";")) {
    const separator = part.indexOf("=");
    if (separator < 0) continue;
    if (part.slice(0, separator).trim() === name) {
      const value = part.slice(separator + 1).trim();
      return tokenPattern.test(value) ? value : undefined;
    }
  }
  return undefined;
}

export function sessionCookie(
  name: string,
  value: string,
  maxAgeSeconds: number,
): Cookie {
  return {
    name,
    value,
    path: "/api/auth",
    httpOnly: true,
    secure: true,
    sameSite: "Lax",
    maxAge: maxAgeSeconds,
  };
}

export function expiredCookie(name: string): Cookie {
  return sessionCookie(name, "", 0);
}

/**
 * The two sign-in cookies. `m365b_browser` binds a sign-in to the browser that started it (only its
 * hash is stored); `m365b_signin` names the sign-in whose result the page fetches after the return.
 * Both are HttpOnly, Secure and SameSite=Lax (Microsoft's redirect back is a cross-site top-level
 * GET, which Lax allows), scoped to /api/auth.
 */
import type { Cookie, HttpRequest } from "@azure/functions";

export const browserCookieName = "m365b_browser";
export const signInCookieName = "m365b_signin";
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

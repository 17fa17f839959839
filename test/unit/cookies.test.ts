import { HttpRequest } from "@azure/functions";
import { describe, expect, it } from "vitest";

import {
  browserCookieName,
  expiredCookie,
  readCookie,
  readSignInCookie,
  sessionCookie,
  signInCookieName,
  signInTag,
} from "../../shared/cookies.js";

const token = "A".repeat(21) + "_" + "b".repeat(20) + "-";

function requestWithCookie(cookie: string): HttpRequest {
  return new HttpRequest({
    method: "GET",
    url: "https://broker.example/api/auth/result",
    headers: { cookie },
  });
}

describe("cookies", () => {
  it("readCookie finds the named cookie", () => {
    const request = requestWithCookie(
      `other=1; ${browserCookieName}=${token}; m365b_signin_0123456789abcdef=x`,
    );

    expect(token).toHaveLength(43);
    expect(readCookie(request, browserCookieName)).toBe(token);
  });

  it("readCookie rejects values of the wrong shape", () => {
    for (const value of ["", "short", `${token}A`, `${token.slice(1)}=`]) {
      const request = requestWithCookie(`${browserCookieName}=${value}`);
      expect(readCookie(request, browserCookieName), value).toBeUndefined();
    }
  });

  it("readCookie ignores names that only end alike", () => {
    const request = requestWithCookie(`x${browserCookieName}=${token}`);

    expect(readCookie(request, browserCookieName)).toBeUndefined();
  });

  it("readCookie is undefined without a cookie header", () => {
    const request = new HttpRequest({
      method: "GET",
      url: "https://broker.example/api/auth/result",
    });

    expect(readCookie(request, browserCookieName)).toBeUndefined();
  });

  it("session cookie is HttpOnly, Secure and Lax", () => {
    const cookie = sessionCookie(browserCookieName, token, 600);

    expect(cookie.httpOnly).toBe(true);
    expect(cookie.secure).toBe(true);
    expect(cookie.sameSite).toBe("Lax");
    expect(cookie.path).toBe("/api/auth");
    expect(cookie.maxAge).toBe(600);
  });

  it("expired cookie is empty with zero max age", () => {
    const cookie = expiredCookie(browserCookieName);

    expect(cookie.value).toBe("");
    expect(cookie.maxAge).toBe(0);
    expect(cookie.path).toBe("/api/auth");
  });

  it("sign-in tag is 16 hex digits of the state's hash", () => {
    const tag = signInTag(token);

    expect(tag).toMatch(/^[0-9a-f]{16}$/);
    expect(tag).not.toBe(signInTag(`${token.slice(1)}A`));
    expect(token).not.toContain(tag);
  });

  it("sign-in cookie name needs a well-formed tag", () => {
    expect(signInCookieName("0123456789abcdef")).toBe(
      "m365b_signin_0123456789abcdef",
    );
    for (const tag of [
      "",
      "0123",
      "0123456789ABCDEF",
      "0123456789abcdeg",
      7,
      undefined,
    ]) {
      expect(signInCookieName(tag), String(tag)).toBeUndefined();
    }
  });

  it("sign-in cookie is read by its tag", () => {
    const tag = signInTag(token);
    const request = requestWithCookie(
      `m365b_signin_${signInTag("other")}=${"B".repeat(43)}; m365b_signin_${tag}=${token}`,
    );

    expect(readSignInCookie(request, tag)).toBe(token);
    expect(readSignInCookie(request, "ffffffffffffffff")).toBeUndefined();
  });
});

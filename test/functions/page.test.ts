import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { routes } from "../../functions/routes.js";
import { startLocalHost, type LocalHost } from "../../local/host.js";
import { startTestStack, type TestStack } from "../support/testStack.js";

let stack: TestStack;
let host: LocalHost;

beforeAll(async () => {
  stack = await startTestStack();
  host = await startLocalHost({ broker: stack.createBroker(), routes });
});

afterAll(async () => {
  await host?.close();
  await stack?.stop();
});

describe("page", () => {
  it("page is served with a strict Content-Security-Policy", async () => {
    const response = await fetch(`${host.url}/microsoft365_oauth.html`);
    const html = await response.text();
    const policy = response.headers.get("content-security-policy") ?? "";

    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toContain("text/html");
    expect(policy).toContain("default-src 'none'");
    expect(policy).toContain("script-src 'self'");
    expect(policy).not.toContain("unsafe-inline");
    expect(policy).toContain("frame-ancestors 'none'");
    expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
    expect(html).not.toMatch(/\son[a-z]+=/i);
    expect(html).not.toMatch(/(src|href)="https?:/);
  });

  it("root redirects to the page", async () => {
    const response = await fetch(`${host.url}/`, { redirect: "manual" });
    expect(response.status).toBe(303);
    expect(response.headers.get("location")).toBe("/microsoft365_oauth.html");
  });

  it("page assets are served and nothing else is", async () => {
    const script = await fetch(`${host.url}/api/auth/assets/page.js`);
    const style = await fetch(`${host.url}/api/auth/assets/page.css`);
    const other = await fetch(`${host.url}/api/auth/assets/..%2Fpackage.json`);

    expect(script.status).toBe(200);
    expect(script.headers.get("content-type")).toContain("javascript");
    expect(style.status).toBe(200);
    expect(style.headers.get("content-type")).toContain("text/css");
    expect(other.status).toBe(404);
  });

  it("local host serves routes with a trailing slash and rejects other methods", async () => {
    const started = await fetch(`${host.url}/api/auth/start/`, {
      method: "POST",
      body: "{}",
    });
    const wrongMethod = await fetch(`${host.url}/api/auth/start`, {
      method: "GET",
    });
    const unknown = await fetch(`${host.url}/api/unknown`);

    expect(started.status).toBe(400);
    expect(((await started.json()) as { code: string }).code).toBe(
      "invalid_site_url",
    );
    expect(wrongMethod.status).toBe(405);
    expect(unknown.status).toBe(404);
  });

  it("local host rejects bad encoding and huge bodies", async () => {
    const badEncoding = await fetch(`${host.url}/api/auth/assets/%E0%A4%A`);
    const huge = await fetch(`${host.url}/api/token`, {
      method: "POST",
      body: "x".repeat(2 * 1024 * 1024),
    });

    expect(badEncoding.status).toBe(400);
    expect(((await badEncoding.json()) as { code: string }).code).toBe(
      "invalid_path",
    );
    expect(huge.status).toBe(413);
    expect(huge.headers.get("connection")).toBe("close");
  });

  it("callback works through another host name and a trailing slash", async () => {
    const started = await fetch(`${host.url}/api/auth/start`, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        "x-forwarded-host": "proxy.example",
        "x-forwarded-proto": "https",
      },
      body: JSON.stringify({
        siteUrl: "https://mysite.equisonline.com",
        email: "proxied@contoso.example",
      }),
    });
    const { authorizeUrl } = (await started.json()) as { authorizeUrl: string };
    const browserCookie =
      (started.headers.getSetCookie()[0] ?? "").split(";")[0] ?? "";
    expect(new URL(authorizeUrl).searchParams.get("redirect_uri")).toBe(
      "http://localhost:7071/api/auth/callback",
    );

    const { location } = await stack.identity.control.signIn({
      authorizeUrl,
      username: "proxied@contoso.example",
    });
    const callback = await fetch(
      `${host.url}/api/auth/callback/${new URL(location).search}`,
      {
        redirect: "manual",
        headers: { cookie: browserCookie, "x-forwarded-host": "other.example" },
      },
    );

    // The stand-in redeems a code only with the exact redirect URI of the authorize request.
    expect(callback.status).toBe(303);
    expect(callback.headers.get("location")).toMatch(
      /^\/microsoft365_oauth\.html\?signin=[0-9a-f]{16}$/,
    );
  });
});

import { TableClient } from "@azure/data-tables";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { browserCookieName, signInTag } from "../../shared/cookies.js";
import { signInKey } from "../../shared/keys.js";
import {
  cookieHeader,
  fetchResult,
  handlerOf,
  invoke,
  signInWithoutBrowser,
  startTestStack,
  type Invocation,
  type TestStack,
} from "../support/testStack.js";
import type { Broker } from "../../shared/broker.js";

const siteUrl = "https://mysite.equisonline.com";
let stack: TestStack;
let brokerA: Broker;
let brokerB: Broker;

beforeAll(async () => {
  stack = await startTestStack();
  brokerA = stack.createBroker();
  brokerB = stack.createBroker();
});

afterAll(async () => {
  await stack?.stop();
});

beforeEach(() => {
  stack.identity.control.reset();
  stack.keyVault.control.reset();
});

let mailboxCounter = 0;
function newMailbox(): string {
  mailboxCounter += 1;
  return `equis${mailboxCounter}.${Date.now()}@contoso.example`;
}

async function startAuth(
  broker: Broker,
  body: string,
  headers: Record<string, string> = {},
): Promise<Invocation> {
  return invoke(handlerOf(broker, "startAuth"), {
    method: "POST",
    url: "/api/auth/start",
    body: { string: body },
    headers,
  });
}

async function countEntities(table: TableClient): Promise<number> {
  let count = 0;
  try {
    for await (const _entity of table.listEntities()) count += 1;
  } catch {
    return 0;
  }
  return count;
}

/** Checks logs, bodies and Location headers; the start response is exempt for the state only. */
function expectNoSecrets(invocations: Invocation[], secrets: string[]): void {
  for (const invocation of invocations) {
    const visible = [
      ...invocation.logs,
      invocation.text,
      invocation.response.headers.get("location") ?? "",
    ].join("\n");
    for (const secret of secrets) expect(visible).not.toContain(secret);
  }
}

describe("start-auth", () => {
  it("start-auth returns Microsoft's authorize URL with PKCE and exact scopes", async () => {
    const email = newMailbox();
    const started = await startAuth(
      brokerA,
      JSON.stringify({ siteUrl, email }),
    );

    expect(started.response.status).toBe(200);
    const url = new URL(
      (started.json() as { authorizeUrl: string }).authorizeUrl,
    );
    expect(url.origin).toBe(stack.identity.url);
    expect(url.pathname).toBe("/organizations/oauth2/v2.0/authorize");
    const scopes = (url.searchParams.get("scope") ?? "").split(" ").sort();
    expect(scopes).toEqual(
      [
        "https://outlook.office.com/IMAP.AccessAsUser.All",
        "https://outlook.office.com/SMTP.Send",
        "offline_access",
        "openid",
        "profile",
      ].sort(),
    );
    expect(url.searchParams.get("code_challenge_method")).toBe("S256");
    expect(url.searchParams.get("code_challenge")).toMatch(
      /^[A-Za-z0-9_-]{43}$/,
    );
    expect(url.searchParams.get("login_hint")).toBe(email);
    expect(url.searchParams.get("redirect_uri")).toBe(
      "http://localhost:7071/api/auth/callback",
    );
    expect(url.searchParams.get("state")?.length).toBeGreaterThanOrEqual(22);
    expect(url.searchParams.get("nonce")).toBeTruthy();
    expect(url.searchParams.get("response_mode")).toBe("query");
  });

  it("start-auth records the pending sign-in in Table Storage", async () => {
    const email = "EQuIS.Mixed@Contoso.Example";
    const started = await startAuth(
      brokerA,
      JSON.stringify({
        siteUrl: "https://MySite.equisonline.com/path?x=1",
        email,
      }),
    );
    const state =
      new URL(
        (started.json() as { authorizeUrl: string }).authorizeUrl,
      ).searchParams.get("state") ?? "";

    const entity = await brokerB.tables.signIns.getEntity<
      Record<string, unknown>
    >(signInKey(state), "signin");
    expect(entity.siteUrl).toBe("https://mysite.equisonline.com");
    expect(entity.mailbox).toBe(email);
    expect(entity.mailboxNormalized).toBe(email.toLowerCase());
    expect(entity.status).toBe("pending");
    expect(entity.cloud).toBe("public");
    expect(entity.codeVerifier).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(entity.nonce).toBeTruthy();
    expect(entity.bindingHash).toMatch(/^[0-9a-f]{64}$/);
    expect((entity.expiresAt as Date).getTime()).toBeGreaterThan(
      Date.now() + 9 * 60_000,
    );
    expect(JSON.stringify(started.json())).not.toContain(
      entity.codeVerifier as string,
    );
  });

  it("start-auth sets an HttpOnly browser-binding cookie", async () => {
    const started = await startAuth(
      brokerA,
      JSON.stringify({ siteUrl, email: newMailbox() }),
    );
    const cookie = started.response.cookies.find(
      (candidate) => candidate.name === "m365b_browser",
    );

    expect(cookie?.httpOnly).toBe(true);
    expect(cookie?.secure).toBe(true);
    expect(cookie?.sameSite).toBe("Lax");
    expect(cookie?.path).toBe("/api/auth");
    expect(cookie?.value).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(started.response.headers.get("cache-control")).toBe("no-store");
  });

  it("start-auth takes the redirect URI from configuration only", async () => {
    const started = await startAuth(
      brokerA,
      JSON.stringify({ siteUrl, email: newMailbox() }),
      {
        host: "evil.example",
        "x-forwarded-host": "evil.example",
        "x-forwarded-proto": "https",
      },
    );
    const url = new URL(
      (started.json() as { authorizeUrl: string }).authorizeUrl,
    );
    expect(url.searchParams.get("redirect_uri")).toBe(
      "http://localhost:7071/api/auth/callback",
    );
  });

  it("start-auth accepts JSON sent as text/plain", async () => {
    const started = await startAuth(
      brokerA,
      JSON.stringify({ siteUrl, email: newMailbox() }),
      {
        "content-type": "text/plain",
      },
    );
    expect(started.response.status).toBe(200);
  });

  const badInputs: {
    name: string;
    body: string;
    code: string;
    field?: string;
  }[] = [
    {
      name: "an http site",
      body: JSON.stringify({
        siteUrl: "http://mysite.equisonline.com",
        email: "a@contoso.example",
      }),
      code: "invalid_site_url",
      field: "siteUrl",
    },
    {
      name: "a site off the allowlist",
      body: JSON.stringify({
        siteUrl: "https://mysite.example.org",
        email: "a@contoso.example",
      }),
      code: "site_not_allowed",
      field: "siteUrl",
    },
    {
      name: "a site with credentials",
      body: JSON.stringify({
        siteUrl: "https://u:p@mysite.equisonline.com",
        email: "a@contoso.example",
      }),
      code: "invalid_site_url",
      field: "siteUrl",
    },
    {
      name: "an IP literal site",
      body: JSON.stringify({
        siteUrl: "https://10.0.0.1",
        email: "a@contoso.example",
      }),
      code: "invalid_site_url",
      field: "siteUrl",
    },
    {
      name: "a site that is no URL",
      body: JSON.stringify({ siteUrl: "mysite", email: "a@contoso.example" }),
      code: "invalid_site_url",
      field: "siteUrl",
    },
    {
      name: "an email that is no address",
      body: JSON.stringify({ siteUrl, email: "equis at contoso" }),
      code: "invalid_email",
      field: "email",
    },
    { name: "a missing body", body: "", code: "invalid_body" },
    { name: "malformed JSON", body: '{"siteUrl":', code: "invalid_body" },
    { name: "a JSON array", body: "[]", code: "invalid_body" },
  ];

  for (const input of badInputs) {
    it(`start-auth rejects ${input.name} and stores nothing`, async () => {
      const before = await countEntities(brokerA.tables.signIns);
      const started = await startAuth(brokerA, input.body);

      expect(started.response.status).toBe(400);
      const body = started.json() as {
        code: string;
        field?: string;
        message: string;
      };
      expect(body.code).toBe(input.code);
      expect(body.field).toBe(input.field);
      expect(body.message.length).toBeGreaterThan(10);
      expect(await countEntities(brokerA.tables.signIns)).toBe(before);
    });
  }

  it("start-auth rejects a body over 16 KB", async () => {
    const body = JSON.stringify({
      siteUrl,
      email: "a@contoso.example",
      padding: "x".repeat(17_000),
    });
    const started = await startAuth(brokerA, body);

    expect(started.response.status).toBe(413);
    expect((started.json() as { code: string }).code).toBe("body_too_large");
  });
});

describe("browser cookie", () => {
  async function browserCookieMaxAge(timeoutMinutes: string): Promise<number> {
    const broker = stack.createBroker({
      SIGNIN_TIMEOUT_MINUTES: timeoutMinutes,
    });
    const started = await startAuth(
      broker,
      JSON.stringify({
        siteUrl: "https://mysite.equisonline.com",
        email: newMailbox(),
      }),
    );
    expect(started.response.status).toBe(200);
    const cookie = started.response.cookies.find(
      (candidate) => candidate.name === browserCookieName,
    );
    return cookie?.maxAge ?? 0;
  }

  it("browser cookie lasts an hour by default", async () => {
    expect(await browserCookieMaxAge("10")).toBe(3600);
  });

  it("browser cookie outlives the longest sign-in and its result", async () => {
    // 60 minutes to sign in and 10 more to fetch the result.
    expect(await browserCookieMaxAge("60")).toBe(70 * 60);
  });
});

describe("callback", () => {
  it("callback on another instance connects the mailbox", async () => {
    const email = newMailbox();
    const steps = await signInWithoutBrowser(
      stack,
      brokerA,
      { siteUrl, email },
      brokerB,
    );

    expect(steps.callback.response.status).toBe(303);
    const state = new URL(steps.authorizeUrl).searchParams.get("state") ?? "";
    expect(steps.callback.response.headers.get("location")).toBe(
      `/microsoft365_oauth.html?signin=${signInTag(state)}`,
    );
    expect(stack.identity.control.counts().authorizationCode).toBe(1);

    const result = await fetchResult(brokerA, steps.cookies);
    expect(result.response.status).toBe(200);
    const body = result.json() as {
      identifier: string;
      siteUrl: string;
      email: string;
      alreadyConnected: boolean;
      settings: unknown;
    };
    expect(body.identifier).toMatch(/^m365b_/);
    expect(body.siteUrl).toBe(siteUrl);
    expect(body.email).toBe(email);
    expect(body.alreadyConnected).toBe(false);
    expect(body.settings).toEqual({
      username: email,
      imap: { host: "outlook.office365.com", port: 993, security: "SSL/TLS" },
      smtp: { host: "smtp.office365.com", port: 587, security: "STARTTLS" },
    });
    expect(result.response.headers.get("cache-control")).toBe("no-store");
  });

  it("callback stores the refresh token in Key Vault and indexes the grant", async () => {
    const email = newMailbox();
    const steps = await signInWithoutBrowser(stack, brokerA, {
      siteUrl,
      email,
    });
    const result = await fetchResult(brokerA, steps.cookies);
    const identifier = (result.json() as { identifier: string }).identifier;
    const grantId = identifier.slice(6, 38);

    const grant = await brokerA.grants.get(grantId);
    expect(grant?.status).toBe("active");
    expect(grant?.siteUrl).toBe(siteUrl);
    expect(grant?.mailbox).toBe(email);
    expect(grant?.tenantId).toMatch(/^[0-9a-f-]{36}$/);
    expect(grant?.scopes).toBe(
      "https://outlook.office.com/IMAP.AccessAsUser.All https://outlook.office.com/SMTP.Send offline_access",
    );
    expect(grant?.identifierHash).toMatch(/^[0-9a-f]{64}$/);
    expect(JSON.stringify(grant)).not.toContain(identifier.slice(38, 81));

    const refreshToken = await brokerA.secrets.readRefreshToken(grantId);
    expect(refreshToken.length).toBeGreaterThan(20);
    expect(stack.keyVault.control.counts().setSecret).toBe(1);
  });

  it("callback clears the verifier of a used sign-in", async () => {
    const steps = await signInWithoutBrowser(stack, brokerA, {
      siteUrl,
      email: newMailbox(),
    });
    const state = new URL(steps.authorizeUrl).searchParams.get("state") ?? "";
    const entity = await brokerA.tables.signIns.getEntity<{
      codeVerifier: string;
      nonce: string;
      status: string;
    }>(signInKey(state), "signin");

    expect(entity.status).toBe("completed");
    expect(entity.codeVerifier).toBe("");
    expect(entity.nonce).toBe("");
  });

  it("result is shown once", async () => {
    const steps = await signInWithoutBrowser(stack, brokerA, {
      siteUrl,
      email: newMailbox(),
    });
    const first = await fetchResult(brokerA, steps.cookies);
    const second = await fetchResult(brokerA, steps.cookies);

    expect(first.response.status).toBe(200);
    expect(second.response.status).toBe(410);
    expect((second.json() as { code: string }).code).toBe(
      "result_already_shown",
    );
  });

  it("result is not shown to another browser", async () => {
    const steps = await signInWithoutBrowser(stack, brokerA, {
      siteUrl,
      email: newMailbox(),
    });
    const signInCookie =
      steps.cookies
        .split("; ")
        .find((cookie) => cookie.startsWith("m365b_signin_")) ?? "";
    const other = await fetchResult(
      brokerA,
      `${signInCookie}; m365b_browser=${"x".repeat(43)}`,
    );

    expect(other.response.status).toBe(404);
    expect((other.json() as { code: string }).code).toBe("result_not_found");
  });

  it("callback rejects an unknown state without a token call", async () => {
    const callback = await invoke(handlerOf(brokerA, "callback"), {
      url: "/api/auth/callback?code=abc&state=unknown-state-value",
    });

    expect(callback.response.status).toBe(400);
    expect(callback.text).toContain("This sign-in is not known");
    expect(callback.text).toContain("Next step");
    expect(callback.response.headers.get("content-security-policy")).toContain(
      "script-src 'self'",
    );
    expect(stack.identity.control.counts().token).toBe(0);
  });

  it("callback rejects a missing state", async () => {
    const callback = await invoke(handlerOf(brokerA, "callback"), {
      url: "/api/auth/callback?code=abc",
    });
    expect(callback.response.status).toBe(400);
    expect(callback.text).toContain("incomplete");
  });

  it("callback rejects an expired state without a token call", async () => {
    const email = newMailbox();
    const started = await startAuth(
      brokerA,
      JSON.stringify({ siteUrl, email }),
    );
    const authorizeUrl = (started.json() as { authorizeUrl: string })
      .authorizeUrl;
    const state = new URL(authorizeUrl).searchParams.get("state") ?? "";
    await brokerA.tables.signIns.updateEntity(
      {
        partitionKey: signInKey(state),
        rowKey: "signin",
        expiresAt: new Date(Date.now() - 1000),
      },
      "Merge",
    );
    const { location } = await stack.identity.control.signIn({
      authorizeUrl,
      username: email,
    });
    stack.identity.control.resetCounts();

    const target = new URL(location);
    const callback = await invoke(handlerOf(brokerA, "callback"), {
      url: `${target.pathname}${target.search}`,
      headers: { cookie: cookieHeader(started.response) },
    });
    expect(callback.response.status).toBe(400);
    expect(callback.text).toContain("took too long");
    expect(stack.identity.control.counts().token).toBe(0);
  });

  it("callback replayed after success changes nothing", async () => {
    const email = newMailbox();
    const steps = await signInWithoutBrowser(stack, brokerA, {
      siteUrl,
      email,
    });
    const target = new URL(steps.callbackUrl);
    const replay = await invoke(handlerOf(brokerB, "callback"), {
      url: `${target.pathname}${target.search}`,
      headers: { cookie: steps.cookies },
    });

    expect(replay.response.status).toBe(200);
    expect(replay.text).toContain("already finished");
    expect(stack.identity.control.counts().authorizationCode).toBe(1);
    expect(stack.keyVault.control.counts().setSecret).toBe(1);
  });

  it("callback delivered twice at once redeems the code once", async () => {
    const email = newMailbox();
    const started = await startAuth(
      brokerA,
      JSON.stringify({ siteUrl, email }),
    );
    const authorizeUrl = (started.json() as { authorizeUrl: string })
      .authorizeUrl;
    const { location } = await stack.identity.control.signIn({
      authorizeUrl,
      username: email,
    });
    const target = new URL(location);
    const deliver = (broker: Broker) =>
      invoke(handlerOf(broker, "callback"), {
        url: `${target.pathname}${target.search}`,
        headers: { cookie: cookieHeader(started.response) },
      });

    const [first, second] = await Promise.all([
      deliver(brokerA),
      deliver(brokerB),
    ]);
    const statuses = [first.response.status, second.response.status].sort();

    expect(statuses).toContain(303);
    expect(statuses.filter((status) => status === 303)).toHaveLength(1);
    expect(stack.identity.control.counts().authorizationCode).toBe(1);
    const duplicate = first.response.status === 303 ? second : first;
    expect(duplicate.text).toMatch(/already being finished|already finished/);

    const winner = first.response.status === 303 ? first : second;
    const result = await fetchResult(
      brokerA,
      cookieHeader(started.response, winner.response),
    );
    expect(result.response.status).toBe(200);
  });

  it("callback in another browser is rejected without a token call", async () => {
    const email = newMailbox();
    const started = await startAuth(
      brokerA,
      JSON.stringify({ siteUrl, email }),
    );
    const authorizeUrl = (started.json() as { authorizeUrl: string })
      .authorizeUrl;
    const { location } = await stack.identity.control.signIn({
      authorizeUrl,
      username: email,
    });
    const target = new URL(location);
    stack.identity.control.resetCounts();

    for (const cookie of [undefined, `m365b_browser=${"y".repeat(43)}`]) {
      const callback = await invoke(handlerOf(brokerA, "callback"), {
        url: `${target.pathname}${target.search}`,
        headers: cookie === undefined ? {} : { cookie },
      });
      expect(callback.response.status).toBe(400);
      expect(callback.text).toContain("started in another browser");
    }
    expect(stack.identity.control.counts().token).toBe(0);

    const rightBrowser = await invoke(handlerOf(brokerA, "callback"), {
      url: `${target.pathname}${target.search}`,
      headers: { cookie: cookieHeader(started.response) },
    });
    expect(rightBrowser.response.status).toBe(303);
  });

  it("callback explains access_denied and stores nothing", async () => {
    const email = newMailbox();
    const started = await startAuth(
      brokerA,
      JSON.stringify({ siteUrl, email }),
    );
    const state =
      new URL(
        (started.json() as { authorizeUrl: string }).authorizeUrl,
      ).searchParams.get("state") ?? "";
    const before = await countEntities(brokerA.tables.grants);

    const callback = await invoke(handlerOf(brokerA, "callback"), {
      url: `/api/auth/callback?error=access_denied&error_description=${encodeURIComponent("AADSTS65004: User declined to consent.")}&state=${encodeURIComponent(state)}`,
      headers: { cookie: cookieHeader(started.response) },
    });

    expect(callback.response.status).toBe(400);
    expect(callback.text).toContain("Permission was not granted");
    expect(callback.text).toContain("AADSTS65004");
    expect(stack.identity.control.counts().token).toBe(0);
    expect(await countEntities(brokerA.tables.grants)).toBe(before);
  });

  it("callback rejects another account and stores nothing", async () => {
    const before = await countEntities(brokerA.tables.grants);
    const steps = await signInWithoutBrowser(stack, brokerA, {
      siteUrl,
      email: "shared@contoso.example",
      signInAs: "admin@contoso.example",
    });

    expect(steps.callback.response.status).toBe(403);
    expect(steps.callback.text).toContain(
      "You signed in as <strong>admin@contoso.example</strong>",
    );
    expect(steps.callback.text).toContain(
      "started for <strong>shared@contoso.example</strong>",
    );
    expect(await countEntities(brokerA.tables.grants)).toBe(before);
    expect(stack.keyVault.control.counts().setSecret).toBe(0);
  });

  it("callback accepts an account that differs only in case", async () => {
    const steps = await signInWithoutBrowser(stack, brokerA, {
      siteUrl,
      email: "Shared.Case@Contoso.Example",
      signInAs: "shared.case@contoso.example",
    });
    expect(steps.callback.response.status).toBe(303);
  });

  it("callback refuses a token without the mail scopes", async () => {
    const before = await countEntities(brokerA.tables.grants);
    stack.identity.control.grantScopesNext([
      "https://outlook.office.com/IMAP.AccessAsUser.All",
    ]);
    const steps = await signInWithoutBrowser(stack, brokerA, {
      siteUrl,
      email: newMailbox(),
    });

    expect(steps.callback.response.status).toBe(400);
    expect(steps.callback.text).toContain("wrong resource");
    expect(await countEntities(brokerA.tables.grants)).toBe(before);
    expect(stack.keyVault.control.counts().setSecret).toBe(0);
  });

  it("callback rejects an id token with another nonce", async () => {
    const before = await countEntities(brokerA.tables.grants);
    stack.identity.control.nonceNext("nonce-of-another-sign-in");
    const steps = await signInWithoutBrowser(stack, brokerA, {
      siteUrl,
      email: newMailbox(),
    });

    expect(steps.callback.response.status).toBe(400);
    expect(steps.callback.text).toContain("Microsoft stopped the sign-in");
    expect(await countEntities(brokerA.tables.grants)).toBe(before);
    expect(stack.keyVault.control.counts().setSecret).toBe(0);
  });

  it("callback creates no grant when no refresh token came back", async () => {
    const before = await countEntities(brokerA.tables.grants);
    stack.identity.control.omitRefreshTokenNext();
    const steps = await signInWithoutBrowser(stack, brokerA, {
      siteUrl,
      email: newMailbox(),
    });

    expect(steps.callback.response.status).toBe(502);
    expect(steps.callback.text).toContain("lasting access");
    expect(await countEntities(brokerA.tables.grants)).toBe(before);
  });

  it("callback reports a rejected app credential to the operator", async () => {
    const misconfigured = stack.createBroker({
      BROKER_CLIENT_SECRET: "wrong-secret",
    });
    const steps = await signInWithoutBrowser(stack, misconfigured, {
      siteUrl,
      email: newMailbox(),
    });

    expect(steps.callback.response.status).toBe(500);
    expect(steps.callback.text).toContain("not set up correctly");
    expect(
      steps.callback.logs.some(
        (line) =>
          line.startsWith("error") && line.includes("BROKER_CLIENT_SECRET"),
      ),
    ).toBe(true);
  });

  it("callback explains that Microsoft is unavailable", async () => {
    stack.identity.control.failNext({
      endpoint: "token",
      status: 503,
      error: "temporarily_unavailable",
      aadsts: 90033,
    });
    const steps = await signInWithoutBrowser(stack, brokerA, {
      siteUrl,
      email: newMailbox(),
    });

    expect(steps.callback.response.status).toBe(503);
    expect(steps.callback.text).toContain("could not be reached");
  });

  it("callback loses nothing when Key Vault is unavailable", async () => {
    const email = newMailbox();
    stack.keyVault.control.injectFaults({
      status: 503,
      count: 10,
      operation: "setSecret",
    });
    const failed = await signInWithoutBrowser(stack, brokerA, {
      siteUrl,
      email,
    });

    expect(failed.callback.response.status).toBe(503);
    expect(failed.callback.text).toContain("could not be saved");
    expect(failed.callback.logs.some((line) => line.startsWith("error"))).toBe(
      true,
    );

    stack.keyVault.control.reset();
    const retried = await signInWithoutBrowser(stack, brokerB, {
      siteUrl,
      email,
    });
    const result = await fetchResult(brokerB, retried.cookies);
    const body = result.json() as {
      identifier: string | null;
      alreadyConnected: boolean;
    };
    expect(body.identifier).toMatch(/^m365b_/);
    expect(body.alreadyConnected).toBe(false);
    const grant = await brokerA.grants.get(
      (body.identifier ?? "").slice(6, 38),
    );
    expect(grant?.status).toBe("active");
  });

  it("second tab for one mailbox restores the first tab's grant", async () => {
    const email = newMailbox();
    const first = await signInWithoutBrowser(stack, brokerA, {
      siteUrl,
      email,
    });
    const second = await signInWithoutBrowser(stack, brokerB, {
      siteUrl,
      email,
    });
    const firstResult = await fetchResult(brokerA, first.cookies);
    const secondResult = await fetchResult(brokerB, second.cookies);

    const firstBody = firstResult.json() as {
      identifier: string | null;
      alreadyConnected: boolean;
    };
    const secondBody = secondResult.json() as {
      identifier: string | null;
      alreadyConnected: boolean;
    };
    expect(firstBody.identifier).toMatch(/^m365b_/);
    expect(secondBody.alreadyConnected).toBe(true);
    expect(secondBody.identifier).toBeNull();
    expect(stack.keyVault.control.counts().setSecret).toBe(2);
  });

  it("two sign-ins after a revoke make one new grant", async () => {
    const email = newMailbox();
    const first = await signInWithoutBrowser(stack, brokerA, {
      siteUrl,
      email,
    });
    const firstResult = await fetchResult(brokerA, first.cookies);
    const oldIdentifier = (firstResult.json() as { identifier: string })
      .identifier;
    const revoked = await invoke(handlerOf(brokerA, "revokeToken"), {
      method: "DELETE",
      url: "/api/token",
      headers: { authorization: `Bearer ${oldIdentifier}` },
    });
    expect(revoked.response.status).toBe(200);

    const [tabA, tabB] = await Promise.all([
      signInWithoutBrowser(stack, brokerA, { siteUrl, email }),
      signInWithoutBrowser(stack, brokerB, { siteUrl, email }),
    ]);
    const bodies = [
      (await fetchResult(brokerA, tabA.cookies)).json(),
      (await fetchResult(brokerB, tabB.cookies)).json(),
    ] as { identifier: string | null; alreadyConnected: boolean }[];
    const issued = bodies.filter((body) => body.identifier !== null);
    const restored = bodies.filter((body) => body.alreadyConnected);

    expect(issued).toHaveLength(1);
    expect(restored).toHaveLength(1);
    const newGrantId = (issued[0]?.identifier ?? "").slice(6, 38);
    expect(newGrantId).not.toBe(oldIdentifier.slice(6, 38));
    expect((await brokerA.grants.get(newGrantId))?.status).toBe("active");
  });

  it("sign-in flow logs no secret", async () => {
    const email = newMailbox();
    const start = await startAuth(brokerA, JSON.stringify({ siteUrl, email }));
    const authorizeUrl = (start.json() as { authorizeUrl: string })
      .authorizeUrl;
    const state = new URL(authorizeUrl).searchParams.get("state") ?? "";
    const pending = await brokerA.tables.signIns.getEntity<{
      codeVerifier: string;
    }>(signInKey(state), "signin");
    const verifier = pending.codeVerifier;
    expect(verifier).toMatch(/^[A-Za-z0-9_-]{43}$/);

    const { location } = await stack.identity.control.signIn({
      authorizeUrl,
      username: email,
    });
    const callbackUrl = new URL(location);
    const code = callbackUrl.searchParams.get("code") ?? "";
    const callback = await invoke(handlerOf(brokerA, "callback"), {
      url: `${callbackUrl.pathname}${callbackUrl.search}`,
      headers: { cookie: cookieHeader(start.response) },
    });
    const result = await fetchResult(
      brokerA,
      cookieHeader(start.response, callback.response),
    );
    const identifier = (result.json() as { identifier: string }).identifier;
    const refreshToken = await brokerA.secrets.readRefreshToken(
      identifier.slice(6, 38),
    );

    expectNoSecrets(
      [callback],
      [code, state, verifier, refreshToken, identifier],
    );
    expectNoSecrets([start], [code, verifier, refreshToken, identifier]);
    expect(start.logs.join("\n")).not.toContain(state);
    expectNoSecrets([result], [code, state, verifier, refreshToken]);
    expect(result.logs.join("\n")).not.toContain(identifier);
  });
});

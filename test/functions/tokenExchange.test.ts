import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { Broker } from "../../shared/broker.js";
import { issueIdentifier } from "../../shared/identifier.js";
import { IdentityError } from "../../shared/identityClient.js";
import {
  connectMailbox,
  exchange,
  handlerOf,
  invoke,
  signInWithoutBrowser,
  startTestStack,
  type TestStack,
} from "../support/testStack.js";

const siteUrl = "https://mysite.equisonline.com";
let stack: TestStack;
let broker: Broker;
let identifier: string;
const email = "EQuIS@Contoso.Example";

beforeAll(async () => {
  stack = await startTestStack();
  broker = stack.createBroker();
  identifier = await connectMailbox(stack, broker, { siteUrl, email });
});

afterAll(async () => {
  await stack?.stop();
});

beforeEach(() => {
  stack.identity.control.reset();
  stack.keyVault.control.reset();
});

interface TokenBody {
  access_token: string;
  token_type: string;
  expires_in: number;
  expires_on: number;
  xoauth2_user: string;
  sasl_xoauth2: string;
  imap: { host: string; port: number };
  smtp: { host: string; port: number };
}

interface ErrorBody {
  code: string;
  message: string;
  aadsts?: number;
  remedy?: string;
  field?: string;
}

describe("token-exchange", () => {
  it("token-exchange returns an access token and the XOAUTH2 string", async () => {
    const before = Math.floor(Date.now() / 1000);
    const exchanged = await exchange(broker, identifier);

    expect(exchanged.response.status).toBe(200);
    const body = exchanged.json() as TokenBody;
    expect(body.token_type).toBe("Bearer");
    expect(body.access_token.split(".")).toHaveLength(3);
    expect(body.expires_in).toBeGreaterThanOrEqual(3000);
    expect(body.expires_on).toBeGreaterThanOrEqual(
      before + body.expires_in - 5,
    );
    expect(body.expires_on).toBeLessThanOrEqual(
      Math.floor(Date.now() / 1000) + body.expires_in + 5,
    );
    expect(body.xoauth2_user).toBe(email);
    expect(Buffer.from(body.sasl_xoauth2, "base64").toString("utf8")).toBe(
      `user=${email}\x01auth=Bearer ${body.access_token}\x01\x01`,
    );
    expect(body.imap).toEqual({
      host: "outlook.office365.com",
      port: 993,
      security: "SSL/TLS",
    });
    expect(body.smtp).toEqual({
      host: "smtp.office365.com",
      port: 587,
      security: "STARTTLS",
    });
    expect(exchanged.response.headers.get("cache-control")).toBe("no-store");
  });

  it("token-exchange accepts the matching site URL", async () => {
    const exchanged = await exchange(broker, identifier, {
      siteUrl: "https://MYSITE.equisonline.com/",
    });
    expect(exchanged.response.status).toBe(200);
  });

  it("token-exchange rejects another site", async () => {
    const exchanged = await exchange(broker, identifier, {
      siteUrl: "https://othersite.equisonline.com",
    });
    expect(exchanged.response.status).toBe(403);
    expect((exchanged.json() as ErrorBody).code).toBe("site_mismatch");
    expect(stack.identity.control.counts().token).toBe(0);
  });

  it("token-exchange rejects a malformed body", async () => {
    const exchanged = await invoke(handlerOf(broker, "tokenExchange"), {
      method: "POST",
      url: "/api/token",
      headers: { Authorization: `Bearer ${identifier}` },
      body: { string: "{not json" },
    });
    expect(exchanged.response.status).toBe(400);
    expect((exchanged.json() as ErrorBody).code).toBe("invalid_body");
  });

  it("token-exchange reads the header in any case", async () => {
    const exchanged = await invoke(handlerOf(broker, "tokenExchange"), {
      method: "POST",
      url: "/api/token",
      headers: { AUTHORIZATION: `bearer ${identifier}` },
    });
    expect(exchanged.response.status).toBe(200);
  });

  it("token-exchange without an identifier asks for one", async () => {
    const exchanged = await invoke(handlerOf(broker, "tokenExchange"), {
      method: "POST",
      url: "/api/token",
    });
    expect(exchanged.response.status).toBe(401);
    expect((exchanged.json() as ErrorBody).code).toBe("missing_identifier");
    expect(exchanged.response.headers.get("www-authenticate")).toContain(
      "Bearer",
    );
  });

  it("token-exchange rejects malformed identifiers without any storage call", async () => {
    // A broker whose storage does not exist: any storage call would fail with 503.
    const unreachable = stack.createBroker({
      TABLES_CONNECTION_STRING:
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=" +
        "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;" +
        "TableEndpoint=http://127.0.0.1:9/devstoreaccount1;",
      KEY_VAULT_URL: "http://127.0.0.1:9",
    });
    const badChecksum = `${identifier.slice(0, 40)}${identifier[40] === "A" ? "B" : "A"}${identifier.slice(41)}`;
    const cases: [string, string][] = [
      ["short", "malformed_identifier"],
      [`${identifier}x`, "malformed_identifier"],
      [identifier.replace("m365b_", "m365x_"), "malformed_identifier"],
      [badChecksum, "identifier_checksum_mismatch"],
    ];

    for (const [presented, code] of cases) {
      const exchanged = await exchange(unreachable, presented);
      expect(exchanged.response.status).toBe(401);
      const body = exchanged.json() as ErrorBody;
      expect(body.code).toBe(code);
      expect(body.remedy).toBeTruthy();
      expect(exchanged.text).not.toContain(presented);
    }
    expect(stack.keyVault.control.counts().getSecret).toBe(0);
  });

  it("token-exchange rejects an unknown identifier without a Key Vault call", async () => {
    const unknown = issueIdentifier(
      "0123456789abcdef0123456789abcdef",
    ).identifier;
    const exchanged = await exchange(broker, unknown);

    expect(exchanged.response.status).toBe(401);
    expect((exchanged.json() as ErrorBody).code).toBe("unknown_identifier");
    expect(stack.keyVault.control.counts().getSecret).toBe(0);
    expect(stack.identity.control.counts().token).toBe(0);
  });

  it("token-exchange rejects a wrong secret for a known grant", async () => {
    const grantId = identifier.slice(6, 38);
    const forged = issueIdentifier(grantId).identifier;
    const exchanged = await exchange(broker, forged);

    expect(exchanged.response.status).toBe(401);
    expect((exchanged.json() as ErrorBody).code).toBe("unknown_identifier");
    expect(stack.keyVault.control.counts().getSecret).toBe(0);
  });

  it("token-exchange stores the rotated refresh token as a new version", async () => {
    const grantId = identifier.slice(6, 38);
    broker.tokens.delete(grantId);
    const before = await broker.grants.get(grantId);
    const oldToken = await broker.secrets.readRefreshToken(grantId);

    const exchanged = await exchange(broker, identifier);
    expect(exchanged.response.status).toBe(200);

    const after = await broker.grants.get(grantId);
    expect(after?.secretVersion).not.toBe(before?.secretVersion);
    expect(
      await broker.secrets.readRefreshToken(grantId, after?.secretVersion),
    ).not.toBe(oldToken);
    expect(stack.keyVault.control.counts().setSecret).toBe(1);
  });

  it("token-exchange reports a revoked grant with 409", async () => {
    const revokedEmail = "revoked@contoso.example";
    const revokedIdentifier = await connectMailbox(stack, broker, {
      siteUrl,
      email: revokedEmail,
    });
    stack.identity.control.revokeAccount(revokedEmail);

    const exchanged = await exchange(broker, revokedIdentifier);
    expect(exchanged.response.status).toBe(409);
    const body = exchanged.json() as ErrorBody;
    expect(body.code).toBe("reauth_required");
    expect(body.aadsts).toBe(50173);
    expect(body.remedy).toContain("Sign in again");
  });

  it("token-exchange answers 503 with Retry-After when Microsoft is unavailable", async () => {
    const grantId = identifier.slice(6, 38);
    broker.tokens.delete(grantId);
    const before = await broker.grants.get(grantId);
    stack.identity.control.failNext({
      endpoint: "token",
      status: 503,
      error: "temporarily_unavailable",
      count: 10,
    });

    const exchanged = await exchange(broker, identifier);
    expect(exchanged.response.status).toBe(503);
    expect((exchanged.json() as ErrorBody).code).toBe("identity_unavailable");
    expect(
      Number(exchanged.response.headers.get("retry-after")),
    ).toBeGreaterThan(0);

    const after = await broker.grants.get(grantId);
    expect(after?.status).toBe("active");
    expect(after?.secretVersion).toBe(before?.secretVersion);
  });

  it("token-exchange reports a missing refresh token as a new sign-in", async () => {
    const missingIdentifier = await connectMailbox(stack, broker, {
      siteUrl,
      email: "missing.secret@contoso.example",
    });
    const grantId = missingIdentifier.slice(6, 38);
    await broker.secrets.deleteRefreshToken(grantId);

    const exchanged = await exchange(broker, missingIdentifier);
    expect(exchanged.response.status).toBe(409);
    const body = exchanged.json() as ErrorBody & { reason?: string };
    expect(body.code).toBe("reauth_required");
    expect(body.reason).toBe("refresh_token_missing");
    expect(body.remedy).toContain("Sign in again");
    expect((await broker.grants.get(grantId))?.status).toBe("reauth_required");
    expect(stack.identity.control.counts().refreshToken).toBe(0);
  });

  it("sign-in again after a missing refresh token works", async () => {
    const email = "missing.again@contoso.example";
    const missingIdentifier = await connectMailbox(stack, broker, {
      siteUrl,
      email,
    });
    await broker.secrets.deleteRefreshToken(missingIdentifier.slice(6, 38));
    expect((await exchange(broker, missingIdentifier)).response.status).toBe(
      409,
    );

    const steps = await signInWithoutBrowser(stack, broker, { siteUrl, email });
    expect(steps.callback.response.status).toBe(303);

    const exchanged = await exchange(broker, missingIdentifier);
    expect(exchanged.response.status).toBe(200);
  });

  it("failing refresh does not undo a sign-in made meanwhile", async () => {
    const email = "restored.meanwhile@contoso.example";
    const racingIdentifier = await connectMailbox(stack, broker, {
      siteUrl,
      email,
    });
    const grantId = racingIdentifier.slice(6, 38);
    let signedInMeanwhile = false;

    // The refresh sends the old token; while Microsoft is answering, the mailbox signs in again on
    // another instance, and only then does the answer arrive: AADSTS50173 for the old token.
    const racing = stack.createBroker();
    racing.identity = {
      ...racing.identity,
      refresh: async () => {
        const steps = await signInWithoutBrowser(stack, broker, {
          siteUrl,
          email,
        });
        signedInMeanwhile = steps.callback.response.status === 303;
        throw new IdentityError("invalid_grant", 50173, false);
      },
    };
    const exchanged = await exchange(racing, racingIdentifier);

    expect(signedInMeanwhile).toBe(true);
    expect(exchanged.response.status).toBe(503);
    expect((await broker.grants.get(grantId))?.status).toBe("active");
    expect((await exchange(broker, racingIdentifier)).response.status).toBe(
      200,
    );
  });

  it("token-exchange logs no token or identifier", async () => {
    const exchanged = await exchange(broker, identifier);
    const body = exchanged.json() as TokenBody;
    const logs = exchanged.logs.join("\n");

    expect(logs).not.toContain(body.access_token);
    expect(logs).not.toContain(identifier);
  });
});

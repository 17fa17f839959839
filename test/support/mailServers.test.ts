import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { ImapFlow } from "imapflow";
import {
  exportJWK,
  exportSPKI,
  generateKeyPair,
  SignJWT,
  type CryptoKey,
} from "jose";
import nodemailer from "nodemailer";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import {
  authenticateXoauth2Raw,
  dovecotPath,
  startDovecot,
  type DovecotServer,
} from "./dovecot.js";
import { requireTool } from "./requireTool.js";
import { startSmtpServer, type SmtpTestServer } from "./smtpServer.js";

const mailbox = "equis@contoso.example";
const otherMailbox = "other@contoso.example";
const recipient = "alerts@contoso.example";
const outlookAudience = "https://outlook.office.com";
const tenantId = "9188040d-6c67-4c5b-b112-36a304b66dad";
const clientId = "0d2b6c7a-3f1e-4a8b-9c5d-7e6f1a2b3c4d";
const keyId = "nOo3ZDrODXEK1jKWhXslHR_KXEg";
const outlookIssuer = `https://sts.windows.net/${tenantId}/`;

interface KeyPair {
  publicKey: CryptoKey;
  privateKey: CryptoKey;
}

interface TokenOptions {
  user: string;
  /** Seconds from now; negative values give an expired token. */
  expiresIn?: number;
  audience?: string;
  issuer?: string;
  keyId?: string;
  clientId?: string;
}

// Claims follow the shape of a Microsoft Entra v1.0 access token for Outlook.
async function signAccessToken(
  privateKey: CryptoKey,
  options: TokenOptions,
): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const expiresIn = options.expiresIn ?? 3600;
  const issuedAt = Math.min(now, now + expiresIn) - 300;
  return new SignJWT({
    aud: options.audience ?? outlookAudience,
    iss: options.issuer ?? outlookIssuer,
    azp: options.clientId ?? clientId,
    appid: options.clientId ?? clientId,
    tid: tenantId,
    oid: "5f3c2b1a-0e9d-4c8b-a7f6-e5d4c3b2a190",
    scp: "IMAP.AccessAsUser.All SMTP.Send",
    preferred_username: options.user,
    upn: options.user,
    unique_name: options.user,
    ver: "1.0",
  })
    .setProtectedHeader({
      alg: "RS256",
      typ: "JWT",
      kid: options.keyId ?? keyId,
    })
    .setSubject(`subject-${options.user}`)
    .setIssuedAt(issuedAt)
    .setNotBefore(issuedAt)
    .setExpirationTime(now + expiresIn)
    .sign(privateKey);
}

function xoauth2Sasl(user: string, token: string): string {
  return Buffer.from(`user=${user}\x01auth=Bearer ${token}\x01\x01`).toString(
    "base64",
  );
}

async function generateSigningKey(): Promise<KeyPair> {
  return generateKeyPair("RS256", { extractable: true });
}

const dovecotAvailable = requireTool(dovecotPath, "dovecot-imapd");

describe.skipIf(!dovecotAvailable)("dovecot (package dovecot-imapd)", () => {
  let signingKey: KeyPair;
  let otherKey: KeyPair;
  let server: DovecotServer;

  beforeAll(async () => {
    signingKey = await generateSigningKey();
    otherKey = await generateSigningKey();
    server = await startDovecot({
      publicKeyPem: await exportSPKI(signingKey.publicKey),
      keyId,
      clientId,
    });
  });

  afterAll(async () => {
    await server?.stop();
  });

  it("imapflow opens INBOX with a token", async () => {
    const token = await signAccessToken(signingKey.privateKey, {
      user: mailbox,
    });
    const client = new ImapFlow({
      host: server.host,
      port: server.port,
      secure: false,
      auth: { user: mailbox, accessToken: token },
      logger: false,
    });

    try {
      await client.connect();
      const inbox = await client.mailboxOpen("INBOX");
      expect(inbox.path).toBe("INBOX");
      expect(inbox.exists).toBe(0);
    } finally {
      await client.logout().catch(() => client.close());
    }
  });

  it("dovecot accepts a raw XOAUTH2 string", async () => {
    const token = await signAccessToken(signingKey.privateKey, {
      user: mailbox,
    });

    const response = await authenticateXoauth2Raw(
      server,
      xoauth2Sasl(mailbox, token),
    );

    expect(response, server.logs()).toMatch(/^A1 OK /);
  });

  it("dovecot rejects another user's token", async () => {
    const token = await signAccessToken(signingKey.privateKey, {
      user: otherMailbox,
    });

    const response = await authenticateXoauth2Raw(
      server,
      xoauth2Sasl(mailbox, token),
    );

    expect(response, server.logs()).toMatch(/^A1 NO /);
  });

  it("dovecot matches the user ignoring case", async () => {
    const token = await signAccessToken(signingKey.privateKey, {
      user: "Equis@Contoso.example",
    });

    const response = await authenticateXoauth2Raw(
      server,
      xoauth2Sasl(mailbox, token),
    );

    expect(response, server.logs()).toMatch(/^A1 OK /);
  });

  it("dovecot rejects an expired token", async () => {
    const token = await signAccessToken(signingKey.privateKey, {
      user: mailbox,
      expiresIn: -60,
    });

    const response = await authenticateXoauth2Raw(
      server,
      xoauth2Sasl(mailbox, token),
    );

    expect(response, server.logs()).toMatch(/^A1 NO /);
  });

  it("dovecot rejects a token signed by another key", async () => {
    const token = await signAccessToken(otherKey.privateKey, { user: mailbox });

    const response = await authenticateXoauth2Raw(
      server,
      xoauth2Sasl(mailbox, token),
    );

    expect(response, server.logs()).toMatch(/^A1 NO /);
  });

  it("dovecot rejects another audience", async () => {
    const token = await signAccessToken(signingKey.privateKey, {
      user: mailbox,
      audience: "https://graph.microsoft.com",
    });

    const response = await authenticateXoauth2Raw(
      server,
      xoauth2Sasl(mailbox, token),
    );

    expect(response, server.logs()).toMatch(/^A1 NO /);
  });

  it("dovecot escapes slashes in key paths", async () => {
    const slashKeyId = "key/with%slash";
    const slashClientId = "client/with%slash";
    const keyed = await startDovecot({
      publicKeyPem: await exportSPKI(signingKey.publicKey),
      keyId: slashKeyId,
      clientId: slashClientId,
    });

    try {
      const token = await signAccessToken(signingKey.privateKey, {
        user: mailbox,
        keyId: slashKeyId,
        clientId: slashClientId,
      });
      const response = await authenticateXoauth2Raw(
        keyed,
        xoauth2Sasl(mailbox, token),
      );
      expect(response, keyed.logs()).toMatch(/^A1 OK /);
    } finally {
      await keyed.stop();
    }
  });

  it("imapflow logs in with XOAUTH2 only", async () => {
    const xoauth2Only = await startDovecot({
      publicKeyPem: await exportSPKI(signingKey.publicKey),
      keyId,
      clientId,
      mechanisms: ["xoauth2"],
    });
    const token = await signAccessToken(signingKey.privateKey, {
      user: mailbox,
    });
    const client = new ImapFlow({
      host: xoauth2Only.host,
      port: xoauth2Only.port,
      secure: false,
      auth: { user: mailbox, accessToken: token },
      logger: false,
    });

    try {
      await client.connect();
      expect(client.capabilities.has("AUTH=OAUTHBEARER")).toBe(false);
      const inbox = await client.mailboxOpen("INBOX");
      expect(inbox.path).toBe("INBOX");
    } finally {
      await client.logout().catch(() => client.close());
      await xoauth2Only.stop();
    }
  });

  it("dovecot checks the issuer when set", async () => {
    const issuerChecked = await startDovecot({
      publicKeyPem: await exportSPKI(signingKey.publicKey),
      keyId,
      clientId,
      issuer: outlookIssuer,
    });

    try {
      const token = await signAccessToken(signingKey.privateKey, {
        user: mailbox,
      });
      const otherIssuerToken = await signAccessToken(signingKey.privateKey, {
        user: mailbox,
        issuer: "https://sts.windows.net/00000000-0000-0000-0000-000000000000/",
      });

      const accepted = await authenticateXoauth2Raw(
        issuerChecked,
        xoauth2Sasl(mailbox, token),
      );
      const rejected = await authenticateXoauth2Raw(
        issuerChecked,
        xoauth2Sasl(mailbox, otherIssuerToken),
      );

      expect(accepted, issuerChecked.logs()).toMatch(/^A1 OK /);
      expect(rejected, issuerChecked.logs()).toMatch(/^A1 NO /);
    } finally {
      await issuerChecked.stop();
    }
  });
});

describe("smtp server", () => {
  let signingKey: KeyPair;
  let otherKey: KeyPair;
  let server: SmtpTestServer;

  beforeAll(async () => {
    signingKey = await generateSigningKey();
    otherKey = await generateSigningKey();
    server = await startSmtpServer({
      publicKeyPem: await exportSPKI(signingKey.publicKey),
    });
  });

  afterAll(async () => {
    await server?.stop();
  });

  function sendWithToken(user: string, token: string) {
    const transport = nodemailer.createTransport({
      host: server.host,
      port: server.port,
      secure: false,
      ignoreTLS: true,
      auth: { type: "OAuth2", user, accessToken: token },
    });
    return transport
      .sendMail({
        from: user,
        to: recipient,
        subject: "Sample results ready",
        text: "The lab results are ready.",
      })
      .finally(() => transport.close());
  }

  it("nodemailer sends with a token", async () => {
    const token = await signAccessToken(signingKey.privateKey, {
      user: mailbox,
    });

    const info = await sendWithToken(mailbox, token);

    expect(info.accepted).toEqual([recipient]);
    expect(server.accepted()).toContainEqual({ user: mailbox });
    const message = server.messages().at(-1);
    expect(message?.user).toBe(mailbox);
    expect(message?.from).toBe(mailbox);
    expect(message?.to).toEqual([recipient]);
    expect(message?.data).toContain("Subject: Sample results ready");
  });

  it("smtp server matches the user ignoring case", async () => {
    const token = await signAccessToken(signingKey.privateKey, {
      user: "Equis@Contoso.example",
    });

    const info = await sendWithToken(mailbox, token);

    expect(info.accepted).toEqual([recipient]);
  });

  it("smtp server rejects another user's token", async () => {
    const token = await signAccessToken(signingKey.privateKey, {
      user: otherMailbox,
    });

    const error = await sendWithToken(mailbox, token).catch((caught) => caught);

    expect(error).toMatchObject({ code: "EAUTH", responseCode: 535 });
    expect(error.response).toBe("535 5.7.3 Authentication unsuccessful");
    expect(server.rejected().at(-1)?.reason).toContain("does not match");
  });

  it("smtp server rejects an expired token", async () => {
    const token = await signAccessToken(signingKey.privateKey, {
      user: mailbox,
      expiresIn: -60,
    });

    const error = await sendWithToken(mailbox, token).catch((caught) => caught);

    expect(error).toMatchObject({ code: "EAUTH", responseCode: 535 });
    expect(server.rejected().at(-1)?.reason).toContain('"exp"');
  });

  it("smtp server rejects another key", async () => {
    const token = await signAccessToken(otherKey.privateKey, { user: mailbox });

    const error = await sendWithToken(mailbox, token).catch((caught) => caught);

    expect(error).toMatchObject({ code: "EAUTH", responseCode: 535 });
    expect(server.rejected().at(-1)?.reason).toContain("signature");
  });

  it("smtp server rejects another audience", async () => {
    const token = await signAccessToken(signingKey.privateKey, {
      user: mailbox,
      audience: "https://graph.microsoft.com",
    });

    const error = await sendWithToken(mailbox, token).catch((caught) => caught);

    expect(error).toMatchObject({ code: "EAUTH", responseCode: 535 });
    expect(server.rejected().at(-1)?.reason).toContain('"aud"');
  });
});

describe("smtp server with a jwks url", () => {
  let signingKey: KeyPair;
  let jwksServer: Server | undefined;
  let server: SmtpTestServer | undefined;

  beforeAll(async () => {
    signingKey = await generateSigningKey();
    const jwk = await exportJWK(signingKey.publicKey);
    const body = JSON.stringify({
      keys: [{ ...jwk, kid: keyId, alg: "RS256", use: "sig" }],
    });
    const listener = createServer((_request, response) => {
      response.writeHead(200, { "content-type": "application/json" });
      response.end(body);
    });
    jwksServer = listener;
    await new Promise<void>((resolve) =>
      listener.listen(0, "127.0.0.1", resolve),
    );
    const { port } = listener.address() as AddressInfo;
    server = await startSmtpServer({
      jwksUrl: `http://127.0.0.1:${port}/discovery/keys`,
    });
  });

  afterAll(async () => {
    await server?.stop();
    const listener = jwksServer;
    if (listener !== undefined) {
      await new Promise((resolve) => listener.close(resolve));
    }
  });

  it("nodemailer sends with a jwks-verified token", async () => {
    const token = await signAccessToken(signingKey.privateKey, {
      user: mailbox,
    });
    const transport = nodemailer.createTransport({
      host: server?.host,
      port: server?.port,
      secure: false,
      ignoreTLS: true,
      auth: { type: "OAuth2", user: mailbox, accessToken: token },
    });

    try {
      const info = await transport.sendMail({
        from: mailbox,
        to: recipient,
        subject: "Sample results ready",
        text: "The lab results are ready.",
      });
      expect(info.accepted).toEqual([recipient]);
    } finally {
      transport.close();
    }
    expect(server?.accepted()).toEqual([{ user: mailbox }]);
  });

  it("smtp server refuses a remote jwks url", async () => {
    await expect(
      startSmtpServer({ jwksUrl: "https://keys.example.com/discovery/keys" }),
    ).rejects.toThrow("only from 127.0.0.1 or localhost");
  });
});

describe("requireTool", () => {
  afterAll(() => {
    vi.unstubAllEnvs();
  });

  it("requireTool finds an existing program", () => {
    expect(requireTool("/bin/sh", "dash")).toBe(true);
  });

  it("requireTool returns false outside CI", () => {
    vi.stubEnv("CI", "");

    expect(requireTool("/nonexistent/tool", "tool-package")).toBe(false);
  });

  it("requireTool throws on CI", () => {
    vi.stubEnv("CI", "true");

    expect(() => requireTool("/nonexistent/tool", "tool-package")).toThrow(
      "apt-get install tool-package",
    );
  });
});

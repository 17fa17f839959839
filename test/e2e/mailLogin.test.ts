import { ImapFlow } from "imapflow";
import nodemailer from "nodemailer";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Broker } from "../../shared/broker.js";
import {
  authenticateXoauth2Raw,
  runImapSessionRaw,
  startDovecot,
  type DovecotServer,
} from "../support/dovecot.js";
import { requireTool } from "../support/requireTool.js";
import { startSmtpServer, type SmtpTestServer } from "../support/smtpServer.js";
import {
  connectMailbox,
  exchange,
  startTestStack,
  type TestStack,
} from "../support/testStack.js";
import { localClient } from "../../local/stack.js";

const dovecotAvailable = requireTool("/usr/sbin/dovecot", "dovecot-imapd");
const siteUrl = "https://mysite.equisonline.com";
const mailbox = "equis@contoso.example";
const otherMailbox = "other@contoso.example";

interface TokenBody {
  access_token: string;
  xoauth2_user: string;
  sasl_xoauth2: string;
}

let stack: TestStack;
let broker: Broker;
let token: TokenBody;
let otherToken: TokenBody;

beforeAll(async () => {
  stack = await startTestStack();
  broker = stack.createBroker();
  const identifier = await connectMailbox(stack, broker, {
    siteUrl,
    email: mailbox,
  });
  const otherIdentifier = await connectMailbox(stack, broker, {
    siteUrl,
    email: otherMailbox,
  });
  token = (await exchange(broker, identifier)).json() as TokenBody;
  otherToken = (await exchange(broker, otherIdentifier)).json() as TokenBody;
});

afterAll(async () => {
  await stack?.stop();
});

describe.skipIf(!dovecotAvailable)(
  "IMAP login with a brokered token (needs dovecot-imapd)",
  () => {
    let dovecot: DovecotServer;

    beforeAll(async () => {
      dovecot = await startDovecot({
        publicKeyPem: stack.identity.publicKeyPem(),
        keyId: stack.identity.keyId,
        clientId: localClient.clientId,
      });
    });

    afterAll(async () => {
      await dovecot?.stop();
    });

    it("dovecot accepts the ready SASL XOAUTH2 string", async () => {
      const replies = await runImapSessionRaw(dovecot, [
        `AUTHENTICATE XOAUTH2 ${token.sasl_xoauth2}`,
        "SELECT INBOX",
        "LOGOUT",
      ]);

      expect(replies[0]).toMatch(/^A1 OK/);
      expect(replies[1]).toMatch(/^A2 OK \[READ-WRITE\]/);
      expect(replies[2]).toMatch(/^A3 OK/);
    });

    it("imapflow logs in with XOAUTH2 and selects INBOX", async () => {
      // A server that offers only XOAUTH2, so imapflow cannot pick OAUTHBEARER.
      const xoauth2Only = await startDovecot({
        publicKeyPem: stack.identity.publicKeyPem(),
        keyId: stack.identity.keyId,
        clientId: localClient.clientId,
        mechanisms: ["xoauth2"],
      });
      const client = new ImapFlow({
        host: xoauth2Only.host,
        port: xoauth2Only.port,
        secure: false,
        auth: { user: token.xoauth2_user, accessToken: token.access_token },
        logger: false,
      });
      try {
        await client.connect();
        const inbox = await client.mailboxOpen("INBOX");
        expect(inbox.path).toBe("INBOX");
        await client.logout();
      } finally {
        client.close();
        await xoauth2Only.stop();
      }
    });

    it("dovecot rejects a token issued for another mailbox", async () => {
      const forged = Buffer.from(
        `user=${mailbox}\x01auth=Bearer ${otherToken.access_token}\x01\x01`,
      ).toString("base64");
      const reply = await authenticateXoauth2Raw(dovecot, forged);
      expect(reply).toMatch(/^\S+ NO/);
    });
  },
);

describe("SMTP login with a brokered token", () => {
  let smtp: SmtpTestServer;

  beforeAll(async () => {
    smtp = await startSmtpServer({ jwksUrl: stack.identity.jwksUrl });
  });

  afterAll(async () => {
    await smtp?.stop();
  });

  function transport(user: string, accessToken: string) {
    return nodemailer.createTransport({
      host: smtp.host,
      port: smtp.port,
      secure: false,
      ignoreTLS: true,
      auth: { type: "OAuth2", user, accessToken },
    });
  }

  it("smtp accepts the brokered token for its mailbox", async () => {
    const sent = await transport(
      token.xoauth2_user,
      token.access_token,
    ).sendMail({
      from: mailbox,
      to: "someone@contoso.example",
      subject: "brokered token",
      text: "sent with XOAUTH2",
    });
    expect(sent.accepted).toEqual(["someone@contoso.example"]);
    expect(smtp.accepted().map((login) => login.user)).toContain(mailbox);
  });

  it("smtp refuses a token issued for another mailbox", async () => {
    await expect(
      transport(mailbox, otherToken.access_token).sendMail({
        from: mailbox,
        to: "someone@contoso.example",
        text: "x",
      }),
    ).rejects.toMatchObject({ responseCode: 535 });
  });
});

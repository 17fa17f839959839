import { ImapFlow } from "imapflow";
import nodemailer from "nodemailer";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Broker } from "../../shared/broker.js";
import {
  authenticateXoauth2Raw,
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
      const reply = await authenticateXoauth2Raw(dovecot, token.sasl_xoauth2);
      expect(reply).toMatch(/^\S+ OK/);
    });

    it("imapflow logs in with the brokered token and selects INBOX", async () => {
      const client = new ImapFlow({
        host: dovecot.host,
        port: dovecot.port,
        secure: false,
        auth: { user: token.xoauth2_user, accessToken: token.access_token },
        logger: false,
      });
      await client.connect();
      try {
        const inbox = await client.mailboxOpen("INBOX");
        expect(inbox.path).toBe("INBOX");
      } finally {
        await client.logout();
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

/**
 * `npm run imap-check -- <identifier>`: shows that an identifier from the page of `npm start`
 * yields an access token a real IMAP server accepts. It exchanges the identifier at the local
 * broker, starts the test suite's Dovecot with the public key the running identity stand-in
 * publishes, and sends `AUTHENTICATE XOAUTH2` with the ready SASL string, then `SELECT INBOX`.
 */
import { readFileSync } from "node:fs";
import { get } from "node:https";
import { resolve } from "node:path";
import { exportSPKI, importJWK, type JWK } from "jose";
import { localClient } from "../local/stack.js";
import { runImapSessionRaw, startDovecot } from "../test/support/dovecot.js";

const brokerUrl = "http://localhost:7071";
const jwksUrl = "https://127.0.0.1:7073/common/discovery/v2.0/keys";

async function main(identifier: string | undefined): Promise<number> {
  if (identifier === undefined || identifier.trim() === "") {
    process.stderr.write(
      "Usage: npm run imap-check -- <identifier shown on the sign-in page>\n",
    );
    return 2;
  }

  const exchanged = await fetch(`${brokerUrl}/api/token`, {
    method: "POST",
    headers: { Authorization: `Bearer ${identifier.trim()}` },
  });
  const token = (await exchanged.json()) as {
    sasl_xoauth2?: string;
    xoauth2_user?: string;
    message?: string;
  };
  if (!exchanged.ok || token.sasl_xoauth2 === undefined) {
    process.stderr.write(
      `Token exchange failed with ${exchanged.status}: ${token.message ?? "no message"}\n`,
    );
    return 1;
  }

  const keys = (await fetchFromStandIn(jwksUrl)) as {
    keys: (JWK & { kid: string })[];
  };
  const key = keys.keys[0];
  if (key === undefined)
    throw new Error("the identity stand-in publishes no signing key");
  const publicKeyPem = await exportSPKI(
    (await importJWK(key, "RS256")) as CryptoKey,
  );

  const dovecot = await startDovecot({
    publicKeyPem,
    keyId: key.kid,
    clientId: localClient.clientId,
  });
  try {
    const replies = await runImapSessionRaw(dovecot, [
      `AUTHENTICATE XOAUTH2 ${token.sasl_xoauth2}`,
      "SELECT INBOX",
      "LOGOUT",
    ]);
    process.stdout.write(
      `Dovecot on ${dovecot.host}:${dovecot.port} for ${token.xoauth2_user ?? "?"}:\n`,
    );
    for (const reply of replies) process.stdout.write(`  ${reply}\n`);
    return replies.length === 3 && replies.every((reply) => / OK/.test(reply))
      ? 0
      : 1;
  } finally {
    await dovecot.stop();
  }
}

/** Fetches JSON from the identity stand-in, trusting the local certificate authority of npm start. */
function fetchFromStandIn(url: string): Promise<unknown> {
  const ca = readFileSync(resolve(".local/tls/ca.pem"));
  return new Promise((resolvePromise, reject) => {
    get(url, { ca }, (response) => {
      let body = "";
      response.setEncoding("utf8");
      response.on("data", (chunk: string) => (body += chunk));
      response.on("end", () => {
        try {
          resolvePromise(JSON.parse(body));
        } catch (error) {
          reject(error instanceof Error ? error : new Error(String(error)));
        }
      });
    }).on("error", reject);
  });
}

process.exitCode = await main(process.argv[2]);

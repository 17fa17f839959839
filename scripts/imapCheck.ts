/**
 * `npm run imap-check`, with the identifier on standard input: shows that an identifier from the
 * page of `npm start` yields an access token a real IMAP server accepts. It exchanges the
 * identifier at the local broker, starts the test suite's Dovecot with the public key the running
 * identity stand-in publishes, and sends `AUTHENTICATE XOAUTH2` with the ready SASL string, then
 * `SELECT INBOX`.
 */
import { readFileSync } from "node:fs";
import { createInterface } from "node:readline/promises";
import { get } from "node:https";
import { resolve } from "node:path";
import { exportSPKI, importJWK, type JWK } from "jose";
import { localClient } from "../local/stack.js";
import { runImapSessionRaw, startDovecot } from "../test/support/dovecot.js";

const brokerUrl = "http://localhost:7071";
const jwksUrl = "https://127.0.0.1:7073/common/discovery/v2.0/keys";

const usage =
  'Usage: npm run imap-check, then paste the identifier shown on the sign-in page (or pipe it in: printf %s "$IDENTIFIER" | npm run imap-check)\n';

/** Reads the identifier from standard input, so it never shows in a process list or npm's echo. */
async function readIdentifier(): Promise<string> {
  const lines = createInterface({ input: process.stdin, terminal: false });
  if (process.stdin.isTTY) process.stderr.write("Identifier: ");
  for await (const line of lines) {
    lines.close();
    return line.trim();
  }
  return "";
}

async function main(): Promise<number> {
  if (process.argv.length > 2) {
    process.stderr.write(
      `The identifier is a password: pass it on standard input, not as an argument, which npm prints and process lists show.\n${usage}`,
    );
    return 2;
  }
  const identifier = await readIdentifier();
  if (identifier === "") {
    process.stderr.write(usage);
    return 2;
  }

  const exchanged = await fetch(`${brokerUrl}/api/token`, {
    method: "POST",
    headers: { Authorization: `Bearer ${identifier}` },
  }).catch(() => undefined);
  if (exchanged === undefined) {
    process.stderr.write(
      `No broker answered at ${brokerUrl}; start it with npm start in another terminal.\n`,
    );
    return 1;
  }
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

process.exitCode = await main();

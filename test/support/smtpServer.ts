// Starts a local SMTP server that accepts AUTH XOAUTH2 the way Exchange Online
// does: the bearer token must be a valid access token for the SASL user.
import type { Readable } from "node:stream";
import {
  createRemoteJWKSet,
  importSPKI,
  jwtVerify,
  type CryptoKey,
  type JWTVerifyGetKey,
} from "jose";
import { SMTPServer } from "smtp-server";
import type {
  SMTPServerAuthentication,
  SMTPServerAuthenticationResponse,
  SMTPServerSession,
} from "smtp-server";

export interface SmtpOptions {
  /** JWKS URL on 127.0.0.1 or localhost; set this or publicKeyPem. */
  jwksUrl?: string;
  /** PEM (SPKI) RS256 public key; set this or jwksUrl. */
  publicKeyPem?: string;
  /** Value the token's `aud` claim must contain; default "https://outlook.office.com". */
  audience?: string;
}

export interface SmtpMessage {
  user: string;
  from: string;
  to: string[];
  data: string;
}

export interface SmtpRejection {
  user: string;
  reason: string;
}

export interface SmtpTestServer {
  host: "127.0.0.1";
  port: number;
  /** Successful logins, in order. */
  accepted(): Array<{ user: string }>;
  /** Failed logins with the verification error, in order. */
  rejected(): SmtpRejection[];
  /** Messages received after a successful login, in order. */
  messages(): SmtpMessage[];
  stop(): Promise<void>;
}

const defaultAudience = "https://outlook.office.com";
const host = "127.0.0.1";
const loopbackHosts = new Set(["127.0.0.1", "localhost"]);

// smtp.office365.com rejects an XOAUTH2 token it does not accept with this reply.
const authenticationFailure = "5.7.3 Authentication unsuccessful";

/**
 * Starts an SMTP server on a free port of 127.0.0.1 that accepts only AUTH
 * XOAUTH2 with an RS256 token whose signature, `aud` and `exp` verify and
 * whose `preferred_username` (or `upn`) equals the SASL user ignoring case.
 */
export async function startSmtpServer(
  options: SmtpOptions,
): Promise<SmtpTestServer> {
  const audience = options.audience ?? defaultAudience;
  const key = await loadVerificationKey(options);
  const logins: Array<{ user: string }> = [];
  const rejections: SmtpRejection[] = [];
  const messages: SmtpMessage[] = [];

  const onAuth = (
    auth: SMTPServerAuthentication,
    _session: SMTPServerSession,
    callback: (
      error: Error | null | undefined,
      response?: SMTPServerAuthenticationResponse,
    ) => void,
  ) => {
    const user = auth.username ?? "";
    verifyAccessToken(auth, key, audience).then(
      () => {
        logins.push({ user });
        callback(null, { user });
      },
      (error: unknown) => {
        const reason = error instanceof Error ? error.message : String(error);
        rejections.push({ user, reason });
        callback(
          Object.assign(new Error(authenticationFailure), {
            responseCode: 535,
          }),
        );
      },
    );
  };

  const onData = (
    stream: Readable,
    session: SMTPServerSession,
    callback: (error?: Error | null) => void,
  ) => {
    const chunks: Buffer[] = [];
    stream.on("data", (chunk: Buffer) => chunks.push(chunk));
    stream.on("error", callback);
    stream.on("end", () => {
      const { mailFrom, rcptTo } = session.envelope;
      messages.push({
        user: String(session.user),
        from: mailFrom === false ? "" : mailFrom.address,
        to: rcptTo.map((recipient) => recipient.address),
        data: Buffer.concat(chunks).toString("utf8"),
      });
      callback();
    });
  };

  const server = new SMTPServer({
    authMethods: ["XOAUTH2"],
    authOptional: false,
    // Tests connect over plain TCP on the loopback interface, so the server
    // offers no STARTTLS and allows AUTH without TLS.
    disabledCommands: ["STARTTLS"],
    allowInsecureAuth: true,
    logger: false,
    closeTimeout: 1_000,
    onAuth,
    onData,
  });

  await new Promise<void>((resolve, reject) => {
    server.server.once("error", reject);
    server.listen(0, host, () => {
      server.server.off("error", reject);
      resolve();
    });
  });
  const address = server.server.address();
  if (address === null || typeof address === "string") {
    throw new Error("Failed to read the SMTP server port");
  }

  let stopped: Promise<void> | undefined;
  return {
    host,
    port: address.port,
    accepted: () => [...logins],
    rejected: () => [...rejections],
    messages: () => [...messages],
    stop: () =>
      (stopped ??= new Promise<void>((resolve) =>
        server.close(() => resolve()),
      )),
  };
}

async function loadVerificationKey(
  options: SmtpOptions,
): Promise<CryptoKey | JWTVerifyGetKey> {
  const { jwksUrl, publicKeyPem } = options;
  if ((jwksUrl === undefined) === (publicKeyPem === undefined)) {
    throw new Error(
      "Invalid SMTP options: set exactly one of jwksUrl and publicKeyPem",
    );
  }
  if (publicKeyPem !== undefined) {
    return importSPKI(publicKeyPem, "RS256");
  }

  const url = new URL(jwksUrl ?? "");
  if (!loopbackHosts.has(url.hostname)) {
    throw new Error(
      `Invalid jwksUrl ${url.href}: the test server fetches keys only from 127.0.0.1 or localhost`,
    );
  }
  return createRemoteJWKSet(url);
}

async function verifyAccessToken(
  auth: SMTPServerAuthentication,
  key: CryptoKey | JWTVerifyGetKey,
  audience: string,
): Promise<void> {
  if (auth.method !== "XOAUTH2" || auth.accessToken === undefined) {
    throw new Error(`Unsupported authentication method ${auth.method}`);
  }
  const verifyOptions = {
    algorithms: ["RS256"],
    audience,
    requiredClaims: ["exp"],
  };
  // jose types the key and function overloads separately.
  const { payload } =
    typeof key === "function"
      ? await jwtVerify(auth.accessToken, key, verifyOptions)
      : await jwtVerify(auth.accessToken, key, verifyOptions);

  const tokenUser = payload.preferred_username ?? payload.upn;
  if (typeof tokenUser !== "string") {
    throw new Error("Token has no preferred_username or upn claim");
  }
  const user = auth.username ?? "";
  if (tokenUser.toLowerCase() !== user.toLowerCase()) {
    throw new Error(`Token user ${tokenUser} does not match SASL user ${user}`);
  }
}

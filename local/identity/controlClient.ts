// Client for the stand-in's HTTP control API, for tests in another process.

import type {
  FederatedIdentityCredential,
  IdentityCounts,
  IdentityFault,
} from "./server.js";

/** The IdentityControl methods, over HTTP, so each returns a promise. */
export interface RemoteIdentityControl {
  failNext(fault: IdentityFault): Promise<void>;
  setLatency(ms: number): Promise<void>;
  resetConnectionNext(): Promise<void>;
  waitForIdle(): Promise<void>;
  maxConcurrentTokenRequests(): Promise<number>;
  omitRefreshTokenNext(): Promise<void>;
  grantScopesNext(scopes: string[]): Promise<void>;
  nonceNext(nonce: string): Promise<void>;
  tokenLifetimeNext(seconds: number): Promise<void>;
  revokeAccount(username: string): Promise<void>;
  addFederatedCredential(
    clientId: string,
    credential: FederatedIdentityCredential,
  ): Promise<void>;
  removeFederatedCredential(clientId: string, name: string): Promise<boolean>;
  addCertificate(
    clientId: string,
    certificatePem: string,
  ): Promise<{ thumbprintSha256: string }>;
  removeCertificate(
    clientId: string,
    thumbprintSha256: string,
  ): Promise<boolean>;
  counts(): Promise<IdentityCounts>;
  resetCounts(): Promise<void>;
  reset(): Promise<void>;
  forgetTokens(): Promise<void>;
  signIn(request: {
    authorizeUrl: string;
    username: string;
  }): Promise<{ location: string }>;
}

/**
 * Connects to the control API of the stand-in at `url` ("https://127.0.0.1:PORT").
 * The process must trust the local CA through NODE_EXTRA_CA_CERTS.
 */
export function connectIdentityControl(url: string): RemoteIdentityControl {
  const base = new URL(url);
  if (base.hostname !== "127.0.0.1" && base.hostname !== "localhost") {
    throw new Error(
      `The identity stand-in runs on 127.0.0.1 or localhost, not ${base.hostname}.`,
    );
  }
  const call = async (operation: string, body?: unknown): Promise<unknown> => {
    const init: RequestInit =
      body === undefined &&
      (operation === "counts" || operation === "maxConcurrentTokenRequests")
        ? { method: "GET" }
        : {
            method: "POST",
            headers: { "Content-Type": "application/json" },
            body: JSON.stringify(body ?? {}),
          };
    const response = await fetch(new URL(`/_control/${operation}`, base), init);
    const text = await response.text();
    if (!response.ok) {
      throw new Error(
        `Identity stand-in control ${operation} failed with HTTP ${response.status}: ${text}`,
      );
    }
    return text === "" ? undefined : JSON.parse(text);
  };
  return {
    failNext: async (fault) => void (await call("failNext", fault)),
    setLatency: async (ms) => void (await call("setLatency", { ms })),
    resetConnectionNext: async () => void (await call("resetConnectionNext")),
    waitForIdle: async () => void (await call("waitForIdle")),
    maxConcurrentTokenRequests: async () =>
      ((await call("maxConcurrentTokenRequests")) as { max: number }).max,
    omitRefreshTokenNext: async () => void (await call("omitRefreshTokenNext")),
    grantScopesNext: async (scopes) =>
      void (await call("grantScopesNext", { scopes })),
    nonceNext: async (nonce) => void (await call("nonceNext", { nonce })),
    tokenLifetimeNext: async (seconds) =>
      void (await call("tokenLifetimeNext", { seconds })),
    revokeAccount: async (username) =>
      void (await call("revokeAccount", { username })),
    addFederatedCredential: async (clientId, credential) =>
      void (await call("addFederatedCredential", { clientId, credential })),
    removeFederatedCredential: async (clientId, name) =>
      (
        (await call("removeFederatedCredential", { clientId, name })) as {
          removed: boolean;
        }
      ).removed,
    addCertificate: async (clientId, certificatePem) =>
      (await call("addCertificate", { clientId, certificatePem })) as {
        thumbprintSha256: string;
      },
    removeCertificate: async (clientId, thumbprintSha256) =>
      (
        (await call("removeCertificate", { clientId, thumbprintSha256 })) as {
          removed: boolean;
        }
      ).removed,
    counts: async () => (await call("counts")) as IdentityCounts,
    resetCounts: async () => void (await call("resetCounts")),
    reset: async () => void (await call("reset")),
    forgetTokens: async () => void (await call("forgetTokens")),
    signIn: async (request) =>
      (await call("signIn", request)) as { location: string },
  };
}

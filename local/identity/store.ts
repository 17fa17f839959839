// Authorization codes, refresh tokens, consents and sign-in pages waiting for input.

import { createHash, randomBytes } from "node:crypto";
import {
  existsSync,
  mkdirSync,
  readFileSync,
  renameSync,
  writeFileSync,
} from "node:fs";
import { dirname, join } from "node:path";
import type { AuthorizationRequest } from "./authorize.js";
import type { IdentityAccount } from "./server.js";

/** Lifetime of an authorization code, as in Entra ID. */
export const authorizationCodeLifetimeMilliseconds = 10 * 60 * 1000;
/** Entra ID expires a refresh token that goes unused for 90 days. */
export const refreshTokenInactivityMilliseconds = 90 * 24 * 60 * 60 * 1000;
/** Time a person has to finish the sign-in page. */
export const pendingSignInLifetimeMilliseconds = 30 * 60 * 1000;
// Redeemed and expired codes are remembered this long, so reuse reports AADSTS54005.
const codeRetentionMilliseconds = 60 * 60 * 1000;

const refreshTokenPattern = /^1\.[A-Za-z0-9_-]{128}$/;

export interface AuthorizationCodeRecord {
  clientId: string;
  redirectUri: string;
  /** Tenant segment of the authorize request, lower case. */
  tenantSegment: string;
  account: IdentityAccount;
  resource: string;
  permissions: string[];
  openId: string[];
  codeChallenge: string;
  nonce: string | undefined;
  /** Milliseconds since the epoch. */
  issuedAt: number;
  redeemedAt?: number;
}

export interface RefreshTokenRecord {
  clientId: string;
  account: IdentityAccount;
  issuedAt: number;
  lastUsedAt: number;
  revokedAt?: number;
}

interface PendingSignIn {
  request: AuthorizationRequest;
  createdAt: number;
}

interface PersistedState {
  version: 1;
  refreshTokens: Record<string, RefreshTokenRecord>;
  consents: Record<string, string[]>;
}

/**
 * State of the stand-in. With a data directory, refresh tokens, revocations and
 * consents are written to `dataDir/state.json` after every change, so a restarted
 * stand-in accepts the refresh tokens it issued before. Codes and pending sign-ins
 * stay in memory because they live for minutes.
 */
export class StateStore {
  private readonly codes = new Map<string, AuthorizationCodeRecord>();
  private readonly pendingSignIns = new Map<string, PendingSignIn>();
  private refreshTokens = new Map<string, RefreshTokenRecord>();
  private consents = new Map<string, Set<string>>();
  private readonly statePath: string | undefined;

  constructor(
    dataDir: string | undefined,
    private readonly now: () => number,
  ) {
    this.statePath =
      dataDir === undefined ? undefined : join(dataDir, "state.json");
    this.load();
  }

  issueCode(record: AuthorizationCodeRecord): string {
    this.pruneCodes();
    const code = randomBytes(48).toString("base64url");
    this.codes.set(code, record);
    return code;
  }

  findCode(code: string): AuthorizationCodeRecord | undefined {
    return this.codes.get(code);
  }

  markCodeRedeemed(record: AuthorizationCodeRecord): void {
    record.redeemedAt = this.now();
  }

  savePendingSignIn(request: AuthorizationRequest): string {
    this.prunePendingSignIns();
    const id = randomBytes(24).toString("base64url");
    this.pendingSignIns.set(id, { request, createdAt: this.now() });
    return id;
  }

  findPendingSignIn(id: string): AuthorizationRequest | undefined {
    const pending = this.pendingSignIns.get(id);
    if (
      pending === undefined ||
      this.now() - pending.createdAt > pendingSignInLifetimeMilliseconds
    ) {
      return undefined;
    }
    return pending.request;
  }

  deletePendingSignIn(id: string): void {
    this.pendingSignIns.delete(id);
  }

  issueRefreshToken(clientId: string, account: IdentityAccount): string {
    const token = `1.${randomBytes(96).toString("base64url")}`;
    const now = this.now();
    this.refreshTokens.set(hashToken(token), {
      clientId,
      account,
      issuedAt: now,
      lastUsedAt: now,
    });
    this.persist();
    return token;
  }

  /** Returns "malformed" for a value that was never a refresh token of this format. */
  findRefreshToken(
    token: string,
  ): RefreshTokenRecord | "malformed" | undefined {
    if (!refreshTokenPattern.test(token)) {
      return "malformed";
    }
    return this.refreshTokens.get(hashToken(token));
  }

  markRefreshTokenUsed(record: RefreshTokenRecord): void {
    record.lastUsedAt = this.now();
    this.persist();
  }

  /** Revokes every refresh token issued so far to the account, in every client. */
  revokeAccount(username: string): number {
    const lower = username.toLowerCase();
    const now = this.now();
    let revoked = 0;
    for (const record of this.refreshTokens.values()) {
      if (
        record.account.username.toLowerCase() === lower &&
        record.revokedAt === undefined
      ) {
        record.revokedAt = now;
        revoked += 1;
      }
    }
    this.persist();
    return revoked;
  }

  consentedScopes(clientId: string, objectId: string): Set<string> {
    return new Set(this.consents.get(consentKey(clientId, objectId)) ?? []);
  }

  addConsent(clientId: string, objectId: string, scopes: string[]): void {
    const key = consentKey(clientId, objectId);
    const consented = this.consents.get(key) ?? new Set<string>();
    for (const scope of scopes) {
      consented.add(scope);
    }
    this.consents.set(key, consented);
    this.persist();
  }

  /** Forgets every code, refresh token, consent and pending sign-in. */
  clear(): void {
    this.codes.clear();
    this.pendingSignIns.clear();
    this.refreshTokens.clear();
    this.consents.clear();
    this.persist();
  }

  private pruneCodes(): void {
    const now = this.now();
    for (const [code, record] of this.codes) {
      if (now - record.issuedAt > codeRetentionMilliseconds) {
        this.codes.delete(code);
      }
    }
  }

  private prunePendingSignIns(): void {
    const now = this.now();
    for (const [id, pending] of this.pendingSignIns) {
      if (now - pending.createdAt > pendingSignInLifetimeMilliseconds) {
        this.pendingSignIns.delete(id);
      }
    }
  }

  private load(): void {
    if (this.statePath === undefined || !existsSync(this.statePath)) {
      return;
    }
    const state = JSON.parse(
      readFileSync(this.statePath, "utf8"),
    ) as PersistedState;
    if (state.version !== 1) {
      throw new Error(
        `Unsupported identity stand-in state version ${String(state.version)} in ${this.statePath}. Delete the file to start over.`,
      );
    }
    this.refreshTokens = new Map(Object.entries(state.refreshTokens));
    this.consents = new Map(
      Object.entries(state.consents).map(([key, scopes]) => [
        key,
        new Set(scopes),
      ]),
    );
  }

  private persist(): void {
    if (this.statePath === undefined) {
      return;
    }
    const state: PersistedState = {
      version: 1,
      refreshTokens: Object.fromEntries(this.refreshTokens),
      consents: Object.fromEntries(
        [...this.consents].map(([key, scopes]) => [key, [...scopes]]),
      ),
    };
    mkdirSync(dirname(this.statePath), { recursive: true, mode: 0o700 });
    const temporaryPath = `${this.statePath}.${process.pid}.tmp`;
    writeFileSync(temporaryPath, JSON.stringify(state, null, 2), {
      mode: 0o600,
    });
    renameSync(temporaryPath, this.statePath);
  }
}

/** Refresh tokens are stored as SHA-256 hashes, so the state file contains no usable token. */
function hashToken(token: string): string {
  return createHash("sha256").update(token).digest("base64url");
}

function consentKey(clientId: string, objectId: string): string {
  return `${clientId} ${objectId}`;
}

/**
 * Access tokens kept in memory by one function app instance, so that the warm path of
 * token-exchange reads neither Key Vault nor Microsoft. Bounded: the least recently used token is
 * dropped first. Concurrent requests for a grant whose token must be renewed share one refresh.
 *
 * NOTE: the cache is per instance. Each instance refreshes a grant at most once per token
 * lifetime, serialised with the other instances by the grant's lease; no encrypted copy is shared
 * between instances yet.
 */

export interface CachedToken {
  accessToken: string;
  /** When the token expires, from the token response's `expires_in` at request time. */
  expiresOn: Date;
}

export interface TokenCache {
  /** Returns the grant's token if it has at least `minLifetimeMs` left. */
  getFresh(grantId: string, minLifetimeMs: number): CachedToken | undefined;
  set(grantId: string, token: CachedToken): void;
  delete(grantId: string): void;
  /** Runs `load` once for concurrent callers of the same grant; all of them get its result. */
  singleFlight<T>(grantId: string, load: () => Promise<T>): Promise<T>;
  readonly size: number;
}

export function createTokenCache(maxEntries: number): TokenCache {
  // A Map keeps insertion order, so re-inserting on use makes its first key the least recent.
  const entries = new Map<string, CachedToken>();
  const inFlight = new Map<string, Promise<unknown>>();

  return {
    getFresh(grantId, minLifetimeMs) {
      const entry = entries.get(grantId);
      if (entry === undefined) return undefined;
      if (entry.expiresOn.getTime() - Date.now() < minLifetimeMs)
        return undefined;

      entries.delete(grantId);
      entries.set(grantId, entry);
      return entry;
    },

    set(grantId, token) {
      entries.delete(grantId);
      entries.set(grantId, token);
      while (entries.size > maxEntries) {
        const oldest = entries.keys().next().value;
        if (oldest === undefined) break;
        entries.delete(oldest);
      }
    },

    delete(grantId) {
      entries.delete(grantId);
    },

    singleFlight<T>(grantId: string, load: () => Promise<T>): Promise<T> {
      const running = inFlight.get(grantId) as Promise<T> | undefined;
      if (running !== undefined) return running;

      const started = load().finally(() => inFlight.delete(grantId));
      inFlight.set(grantId, started);
      return started;
    },

    get size() {
      return entries.size;
    },
  };
}

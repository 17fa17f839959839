/**
 * MSAL's HTTP client for the broker, on Node's fetch. It adds a timeout to every request and keeps
 * the Retry-After of the last response, which MSAL's errors do not carry, so a throttled refresh
 * can wait as long as the token endpoint requests.
 */
import type {
  INetworkModule,
  NetworkRequestOptions,
  NetworkResponse,
} from "@azure/msal-node";

export interface RecordingNetworkClient extends INetworkModule {
  /** Seconds from the Retry-After header of the last response, when it had one. */
  retryAfterSeconds(): number | undefined;
}

/** Creates a client whose requests fail as transient after `timeoutMs`. */
export function createNetworkClient(timeoutMs: number): RecordingNetworkClient {
  let retryAfter: number | undefined;

  async function send<T>(
    method: "GET" | "POST",
    url: string,
    options: NetworkRequestOptions = {},
    requestTimeoutMs?: number,
  ) {
    const response = await fetch(url, {
      method,
      headers: options.headers,
      body: method === "POST" ? options.body : undefined,
      signal: AbortSignal.timeout(
        Math.min(requestTimeoutMs ?? timeoutMs, timeoutMs),
      ),
    });
    const text = await response.text();
    retryAfter = parseRetryAfter(response.headers.get("retry-after"));

    const headers: Record<string, string> = {};
    response.headers.forEach((value, name) => {
      headers[name] = value;
    });
    return {
      headers,
      body: parseBody(text) as T,
      status: response.status,
    } satisfies NetworkResponse<T>;
  }

  return {
    sendGetRequestAsync: (url, options, timeout) =>
      send("GET", url, options, timeout),
    sendPostRequestAsync: (url, options) => send("POST", url, options),
    retryAfterSeconds: () => retryAfter,
  };
}

function parseBody(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    // An HTML error page from a proxy: MSAL then judges the response by its status.
    return {};
  }
}

/** Reads Retry-After in seconds or as an HTTP date; caps it at an hour. */
export function parseRetryAfter(header: string | null): number | undefined {
  if (header === null || header.trim() === "") return undefined;
  const seconds = /^\d+$/.test(header.trim())
    ? Number(header.trim())
    : (Date.parse(header) - Date.now()) / 1000;
  if (!Number.isFinite(seconds)) return undefined;
  return Math.min(3600, Math.max(0, Math.ceil(seconds)));
}

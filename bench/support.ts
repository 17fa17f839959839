/**
 * Shared parts of the benchmarks: the in-memory local stack, a broker on it, calls to handlers with
 * real HttpRequest and InvocationContext objects, a sign-in without a browser, and the report format.
 */
import { randomBytes } from "node:crypto";
import functionsLibrary, {
  type HttpHandler,
  type HttpRequestInit,
} from "@azure/functions";
import { routes } from "../functions/routes.js";
import { createBroker, type Broker } from "../shared/broker.js";
import { loadConfig } from "../shared/config.js";
import { startLocalStack, type LocalStack } from "../local/stack.js";

// The library is CommonJS, and Node's ESM loader does not find these classes as named exports.
const { HttpRequest, HttpResponse, InvocationContext } = functionsLibrary;
type HttpResponse = InstanceType<typeof HttpResponse>;

export const brokerOrigin = "http://localhost:7071";
export const siteUrl = "https://mysite.equisonline.com";

export interface BenchStack extends LocalStack {
  /** A broker on this stack, with its own table name prefix unless one is given. */
  createBroker(overrides?: Record<string, string>): Broker;
}

export async function startBenchStack(): Promise<BenchStack> {
  const stack = await startLocalStack({ tlsDir: ".local/tls", brokerOrigin });
  return {
    ...stack,
    createBroker: (overrides = {}) =>
      createBroker(
        loadConfig({
          ...stack.settings,
          TABLE_NAME_PREFIX: `b${randomBytes(6).toString("hex")}`,
          ...overrides,
        }),
      ),
  };
}

export function handlerOf(broker: Broker, name: string): HttpHandler {
  const route = routes.find((candidate) => candidate.name === name);
  if (route === undefined) throw new Error(`route not found: ${name}`);
  return route.createHandler(broker);
}

/** Creates an invocation context that drops log lines, as a host with logging off would. */
export function createContext(
  functionName: string,
): InstanceType<typeof InvocationContext> {
  return new InvocationContext({
    functionName,
    invocationId: randomBytes(8).toString("hex"),
    logHandler: () => undefined,
  });
}

/** Calls a handler as the Functions host does and returns the response with its body read. */
export async function invoke(
  handler: HttpHandler,
  init: HttpRequestInit & { url: string },
): Promise<{ response: HttpResponse; text: string }> {
  const request = new HttpRequest({
    method: "GET",
    ...init,
    url: new URL(init.url, brokerOrigin).toString(),
  });
  const result = await handler(request, createContext("bench"));
  const response =
    result instanceof HttpResponse ? result : new HttpResponse(result ?? {});
  return { response, text: await response.text() };
}

export function tokenExchangeInit(
  identifier: string,
): HttpRequestInit & { url: string } {
  return {
    method: "POST",
    url: "/api/token",
    headers: { authorization: `Bearer ${identifier}` },
  };
}

function cookieHeader(...responses: HttpResponse[]): string {
  const jar = new Map<string, string>();
  for (const response of responses) {
    for (const cookie of response.cookies) {
      if (cookie.maxAge === 0) jar.delete(cookie.name);
      else jar.set(cookie.name, cookie.value);
    }
  }
  return [...jar].map(([name, value]) => `${name}=${value}`).join("; ");
}

/**
 * Signs a mailbox in without a browser (start-auth, the identity stand-in's sign-in, the callback
 * and the result fetch) and returns the identifier the page would show.
 */
export async function connectMailbox(
  stack: LocalStack,
  broker: Broker,
  email: string,
): Promise<string> {
  const start = await invoke(handlerOf(broker, "startAuth"), {
    method: "POST",
    url: "/api/auth/start",
    body: { string: JSON.stringify({ siteUrl, email }) },
  });
  if (start.response.status !== 200)
    throw new Error(
      `start-auth returned ${start.response.status}: ${start.text}`,
    );
  const { authorizeUrl } = JSON.parse(start.text) as { authorizeUrl: string };
  const { location } = await stack.identity.control.signIn({
    authorizeUrl,
    username: email,
  });

  const callbackUrl = new URL(location);
  const callback = await invoke(handlerOf(broker, "callback"), {
    url: `${callbackUrl.pathname}${callbackUrl.search}`,
    headers: { cookie: cookieHeader(start.response) },
  });
  if (callback.response.status !== 303)
    throw new Error(
      `callback returned ${callback.response.status}: ${callback.text}`,
    );

  const cookies = cookieHeader(start.response, callback.response);
  const tag = [...cookies.matchAll(/m365b_signin_([0-9a-f]{16})=/g)].at(
    -1,
  )?.[1];
  const result = await invoke(handlerOf(broker, "authResult"), {
    method: "POST",
    url: "/api/auth/result",
    headers: { cookie: cookies },
    body: { string: JSON.stringify({ signin: tag }) },
  });
  const { identifier } = JSON.parse(result.text) as {
    identifier: string | null;
  };
  if (identifier === null)
    throw new Error(`mailbox already connected: ${email}`);
  return identifier;
}

/** Returns the value at quantile `q` (0 to 1) of `values`, by the nearest-rank method. */
export function quantile(values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  const index = Math.min(
    sorted.length - 1,
    Math.max(0, Math.ceil(q * sorted.length) - 1),
  );
  return sorted[index] ?? Number.NaN;
}

export function formatNumber(value: number, digits = 1): string {
  return value.toLocaleString("en-US", {
    maximumFractionDigits: digits,
    minimumFractionDigits: digits,
  });
}

/** Returns "target met", or "target missed by X" with X, the shortfall, in the target's unit. */
export function verdict(met: boolean, shortfall: number, unit: string): string {
  return met
    ? "target met"
    : `target missed by ${formatNumber(shortfall, 2)}${unit}`;
}

export function printSection(title: string, lines: string[]): void {
  process.stdout.write(
    `\n## ${title}\n${lines.map((line) => `  ${line}`).join("\n")}\n`,
  );
}

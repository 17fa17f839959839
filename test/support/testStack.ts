/**
 * The local stack for tests, in memory, plus helpers that call the broker's handlers with real
 * HttpRequest and InvocationContext objects and capture what they log.
 */
import { randomBytes } from "node:crypto";
import {
  HttpRequest,
  HttpResponse,
  InvocationContext,
  type HttpHandler,
  type HttpRequestInit,
} from "@azure/functions";
import { routes } from "../../functions/routes.js";
import {
  createBroker,
  type Broker,
  type BrokerOptions,
} from "../../shared/broker.js";
import { loadConfig, type BrokerConfig } from "../../shared/config.js";
import { startLocalStack, type LocalStack } from "../../local/stack.js";

export const brokerOrigin = "http://localhost:7071";

export interface TestStack extends LocalStack {
  /** Settings of this stack with a table prefix of its own, plus overrides. */
  config(overrides?: Record<string, string>): BrokerConfig;
  /** A new broker instance, as a separate function app instance on the same storage would be. */
  createBroker(
    overrides?: Record<string, string>,
    options?: BrokerOptions,
  ): Broker;
}

export async function startTestStack(
  options: { brokerOrigin?: string; managedIdentity?: boolean } = {},
): Promise<TestStack> {
  const stack = await startLocalStack({
    tlsDir: ".local/tls",
    brokerOrigin: options.brokerOrigin ?? brokerOrigin,
    managedIdentity: options.managedIdentity,
  });
  const tableNamePrefix = `t${randomBytes(6).toString("hex")}`;
  const config = (overrides: Record<string, string> = {}) =>
    loadConfig({
      ...stack.settings,
      TABLE_NAME_PREFIX: tableNamePrefix,
      ...overrides,
    });

  return {
    ...stack,
    config,
    createBroker: (overrides, brokerOptions) =>
      createBroker(config(overrides), brokerOptions),
  };
}

export function handlerOf(broker: Broker, name: string): HttpHandler {
  const route = routes.find((candidate) => candidate.name === name);
  if (route === undefined) throw new Error(`no route named ${name}`);
  return route.createHandler(broker);
}

export interface Invocation {
  response: HttpResponse;
  /** Each log line as text: level, message and fields. */
  logs: string[];
  text: string;
  json(): unknown;
}

/** Calls a handler the way the Functions host does, with real request and context objects. */
export async function invoke(
  handler: HttpHandler,
  init: HttpRequestInit & { url: string },
): Promise<Invocation> {
  const logs: string[] = [];
  const context = new InvocationContext({
    functionName: "test",
    invocationId: "test-invocation",
    logHandler: (level, ...args) =>
      logs.push(
        `${level} ${args.map((arg) => (typeof arg === "string" ? arg : JSON.stringify(arg))).join(" ")}`,
      ),
  });
  const request = new HttpRequest({
    method: "GET",
    ...init,
    url: new URL(init.url, brokerOrigin).toString(),
  });
  const result = await handler(request, context);
  const response =
    result instanceof HttpResponse ? result : new HttpResponse(result ?? {});
  const text = await response.text();
  return { response, logs, text, json: () => JSON.parse(text) };
}

/** Builds the Cookie header a browser would send back after these responses. */
export function cookieHeader(...responses: HttpResponse[]): string {
  const jar = new Map<string, string>();
  for (const response of responses) {
    for (const cookie of response.cookies) {
      if (cookie.maxAge === 0) jar.delete(cookie.name);
      else jar.set(cookie.name, cookie.value);
    }
  }
  return [...jar].map(([name, value]) => `${name}=${value}`).join("; ");
}

export interface SignInSteps {
  start: Invocation;
  authorizeUrl: string;
  callbackUrl: string;
  callback: Invocation;
  /** Cookies after the callback. */
  cookies: string;
}

/**
 * Walks a sign-in without a browser: start-auth on one broker instance, the stand-in's sign-in
 * page as `signInAs`, and the callback on `callbackBroker` (another instance when given).
 */
export async function signInWithoutBrowser(
  stack: TestStack,
  startBroker: Broker,
  input: { siteUrl: string; email: string; signInAs?: string },
  callbackBroker: Broker = startBroker,
): Promise<SignInSteps> {
  const start = await invoke(handlerOf(startBroker, "startAuth"), {
    method: "POST",
    url: "/api/auth/start",
    body: {
      string: JSON.stringify({ siteUrl: input.siteUrl, email: input.email }),
    },
  });
  if (start.response.status !== 200)
    throw new Error(
      `start-auth answered ${start.response.status}: ${start.text}`,
    );

  const authorizeUrl = (start.json() as { authorizeUrl: string }).authorizeUrl;
  const { location } = await stack.identity.control.signIn({
    authorizeUrl,
    username: input.signInAs ?? input.email,
  });
  const callbackUrl = new URL(location);

  const callback = await invoke(handlerOf(callbackBroker, "callback"), {
    method: "GET",
    url: `${callbackUrl.pathname}${callbackUrl.search}`,
    headers: { cookie: cookieHeader(start.response) },
  });
  return {
    start,
    authorizeUrl,
    callbackUrl: location,
    callback,
    cookies: cookieHeader(start.response, callback.response),
  };
}

/** Returns the tag of the last sign-in cookie, which the page reads from its address. */
export function signInTagOf(cookies: string): string | undefined {
  const tags = [...cookies.matchAll(/m365b_signin_([0-9a-f]{16})=/g)].map(
    (match) => match[1],
  );
  return tags.at(-1);
}

/** Fetches the sign-in result as the page does after the return. */
export async function fetchResult(
  broker: Broker,
  cookies: string,
): Promise<Invocation> {
  return invoke(handlerOf(broker, "authResult"), {
    method: "POST",
    url: "/api/auth/result",
    headers: { cookie: cookies },
    body: { string: JSON.stringify({ signin: signInTagOf(cookies) }) },
  });
}

/** Signs in and returns the identifier shown on the page. */
export async function connectMailbox(
  stack: TestStack,
  broker: Broker,
  input: { siteUrl: string; email: string },
): Promise<string> {
  const steps = await signInWithoutBrowser(stack, broker, input);
  if (steps.callback.response.status !== 303)
    throw new Error(
      `callback answered ${steps.callback.response.status}: ${steps.callback.text}`,
    );
  const result = await fetchResult(broker, steps.cookies);
  const identifier = (result.json() as { identifier: string | null })
    .identifier;
  if (identifier === null) throw new Error("the mailbox was already connected");
  return identifier;
}

export async function exchange(
  broker: Broker,
  identifier: string,
  body?: unknown,
): Promise<Invocation> {
  return invoke(handlerOf(broker, "tokenExchange"), {
    method: "POST",
    url: "/api/token",
    headers: { authorization: `Bearer ${identifier}` },
    body: body === undefined ? undefined : { string: JSON.stringify(body) },
  });
}

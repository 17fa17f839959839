/**
 * A local stand-in for the Functions host: serves the broker's handlers over node:http with the
 * same route list the Functions host registers, turning requests into real HttpRequest and
 * InvocationContext objects and HttpResponseInit results back into responses.
 */
import { randomUUID } from "node:crypto";
import {
  createServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from "node:http";
import type { AddressInfo } from "node:net";
import functionsLibrary, {
  type Cookie,
  type HttpHandler,
  type HttpResponseInit,
  type LogHandler,
} from "@azure/functions";
import type { RouteDefinition } from "../functions/route.js";
import type { Broker } from "../shared/broker.js";

// The library is CommonJS, and Node's ESM loader finds only some of its named exports (it finds
// `app` but not these classes), so they are read from the default export.
const { HttpRequest, HttpResponse, InvocationContext } = functionsLibrary;
type HttpResponse = InstanceType<typeof HttpResponse>;

export interface LocalHostOptions {
  broker: Broker;
  routes: RouteDefinition[];
  port?: number;
  host?: string;
  /** Receives every log line of every invocation. */
  logHandler?: LogHandler;
}

export interface LocalHost {
  url: string;
  close(): Promise<void>;
}

/** Bodies larger than this are rejected with 413 before any handler runs. */
const maxBodyBytes = 1024 * 1024;

interface CompiledRoute {
  definition: RouteDefinition;
  pattern: RegExp;
  parameterNames: string[];
  handler: HttpHandler;
}

/**
 * Compiles a Functions route template into a regular expression. Supports literal segments,
 * `{name}`, optional `{name?}` and constraints after a colon, of which only `maxlength(0)` changes
 * what matches.
 */
export function compileRouteTemplate(template: string): {
  pattern: RegExp;
  parameterNames: string[];
} {
  const parameterNames: string[] = [];
  const parts = template.split("/").map((segment) => {
    const parameter = /^\{([A-Za-z0-9_]+)(?::([^}?]+))?(\?)?\}$/.exec(segment);
    if (parameter === null)
      return segment.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

    const [, name = "", constraint, optional] = parameter;
    parameterNames.push(name);
    const value = constraint === "maxlength(0)" ? "()" : "([^/]+)";
    return optional === undefined ? value : `${value}?`;
  });
  return {
    pattern: new RegExp(`^/${parts.join("/")}/?$`, "i"),
    parameterNames,
  };
}

export async function startLocalHost(
  options: LocalHostOptions,
): Promise<LocalHost> {
  const compiled: CompiledRoute[] = options.routes.map((definition) => ({
    definition,
    ...compileRouteTemplate(definition.route),
    handler: definition.createHandler(options.broker),
  }));

  const server = createServer((request, response) => {
    serve(compiled, options.logHandler, request, response).catch(
      (error: unknown) => {
        options.logHandler?.("error", "local host failed to serve a request", {
          error: error instanceof Error ? error.name : typeof error,
        });
        if (response.headersSent) {
          response.destroy();
          return;
        }
        writeError(
          response,
          500,
          "internal_error",
          "The broker failed to handle the request.",
        );
      },
    );
  });

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, options.host ?? "127.0.0.1", () =>
      resolve(),
    );
  });
  const { port } = server.address() as AddressInfo;

  return { url: `http://localhost:${port}`, close: () => closeServer(server) };
}

async function serve(
  routes: CompiledRoute[],
  logHandler: LogHandler | undefined,
  incoming: IncomingMessage,
  outgoing: ServerResponse,
): Promise<void> {
  const url = parseRequestUrl(incoming);
  if (url === undefined) {
    writeError(
      outgoing,
      400,
      "invalid_request",
      "The Host header or the path is not valid.",
    );
    return;
  }
  const method = (incoming.method ?? "GET").toUpperCase();

  const matches = routes
    .map((route) => ({ route, match: route.pattern.exec(url.pathname) }))
    .filter((candidate) => candidate.match !== null);
  const found = matches.find((candidate) =>
    candidate.route.definition.methods.includes(method as never),
  );

  if (found === undefined) {
    if (matches.length > 0) {
      const allowed = matches.flatMap(
        (candidate) => candidate.route.definition.methods,
      );
      outgoing.setHeader("Allow", [...new Set(allowed)].join(", "));
      writeError(outgoing, 405, "method_not_allowed", "Method not allowed.");
    } else {
      writeError(outgoing, 404, "not_found", "Not found.");
    }
    return;
  }

  const params = readRouteParameters(found.route, found.match);
  if (params === undefined) {
    writeError(
      outgoing,
      400,
      "invalid_path",
      "The path is not valid URL encoding.",
    );
    return;
  }

  const hasBody = method !== "GET" && method !== "HEAD";
  const bytes = hasBody ? await readBody(incoming) : undefined;
  if (hasBody && bytes === undefined) {
    // The rest of the body is never read, so the connection cannot be reused.
    outgoing.setHeader("Connection", "close");
    writeError(
      outgoing,
      413,
      "body_too_large",
      "The request body is too large; the limit is 1 MiB.",
    );
    return;
  }

  const request = new HttpRequest({
    method,
    url: url.toString(),
    headers: flattenHeaders(incoming),
    params,
    // An empty body is left out, so reading it costs no stream, and `text()` still gives "".
    body: bytes === undefined || bytes.length === 0 ? undefined : { bytes },
  });
  const context = new InvocationContext({
    functionName: found.route.definition.name,
    invocationId: randomUUID(),
    logHandler,
  });

  const result = await found.route.handler(request, context);
  if (result instanceof HttpResponse) {
    await writeResponse(outgoing, result);
  } else if (!writeJsonResult(outgoing, result ?? {})) {
    await writeResponse(outgoing, new HttpResponse(result ?? {}));
  }
}

/** Statuses that carry no body, for which the library drops `jsonBody`. */
const nullBodyStatuses = new Set([204, 205, 304]);

/**
 * Writes a result that has only a status, plain headers and `jsonBody` as the library's
 * HttpResponse would: the same status, headers and bytes, with `content-type: application/json`
 * unless the handler set one. Building a web Response and reading it back costs more than the
 * handler itself on the warm path. Returns false for any other result.
 */
function writeJsonResult(
  outgoing: ServerResponse,
  result: HttpResponseInit,
): boolean {
  const { status = 200, headers, jsonBody } = result;
  if (
    jsonBody === undefined ||
    jsonBody === null ||
    result.body !== undefined ||
    (result.cookies?.length ?? 0) > 0 ||
    nullBodyStatuses.has(status) ||
    (headers !== undefined &&
      (headers instanceof Headers || Array.isArray(headers)))
  ) {
    return false;
  }

  const written: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers ?? {})) {
    written[name.toLowerCase()] = value;
  }
  written["content-type"] ??= "application/json";
  outgoing.writeHead(status, written);
  outgoing.end(JSON.stringify(jsonBody));
  return true;
}

function flattenHeaders(incoming: IncomingMessage): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(incoming.headers)) {
    if (value !== undefined)
      headers[name] = Array.isArray(value) ? value.join(", ") : value;
  }
  return headers;
}

function parseRequestUrl(incoming: IncomingMessage): URL | undefined {
  try {
    return new URL(
      incoming.url ?? "/",
      `http://${incoming.headers.host ?? "localhost"}`,
    );
  } catch {
    return undefined;
  }
}

/** Decodes route parameters; returns undefined when one is not valid URL encoding. */
function readRouteParameters(
  route: CompiledRoute,
  match: RegExpExecArray | null,
): Record<string, string> | undefined {
  const params: Record<string, string> = {};
  try {
    route.parameterNames.forEach((name, index) => {
      const value = match?.[index + 1];
      if (value !== undefined && value !== "") {
        params[name] = decodeURIComponent(value);
      }
    });
  } catch {
    return undefined;
  }
  return params;
}

/** Reads the body, or returns undefined once it passes `maxBodyBytes`. */
async function readBody(
  incoming: IncomingMessage,
): Promise<Uint8Array | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of incoming) {
    size += (chunk as Buffer).length;
    if (size > maxBodyBytes) return undefined;
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

function writeError(
  outgoing: ServerResponse,
  status: number,
  code: string,
  message: string,
): void {
  outgoing.writeHead(status, {
    "Content-Type": "application/json",
    "Cache-Control": "no-store",
  });
  outgoing.end(JSON.stringify({ code, message }));
}

async function writeResponse(
  outgoing: ServerResponse,
  response: HttpResponse,
): Promise<void> {
  const body = Buffer.from(await response.arrayBuffer());
  const headers: Record<string, string | string[]> = {};
  response.headers.forEach((value, name) => {
    headers[name] = value;
  });
  const cookies = response.cookies.map(serializeCookie);
  if (cookies.length > 0) headers["set-cookie"] = cookies;

  outgoing.writeHead(response.status, headers);
  outgoing.end(body);
}

export function serializeCookie(cookie: Cookie): string {
  const parts = [`${cookie.name}=${cookie.value}`];
  if (cookie.path !== undefined) parts.push(`Path=${cookie.path}`);
  if (cookie.domain !== undefined) parts.push(`Domain=${cookie.domain}`);
  if (cookie.maxAge !== undefined) parts.push(`Max-Age=${cookie.maxAge}`);
  if (cookie.expires !== undefined)
    parts.push(`Expires=${new Date(cookie.expires).toUTCString()}`);
  if (cookie.secure === true) parts.push("Secure");
  if (cookie.httpOnly === true) parts.push("HttpOnly");
  if (cookie.sameSite !== undefined) parts.push(`SameSite=${cookie.sameSite}`);
  return parts.join("; ");
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve, reject) => {
    server.close((error) => (error === undefined ? resolve() : reject(error)));
    server.closeAllConnections();
  });
}

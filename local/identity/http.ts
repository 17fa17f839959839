// Small helpers for node:http requests and responses.

import type {
  IncomingMessage,
  OutgoingHttpHeaders,
  ServerResponse,
} from "node:http";

const maximumBodyBytes = 1024 * 1024;

/** Reads the request body as UTF-8, rejecting bodies over 1 MiB. */
export async function readBody(request: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let length = 0;
  for await (const chunk of request) {
    const buffer = chunk as Buffer;
    length += buffer.length;
    if (length > maximumBodyBytes) {
      throw new RangeError(`Request body exceeds ${maximumBodyBytes} bytes.`);
    }
    chunks.push(buffer);
  }
  return Buffer.concat(chunks).toString("utf8");
}

/** Parses an application/x-www-form-urlencoded body; other content types give no parameters. */
export async function readForm(
  request: IncomingMessage,
): Promise<URLSearchParams> {
  const body = await readBody(request);
  const contentType = (request.headers["content-type"] ?? "")
    .split(";")[0]
    ?.trim()
    .toLowerCase();
  if (contentType !== "application/x-www-form-urlencoded") {
    return new URLSearchParams();
  }
  return new URLSearchParams(body);
}

/** Returns the first parameter name that occurs more than once, which OAuth 2.0 forbids. */
export function findDuplicateParameter(
  parameters: URLSearchParams,
): string | undefined {
  const seen = new Set<string>();
  for (const name of parameters.keys()) {
    if (seen.has(name)) {
      return name;
    }
    seen.add(name);
  }
  return undefined;
}

export function sendJson(
  response: ServerResponse,
  status: number,
  body: unknown,
  headers: OutgoingHttpHeaders = {},
): void {
  const text = JSON.stringify(body);
  response.writeHead(status, {
    "Content-Type": "application/json; charset=utf-8",
    "Content-Length": Buffer.byteLength(text),
    ...headers,
  });
  response.end(text);
}

export function sendHtml(
  response: ServerResponse,
  status: number,
  html: string,
  headers: OutgoingHttpHeaders = {},
): void {
  response.writeHead(status, {
    "Content-Type": "text/html; charset=utf-8",
    "Content-Length": Buffer.byteLength(html),
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    ...headers,
  });
  response.end(html);
}

export function sendText(
  response: ServerResponse,
  status: number,
  text: string,
  contentType = "text/plain",
): void {
  response.writeHead(status, {
    "Content-Type": `${contentType}; charset=utf-8`,
    "Content-Length": Buffer.byteLength(text),
  });
  response.end(text);
}

export function sendRedirect(response: ServerResponse, location: string): void {
  response.writeHead(302, {
    Location: location,
    "Cache-Control": "no-store",
    "Content-Length": 0,
  });
  response.end();
}

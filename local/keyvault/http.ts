import { randomUUID } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";

/** Status, JSON body and extra headers of one response. */
export interface Reply {
  status: number;
  /** JSON body, or undefined for an empty body. */
  body: unknown;
  headers?: Record<string, string>;
}

export async function readBody(request: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) {
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString("utf8");
}

/** Sends `reply` with the caching and id headers that Key Vault sets on every response. */
export function sendReply(
  request: IncomingMessage,
  response: ServerResponse,
  reply: Reply,
): void {
  if (response.destroyed) {
    return;
  }

  response.statusCode = reply.status;
  response.setHeader("Cache-Control", "no-cache");
  response.setHeader("Pragma", "no-cache");
  response.setHeader("Expires", "-1");
  response.setHeader("X-Content-Type-Options", "nosniff");
  response.setHeader("x-ms-request-id", randomUUID());
  const clientRequestId = request.headers["x-ms-client-request-id"];
  if (typeof clientRequestId === "string") {
    response.setHeader("x-ms-client-request-id", clientRequestId);
  }
  for (const [name, value] of Object.entries(reply.headers ?? {})) {
    response.setHeader(name, value);
  }

  if (reply.body === undefined) {
    response.end();
    return;
  }
  const text = JSON.stringify(reply.body);
  response.setHeader("Content-Type", "application/json; charset=utf-8");
  response.setHeader("Content-Length", Buffer.byteLength(text));
  response.end(text);
}

/**
 * Warm token-exchange through the local node:http host against a bare node:http server that
 * returns a JSON body of the same size. Target: at least half the bare server's throughput and a
 * p99 latency under 5 ms.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import autocannon from "autocannon";
import { routes } from "../functions/routes.js";
import { startLocalHost } from "../local/host.js";
import {
  connectMailbox,
  formatNumber,
  printSection,
  verdict,
  type BenchStack,
} from "./support.js";

const connections = 10;
const durationSeconds = 5;

interface LoadResult {
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  non2xx: number;
  errors: number;
}

async function measure(
  url: string,
  headers: Record<string, string>,
): Promise<LoadResult> {
  const result = await autocannon({
    url,
    method: "POST",
    headers,
    connections,
    duration: durationSeconds,
  });
  return {
    requestsPerSecond: result.requests.average,
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    non2xx: result.non2xx,
    errors: result.errors,
  };
}

function startBareServer(body: string): Promise<Server> {
  const server = createServer((request, response) => {
    // Drain the request so keep-alive connections are reused as with the host.
    request.resume();
    request.on("end", () => {
      response.writeHead(200, {
        "Content-Type": "application/json",
        "Cache-Control": "no-store",
      });
      response.end(body);
    });
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve(server));
  });
}

/** Returns a JSON object text of exactly `bytes` bytes. */
function jsonOfSize(bytes: number): string {
  const empty = JSON.stringify({ padding: "" });
  return JSON.stringify({
    padding: "x".repeat(Math.max(0, bytes - empty.length)),
  });
}

function describe(label: string, result: LoadResult): string {
  return `${label}: ${formatNumber(result.requestsPerSecond, 0)} requests/s, p50 ${result.p50Ms} ms, p99 ${result.p99Ms} ms (${result.non2xx} non-2xx, ${result.errors} errors)`;
}

export async function runWarmHttp(stack: BenchStack): Promise<void> {
  const broker = stack.createBroker();
  const identifier = await connectMailbox(
    stack,
    broker,
    "warm@contoso.example",
  );
  const host = await startLocalHost({ broker, routes });
  // The host reports localhost, but it listens on 127.0.0.1 only.
  const hostUrl = `${host.url.replace("localhost", "127.0.0.1")}/api/token`;
  const headers = { authorization: `Bearer ${identifier}` };

  const first = await fetch(hostUrl, { method: "POST", headers });
  const firstBody = await first.text();
  if (first.status !== 200)
    throw new Error(
      `warm-up token-exchange returned ${first.status}: ${firstBody}`,
    );
  const body = jsonOfSize(Buffer.byteLength(firstBody));
  const bare = await startBareServer(body);
  const { port } = bare.address() as AddressInfo;

  try {
    const bareResult = await measure(`http://127.0.0.1:${port}/`, headers);
    const hostResult = await measure(hostUrl, headers);
    const ratio = hostResult.requestsPerSecond / bareResult.requestsPerSecond;

    printSection("1. Warm token-exchange over HTTP", [
      `autocannon, ${connections} connections, ${durationSeconds} s each, POST with a ${Buffer.byteLength(firstBody)}-byte JSON response`,
      describe("bare node:http", bareResult),
      describe("local host, token-exchange", hostResult),
      `throughput ratio host/bare: ${formatNumber(ratio, 3)} (target >= 0.5): ${verdict(ratio >= 0.5, 0.5 - ratio, "")}`,
      `host p99: ${hostResult.p99Ms} ms (target < 5 ms): ${verdict(hostResult.p99Ms < 5, hostResult.p99Ms - 5, " ms")}`,
    ]);
  } finally {
    await host.close();
    await new Promise<void>((resolve) => {
      bare.close(() => resolve());
      bare.closeAllConnections();
    });
  }
}

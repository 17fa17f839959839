/**
 * The token-exchange handler alone, in process, against a handler that returns the same JSON
 * without work. Both are called with real HttpRequest and InvocationContext objects and their
 * responses are read. Target: at least a quarter of the no-op handler's rate.
 */
import type { HttpHandler } from "@azure/functions";
import { jsonResponse } from "../shared/http.js";
import { parseIdentifier } from "../shared/identifier.js";
import {
  connectMailbox,
  formatNumber,
  handlerOf,
  invoke,
  printSection,
  tokenExchangeInit,
  verdict,
  type BenchStack,
} from "./support.js";

const durationMs = 3_000;
/** Calls in flight at once, as 10 connections of the HTTP benchmark would keep. */
const concurrency = 10;

/** Runs `call` for `durationMs` with `concurrency` calls in flight; returns calls per second. */
async function callsPerSecond(call: () => Promise<void>): Promise<number> {
  const deadline = performance.now() + durationMs;
  const started = performance.now();
  let calls = 0;

  const worker = async () => {
    while (performance.now() < deadline) {
      await call();
      calls += 1;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return calls / ((performance.now() - started) / 1000);
}

function handlerCall(
  handler: HttpHandler,
  identifier: string,
): () => Promise<void> {
  const init = tokenExchangeInit(identifier);
  return async () => {
    const { response } = await invoke(handler, init);
    if (response.status !== 200)
      throw new Error(`handler returned ${response.status}`);
  };
}

export async function runHandler(stack: BenchStack): Promise<void> {
  const broker = stack.createBroker();
  const identifier = await connectMailbox(
    stack,
    broker,
    "handler@contoso.example",
  );
  const tokenExchange = handlerOf(broker, "tokenExchange");
  const warm = await invoke(tokenExchange, tokenExchangeInit(identifier));
  if (warm.response.status !== 200)
    throw new Error(
      `warm-up token-exchange returned ${warm.response.status}: ${warm.text}`,
    );

  const body: unknown = JSON.parse(warm.text);
  const noop: HttpHandler = async () => jsonResponse(200, body);

  const noopRate = await callsPerSecond(handlerCall(noop, identifier));
  const exchangeRate = await callsPerSecond(
    handlerCall(tokenExchange, identifier),
  );
  const ratio = exchangeRate / noopRate;
  // The warm path still reads the grant row from Table Storage on every request; this rate is the
  // ceiling that read sets.
  const { grantId } = parseIdentifier(identifier);
  const grantReadRate = await callsPerSecond(async () => {
    await broker.grants.get(grantId);
  });

  printSection("2. Token-exchange handler in process", [
    `${concurrency} calls in flight, ${durationMs / 1000} s each, real HttpRequest and InvocationContext, response body read`,
    `no-op handler: ${formatNumber(noopRate, 0)} calls/s`,
    `token-exchange handler, warm cache: ${formatNumber(exchangeRate, 0)} calls/s`,
    `grant row read from Azurite alone (broker.grants.get): ${formatNumber(grantReadRate, 0)} calls/s`,
    `ratio: ${formatNumber(ratio, 3)} (target >= 0.25): ${verdict(ratio >= 0.25, 0.25 - ratio, "")}`,
  ]);
}

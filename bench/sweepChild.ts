/**
 * Runs one refresh sweep in a process of its own, so that its resident set size is the broker's
 * alone and not the stand-ins'. Reads the broker's settings as JSON from SWEEP_SETTINGS and writes
 * one JSON line with the summary, the wall time and the memory figures.
 */
import functionsLibrary from "@azure/functions";
import { createBroker } from "../shared/broker.js";
import { loadConfig } from "../shared/config.js";
import { runRefreshSweep } from "../shared/refreshSweep.js";

const { InvocationContext } = functionsLibrary;
const sampleIntervalMs = 50;
/** A full collection takes a few milliseconds, so the live heap is sampled less often. */
const liveSampleIntervalMs = 1_000;

export interface SweepChildResult {
  grants: number;
  refreshed: number;
  due: number;
  skipped: number;
  transientFailures: number;
  errors: number;
  wallSeconds: number;
  rssBefore: number;
  peakRss: number;
  peakHeapUsed: number;
  /** Heap in use right after a full collection, the most of it seen; 0 without --expose-gc. */
  peakLiveHeap: number;
}

async function main(): Promise<void> {
  const settings = JSON.parse(process.env.SWEEP_SETTINGS ?? "{}") as Record<
    string,
    string
  >;
  const broker = createBroker(loadConfig(settings));
  // Creating the tables before measuring keeps that first request out of the wall time.
  await broker.tables.ensureCreated();

  const rssBefore = process.memoryUsage().rss;
  let peakRss = rssBefore;
  let peakHeapUsed = process.memoryUsage().heapUsed;
  const sampler = setInterval(() => {
    const usage = process.memoryUsage();
    peakRss = Math.max(peakRss, usage.rss);
    peakHeapUsed = Math.max(peakHeapUsed, usage.heapUsed);
  }, sampleIntervalMs);

  // With --expose-gc, a full collection before each sample shows the memory the sweep keeps,
  // rather than garbage not yet collected.
  const collect = (globalThis as { gc?: () => void }).gc;
  let peakLiveHeap = 0;
  const liveSampler =
    collect === undefined
      ? undefined
      : setInterval(() => {
          collect();
          peakLiveHeap = Math.max(peakLiveHeap, process.memoryUsage().heapUsed);
        }, liveSampleIntervalMs);

  const started = performance.now();
  const summary = await runRefreshSweep(
    broker,
    new InvocationContext({
      functionName: "refreshTimer",
      invocationId: "bench",
      // Errors are rare and explain a bad figure, so they are shown. Other lines are dropped.
      logHandler: (level, ...args) => {
        if (level === "error")
          process.stderr.write(`sweep error: ${JSON.stringify(args)}\n`);
      },
    }),
    { pastDue: false },
  );
  const wallSeconds = (performance.now() - started) / 1000;
  clearInterval(sampler);
  clearInterval(liveSampler);
  peakRss = Math.max(peakRss, process.memoryUsage().rss);

  const result: SweepChildResult = {
    grants: summary.grants,
    refreshed: summary.refreshed,
    due: summary.due,
    skipped: summary.skipped,
    transientFailures: summary.transientFailures,
    errors: summary.errors,
    wallSeconds,
    rssBefore,
    peakRss,
    peakHeapUsed,
    peakLiveHeap,
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(
    `sweep failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
  );
  process.exitCode = 1;
});

/**
 * The refresh timer's sweep over N due grants at concurrency C, with a token endpoint that takes
 * 100 ms: wall time against the ideal N × 0.1 s / C. A second sweep over many more grants gives the
 * peak memory. Each sweep runs in a process of its own (`sweepChild.ts`), so its resident set size
 * is the broker's alone while the stand-ins and Azurite run elsewhere. The child is compiled to
 * plain JavaScript first, as deployed, so no TypeScript loader sits in its memory.
 */
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { resolve } from "node:path";
import { build } from "esbuild";
import type { Broker } from "../shared/broker.js";
import type { Grant } from "../shared/grantStore.js";
import {
  issueIdentifier,
  newGrantId,
  parseIdentifier,
} from "../shared/identifier.js";
import type { SweepChildResult } from "./sweepChild.js";
import {
  connectMailbox,
  formatNumber,
  printSection,
  verdict,
  type BenchStack,
} from "./support.js";

const timedGrants = Number(process.env.BENCH_SWEEP_GRANTS ?? 10_000);
const memoryGrants = Number(process.env.BENCH_MEMORY_GRANTS ?? 100_000);
/**
 * Grants of the memory run that are due: twice the default TOKEN_CACHE_SIZE, so the access-token
 * cache fills to its bound. The others are listed and passed over, as on a day when earlier runs
 * refreshed most grants. Refreshing all 100,000 on 2 CPUs would take about 20 minutes.
 */
const memoryDueGrants = Number(process.env.BENCH_MEMORY_DUE ?? 20_000);
const concurrency = 16;
const memoryConcurrency = 64;
const latencyMs = 100;
const templateCount = 4;
const seedConcurrency = 64;
const dayMs = 24 * 60 * 60_000;
const memoryTargetMiB = 256;
const ratioTarget = 1.25;

/** Runs `task` over `items` with at most `limit` at once. */
async function forEachLimited<T>(
  items: T[],
  limit: number,
  task: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const item = items[next] as T;
      next += 1;
      await task(item);
    }
  };
  await Promise.all(Array.from({ length: limit }, worker));
}

/**
 * Creates `count` grants directly in the stores, the first `dueCount` due for a refresh, each with
 * the refresh token of one of the template grants. The identity stand-in accepts a refresh token
 * again after issuing a new one, so the templates' tokens can be shared. A grant that is not due
 * gets only its Table row, since the sweep never reads its secret.
 */
async function seedGrants(
  broker: Broker,
  templateBroker: Broker,
  templateIds: string[],
  count: number,
  dueCount: number,
): Promise<void> {
  const sources = await Promise.all(
    templateIds.map(async (grantId) => {
      const grant = await templateBroker.grants.get(grantId);
      if (grant === undefined) throw new Error(`grant not found: ${grantId}`);
      return {
        grant,
        token: await templateBroker.secrets.readRefreshToken(grantId),
      };
    }),
  );
  const dueIssuedAt = new Date(Date.now() - 2 * dayMs);
  const recentIssuedAt = new Date();
  const indexes = Array.from({ length: count }, (_, index) => index);

  await forEachLimited(indexes, seedConcurrency, async (index) => {
    const source = sources[index % sources.length]!;
    const grantId = newGrantId();
    const email = `seeded${index}@contoso.example`;
    const due = index < dueCount;
    const issuedAt = due ? dueIssuedAt : recentIssuedAt;
    const secretVersion = due
      ? await broker.secrets.saveRefreshToken(grantId, source.token, issuedAt)
      : source.grant.secretVersion;
    const grant: Grant = {
      grantId,
      status: "active",
      siteUrl: source.grant.siteUrl,
      mailbox: email,
      mailboxNormalized: email,
      cloud: source.grant.cloud,
      tenantId: source.grant.tenantId,
      objectId: source.grant.objectId,
      scopes: source.grant.scopes,
      identifierHash: issueIdentifier(grantId).secretHash,
      secretVersion,
      connectedAt: issuedAt,
      refreshTokenIssuedAt: issuedAt,
      updatedAt: issuedAt,
    };
    if (!(await broker.grants.tryCreate(grant)))
      throw new Error(`grant already exists: ${grantId}`);
  });
}

/** Inside .local/, which git ignores, so that node_modules of the project is still found. */
const childScript = resolve(".local/bench-sweep/sweepChild.mjs");

/** Compiles the child into one file that imports its packages from node_modules. */
async function compileChild(): Promise<void> {
  await build({
    entryPoints: [resolve("bench/sweepChild.ts")],
    outfile: childScript,
    bundle: true,
    packages: "external",
    platform: "node",
    format: "esm",
    target: "node20",
    logLevel: "error",
  });
}

/** Runs one sweep in a child process over the grants of `settings`' tables. */
function sweepInChild(
  settings: Record<string, string>,
  nodeOptions: string[],
): Promise<SweepChildResult> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [...nodeOptions, childScript], {
      env: { ...process.env, SWEEP_SETTINGS: JSON.stringify(settings) },
      stdio: ["ignore", "pipe", "inherit"],
    });
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
    child.on("error", reject);
    child.on("exit", (code) => {
      if (code !== 0) {
        reject(new Error(`sweep process exited with ${code}`));
        return;
      }
      resolvePromise(JSON.parse(output.trim()) as SweepChildResult);
    });
  });
}

interface SweepMeasurement {
  result: SweepChildResult;
  seedSeconds: number;
  tokenRequests: number;
  maxInFlight: number;
}

/** Seeds `count` grants in tables of their own, `dueCount` of them due, and sweeps them. */
async function measureSweep(
  stack: BenchStack,
  templateBroker: Broker,
  templateIds: string[],
  count: number,
  dueCount: number,
  sweepConcurrency: number,
  tokenLatencyMs: number,
  nodeOptions: string[] = [],
): Promise<SweepMeasurement> {
  const tableNamePrefix = `b${randomBytes(6).toString("hex")}`;
  const broker = stack.createBroker({ TABLE_NAME_PREFIX: tableNamePrefix });
  await broker.tables.ensureCreated();
  const seedStarted = performance.now();
  await seedGrants(broker, templateBroker, templateIds, count, dueCount);
  const seedSeconds = (performance.now() - seedStarted) / 1000;

  stack.identity.control.setLatency(tokenLatencyMs);
  stack.identity.control.resetCounts();
  try {
    const result = await sweepInChild(
      {
        ...stack.settings,
        TABLE_NAME_PREFIX: tableNamePrefix,
        REFRESH_CONCURRENCY: String(sweepConcurrency),
      },
      nodeOptions,
    );
    return {
      result,
      seedSeconds,
      tokenRequests: stack.identity.control.counts().token,
      maxInFlight: stack.identity.control.maxConcurrentTokenRequests(),
    };
  } finally {
    stack.identity.control.setLatency(0);
  }
}

const mib = (bytes: number) => formatNumber(bytes / 1024 / 1024);

function describeRun(measured: SweepMeasurement): string {
  const { result } = measured;
  return `due ${result.due}, refreshed ${result.refreshed}, skipped ${result.skipped}, transient failures ${result.transientFailures}, errors ${result.errors}, token requests ${measured.tokenRequests}, max in flight ${measured.maxInFlight} (seeding took ${formatNumber(measured.seedSeconds)} s)`;
}

export async function runSweep(stack: BenchStack): Promise<void> {
  await compileChild();
  const templateBroker = stack.createBroker();
  const templateIds: string[] = [];
  for (let index = 0; index < templateCount; index++) {
    const identifier = await connectMailbox(
      stack,
      templateBroker,
      `template${index}@contoso.example`,
    );
    templateIds.push(parseIdentifier(identifier).grantId);
  }

  const timed = await measureSweep(
    stack,
    templateBroker,
    templateIds,
    timedGrants,
    timedGrants,
    concurrency,
    latencyMs,
  );
  const idealSeconds = (timedGrants * latencyMs) / 1000 / concurrency;
  const ratio = timed.result.wallSeconds / idealSeconds;

  const large = await measureSweep(
    stack,
    templateBroker,
    templateIds,
    memoryGrants,
    memoryDueGrants,
    memoryConcurrency,
    0,
    ["--expose-gc"],
  );
  const peakMiB = large.result.peakRss / 1024 / 1024;

  printSection("4. Refresh sweep", [
    `${timedGrants} due grants, concurrency ${concurrency}, token endpoint ${latencyMs} ms: ${describeRun(timed)}`,
    `wall time ${formatNumber(timed.result.wallSeconds, 2)} s, ideal ${formatNumber(idealSeconds, 2)} s, ratio ${formatNumber(ratio, 3)} (target <= ${ratioTarget}): ${verdict(ratio <= ratioTarget, ratio - ratioTarget, "")}`,
    `sweep process resident set size: ${mib(timed.result.rssBefore)} MiB before, peak ${mib(timed.result.peakRss)} MiB, peak heap used ${mib(timed.result.peakHeapUsed)} MiB`,
    `${memoryGrants} grants, ${memoryDueGrants} of them due, concurrency ${memoryConcurrency}, token endpoint without delay: listed ${large.result.grants}, ${describeRun(large)}, wall time ${formatNumber(large.result.wallSeconds, 1)} s`,
    `sweep process resident set size: ${mib(large.result.rssBefore)} MiB before, peak ${mib(large.result.peakRss)} MiB (target < ${memoryTargetMiB} MiB): ${verdict(peakMiB < memoryTargetMiB, peakMiB - memoryTargetMiB, " MiB")}; heap after a full collection at most ${mib(large.result.peakLiveHeap)} MiB (sampled every second)`,
  ]);
}

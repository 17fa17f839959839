/**
 * The refresh timer's sweep over N due grants at concurrency C, with a token endpoint that takes
 * 100 ms: wall time against the ideal N × 0.1 s / C, and the peak resident set size while it runs.
 */
import type { Broker } from "../shared/broker.js";
import type { Grant } from "../shared/grantStore.js";
import {
  issueIdentifier,
  newGrantId,
  parseIdentifier,
} from "../shared/identifier.js";
import { runRefreshSweep } from "../shared/refreshSweep.js";
import {
  connectMailbox,
  createContext,
  formatNumber,
  printSection,
  type BenchStack,
} from "./support.js";

const grantCount = 1_000;
const concurrency = 16;
const latencyMs = 100;
const templateCount = 4;
const dayMs = 24 * 60 * 60_000;
const rssSampleIntervalMs = 50;

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
 * Creates `count` grants directly in the stores, due for a refresh, each with the refresh token of
 * one of the template grants. The identity stand-in accepts a refresh token again after issuing a
 * new one, so the templates' tokens can be shared.
 */
async function seedDueGrants(
  broker: Broker,
  templateIds: string[],
  count: number,
): Promise<void> {
  const sources = await Promise.all(
    templateIds.map(async (grantId) => {
      const grant = await broker.grants.get(grantId);
      if (grant === undefined) throw new Error(`grant not found: ${grantId}`);
      return { grant, token: await broker.secrets.readRefreshToken(grantId) };
    }),
  );
  const issuedAt = new Date(Date.now() - 2 * dayMs);
  const indexes = Array.from({ length: count }, (_, index) => index);

  await forEachLimited(indexes, 16, async (index) => {
    const source = sources[index % sources.length]!;
    const grantId = newGrantId();
    const email = `seeded${index}@contoso.example`;
    const secretVersion = await broker.secrets.saveRefreshToken(
      grantId,
      source.token,
      issuedAt,
    );
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

export async function runSweep(stack: BenchStack): Promise<void> {
  const broker = stack.createBroker({
    REFRESH_CONCURRENCY: String(concurrency),
  });
  const templateIds: string[] = [];
  for (let index = 0; index < templateCount; index++) {
    const identifier = await connectMailbox(
      stack,
      broker,
      `template${index}@contoso.example`,
    );
    templateIds.push(parseIdentifier(identifier).grantId);
  }
  const seedStarted = performance.now();
  await seedDueGrants(broker, templateIds, grantCount);
  const seedSeconds = (performance.now() - seedStarted) / 1000;

  const rssBefore = process.memoryUsage().rss;
  let peakRss = rssBefore;
  const sampler = setInterval(() => {
    peakRss = Math.max(peakRss, process.memoryUsage().rss);
  }, rssSampleIntervalMs);

  stack.identity.control.setLatency(latencyMs);
  stack.identity.control.resetCounts();
  const started = performance.now();
  let summary;
  try {
    summary = await runRefreshSweep(broker, createContext("refreshTimer"), {
      pastDue: false,
    });
  } finally {
    clearInterval(sampler);
    stack.identity.control.setLatency(0);
  }
  const wallSeconds = (performance.now() - started) / 1000;
  peakRss = Math.max(peakRss, process.memoryUsage().rss);

  const idealSeconds = (grantCount * latencyMs) / 1000 / concurrency;
  const mib = (bytes: number) => formatNumber(bytes / 1024 / 1024);
  printSection("4. Refresh sweep", [
    `${grantCount} seeded due grants plus ${templateCount} recently connected ones (seeding took ${formatNumber(seedSeconds)} s), concurrency ${concurrency}, token endpoint ${latencyMs} ms`,
    `due ${summary.due}, refreshed ${summary.refreshed}, skipped ${summary.skipped}, transient failures ${summary.transientFailures}, errors ${summary.errors}, token requests ${stack.identity.control.counts().token}, max token requests in flight ${stack.identity.control.maxConcurrentTokenRequests()}`,
    `wall time ${formatNumber(wallSeconds, 2)} s, ideal ${formatNumber(idealSeconds, 2)} s, ratio ${formatNumber(wallSeconds / idealSeconds, 2)}`,
    `resident set size: ${mib(rssBefore)} MiB before, peak ${mib(peakRss)} MiB sampled every ${rssSampleIntervalMs} ms (whole process, stand-ins included)`,
  ]);
}

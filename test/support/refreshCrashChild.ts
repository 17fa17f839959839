/**
 * A broker process that refreshes one grant and stops at a chosen step, for the crash test to kill.
 *
 * Reads the broker settings from the environment, as a function app instance does, plus
 * `CRASH_GRANT_ID`, `CRASH_STEP` (`token_received` or `secret_saved`) and `CRASH_LEASE_MS`. At the
 * step it prints `crashMarker` on stdout and then waits until it is killed. Exits with 1 when the
 * refresh ends without reaching the step.
 */
import { pathToFileURL } from "node:url";
import { createBroker } from "../../shared/broker.js";
import { loadConfig } from "../../shared/config.js";
import { refreshGrant } from "../../shared/refresher.js";

export const crashMarker = "refresh stopped at";

type Step = "token_received" | "secret_saved";

function readStep(value: string | undefined): Step {
  if (value === "token_received" || value === "secret_saved") return value;
  throw new Error(
    `CRASH_STEP must be token_received or secret_saved, got ${String(value)}`,
  );
}

async function main(): Promise<void> {
  const grantId = process.env.CRASH_GRANT_ID ?? "";
  const step = readStep(process.env.CRASH_STEP);
  const leaseMs = Number(process.env.CRASH_LEASE_MS);
  if (!Number.isInteger(leaseMs) || leaseMs <= 0) {
    throw new Error(
      `CRASH_LEASE_MS must be a positive integer, got ${String(process.env.CRASH_LEASE_MS)}`,
    );
  }

  const broker = createBroker(loadConfig(process.env));
  const grant = await broker.grants.get(grantId);
  if (grant === undefined) throw new Error(`grant ${grantId} not found`);

  const log = {
    warn: (message: string, fields: Record<string, unknown>) =>
      console.error("warn", message, JSON.stringify(fields)),
    error: (message: string, fields: Record<string, unknown>) =>
      console.error("error", message, JSON.stringify(fields)),
  };
  const outcome = await refreshGrant(
    broker,
    grant,
    {
      waitForLease: false,
      leaseMs,
      onStep: async (reached) => {
        if (reached !== step) return;
        process.stdout.write(`${crashMarker} ${reached}\n`);
        // An unsettled promise alone lets Node exit, so a timer keeps the process alive.
        setInterval(() => undefined, 60_000);
        await new Promise<never>(() => undefined);
      },
    },
    log,
  );
  console.error(`refresh ended without reaching ${step}: ${outcome.kind}`);
  process.exitCode = 1;
}

// The crash test imports `crashMarker` from this file, so the refresh runs only when it is the script.
if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  main().catch((error: unknown) => {
    console.error(error);
    process.exitCode = 1;
  });
}

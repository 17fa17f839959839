/**
 * A local stand-in for the Functions host's timer trigger: runs the refresh timer's handler on its
 * NCRONTAB schedule in UTC, never on start-up, and never two runs of this host at once.
 */
import { randomUUID } from "node:crypto";
import functionsLibrary, {
  type LogHandler,
  type Timer,
} from "@azure/functions";
import { CronExpressionParser } from "cron-parser";

// The library is CommonJS, and Node's ESM loader does not find this class as a named export.
const { InvocationContext } = functionsLibrary;

export interface LocalTimer {
  stop(): void;
}

/** The maximum delay setTimeout keeps, about 24.8 days. */
const maxTimeoutMs = 2 ** 31 - 1;

export function startLocalTimer(options: {
  name: string;
  schedule: string;
  handler: (
    timer: Timer,
    context: InstanceType<typeof InvocationContext>,
  ) => Promise<void>;
  logHandler?: LogHandler;
}): LocalTimer {
  const occurrences = CronExpressionParser.parse(options.schedule, {
    tz: "UTC",
  });
  let timeout: NodeJS.Timeout | undefined;
  let stopped = false;

  // Node fires a timeout of more than 2^31 - 1 ms at once, so a longer wait is made of several.
  const waitUntil = (at: number, then: () => void) => {
    const remaining = at - Date.now();
    timeout =
      remaining > maxTimeoutMs
        ? setTimeout(() => waitUntil(at, then), maxTimeoutMs)
        : setTimeout(then, Math.max(0, remaining));
  };

  const scheduleNext = () => {
    if (stopped) return;
    const next = occurrences.next().getTime();
    waitUntil(next, () => void run(next));
  };

  const run = async (scheduledAt: number) => {
    const context = new InvocationContext({
      functionName: options.name,
      invocationId: randomUUID(),
      logHandler: options.logHandler,
    });
    const timer: Timer = {
      isPastDue: Date.now() - scheduledAt > 60_000,
      schedule: { adjustForDST: false },
      scheduleStatus: {
        last: "",
        next: "",
        lastUpdated: new Date().toISOString(),
      },
    };
    try {
      await options.handler(timer, context);
    } catch (error) {
      context.error("timer run failed", {
        error: error instanceof Error ? error.name : typeof error,
      });
    }
    scheduleNext();
  };

  scheduleNext();
  return {
    stop() {
      stopped = true;
      clearTimeout(timeout);
    },
  };
}

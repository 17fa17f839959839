import { setTimeout as sleep } from "node:timers/promises";
import { describe, expect, it } from "vitest";
import { startLocalTimer } from "../../local/timerHost.js";

describe("local timer", () => {
  it("local timer runs the handler on its schedule", async () => {
    const runs: { isPastDue: boolean; functionName: string }[] = [];
    let resolveRun: () => void = () => undefined;
    const ran = new Promise<void>((resolve) => {
      resolveRun = resolve;
    });

    const timer = startLocalTimer({
      name: "refreshTimer",
      schedule: "* * * * * *",
      handler: async (trigger, context) => {
        runs.push({
          isPastDue: trigger.isPastDue,
          functionName: context.functionName,
        });
        resolveRun();
      },
    });
    try {
      await ran;
    } finally {
      timer.stop();
    }

    expect(runs[0]?.isPastDue).toBe(false);
    expect(runs[0]?.functionName).toBe("refreshTimer");
  });

  it("local timer does not run on start", () => {
    let runs = 0;
    const timer = startLocalTimer({
      name: "refreshTimer",
      schedule: "0 0 0 1 1 *",
      handler: async () => {
        runs += 1;
      },
    });
    timer.stop();
    expect(runs).toBe(0);
  });

  it("local timer waits out a yearly schedule", async () => {
    let runs = 0;
    const timer = startLocalTimer({
      name: "refreshTimer",
      schedule: "0 0 0 1 1 *",
      handler: async () => {
        runs += 1;
      },
    });
    try {
      // A delay past setTimeout's limit would fire at once and again after every run.
      await sleep(200);
    } finally {
      timer.stop();
    }
    expect(runs).toBe(0);
  });
});

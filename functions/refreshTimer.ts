import type { InvocationContext, Timer } from "@azure/functions";
import type { Broker } from "../shared/broker.js";
import { runRefreshSweep } from "../shared/refreshSweep.js";

/**
 * Creates the refresh timer's handler. It refreshes grants not refreshed for REFRESH_AFTER_HOURS,
 * on the UTC schedule REFRESH_SCHEDULE. It does not run on start-up, so restarts and scale-out do
 * not start extra runs. Overlapping runs are safe because each grant is leased before a refresh.
 */
export function createRefreshTimerHandler(broker: Broker) {
  return async function refreshTimer(
    timer: Timer,
    context: InvocationContext,
  ): Promise<void> {
    await runRefreshSweep(broker, context, { pastDue: timer.isPastDue });
  };
}

export const refreshTimerName = "refreshTimer";

import { z } from "zod";

/** Key Vault secrets operations that the stand-in serves, named after the REST API operations. */
export const keyVaultOperations = [
  "setSecret",
  "getSecret",
  "listVersions",
  "listSecrets",
  "updateSecret",
  "deleteSecret",
  "getDeletedSecret",
  "listDeletedSecrets",
  "purgeDeletedSecret",
  "recoverDeletedSecret",
] as const;

export type KeyVaultOperation = (typeof keyVaultOperations)[number];

/** Failure that the next `count` matching requests return instead of their normal response. */
export interface KeyVaultFault {
  status: 429 | 503 | 500;
  count: number;
  /** Value of the Retry-After header in seconds. Without it, the response has no Retry-After header. */
  retryAfterSeconds?: number;
  /** Operation that the fault applies to, or every operation when absent. */
  operation?: KeyVaultOperation;
}

/** Test controls of the stand-in: fault injection, response latency and request counts. */
export interface KeyVaultControl {
  /** Makes the next `count` matching authenticated requests fail with `status`, before they touch any data. */
  injectFaults(fault: KeyVaultFault): void;
  /** Delays every Key Vault response by `ms` milliseconds. Control routes are not delayed. */
  setLatency(ms: number): void;
  /** Returns the authenticated requests served per operation, faulted ones included. */
  counts(): Record<KeyVaultOperation, number>;
  resetCounts(): void;
  /** Clears faults, latency and counts. Stored secrets stay. */
  reset(): void;
}

export const faultSchema = z.strictObject({
  status: z.literal([429, 503, 500]),
  count: z.number().int().positive(),
  retryAfterSeconds: z.number().int().nonnegative().optional(),
  operation: z.enum(keyVaultOperations).optional(),
});

export const latencySchema = z.strictObject({
  ms: z.number().nonnegative(),
});

interface PendingFault {
  fault: KeyVaultFault;
  remaining: number;
}

function emptyCounts(): Record<KeyVaultOperation, number> {
  const counts = {} as Record<KeyVaultOperation, number>;
  for (const operation of keyVaultOperations) {
    counts[operation] = 0;
  }
  return counts;
}

/** Control state shared by the programmatic API, the HTTP control routes and the request handler. */
export class RequestControls implements KeyVaultControl {
  #faults: PendingFault[] = [];
  #latencyMs = 0;
  #counts = emptyCounts();

  get latencyMs(): number {
    return this.#latencyMs;
  }

  injectFaults(fault: KeyVaultFault): void {
    const result = faultSchema.safeParse(fault);
    if (!result.success) {
      throw new TypeError(`Invalid fault: ${z.prettifyError(result.error)}`);
    }
    this.#faults.push({ fault: result.data, remaining: result.data.count });
  }

  setLatency(ms: number): void {
    const result = latencySchema.safeParse({ ms });
    if (!result.success) {
      throw new TypeError(
        `Invalid latency ${String(ms)}: expected a number of milliseconds >= 0`,
      );
    }
    this.#latencyMs = result.data.ms;
  }

  counts(): Record<KeyVaultOperation, number> {
    return { ...this.#counts };
  }

  resetCounts(): void {
    this.#counts = emptyCounts();
  }

  reset(): void {
    this.#faults = [];
    this.#latencyMs = 0;
    this.resetCounts();
  }

  recordRequest(operation: KeyVaultOperation): void {
    this.#counts[operation] += 1;
  }

  /** Consumes one use of the oldest pending fault that matches `operation`, if any. */
  takeFault(operation: KeyVaultOperation): KeyVaultFault | undefined {
    const index = this.#faults.findIndex(
      (pending) =>
        pending.fault.operation === undefined ||
        pending.fault.operation === operation,
    );
    const pending = this.#faults[index];
    if (pending === undefined) {
      return undefined;
    }

    pending.remaining -= 1;
    if (pending.remaining === 0) {
      this.#faults.splice(index, 1);
    }
    return pending.fault;
  }
}

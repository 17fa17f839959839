import { describe, expect, it } from "vitest";
import { BrokerError } from "../../shared/errors.js";
import {
  updateGrant,
  type GrantStore,
  type StoredGrant,
} from "../../shared/grantStore.js";

const grant = {
  grantId: "0".repeat(32),
  etag: "e1",
  status: "active",
} as StoredGrant;

function storeThatAlwaysConflicts(): GrantStore {
  return {
    get: async () => ({ ...grant, etag: `e${Math.random()}` }),
    tryUpdate: async () => undefined,
  } as unknown as GrantStore;
}

describe("updateGrant", () => {
  it("updateGrant fails after repeated conflicts", async () => {
    const attempt = updateGrant(storeThatAlwaysConflicts(), grant, () => ({
      status: "revoked",
    }));

    await expect(attempt).rejects.toBeInstanceOf(BrokerError);
    await expect(attempt).rejects.toMatchObject({
      code: "storage_unavailable",
    });
  });

  it("updateGrant writes nothing for an empty change", async () => {
    let writes = 0;
    const store = {
      get: async () => grant,
      tryUpdate: async () => {
        writes += 1;
        return "e2";
      },
    } as unknown as GrantStore;

    expect(await updateGrant(store, grant, () => ({}))).toBe(grant);
    expect(writes).toBe(0);
  });
});

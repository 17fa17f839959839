import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { TableClient } from "@azure/data-tables";
import { afterAll, describe, expect, it } from "vitest";
import { startAzuriteTables } from "../../local/azurite.js";

const location = mkdtempSync(join(tmpdir(), "broker-azurite-"));

afterAll(() => {
  rmSync(location, { recursive: true, force: true });
});

function tableOf(connectionString: string): TableClient {
  return TableClient.fromConnectionString(connectionString, "persisted", {
    allowInsecureConnection: true,
  });
}

describe("azurite", () => {
  it("azurite keeps a write made just before it stops", async () => {
    const first = await startAzuriteTables({ location });
    try {
      const table = tableOf(first.connectionString);
      await table.createTable();
      await table.createEntity({ partitionKey: "p", rowKey: "r", value: 7 });
    } finally {
      await first.stop();
    }

    const second = await startAzuriteTables({ location });
    try {
      const entity = await tableOf(second.connectionString).getEntity<{
        value: number;
      }>("p", "r");
      expect(entity.value).toBe(7);
    } finally {
      await second.stop();
    }
  });
});

import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { renderReasonCodes } from "../../scripts/reasonCodes.js";
import { catalogueRows } from "../../shared/failureCatalogue.js";

describe("reason codes document", () => {
  it("reason codes document matches the catalogue", () => {
    const committed = readFileSync(
      new URL("../../docs/reason-codes.md", import.meta.url),
      "utf8",
    );
    expect(committed).toBe(renderReasonCodes());
  });

  it("reason codes document lists every reason", () => {
    const committed = readFileSync(
      new URL("../../docs/reason-codes.md", import.meta.url),
      "utf8",
    );
    for (const row of catalogueRows())
      expect(committed).toContain(`\`${row.reason}\``);
  });
});

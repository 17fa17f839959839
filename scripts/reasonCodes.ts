/**
 * Writes docs/reason-codes.md from the failure catalogue, so the documented table is always the one
 * the broker uses. `npm run docs` runs it; a unit test fails when the file is out of date.
 */
import { writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { catalogueRows } from "../shared/failureCatalogue.js";

const kindLabels = {
  customer: "sign in again (`reauth_required`)",
  operator: "operator must fix the app credential; no grant is marked",
  transient: "retried; status unchanged",
};

export function renderReasonCodes(): string {
  const lines = [
    "# Reason codes",
    "",
    "Generated from `shared/failureCatalogue.ts` by `npm run docs`; do not edit by hand.",
    "",
    "A refresh failure reported by the Microsoft identity platform is classified by its AADSTS number",
    "first, then by its OAuth `error`. The reason code is stored on the grant, returned by",
    "token-exchange (409) and the status endpoint, and sent in webhook events.",
    "",
    "| AADSTS or error | reason | what happens | meaning | remedy |",
    "| --- | --- | --- | --- | --- |",
  ];
  for (const row of catalogueRows()) {
    const source =
      row.aadsts === undefined
        ? `\`${row.error ?? ""}\``
        : `AADSTS${row.aadsts}`;
    lines.push(
      `| ${source} | \`${row.reason}\` | ${kindLabels[row.kind]} | ${row.description} | ${row.remedy} |`,
    );
  }
  return `${lines.join("\n")}\n`;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  writeFileSync(
    new URL("../docs/reason-codes.md", import.meta.url),
    renderReasonCodes(),
  );
}

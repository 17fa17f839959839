/**
 * Cold start: the time a fresh node process takes to import the compiled function modules against
 * the time it takes to import only the Azure SDK packages they build on. Target: no slower than
 * 1.1 × the SDK floor.
 */
import { execFileSync } from "node:child_process";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { formatNumber, printSection, quantile, verdict } from "./support.js";

/** Inside .local/, which git ignores, so that node_modules of the project is still found. */
const buildDir = resolve(".local/bench-build");
const runs = 7;

const sdkPackages = [
  "@azure/functions",
  "@azure/msal-node",
  "@azure/data-tables",
  "@azure/keyvault-secrets",
];

/** Imports `specifiers` one after another in a new node process; returns the milliseconds taken. */
function timeImports(specifiers: string[]): number {
  const script = [
    "const started = performance.now();",
    `for (const specifier of ${JSON.stringify(specifiers)}) await import(specifier);`,
    "process.stdout.write(String(performance.now() - started));",
  ].join("\n");
  const output = execFileSync(
    process.execPath,
    ["--input-type=module", "-e", script],
    { cwd: resolve("."), encoding: "utf8" },
  );
  return Number(output);
}

export function runStartup(): void {
  execFileSync(
    process.execPath,
    [
      resolve("node_modules/typescript/bin/tsc"),
      "-p",
      "tsconfig.build.json",
      "--outDir",
      buildDir,
    ],
    { stdio: "inherit" },
  );
  const appModules = [
    pathToFileURL(resolve(buildDir, "functions/routes.js")).href,
    pathToFileURL(resolve(buildDir, "shared/broker.js")).href,
  ];

  // Alternating the two keeps a drift of the machine's load from favouring one of them.
  const appTimes: number[] = [];
  const sdkTimes: number[] = [];
  for (let run = 0; run < runs; run++) {
    sdkTimes.push(timeImports(sdkPackages));
    appTimes.push(timeImports(appModules));
  }

  const app = quantile(appTimes, 0.5);
  const sdk = quantile(sdkTimes, 0.5);
  const ratio = app / sdk;
  printSection("5. Cold start (import in a fresh node process)", [
    `median of ${runs} runs each, modules compiled by tsc into ${buildDir}`,
    `SDK floor (${sdkPackages.join(", ")}): ${formatNumber(sdk)} ms`,
    `functions/routes.js and shared/broker.js: ${formatNumber(app)} ms`,
    `ratio: ${formatNumber(ratio, 3)} (target <= 1.1): ${verdict(ratio <= 1.1, ratio - 1.1, "")}`,
  ]);
}

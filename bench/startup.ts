/**
 * Cold start: the time a fresh node process takes to import the function app's entry,
 * functions/index.js, as the esbuild bundle and as the tsc output. Both are compared with the time
 * it takes to import only the Azure SDK packages the app builds on. Target: no slower than 1.1 ×
 * that SDK floor.
 */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join, relative, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import {
  bundleFileName,
  bundleFunctionApp,
  defaultOutputDirectory,
} from "../scripts/bundle.js";
import { formatNumber, printSection, quantile, verdict } from "./support.js";

/** Inside .local/, which git ignores, so that node_modules of the project is still found. */
const tscDir = resolve(".local/bench-build/tsc");
const bundleDir = resolve(".local/bench-build/bundle");
const runs = 7;
const target = 1.1;

const sdkPackages = [
  "@azure/functions",
  "@azure/msal-node",
  "@azure/data-tables",
  "@azure/keyvault-secrets",
];

/**
 * Settings on loopback addresses only. The entry reads them and builds the broker, which connects
 * to nothing until a function runs.
 */
const appSettings = {
  BROKER_CLIENT_ID: "6f1f4e2a-8c53-4d8e-9a57-2f0b5c1d3e47",
  BROKER_CLIENT_SECRET: "bench-client-secret",
  BROKER_REDIRECT_URI: "http://localhost:7071/api/auth/callback",
  BROKER_AUTHORITY_HOST: "https://127.0.0.1:7073",
  TABLES_CONNECTION_STRING: "UseDevelopmentStorage=true",
  KEY_VAULT_URL: "http://127.0.0.1:7072",
};

/**
 * Serves `@azure/functions-core` as the Functions host's Node.js worker does, by intercepting
 * `Module.prototype.require`, so that `app.http` and `app.timer` register as they do in the host
 * instead of printing test-mode warnings. It runs before the clock starts.
 */
const hostCoreModule = `
import { createRequire } from "node:module";
const Module = createRequire(import.meta.url)("node:module");
const coreApi = {
  version: "bench",
  hostVersion: "bench",
  setProgrammingModel() {},
  registerHook() { return { dispose() {} }; },
  registerFunction() { return { dispose() {} }; },
};
const originalRequire = Module.prototype.require;
Module.prototype.require = function (id, ...rest) {
  return id === "@azure/functions-core" ? coreApi : originalRequire.call(this, id, ...rest);
};
`;

interface Candidate {
  label: string;
  specifiers: string[];
  nodeOptions: string[];
  times: number[];
}

/** Imports `specifiers` one after another in a new node process; returns the milliseconds taken. */
function timeImports(specifiers: string[], nodeOptions: string[]): number {
  const script = [
    hostCoreModule,
    "const started = performance.now();",
    `for (const specifier of ${JSON.stringify(specifiers)}) await import(specifier);`,
    "process.stdout.write(String(performance.now() - started));",
  ].join("\n");
  const output = execFileSync(
    process.execPath,
    [...nodeOptions, "--input-type=module", "-e", script],
    {
      cwd: resolve("."),
      encoding: "utf8",
      env: { PATH: process.env.PATH ?? "", ...appSettings },
    },
  );
  return Number(output);
}

function candidate(
  label: string,
  specifiers: string[],
  nodeOptions: string[] = [],
): Candidate {
  return { label, specifiers, nodeOptions, times: [] };
}

function compileWithTsc(): string {
  execFileSync(
    process.execPath,
    [
      resolve("node_modules/typescript/bin/tsc"),
      "-p",
      "tsconfig.build.json",
      "--outDir",
      tscDir,
    ],
    { stdio: "inherit" },
  );
  return join(tscDir, "functions/index.js");
}

/** Names what package.json `main` points at, the entry that `func start` and the deployment load. */
function describeShippedEntry(): string {
  const { main } = JSON.parse(readFileSync("package.json", "utf8")) as {
    main: string;
  };
  const bundleEntry = `${defaultOutputDirectory}/${bundleFileName}`;
  const kind =
    main === bundleEntry
      ? "the esbuild bundle that npm run build writes"
      : `not ${bundleEntry}, the esbuild bundle that npm run build writes`;
  return `ships: package.json main is ${main}, ${kind}`;
}

export async function runStartup(): Promise<void> {
  const tscEntry = compileWithTsc();
  const { outputFile: bundleEntry } = await bundleFunctionApp(bundleDir);
  const url = (path: string) => pathToFileURL(path).href;

  const floor = candidate("SDK floor", sdkPackages);
  const floorWithIdentity = candidate("SDK floor and @azure/identity", [
    ...sdkPackages,
    "@azure/identity",
  ]);
  const tsc = candidate("tsc output", [url(tscEntry)]);
  const bundle = candidate("esbuild bundle", [url(bundleEntry)]);
  const bundleWithSourceMaps = candidate(
    "esbuild bundle, --enable-source-maps",
    [url(bundleEntry)],
    ["--enable-source-maps"],
  );
  const candidates = [
    floor,
    floorWithIdentity,
    tsc,
    bundle,
    bundleWithSourceMaps,
  ];

  // Alternating keeps a drift of the machine's load from favouring one of them.
  for (let run = 0; run < runs; run++) {
    for (const entry of candidates)
      entry.times.push(timeImports(entry.specifiers, entry.nodeOptions));
  }

  const median = (entry: Candidate) => quantile(entry.times, 0.5);
  const timing = (entry: Candidate) =>
    `${formatNumber(median(entry))} ms (${formatNumber(Math.min(...entry.times))} to ${formatNumber(Math.max(...entry.times))})`;
  const sdk = median(floor);
  const ratioLine = (entry: Candidate) => {
    const ratio = median(entry) / sdk;
    return `${entry.label}: ${timing(entry)}, ratio ${formatNumber(ratio, 3)} (target <= ${target}): ${verdict(ratio <= target, ratio - target, "")}`;
  };

  printSection("5. Cold start (import in a fresh node process)", [
    `median of ${runs} runs each, in alternating order, with the fastest and slowest run in brackets`,
    "each app figure imports functions/index.js, which also reads the settings, builds the broker and registers the functions; the floor only loads packages",
    `${floor.label} (${sdkPackages.join(", ")}): ${timing(floor)}`,
    `${floorWithIdentity.label}: ${timing(floorWithIdentity)}; the app needs @azure/identity for its managed identity credential, but the target stays against the floor above`,
    `${ratioLine(tsc)} (${relative(".", tscEntry)})`,
    `${ratioLine(bundle)} (${relative(".", bundleEntry)})`,
    ratioLine(bundleWithSourceMaps),
    describeShippedEntry(),
  ]);
}

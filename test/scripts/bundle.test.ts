import { execFile } from "node:child_process";
import {
  appendFileSync,
  cpSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
} from "node:fs";
import { createRequire, isBuiltin } from "node:module";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { refreshTimerName } from "../../functions/refreshTimer.js";
import { routes } from "../../functions/routes.js";
import {
  bundleFileName,
  bundleFunctionApp,
  defaultOutputDirectory,
  type BundleResult,
} from "../../scripts/bundle.js";

const run = promisify(execFile);
const repositoryRoot = fileURLToPath(new URL("../..", import.meta.url));
const library = createRequire(import.meta.url)(
  "@azure/functions/package.json",
) as { version: string };

/** Settings on loopback addresses only. Importing the bundle connects to none of them. */
const settings = {
  BROKER_CLIENT_ID: "6f1f4e2a-8c53-4d8e-9a57-2f0b5c1d3e47",
  BROKER_CLIENT_SECRET: "bundle-test-client-secret",
  BROKER_REDIRECT_URI: "http://localhost:7071/api/auth/callback",
  BROKER_AUTHORITY_HOST: "https://127.0.0.1:7073",
  TABLES_CONNECTION_STRING: "UseDevelopmentStorage=true",
  KEY_VAULT_URL: "http://127.0.0.1:7072",
  REFRESH_SCHEDULE: "0 7 */3 * * *",
};

const pageMarker = "<!-- copy in the bundle test's app folder -->";

/**
 * Builds a script that imports the bundle the way the Functions host's Node.js worker does. It
 * serves `@azure/functions-core` by intercepting `Module.prototype.require` and records every
 * registration, then calls the page handlers and prints one JSON line.
 */
function hostScript(bundleUrl: string): string {
  return `
import { createRequire } from "node:module";
const require = createRequire(import.meta.url);
const Module = require("node:module");
const { HttpRequest, InvocationContext } = require("@azure/functions");

const registered = [];
let programmingModel;
const coreApi = {
  version: "bundle-test",
  hostVersion: "bundle-test",
  setProgrammingModel(model) { programmingModel = model; },
  getProgrammingModel() { return programmingModel; },
  registerHook() { return { dispose() {} }; },
  registerFunction(metadata, callback) {
    registered.push({ metadata, callback });
    return { dispose() {} };
  },
};
const originalRequire = Module.prototype.require;
Module.prototype.require = function (id, ...rest) {
  return id === "@azure/functions-core" ? coreApi : originalRequire.call(this, id, ...rest);
};

await import(${JSON.stringify(bundleUrl)});

async function call(name, url, params) {
  const entry = registered.find((candidate) => candidate.metadata.name === name);
  const request = new HttpRequest({ method: "GET", url: "http://localhost:7071/" + url, params });
  const response = await entry.callback(request, new InvocationContext({ functionName: name }));
  return {
    status: response.status,
    contentType: response.headers?.["Content-Type"],
    body: response.body === undefined ? "" : Buffer.from(response.body).toString("utf8"),
  };
}

const result = {
  programmingModel: { name: programmingModel?.name, version: programmingModel?.version },
  functions: registered.map((entry) => entry.metadata),
  page: await call("page", "microsoft365_oauth.html", {}),
  pageScript: await call("pageAsset", "api/auth/assets/page.js", { name: "page.js" }),
  unknownAsset: await call("pageAsset", "api/auth/assets/index.js", { name: "index.js" }),
};
process.stdout.write("RESULT " + JSON.stringify(result) + "\\n");
`;
}

interface Binding {
  type: string;
  direction: string;
  route?: string;
  methods?: string[];
  authLevel?: string;
  schedule?: string;
  runOnStartup?: boolean;
  useMonitor?: boolean;
}

interface PageResult {
  status: number;
  contentType?: string;
  body: string;
}

interface HostResult {
  programmingModel: { name?: string; version?: string };
  functions: Array<{ name: string; bindings: Record<string, Binding> }>;
  page: PageResult;
  pageScript: PageResult;
  unknownAsset: PageResult;
}

let appFolder: string;
let bundle: BundleResult;
let host: HostResult;

/** Finds the trigger binding of one registered function. */
function triggerOf(name: string): Binding | undefined {
  const entry = host.functions.find((candidate) => candidate.name === name);
  return Object.values(entry?.bindings ?? {}).find((binding) =>
    binding.type.endsWith("Trigger"),
  );
}

beforeAll(async () => {
  // An app folder shaped like the deployment package: host.json, page/ and dist/ side by side.
  // It sits under .local/ so that node_modules of the repository is found from it.
  const localFolder = join(repositoryRoot, ".local");
  mkdirSync(localFolder, { recursive: true });
  appFolder = mkdtempSync(join(localFolder, "bundle-test-"));
  cpSync(join(repositoryRoot, "host.json"), join(appFolder, "host.json"));
  cpSync(join(repositoryRoot, "page"), join(appFolder, "page"), {
    recursive: true,
  });
  appendFileSync(
    join(appFolder, "page", "microsoft365_oauth.html"),
    pageMarker,
  );

  bundle = await bundleFunctionApp(join(appFolder, "dist"));

  const { stdout } = await run(
    process.execPath,
    [
      "--input-type=module",
      "-e",
      hostScript(pathToFileURL(bundle.outputFile).href),
    ],
    {
      cwd: appFolder,
      env: { PATH: process.env.PATH ?? "", ...settings },
      timeout: 20_000,
    },
  );
  const line = stdout.split("\n").find((text) => text.startsWith("RESULT "));
  if (line === undefined)
    throw new Error(`bundle host script printed no result: ${stdout}`);
  host = JSON.parse(line.slice("RESULT ".length)) as HostResult;
});

afterAll(() => {
  if (appFolder !== undefined)
    rmSync(appFolder, { recursive: true, force: true });
});

describe("bundle", () => {
  it("bundle registers every HTTP route", () => {
    for (const route of routes) {
      const trigger = triggerOf(route.name);
      expect(trigger?.type, route.name).toBe("httpTrigger");
      expect(trigger?.route, route.name).toBe(route.route);
      expect(trigger?.methods, route.name).toEqual(route.methods);
      expect(trigger?.authLevel, route.name).toBe(route.authLevel);
    }
  });

  it("bundle registers the refresh timer", () => {
    const trigger = triggerOf(refreshTimerName);

    expect(trigger?.type).toBe("timerTrigger");
    expect(trigger?.schedule).toBe(settings.REFRESH_SCHEDULE);
    expect(trigger?.runOnStartup).toBe(false);
    expect(trigger?.useMonitor).toBe(true);
  });

  it("bundle registers nothing else", () => {
    const names = host.functions.map((entry) => entry.name);

    expect(names.sort()).toEqual(
      [...routes.map((route) => route.name), refreshTimerName].sort(),
    );
  });

  it("bundle hands the host the pinned library", () => {
    expect(host.programmingModel.name).toBe("@azure/functions");
    expect(host.programmingModel.version).toBe(library.version);
  });

  it("bundle serves the page from its app folder", () => {
    expect(host.page.status).toBe(200);
    expect(host.page.contentType).toBe("text/html; charset=utf-8");
    expect(host.page.body.endsWith(pageMarker)).toBe(true);
  });

  it("bundle serves page assets", () => {
    const script = readFileSync(join(appFolder, "page", "page.js"), "utf8");

    expect(host.pageScript.status).toBe(200);
    expect(host.pageScript.contentType).toBe("text/javascript; charset=utf-8");
    expect(host.pageScript.body).toBe(script);
    expect(host.unknownAsset.status).toBe(404);
  });

  it("bundle imports only Node and host modules", () => {
    const output = Object.values(bundle.metafile.outputs).find(
      (entry) => entry.entryPoint === "functions/index.ts",
    );
    const external = [
      ...new Set(
        (output?.imports ?? [])
          .filter((entry) => entry.external)
          .map((entry) => entry.path),
      ),
    ];

    expect(external).toContain("@azure/functions-core");
    expect(
      external.filter(
        (path) => !isBuiltin(path) && path !== "@azure/functions-core",
      ),
    ).toEqual([]);
  });

  it("package.json main names the bundle", () => {
    const manifest = JSON.parse(
      readFileSync(join(repositoryRoot, "package.json"), "utf8"),
    ) as { main: string; scripts: Record<string, string> };

    expect(manifest.main).toBe(`${defaultOutputDirectory}/${bundleFileName}`);
    expect(manifest.scripts.build).toBe("tsx scripts/bundle.ts");
  });

  it("bundle maps a start-up error to the sources", async () => {
    const { BROKER_CLIENT_ID: _omitted, ...incomplete } = settings;
    const script = [
      `try { await import(${JSON.stringify(pathToFileURL(bundle.outputFile).href)}); }`,
      "catch (error) { process.stdout.write(error.stack); process.exit(0); }",
      'process.stdout.write("imported without error");',
    ].join("\n");

    const { stdout } = await run(
      process.execPath,
      ["--enable-source-maps", "--input-type=module", "-e", script],
      {
        cwd: appFolder,
        env: { PATH: process.env.PATH ?? "", ...incomplete },
        timeout: 20_000,
      },
    );

    expect(stdout).toContain("BROKER_CLIENT_ID");
    expect(stdout).toMatch(/shared\/config\.ts:\d+:\d+/);
    expect(stdout).not.toMatch(/dist\/index\.js:\d+/);
  });
});

import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { describe, expect, it } from "vitest";

const root = join(import.meta.dirname, "../..");

/** Reads the patterns of .funcignore: `dir/`, `*.ext`, `prefix*` or a file name. */
function readPatterns(): string[] {
  return readFileSync(join(root, ".funcignore"), "utf8")
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => line !== "" && !line.startsWith("#"));
}

/** True when a pattern leaves out the path, as a gitignore-style pattern without a slash would. */
function isLeftOut(path: string, patterns: string[]): boolean {
  const segments = path.split("/");
  const name = segments.at(-1) ?? "";
  return patterns.some((pattern) => {
    if (pattern.endsWith("/"))
      return segments.slice(0, -1).includes(pattern.slice(0, -1));
    if (pattern.startsWith("*")) return name.endsWith(pattern.slice(1));
    if (pattern.endsWith("*")) return name.startsWith(pattern.slice(0, -1));
    return name === pattern;
  });
}

/** Lists the files of the checkout that the package keeps, skipping left-out folders. */
function packagedFiles(patterns: string[]): string[] {
  const packaged: string[] = [];
  const walk = (folder: string) => {
    for (const entry of readdirSync(folder, { withFileTypes: true })) {
      const path = relative(root, join(folder, entry.name));
      if (entry.isDirectory()) {
        if (!isLeftOut(`${path}/x`, patterns)) walk(join(folder, entry.name));
      } else if (!isLeftOut(path, patterns)) {
        packaged.push(path);
      }
    }
  };
  walk(root);
  return packaged;
}

describe("deployment package", () => {
  const patterns = readPatterns();

  it("keeps only what the Functions host loads", () => {
    const unexpected = packagedFiles(patterns).filter(
      (path) =>
        path !== "host.json" &&
        path !== "package.json" &&
        !path.startsWith("dist/") &&
        !path.startsWith("page/"),
    );
    expect(unexpected).toEqual([]);
  });

  it("keeps the host configuration, the entry and the page", () => {
    for (const path of [
      "host.json",
      "package.json",
      "dist/index.js",
      "dist/index.js.map",
      "page/microsoft365_oauth.html",
      "page/page.js",
    ]) {
      expect(isLeftOut(path, patterns), path).toBe(false);
    }
  });

  it("leaves out local keys, settings, sources and packages", () => {
    for (const path of [
      ".local/tls/ca-key.pem",
      ".local/keyvault/secrets.json",
      "local.settings.json",
      "node_modules/@azure/functions/package.json",
      "shared/config.ts",
      "test/unit/config.test.ts",
      ".git/config",
      ".azure/dev/.env",
      ".env",
      ".env.local",
      ".vscode/settings.json",
      "npm-debug.log",
    ]) {
      expect(isLeftOut(path, patterns), path).toBe(true);
    }
  });

  it("azd builds locally, so the uploaded bundle is the tested one", () => {
    const azureYaml = readFileSync(join(root, "azure.yaml"), "utf8");
    expect(azureYaml).toMatch(/^\s+remoteBuild: false$/m);
    const manifest = JSON.parse(
      readFileSync(join(root, "package.json"), "utf8"),
    ) as { main: string };
    expect(manifest.main).toBe("dist/index.js");
  });
});

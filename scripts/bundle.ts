/**
 * `npm run build`: bundles the function app into one ES module, dist/index.js, the entry that
 * package.json `main` names for the Functions host. One file loads faster at cold start than the
 * tsc output, which imports some 800 files from node_modules (docs/performance.md, benchmark 5).
 */
import { rmSync } from "node:fs";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { build, type Metafile } from "esbuild";

const appRoot = fileURLToPath(new URL("..", import.meta.url));

/** Folder of the bundle, relative to the app root. package.json `main` is `dist/index.js`. */
export const defaultOutputDirectory = "dist";
export const bundleFileName = "index.js";

/**
 * The Functions host's Node.js worker provides this module at run time by intercepting
 * `Module.prototype.require`, and no npm package contains it. `@azure/functions` reaches the host
 * only through it, so the library itself can be bundled.
 */
const hostProvidedModules = ["@azure/functions-core"];

/**
 * CommonJS packages in the bundle call `require`, which an ES module lacks. The aliased import keeps
 * the name from clashing with a bundled package's own import of `createRequire`.
 */
const requireBanner = [
  'import { createRequire as createBundleRequire } from "node:module";',
  "const require = createBundleRequire(import.meta.url);",
].join("\n");

export interface BundleResult {
  outputFile: string;
  metafile: Metafile;
}

/**
 * Replaces `outputDirectory` with the bundle of functions/index.ts and its source map. The bundle
 * finds host.json and page/ by walking up from its own folder (shared/pages.ts), so it must sit
 * below the app root, as dist/ does in the deployment package.
 */
export async function bundleFunctionApp(
  outputDirectory: string,
): Promise<BundleResult> {
  rmSync(outputDirectory, { recursive: true, force: true });
  const outputFile = join(outputDirectory, bundleFileName);

  const result = await build({
    absWorkingDir: appRoot,
    entryPoints: ["functions/index.ts"],
    outfile: outputFile,
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node22",
    external: hostProvidedModules,
    banner: { js: requireBanner },
    // Stack traces need only the mappings, which `node --enable-source-maps` reads.
    sourcemap: "linked",
    sourcesContent: false,
    metafile: true,
    logLevel: "warning",
  });
  return { outputFile, metafile: result.metafile };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { outputFile } = await bundleFunctionApp(
    join(appRoot, defaultOutputDirectory),
  );
  process.stdout.write(`wrote ${relative(appRoot, outputFile)}\n`);
}

/**
 * `npm run bench`: runs every benchmark in order against the in-memory local stack and prints
 * their figures. Load goes only to servers this run starts on 127.0.0.1, for a few seconds each.
 */
import { spawn } from "node:child_process";
import { cpus, totalmem } from "node:os";
import { ensureLocalCertificateAuthority } from "../local/tls.js";
import { runColdPath } from "./coldPath.js";
import { runHandler } from "./handler.js";
import { runStartup } from "./startup.js";
import { runSweep } from "./sweep.js";
import { printSection, startBenchStack } from "./support.js";
import { runWarmHttp } from "./warmHttp.js";

const benchmarkNames = ["warm", "handler", "cold", "sweep", "startup"];

/** Node reads NODE_EXTRA_CA_CERTS only at start, so trusting the local CA takes a new process. */
function restartTrustingLocalCa(caPath: string): void {
  const child = spawn(
    process.execPath,
    [...process.execArgv, ...process.argv.slice(1)],
    { stdio: "inherit", env: { ...process.env, NODE_EXTRA_CA_CERTS: caPath } },
  );
  child.on("exit", (code) => process.exit(code ?? 1));
}

async function main(): Promise<void> {
  const ca = ensureLocalCertificateAuthority(".local/tls");
  if (process.env.NODE_EXTRA_CA_CERTS !== ca.certificatePath) {
    restartTrustingLocalCa(ca.certificatePath);
    return;
  }

  printSection("Machine", [
    `${cpus().length} CPUs (${cpus()[0]?.model ?? "unknown model"}), ${(totalmem() / 2 ** 30).toFixed(1)} GiB memory, Node ${process.version}`,
  ]);
  // `npm run bench -- sweep startup` runs only the benchmarks named.
  const chosen = process.argv.slice(2);
  const isChosen = (name: string) =>
    chosen.length === 0 || chosen.includes(name);
  const unknown = chosen.filter((name) => !benchmarkNames.includes(name));
  if (unknown.length > 0)
    throw new Error(
      `unknown benchmark ${unknown.join(", ")}; choose from ${benchmarkNames.join(", ")}`,
    );

  const stack = await startBenchStack();
  try {
    if (isChosen("warm")) await runWarmHttp(stack);
    if (isChosen("handler")) await runHandler(stack);
    if (isChosen("cold")) await runColdPath(stack);
    if (isChosen("sweep")) await runSweep(stack);
  } finally {
    await stack.stop();
  }
  if (isChosen("startup")) await runStartup();
}

main().catch((error: unknown) => {
  process.stderr.write(
    `benchmark failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
  );
  process.exitCode = 1;
});

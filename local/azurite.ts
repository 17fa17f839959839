/**
 * Azurite's Table service as a child process: in memory for tests, persisted under a folder for
 * `npm start` so a restart loses nothing.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createRequire } from "node:module";
import { connect, createServer, type AddressInfo } from "node:net";
import { dirname, join } from "node:path";

/** Azurite's well-known development account; it is public and works only against Azurite. */
const accountName = "devstoreaccount1";
const accountKey =
  "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

export interface AzuriteOptions {
  /** Absent: in memory. */
  location?: string;
  port?: number;
}

export interface AzuriteTables {
  connectionString: string;
  port: number;
  stop(): Promise<void>;
}

export async function startAzuriteTables(
  options: AzuriteOptions = {},
): Promise<AzuriteTables> {
  const port = options.port ?? (await findFreePort());
  const binary = join(
    dirname(createRequire(import.meta.url).resolve("azurite/package.json")),
    "dist/src/table/main.js",
  );
  const args = [
    binary,
    "--disableTelemetry",
    "--tableHost",
    "127.0.0.1",
    "--tablePort",
    String(port),
    "--silent",
  ];
  args.push(
    ...(options.location === undefined
      ? ["--inMemoryPersistence"]
      : ["--location", options.location]),
  );

  // Azurite saves its store only when it closes on SIGINT; SIGTERM or a second SIGINT ends it
  // without saving. Its own process group keeps a terminal's Ctrl+C from reaching it, so it gets
  // exactly one SIGINT, from stopChild.
  const child = spawn(process.execPath, args, {
    stdio: ["ignore", "ignore", "pipe"],
    detached: true,
  });
  // Azurite must not outlive the process that started it, even when that process exits early.
  const stopOnExit = () => child.kill("SIGINT");
  process.once("exit", stopOnExit);
  child.once("exit", () => process.off("exit", stopOnExit));

  let errors = "";
  child.stderr?.on("data", (chunk: Buffer) => {
    errors += chunk.toString();
  });

  try {
    await waitForPort(port, child);
  } catch (error) {
    child.kill();
    throw new Error(
      `Azurite did not start on port ${port}: ${errors.trim() || String(error)}`,
      { cause: error },
    );
  }

  return {
    port,
    connectionString:
      `DefaultEndpointsProtocol=http;AccountName=${accountName};AccountKey=${accountKey};` +
      `TableEndpoint=http://127.0.0.1:${port}/${accountName};`,
    stop: () => stopChild(child),
  };
}

export async function findFreePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

async function waitForPort(port: number, child: ChildProcess): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null)
      throw new Error(`exited with code ${child.exitCode}`);
    const open = await new Promise<boolean>((resolve) => {
      const socket = connect(port, "127.0.0.1");
      socket.once("connect", () => {
        socket.destroy();
        resolve(true);
      });
      socket.once("error", () => resolve(false));
    });
    if (open) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error("timed out");
}

/** Stops Azurite with SIGINT so it saves its store; kills it if it has not exited in 10 s. */
function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null)
    return Promise.resolve();
  return new Promise((resolve) => {
    const deadline = setTimeout(() => child.kill("SIGKILL"), 10_000);
    child.once("exit", () => {
      clearTimeout(deadline);
      resolve();
    });
    child.kill("SIGINT");
  });
}

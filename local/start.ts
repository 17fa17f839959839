/**
 * `npm start`: runs the broker on http://localhost:7071. `npm run stack` (`--stack-only`) starts
 * only the local stack, for `func start` with the settings of local.settings.example.json. Without settings of a real app
 * registration it also starts the local stack (Azurite, the Key Vault stand-in and the identity
 * platform stand-in), persisted under .local/ so a restart loses nothing. With them (from the
 * environment or local.settings.json) it uses Microsoft and Azure instead.
 */
import { spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import type { LogHandler } from "@azure/functions";
import { routes } from "../functions/routes.js";
import { createBroker } from "../shared/broker.js";
import { ConfigError, loadConfig } from "../shared/config.js";
import {
  createRefreshTimerHandler,
  refreshTimerName,
} from "../functions/refreshTimer.js";
import { startLocalHost } from "./host.js";
import { startLocalTimer } from "./timerHost.js";
import { localClient, startLocalStack, type LocalStack } from "./stack.js";
import { ensureLocalCertificateAuthority } from "./tls.js";

const hostPort = 7071;
const brokerOrigin = `http://localhost:${hostPort}`;
const stackPorts = { tables: 10002, keyVault: 7072, identity: 7073 };
const dataDir = resolve(".local/data");
const tlsDir = resolve(".local/tls");
const stackOnly = process.argv.includes("--stack-only");

function readLocalSettings(): Record<string, string> {
  const path = resolve("local.settings.json");
  if (!existsSync(path)) return {};
  const file = JSON.parse(readFileSync(path, "utf8")) as {
    Values?: Record<string, string>;
  };
  return file.Values ?? {};
}

/** Node reads NODE_EXTRA_CA_CERTS only at start, so trusting the local CA takes a new process. */
function restartTrustingLocalCa(caPath: string): void {
  const child = spawn(
    process.execPath,
    [...process.execArgv, ...process.argv.slice(1)],
    {
      stdio: "inherit",
      env: { ...process.env, NODE_EXTRA_CA_CERTS: caPath },
    },
  );
  for (const signal of ["SIGINT", "SIGTERM"] as const)
    process.on(signal, () => child.kill(signal));
  child.on("exit", (code) => process.exit(code ?? 1));
}

const printLog: LogHandler = (level, ...args) => {
  const [message, fields] = args;
  const suffix = fields === undefined ? "" : ` ${JSON.stringify(fields)}`;
  process.stdout.write(
    `${new Date().toISOString()} ${level} ${String(message)}${suffix}\n`,
  );
};

function printStack(stack: LocalStack): void {
  const lines = [
    `  Identity platform stand-in: ${stack.identity.url} (its certificate comes from ${tlsDir}/ca.pem, so a browser warns about it until you trust that file)`,
    `  Key Vault stand-in: ${stack.keyVault.url}`,
    `  Azurite Table service: http://127.0.0.1:${stack.tables.port}`,
    `  State is kept in ${dataDir}; delete it to start over.`,
  ];
  process.stdout.write(`${lines.join("\n")}\n`);
}

async function main(): Promise<void> {
  const settings: Record<string, string | undefined> = {
    ...readLocalSettings(),
    ...process.env,
  };
  // NOTE: the Microsoft and Azure path starts here but has only run against loopback addresses;
  // these machines reach no Microsoft or Azure host.
  const useAzure =
    settings.BROKER_CLIENT_ID !== undefined &&
    settings.BROKER_CLIENT_ID !== localClient.clientId;
  if (useAzure && stackOnly) {
    throw new Error(
      "--stack-only runs the stand-ins; unset the real app registration's settings",
    );
  }

  let stack: LocalStack | undefined;
  if (!useAzure) {
    const ca = ensureLocalCertificateAuthority(tlsDir);
    if (process.env.NODE_EXTRA_CA_CERTS !== ca.certificatePath) {
      restartTrustingLocalCa(ca.certificatePath);
      return;
    }
    stack = await startLocalStack({
      dataDir,
      tlsDir,
      brokerOrigin,
      ports: stackPorts,
    });
    Object.assign(settings, stack.settings);
  }

  if (stackOnly && stack !== undefined) {
    printStack(stack);
    process.stdout.write(
      `Start the function app with NODE_EXTRA_CA_CERTS=${tlsDir}/ca.pem. Press Ctrl+C to stop.\n`,
    );
    stopOnSignal(async () => stack?.stop());
    return;
  }

  let config;
  try {
    config = loadConfig(settings);
  } catch (error) {
    await stack?.stop();
    if (error instanceof ConfigError) {
      process.stderr.write(`${error.message}\n`);
      process.exit(1);
    }
    throw error;
  }

  const broker = createBroker(config);
  const host = await startLocalHost({
    broker,
    routes,
    port: hostPort,
    logHandler: printLog,
  });

  process.stdout.write(
    `Broker running at ${host.url}\n  Sign-in page: ${host.url}/microsoft365_oauth.html\n`,
  );
  if (stack === undefined) {
    process.stdout.write(
      "  Using Microsoft and Azure with the configured settings.\n",
    );
  } else {
    printStack(stack);
  }

  const timer = startLocalTimer({
    name: refreshTimerName,
    schedule: config.refresh.schedule,
    handler: createRefreshTimerHandler(broker),
    logHandler: printLog,
  });
  process.stdout.write(`  Refresh timer: ${config.refresh.schedule} (UTC)\n`);
  process.stdout.write("Press Ctrl+C to stop.\n");

  stopOnSignal(async () => {
    timer.stop();
    await host.close();
    await stack?.stop();
  });
}

/**
 * Stops on the first SIGINT or SIGTERM and ignores repeats: Ctrl+C reaches this process both from
 * the terminal and through the launcher that restarted it, and a second signal must not cut the
 * shutdown short, which would leave Azurite running without saving.
 */
function stopOnSignal(stop: () => Promise<void>): void {
  let stopping = false;
  const handle = () => {
    if (stopping) return;
    stopping = true;
    void stop().finally(() => {
      process.stdout.write("Stopped.\n");
      process.exit(0);
    });
  };
  process.on("SIGINT", handle);
  process.on("SIGTERM", handle);
}

try {
  await main();
} catch (error) {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === "EADDRINUSE") {
    const port = (error as NodeJS.ErrnoException & { port?: number }).port;
    process.stderr.write(
      `Port ${port ?? "of the broker or a stand-in"} is already in use: another broker may be running. Stop it and run npm start again.\n`,
    );
    process.exit(1);
  }
  throw error;
}

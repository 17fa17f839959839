// Local stand-in for the Azure Key Vault secrets REST API, for SecretClient with
// `allowInsecureConnection: true` and `disableChallengeResourceVerification: true`.
// It listens on 127.0.0.1 only and contacts no other address.

import { createServer } from "node:http";
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import { setTimeout as delay } from "node:timers/promises";

import { RequestControls } from "./control.js";
import type { KeyVaultControl } from "./control.js";
import { controlPathPrefix, replyToControlRequest } from "./controlHttp.js";
import { readBody, sendReply } from "./http.js";
import { SnapshotFile } from "./persistence.js";
import { SecretStore } from "./store.js";
import { replyToVaultRequest } from "./vaultHandler.js";
import type { VaultContext } from "./vaultHandler.js";

export type {
  KeyVaultControl,
  KeyVaultFault,
  KeyVaultOperation,
} from "./control.js";
export { keyVaultOperations } from "./control.js";
export { challengeHeader, challengeTenantId } from "./vaultHandler.js";

export interface KeyVaultStandInOptions {
  /** Port on 127.0.0.1. With 0 or none, the system picks a free port. */
  port?: number;
  /**
   * Directory for the state file, which is rewritten atomically on every change and loaded
   * on start. Absent keeps the state in memory only, and nothing touches the disk.
   */
  dataDir?: string;
}

export interface KeyVaultStandIn {
  /** Vault URL for SecretClient, `http://127.0.0.1:PORT` without a trailing slash. */
  url: string;
  control: KeyVaultControl;
  /** Waits for requests in progress and pending writes, then stops the server. Safe to call twice. */
  close(): Promise<void>;
}

function listen(server: Server, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", () => {
      server.off("error", reject);
      const address = server.address();
      if (address === null || typeof address === "string") {
        reject(new Error("Key Vault stand-in did not get a TCP port"));
        return;
      }
      resolve(address.port);
    });
  });
}

async function handleRequest(
  context: VaultContext,
  request: IncomingMessage,
  response: ServerResponse,
): Promise<void> {
  const body = await readBody(request);
  const pathname = new URL(request.url ?? "/", context.vaultUrl).pathname;
  if (pathname.startsWith(controlPathPrefix)) {
    const method = request.method ?? "GET";
    sendReply(
      request,
      response,
      replyToControlRequest(context.controls, method, pathname, body),
    );
    return;
  }

  const latencyMs = context.controls.latencyMs;
  if (latencyMs > 0) {
    await delay(latencyMs);
  }
  sendReply(
    request,
    response,
    await replyToVaultRequest(context, request, body),
  );
}

/** Starts the stand-in and resolves once it accepts connections. */
export async function startKeyVaultStandIn(
  options: KeyVaultStandInOptions = {},
): Promise<KeyVaultStandIn> {
  const snapshotFile =
    options.dataDir === undefined
      ? undefined
      : await SnapshotFile.open(options.dataDir);
  const controls = new RequestControls();
  const context: VaultContext = {
    store: new SecretStore(await snapshotFile?.load()),
    controls,
    vaultUrl: "",
    snapshotFile,
  };

  const inFlight = new Set<Promise<void>>();
  const server = createServer((request, response) => {
    const handling = handleRequest(context, request, response).catch(
      (error: unknown) => {
        console.error("Key Vault stand-in failed to handle a request", {
          url: request.url,
          error,
        });
        response.destroy();
      },
    );
    inFlight.add(handling);
    void handling.finally(() => inFlight.delete(handling));
  });

  const port = await listen(server, options.port ?? 0);
  context.vaultUrl = `http://127.0.0.1:${port}`;

  async function stop(): Promise<void> {
    const closed = new Promise<void>((resolve, reject) => {
      server.close((error) =>
        error === undefined ? resolve() : reject(error),
      );
    });
    server.closeIdleConnections();
    await Promise.allSettled([...inFlight]);
    server.closeAllConnections();
    await closed;
    await snapshotFile?.flush();
  }

  let stopping: Promise<void> | undefined;
  const close = (): Promise<void> => {
    stopping ??= stop();
    return stopping;
  };
  return { url: context.vaultUrl, control: controls, close };
}

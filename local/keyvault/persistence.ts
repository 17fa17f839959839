import { randomBytes } from "node:crypto";
import { mkdir, open, readFile, rename, rm } from "node:fs/promises";
import path from "node:path";

import { z } from "zod";

import type { VaultSnapshot } from "./store.js";

/** Name of the state file inside the data directory. */
export const snapshotFileName = "keyvault-secrets.json";

const versionSchema = z.object({
  version: z.string().regex(/^[0-9a-f]{32}$/),
  value: z.string(),
  contentType: z.string().optional(),
  tags: z.record(z.string(), z.string()).optional(),
  enabled: z.boolean(),
  notBefore: z.number().int().optional(),
  expires: z.number().int().optional(),
  created: z.number().int(),
  updated: z.number().int(),
});

const snapshotSchema = z.object({
  secrets: z.array(
    z
      .object({
        name: z.string().regex(/^[0-9a-zA-Z-]{1,127}$/),
        versions: z.array(versionSchema).min(1),
        deletedDate: z.number().int().optional(),
        scheduledPurgeDate: z.number().int().optional(),
      })
      .refine(
        (secret) =>
          (secret.deletedDate === undefined) ===
          (secret.scheduledPurgeDate === undefined),
        {
          message:
            "deletedDate and scheduledPurgeDate must be both present or both absent",
        },
      ),
  ),
});

/**
 * The vault state as one JSON file in a data directory. Every save writes a temporary file,
 * flushes it to disk and renames it over the old file, so a reader never sees a partial file.
 * The file contains secret values in plain text and is created readable by its owner only.
 */
export class SnapshotFile {
  readonly filePath: string;
  #queue: Promise<void> = Promise.resolve();

  private constructor(filePath: string) {
    this.filePath = filePath;
  }

  static async open(dataDir: string): Promise<SnapshotFile> {
    await mkdir(dataDir, { recursive: true });
    return new SnapshotFile(path.join(dataDir, snapshotFileName));
  }

  /** Reads the saved state, or returns undefined when no state was saved yet. */
  async load(): Promise<VaultSnapshot | undefined> {
    let text: string;
    try {
      text = await readFile(this.filePath, "utf8");
    } catch (error) {
      if (
        error instanceof Error &&
        "code" in error &&
        error.code === "ENOENT"
      ) {
        return undefined;
      }
      throw error;
    }

    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (error) {
      throw new Error(
        `Invalid Key Vault stand-in state in ${this.filePath}: not valid JSON`,
        {
          cause: error,
        },
      );
    }

    const result = snapshotSchema.safeParse(parsed);
    if (!result.success) {
      throw new Error(
        `Invalid Key Vault stand-in state in ${this.filePath}: ${z.prettifyError(result.error)}`,
      );
    }
    return result.data;
  }

  /** Saves `snapshot` after the saves queued before it, so the newest state is written last. */
  save(snapshot: VaultSnapshot): Promise<void> {
    const write = this.#queue.then(() => this.#write(snapshot));
    this.#queue = write.catch(() => undefined);
    return write;
  }

  /** Waits until every queued save has finished. */
  async flush(): Promise<void> {
    await this.#queue;
  }

  async #write(snapshot: VaultSnapshot): Promise<void> {
    const temporaryPath = `${this.filePath}.${randomBytes(6).toString("hex")}.tmp`;
    try {
      const file = await open(temporaryPath, "w", 0o600);
      try {
        await file.writeFile(`${JSON.stringify(snapshot, null, 2)}\n`, "utf8");
        await file.sync();
      } finally {
        await file.close();
      }
      await rename(temporaryPath, this.filePath);
    } catch (error) {
      await rm(temporaryPath, { force: true });
      throw error;
    }
  }
}

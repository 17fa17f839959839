import { accessSync, constants } from "node:fs";

/**
 * Checks that an external program exists and is executable.
 *
 * Returns false when it is missing so the caller can skip its tests, except on
 * CI (`CI=true`), where a skipped test would hide a broken setup: there it
 * throws an error that names the Debian package to install.
 */
export function requireTool(path: string, debianPackage: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    // Missing or not executable: handled below.
  }

  const onCi = ["true", "1"].includes((process.env.CI ?? "").toLowerCase());
  if (onCi) {
    throw new Error(
      `${path} not found or not executable. Install it with: apt-get install ${debianPackage}`,
    );
  }
  return false;
}

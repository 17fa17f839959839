import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";
import { ensureLocalCertificateAuthority } from "./local/tls.js";

// The HTTPS stand-ins use certificates from this local CA. Node reads
// NODE_EXTRA_CA_CERTS only when a process starts, so it is set here, before Vitest
// forks its workers, which inherit process.env. Worker threads would share this
// process's certificate store, loaded before the variable existed, so the pool must
// stay "forks".
// NOTE: this replaces any NODE_EXTRA_CA_CERTS set outside Vitest.
const certificateAuthority = ensureLocalCertificateAuthority(
  fileURLToPath(new URL(".local/tls", import.meta.url)),
);
process.env.NODE_EXTRA_CA_CERTS = certificateAuthority.certificatePath;

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: "forks",
  },
});

import { describe, expect, it } from "vitest";
import { loadConfig } from "../../shared/config.js";
import { authorityHostOf } from "../../shared/identityClient.js";

const config = loadConfig({
  BROKER_CLIENT_ID: "6f1f4e2a-8c53-4d8e-9a57-2f0b5c1d3e47",
  BROKER_CLIENT_SECRET: "secret",
  BROKER_REDIRECT_URI: "https://broker.example/api/auth/callback",
  BROKER_AUTHORITY_HOST: "https://127.0.0.1:7073",
  TABLES_ENDPOINT: "https://account.table.core.windows.net",
  KEY_VAULT_URL: "https://vault.vault.azure.net",
});

describe("identity client authority", () => {
  it("grant of the deployment's cloud uses the configured host", () => {
    expect(authorityHostOf(config, "public")).toBe("https://127.0.0.1:7073");
  });

  it("grant of another cloud keeps that cloud's host", () => {
    expect(authorityHostOf(config, "usgov")).toBe(
      "https://login.microsoftonline.us",
    );
  });

  it("grant of an unknown cloud uses the configured host", () => {
    expect(authorityHostOf(config, "mooncake")).toBe("https://127.0.0.1:7073");
  });
});

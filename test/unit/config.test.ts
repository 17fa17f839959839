import { describe, expect, it } from "vitest";

import {
  ConfigError,
  loadConfig,
  settingNames,
  type BrokerConfig,
} from "../../shared/config.js";

const clientId = "6731de76-14a6-49ae-97bc-6eba6914391e";

const validEnvironment: Record<string, string> = {
  BROKER_CLIENT_ID: clientId,
  BROKER_CLIENT_SECRET: "client-secret-value",
  BROKER_REDIRECT_URI: "https://broker.example/api/auth/callback",
  TABLES_ENDPOINT: "https://acct.table.core.windows.net",
  KEY_VAULT_URL: "https://vault.vault.azure.net",
};

const requiredSettings = [
  "BROKER_CLIENT_ID",
  "BROKER_CLIENT_SECRET",
  "BROKER_REDIRECT_URI",
  "KEY_VAULT_URL",
  "TABLES_ENDPOINT",
];

const publicScopes = [
  "https://outlook.office.com/IMAP.AccessAsUser.All",
  "https://outlook.office.com/SMTP.Send",
];

const usGovScopes = [
  "https://outlook.office365.us/IMAP.AccessAsUser.All",
  "https://outlook.office365.us/SMTP.Send",
];

function load(overrides: Record<string, string | undefined>): BrokerConfig {
  return loadConfig({ ...validEnvironment, ...overrides });
}

/** Runs loadConfig and returns the problems of the ConfigError it throws. Any other error fails the test. */
function captureProblems(env: Record<string, string | undefined>): string[] {
  try {
    loadConfig(env);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).problems;
  }
  throw new Error("Expected loadConfig to throw a ConfigError, but it passed");
}

function problemsWith(overrides: Record<string, string | undefined>): string[] {
  return captureProblems({ ...validEnvironment, ...overrides });
}

function namesSetting(problems: string[], name: string): boolean {
  return problems.some((problem) => problem.includes(name));
}

describe("loadConfig", () => {
  it("config parses a complete environment", () => {
    const config = loadConfig(validEnvironment);

    expect(config.clientId).toBe(clientId);
    expect(config.clientCredential).toEqual({
      kind: "secret",
      secret: "client-secret-value",
    });
    expect(config.managedIdentityClientId).toBeUndefined();
    expect(config.redirectUri).toBe("https://broker.example/api/auth/callback");
    expect(config.tables).toEqual({
      endpoint: "https://acct.table.core.windows.net",
    });
    expect(config.keyVaultUrl).toBe("https://vault.vault.azure.net");
  });

  it("config applies defaults", () => {
    const config = loadConfig(validEnvironment);

    expect(config.cloud.name).toBe("public");
    expect(config.authorityHost).toBe("https://login.microsoftonline.com");
    expect(config.signInTenant).toBe("organizations");
    expect(config.siteAllowlist).toEqual({
      suffixes: ["equisonline.com"],
      hosts: [],
    });
    expect(config.tableNamePrefix).toBe("broker");
    expect(config.signInTimeoutMinutes).toBe(10);
    expect(config.mailScopes).toEqual(publicScopes);
  });

  it("config drops trailing slashes from service URLs", () => {
    const config = load({
      TABLES_ENDPOINT: "https://acct.table.core.windows.net/",
      KEY_VAULT_URL: "https://vault.vault.azure.net/",
    });

    expect(config.tables).toEqual({
      endpoint: "https://acct.table.core.windows.net",
    });
    expect(config.keyVaultUrl).toBe("https://vault.vault.azure.net");
  });

  it("config names every missing setting at once", () => {
    const problems = captureProblems({});

    for (const name of requiredSettings) {
      expect(namesSetting(problems, name), name).toBe(true);
    }
  });

  it("config reports a missing setting as missing", () => {
    const problems = captureProblems({});

    expect(problems).toContain("BROKER_CLIENT_ID is missing");
    expect(problems).toContain("KEY_VAULT_URL is missing");
  });

  it("config names several invalid settings at once", () => {
    const problems = problemsWith({
      BROKER_CLIENT_ID: "not-a-guid",
      BROKER_CLOUD: "mars",
      TABLE_NAME_PREFIX: "1broker",
      SIGNIN_TIMEOUT_MINUTES: "500",
      BROKER_SIGNIN_TENANT: "not a tenant",
    });

    expect(namesSetting(problems, "BROKER_CLIENT_ID")).toBe(true);
    expect(namesSetting(problems, "BROKER_CLOUD")).toBe(true);
    expect(namesSetting(problems, "TABLE_NAME_PREFIX")).toBe(true);
    expect(namesSetting(problems, "SIGNIN_TIMEOUT_MINUTES")).toBe(true);
    expect(namesSetting(problems, "BROKER_SIGNIN_TENANT")).toBe(true);
  });

  it("config rejects a Key Vault reference left unresolved", () => {
    const reference =
      "@Microsoft.KeyVault(VaultName=kv-broker;SecretName=notify-webhook-secret)";
    const problems = problemsWith({
      NOTIFY_WEBHOOK_URL: "https://hooks.example.com/broker",
      NOTIFY_WEBHOOK_SECRET: reference,
    });

    expect(problems).toEqual([
      expect.stringMatching(
        /^NOTIFY_WEBHOOK_SECRET is a Key Vault reference that the Function App could not resolve/,
      ),
    ]);
    expect(problems.join("\n")).not.toContain("notify-webhook-secret");
  });

  it.each([
    ["garbage", "must be Name=value pairs"],
    [
      "AccountName=devstoreaccount1",
      "lacks AccountKey or SharedAccessSignature",
    ],
    [
      "AccountKey=abc;TableEndpoint=http://127.0.0.1:10002/x",
      "lacks AccountName",
    ],
    [
      "AccountName=a;AccountKey=abc;TableEndpoint=not a url",
      "has a TableEndpoint that is not an absolute URL",
    ],
  ])("config rejects the connection string %s", (text, message) => {
    const problems = problemsWith({
      TABLES_ENDPOINT: undefined,
      TABLES_CONNECTION_STRING: text,
    });
    expect(problems).toEqual([
      expect.stringContaining(`TABLES_CONNECTION_STRING ${message}`),
    ]);
  });

  it("config accepts emulator and account connection strings", () => {
    for (const text of [
      "UseDevelopmentStorage=true",
      "DefaultEndpointsProtocol=https;AccountName=a;AccountKey=abc==;EndpointSuffix=core.windows.net",
      "AccountName=a;SharedAccessSignature=sv=2024&sig=x;TableEndpoint=https://a.table.core.windows.net",
    ]) {
      const config = load({
        TABLES_ENDPOINT: undefined,
        TABLES_CONNECTION_STRING: text,
      });
      expect(config.tables).toEqual({ connectionString: text });
    }
  });

  it("config rejects a redirect URI with a query or fragment", () => {
    for (const uri of [
      "https://broker.example.com/api/auth/callback?x=1",
      "https://broker.example.com/api/auth/callback#top",
    ]) {
      expect(problemsWith({ BROKER_REDIRECT_URI: uri })).toEqual([
        expect.stringMatching(
          /^BROKER_REDIRECT_URI must have no query string or fragment/,
        ),
      ]);
    }
  });

  it("config reports an invalid table setting once", () => {
    const problems = problemsWith({
      TABLES_ENDPOINT:
        "@Microsoft.KeyVault(VaultName=kv-broker;SecretName=tables-endpoint)",
    });
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/^TABLES_ENDPOINT is a Key Vault reference/);
  });

  it("config names each service URL that is not a URL", () => {
    const problems = problemsWith({
      KEY_VAULT_URL: "not a url",
      TABLES_ENDPOINT: "not a url",
      BROKER_REDIRECT_URI: "not a url",
      BROKER_AUTHORITY_HOST: "not a url",
    });

    expect(namesSetting(problems, "KEY_VAULT_URL")).toBe(true);
    expect(namesSetting(problems, "TABLES_ENDPOINT")).toBe(true);
    expect(namesSetting(problems, "BROKER_REDIRECT_URI")).toBe(true);
    expect(namesSetting(problems, "BROKER_AUTHORITY_HOST")).toBe(true);
  });

  it.each([
    "KEY_VAULT_URL",
    "TABLES_ENDPOINT",
    "BROKER_REDIRECT_URI",
    "BROKER_AUTHORITY_HOST",
  ])("config rejects %s that is not a URL", (name) => {
    const problems = problemsWith({ [name]: "not a url" });

    expect(namesSetting(problems, name)).toBe(true);
  });

  it("config allows http for localhost service URLs", () => {
    const config = load({
      TABLES_ENDPOINT: "http://127.0.0.1:10002/devstoreaccount1",
      KEY_VAULT_URL: "http://localhost:8443",
      BROKER_REDIRECT_URI: "http://localhost:7071/api/auth/callback",
    });

    expect(config.tables).toEqual({
      endpoint: "http://127.0.0.1:10002/devstoreaccount1",
    });
    expect(config.keyVaultUrl).toBe("http://localhost:8443");
    expect(config.redirectUri).toBe("http://localhost:7071/api/auth/callback");
  });

  it("config rejects http for other service URLs", () => {
    const problems = problemsWith({
      TABLES_ENDPOINT: "http://acct.table.core.windows.net",
      KEY_VAULT_URL: "http://vault.vault.azure.net",
      BROKER_REDIRECT_URI: "http://broker.example/api/auth/callback",
    });

    expect(namesSetting(problems, "TABLES_ENDPOINT")).toBe(true);
    expect(namesSetting(problems, "KEY_VAULT_URL")).toBe(true);
    expect(namesSetting(problems, "BROKER_REDIRECT_URI")).toBe(true);
  });

  it("config rejects a redirect URI with another path", () => {
    for (const uri of [
      "https://broker.example/callback",
      "https://broker.example/api/auth/callback/extra",
      "https://broker.example/",
    ]) {
      const problems = problemsWith({ BROKER_REDIRECT_URI: uri });
      expect(namesSetting(problems, "BROKER_REDIRECT_URI"), uri).toBe(true);
    }
  });

  it("config rejects both table settings", () => {
    const problems = problemsWith({
      TABLES_CONNECTION_STRING: "UseDevelopmentStorage=true",
    });

    expect(namesSetting(problems, "TABLES_CONNECTION_STRING")).toBe(true);
    expect(namesSetting(problems, "TABLES_ENDPOINT")).toBe(true);
  });

  it("config accepts a connection string alone", () => {
    const config = load({
      TABLES_ENDPOINT: undefined,
      TABLES_CONNECTION_STRING: "UseDevelopmentStorage=true",
    });

    expect(config.tables).toEqual({
      connectionString: "UseDevelopmentStorage=true",
    });
  });

  it("config accepts the exact default scopes", () => {
    const config = load({ BROKER_MAIL_SCOPES: publicScopes.join(" ") });

    expect(config.mailScopes).toEqual(publicScopes);
  });

  it("config rejects Graph mail scopes", () => {
    const problems = problemsWith({
      BROKER_MAIL_SCOPES:
        "https://graph.microsoft.com/IMAP.AccessAsUser.All https://graph.microsoft.com/SMTP.Send",
    });

    expect(namesSetting(problems, "BROKER_MAIL_SCOPES")).toBe(true);
  });

  it("config rejects mail scopes with no resource", () => {
    const problems = problemsWith({
      BROKER_MAIL_SCOPES: "IMAP.AccessAsUser.All SMTP.Send",
    });

    expect(namesSetting(problems, "BROKER_MAIL_SCOPES")).toBe(true);
  });

  it("config rejects an extra mail scope", () => {
    const problems = problemsWith({
      BROKER_MAIL_SCOPES: `${publicScopes.join(" ")} User.Read`,
    });

    expect(namesSetting(problems, "BROKER_MAIL_SCOPES")).toBe(true);
  });

  it("config rejects scopes missing SMTP.Send", () => {
    const problems = problemsWith({
      BROKER_MAIL_SCOPES: "https://outlook.office.com/IMAP.AccessAsUser.All",
    });

    expect(namesSetting(problems, "BROKER_MAIL_SCOPES")).toBe(true);
  });

  it("config selects US Government hosts for usgov", () => {
    const config = load({ BROKER_CLOUD: "usgov" });

    expect(config.cloud.name).toBe("usgov");
    expect(config.authorityHost).toBe("https://login.microsoftonline.us");
    expect(config.cloud.outlookResource).toBe("https://outlook.office365.us");
    expect(config.cloud.imap.host).toBe("outlook.office365.us");
    expect(config.cloud.smtp.host).toBe("smtp.office365.us");
    expect(config.mailScopes).toEqual(usGovScopes);
  });

  it("config accepts US Government scopes for usgov", () => {
    const config = load({
      BROKER_CLOUD: "usgov",
      BROKER_MAIL_SCOPES: usGovScopes.join(" "),
    });

    expect(config.mailScopes).toEqual(usGovScopes);
  });

  it("config rejects public scopes for usgov", () => {
    const problems = problemsWith({
      BROKER_CLOUD: "usgov",
      BROKER_MAIL_SCOPES: publicScopes.join(" "),
    });

    expect(namesSetting(problems, "BROKER_MAIL_SCOPES")).toBe(true);
  });

  it("config rejects public authority for usgov", () => {
    const problems = problemsWith({
      BROKER_CLOUD: "usgov",
      BROKER_AUTHORITY_HOST: "https://login.microsoftonline.com",
    });

    expect(namesSetting(problems, "BROKER_AUTHORITY_HOST")).toBe(true);
  });

  it("config accepts a local authority host over https", () => {
    const config = load({ BROKER_AUTHORITY_HOST: "https://localhost:8444/" });

    expect(config.authorityHost).toBe("https://localhost:8444");
  });

  it("config rejects an authority host over http", () => {
    for (const host of ["http://login.example", "http://localhost:8444"]) {
      const problems = problemsWith({ BROKER_AUTHORITY_HOST: host });
      expect(namesSetting(problems, "BROKER_AUTHORITY_HOST"), host).toBe(true);
    }
  });

  it("config names a bad allowlist entry", () => {
    const problems = problemsWith({
      SITE_ALLOWLIST: "*.equisonline.com, bad_host!, mysite.example",
    });

    const allowlistProblems = problems.filter((problem) =>
      problem.includes("SITE_ALLOWLIST"),
    );
    expect(allowlistProblems).toHaveLength(1);
    expect(allowlistProblems[0]).toContain("bad_host!");
    expect(allowlistProblems[0]).not.toContain("mysite.example");
  });

  it("config rejects an empty allowlist", () => {
    const problems = problemsWith({ SITE_ALLOWLIST: " , " });

    expect(namesSetting(problems, "SITE_ALLOWLIST")).toBe(true);
  });

  it("settingNames lists every schema key", () => {
    expect([...settingNames].sort()).toEqual(
      [
        "BROKER_CLIENT_ID",
        "BROKER_CLIENT_CREDENTIAL",
        "BROKER_CLIENT_SECRET",
        "BROKER_CLIENT_CERTIFICATE_NAME",
        "MANAGED_IDENTITY_CLIENT_ID",
        "BROKER_REDIRECT_URI",
        "BROKER_CLOUD",
        "BROKER_SIGNIN_TENANT",
        "BROKER_AUTHORITY_HOST",
        "BROKER_MAIL_SCOPES",
        "SITE_ALLOWLIST",
        "TABLES_CONNECTION_STRING",
        "TABLES_ENDPOINT",
        "TABLE_NAME_PREFIX",
        "KEY_VAULT_URL",
        "SIGNIN_TIMEOUT_MINUTES",
        "REFRESH_SCHEDULE",
        "REFRESH_AFTER_HOURS",
        "IDENTITY_TIMEOUT_SECONDS",
        "MIN_TOKEN_LIFETIME_MINUTES",
        "TOKEN_CACHE_SIZE",
        "GRANT_CACHE_SECONDS",
        "FAILED_ATTEMPTS_PER_ADDRESS",
        "FAILED_ATTEMPTS_PER_GRANT",
        "FAILED_ATTEMPTS_WINDOW_SECONDS",
        "MAX_REFRESHES_PER_GRANT_PER_MINUTE",
        "REFRESH_CONCURRENCY",
        "DEGRADED_AFTER_DAYS",
        "NOTIFY_WEBHOOK_URL",
        "NOTIFY_WEBHOOK_SECRET",
      ].sort(),
    );
  });

  it("config reads the refresh settings with their defaults", () => {
    const config = load({});
    expect(config.refresh).toEqual({
      schedule: "0 */15 * * * *",
      afterHours: 24,
      concurrency: 8,
      degradedAfterDays: 3,
    });
    expect(config.webhook).toBeUndefined();
  });

  it("config rejects a schedule that is not six fields", () => {
    const problems = problemsWith({ REFRESH_SCHEDULE: "*/15 * * * *" });
    expect(
      problems.some((problem) => problem.startsWith("REFRESH_SCHEDULE")),
    ).toBe(true);
  });

  it("config needs both webhook settings", () => {
    const onlyUrl = problemsWith({
      NOTIFY_WEBHOOK_URL: "https://hooks.example/broker",
    });
    const shortSecret = problemsWith({
      NOTIFY_WEBHOOK_URL: "https://hooks.example/broker",
      NOTIFY_WEBHOOK_SECRET: "short",
    });

    expect(
      onlyUrl.some((problem) => problem.includes("NOTIFY_WEBHOOK_SECRET")),
    ).toBe(true);
    expect(
      shortSecret.some((problem) =>
        problem.startsWith("NOTIFY_WEBHOOK_SECRET"),
      ),
    ).toBe(true);
  });
});

describe("loadConfig client credential", () => {
  const withoutSecret = { BROKER_CLIENT_SECRET: undefined };
  const managedIdentityClientId = "0d6f2c4e-8a1b-4c3d-9e5f-7a9b1c3d5e7f";

  it("config defaults to the secret credential", () => {
    const config = load({});

    expect(config.clientCredential).toEqual({
      kind: "secret",
      secret: "client-secret-value",
    });
  });

  it("config keeps a secret byte for byte", () => {
    const config = load({ BROKER_CLIENT_SECRET: " a~secret " });

    expect(config.clientCredential).toEqual({
      kind: "secret",
      secret: " a~secret ",
    });
  });

  it("config reads the credential kind case-insensitively", () => {
    const config = load({
      ...withoutSecret,
      BROKER_CLIENT_CREDENTIAL: " Federated ",
    });

    expect(config.clientCredential).toEqual({ kind: "federated" });
  });

  it("config takes an empty credential kind as the default", () => {
    const config = load({ BROKER_CLIENT_CREDENTIAL: "" });

    expect(config.clientCredential.kind).toBe("secret");
  });

  it("config requires the secret for the secret credential", () => {
    for (const credential of [undefined, "secret"]) {
      const problems = problemsWith({
        ...withoutSecret,
        BROKER_CLIENT_CREDENTIAL: credential,
      });

      expect(problems).toHaveLength(1);
      expect(problems[0]).toMatch(/^BROKER_CLIENT_SECRET is missing/);
      expect(problems[0]).toContain("federated or certificate");
    }
  });

  it("config rejects a certificate name for the secret credential", () => {
    const problems = problemsWith({
      BROKER_CLIENT_CERTIFICATE_NAME: "broker-client",
    });

    expect(problems).toHaveLength(1);
    expect(problems[0]).toContain("remove BROKER_CLIENT_CERTIFICATE_NAME");
  });

  it("config reads the federated credential", () => {
    const config = load({
      ...withoutSecret,
      BROKER_CLIENT_CREDENTIAL: "federated",
      MANAGED_IDENTITY_CLIENT_ID: managedIdentityClientId,
    });

    expect(config.clientCredential).toEqual({ kind: "federated" });
    expect(config.managedIdentityClientId).toBe(managedIdentityClientId);
  });

  it("config rejects a secret for the federated credential", () => {
    const problems = problemsWith({ BROKER_CLIENT_CREDENTIAL: "federated" });

    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/^BROKER_CLIENT_SECRET is set/);
    expect(problems[0]).toContain("remove BROKER_CLIENT_SECRET");
  });

  it("config rejects a certificate name for the federated credential", () => {
    const problems = problemsWith({
      ...withoutSecret,
      BROKER_CLIENT_CREDENTIAL: "federated",
      BROKER_CLIENT_CERTIFICATE_NAME: "broker-client",
    });

    expect(problems).toHaveLength(1);
    expect(problems[0]).toContain("remove BROKER_CLIENT_CERTIFICATE_NAME");
  });

  it("config reads the certificate credential", () => {
    const config = load({
      ...withoutSecret,
      BROKER_CLIENT_CREDENTIAL: "certificate",
      BROKER_CLIENT_CERTIFICATE_NAME: " broker-client-2027 ",
    });

    expect(config.clientCredential).toEqual({
      kind: "certificate",
      certificateName: "broker-client-2027",
    });
  });

  it("config requires the name for the certificate credential", () => {
    const problems = problemsWith({
      ...withoutSecret,
      BROKER_CLIENT_CREDENTIAL: "certificate",
    });

    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/^BROKER_CLIENT_CERTIFICATE_NAME is missing/);
    expect(problems[0]).toContain("KEY_VAULT_URL");
  });

  it("config rejects a secret for the certificate credential", () => {
    const problems = problemsWith({
      BROKER_CLIENT_CREDENTIAL: "certificate",
      BROKER_CLIENT_CERTIFICATE_NAME: "broker-client",
    });

    expect(problems).toHaveLength(1);
    expect(problems[0]).toContain("remove BROKER_CLIENT_SECRET");
  });

  it("config rejects an invalid certificate name", () => {
    for (const name of ["broker_client", "x".repeat(128), "name with spaces"]) {
      const problems = problemsWith({
        ...withoutSecret,
        BROKER_CLIENT_CREDENTIAL: "certificate",
        BROKER_CLIENT_CERTIFICATE_NAME: name,
      });

      expect(
        problems.some((problem) =>
          problem.startsWith(
            "BROKER_CLIENT_CERTIFICATE_NAME must be the name of a Key Vault certificate",
          ),
        ),
      ).toBe(true);
    }
  });

  it("config rejects an unknown credential kind", () => {
    const problems = problemsWith({ BROKER_CLIENT_CREDENTIAL: "password" });

    expect(problems).toEqual([
      'BROKER_CLIENT_CREDENTIAL must be one of federated, secret, certificate, not "password"',
    ]);
  });

  it("config rejects a managed identity client ID that is not a GUID", () => {
    const problems = problemsWith({
      MANAGED_IDENTITY_CLIENT_ID: "my-identity",
    });

    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(
      /^MANAGED_IDENTITY_CLIENT_ID must be the client ID/,
    );
  });

  it("config takes an empty managed identity client ID as unset", () => {
    const config = load({ MANAGED_IDENTITY_CLIENT_ID: " " });

    expect(config.managedIdentityClientId).toBeUndefined();
  });

  it("config accepts a managed identity with a secret or certificate", () => {
    const withSecret = load({
      MANAGED_IDENTITY_CLIENT_ID: managedIdentityClientId,
    });
    const withCertificate = load({
      ...withoutSecret,
      BROKER_CLIENT_CREDENTIAL: "certificate",
      BROKER_CLIENT_CERTIFICATE_NAME: "broker-client",
      MANAGED_IDENTITY_CLIENT_ID: managedIdentityClientId,
    });

    expect(withSecret.managedIdentityClientId).toBe(managedIdentityClientId);
    expect(withCertificate.managedIdentityClientId).toBe(
      managedIdentityClientId,
    );
  });

  it("config names every credential problem at once", () => {
    const problems = problemsWith({
      BROKER_CLIENT_CREDENTIAL: "federated",
      BROKER_CLIENT_CERTIFICATE_NAME: "broker-client",
      MANAGED_IDENTITY_CLIENT_ID: "not-a-guid",
      KEY_VAULT_URL: undefined,
    });

    expect(namesSetting(problems, "BROKER_CLIENT_SECRET")).toBe(true);
    expect(namesSetting(problems, "BROKER_CLIENT_CERTIFICATE_NAME")).toBe(true);
    expect(namesSetting(problems, "MANAGED_IDENTITY_CLIENT_ID")).toBe(true);
    expect(namesSetting(problems, "KEY_VAULT_URL")).toBe(true);
    expect(problems).toHaveLength(4);
  });

  it("config never puts the secret in a problem", () => {
    const problems = problemsWith({
      BROKER_CLIENT_CREDENTIAL: "federated",
      BROKER_CLIENT_SECRET: "do-not-print-this-secret",
    });

    expect(problems.join("\n")).not.toContain("do-not-print-this-secret");
  });

  it("config gives each cloud its token exchange audience", () => {
    const publicConfig = load({});
    const usGovConfig = load({ BROKER_CLOUD: "usgov" });

    expect(publicConfig.cloud.tokenExchangeAudience).toBe(
      "api://AzureADTokenExchange",
    );
    expect(usGovConfig.cloud.tokenExchangeAudience).toBe(
      "api://AzureADTokenExchangeUSGov",
    );
  });
});

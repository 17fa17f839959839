/**
 * The broker's settings, read from the environment once and validated as a whole, so that start-up
 * fails with one error naming every missing or invalid setting. Nothing else reads `process.env`.
 */
import { CronExpressionParser } from "cron-parser";
import { z } from "zod";
import {
  cloudNames,
  cloudProfiles,
  mailScopes,
  type CloudProfile,
} from "./cloud.js";
import { parseSiteAllowlist, type SiteAllowlist } from "./siteAllowlist.js";

/** Ways the broker proves itself to the identity platform as its app registration. */
export const clientCredentialKinds = [
  "federated",
  "secret",
  "certificate",
] as const;
export type ClientCredentialKind = (typeof clientCredentialKinds)[number];

export type ClientCredentialConfig =
  /** A client secret of the app registration. */
  | { kind: "secret"; secret: string }
  /** A Key Vault certificate in the vault at `keyVaultUrl`, read as a PEM secret of this name. */
  | { kind: "certificate"; certificateName: string }
  /** The managed identity's token for the cloud's token exchange audience, as a client assertion. */
  | { kind: "federated" };

export interface BrokerConfig {
  clientId: string;
  clientCredential: ClientCredentialConfig;
  /**
   * Client ID of the user-assigned managed identity for Table Storage, Key Vault and the federated
   * assertion. Absent: DefaultAzureCredential for storage and the system-assigned identity for the
   * assertion.
   */
  managedIdentityClientId: string | undefined;
  redirectUri: string;
  cloud: CloudProfile;
  /** Authority host actually used; differs from the cloud's only for a local stand-in. */
  authorityHost: string;
  /** Tenant segment of the sign-in authority: `organizations`, `common` or one tenant. */
  signInTenant: string;
  /** IMAP and SMTP scopes requested at sign-in, exactly as recorded on each grant. */
  mailScopes: string[];
  siteAllowlist: SiteAllowlist;
  tables: { connectionString: string } | { endpoint: string };
  tableNamePrefix: string;
  keyVaultUrl: string;
  signInTimeoutMinutes: number;
  /** A request to the identity platform that takes longer fails as transient. */
  identityTimeoutMs: number;
  /** Every access token handed out has at least this much time left. */
  minTokenLifetimeMs: number;
  /** Access tokens kept in memory by one instance, least recently used dropped first. */
  tokenCacheSize: number;
  /**
   * How long token-exchange trusts a grant row this instance read or wrote before reading it
   * again. A revoke made through another instance takes effect within this time, and 0 reads the row
   * on every request.
   */
  grantCacheMs: number;
  limits: {
    /** Failed identifier attempts one client address may make per window before a 429. */
    failedPerAddress: number;
    /** Failed attempts against one grant per window before a 429. */
    failedPerGrant: number;
    failedWindowMs: number;
    /** Token renewals of one grant per minute, whatever the callers do. */
    refreshesPerGrantPerMinute: number;
  };
  refresh: {
    /** NCRONTAB schedule of the refresh timer, in UTC. */
    schedule: string;
    /** A refresh token older than this is refreshed by the timer. */
    afterHours: number;
    /** Token requests one timer run makes at once, with twice as many grants in progress. */
    concurrency: number;
    /** Days without a successful refresh after which a grant is flagged `degraded`. */
    degradedAfterDays: number;
  };
  /** Status-change notifications; absent when no webhook is configured. */
  webhook: { url: string; secret: string } | undefined;
}

export class ConfigError extends Error {
  readonly problems: string[];

  constructor(problems: string[]) {
    super(`Invalid broker configuration:\n- ${problems.join("\n- ")}`);
    this.name = "ConfigError";
    this.problems = problems;
  }
}

const guid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const loopbackHosts = new Set(["localhost", "127.0.0.1", "[::1]"]);

function isLoopback(url: URL): boolean {
  return loopbackHosts.has(url.hostname);
}

/** An https URL, or http on a loopback host for local stand-ins. */
const serviceUrl = z
  .string()
  .trim()
  .refine((text) => URL.canParse(text), {
    message: "must be an absolute URL",
    abort: true,
  })
  .refine((text) => {
    const url = new URL(text);
    return (
      url.protocol === "https:" || (url.protocol === "http:" && isLoopback(url))
    );
  }, "must use https (http is allowed only for localhost)");

const optionalText = z
  .string()
  .trim()
  .transform((text) => (text === "" ? undefined : text))
  .optional();

/** Like optionalText, but a secret is kept byte for byte. */
const optionalSecret = z
  .string()
  .transform((text) => (text.trim() === "" ? undefined : text))
  .optional();

function isValidSchedule(schedule: string): boolean {
  try {
    CronExpressionParser.parse(schedule, { tz: "UTC" });
    return true;
  } catch {
    return false;
  }
}

/** Builds the schema of an integer setting, where an empty value takes the default. */
function integerSetting(min: number, max: number, fallback: number) {
  return z.preprocess(
    (value) =>
      typeof value === "string" && value.trim() === "" ? undefined : value,
    z.coerce
      .number({ error: `must be a whole number from ${min} to ${max}` })
      .int({ error: `must be a whole number from ${min} to ${max}` })
      .min(min, { error: `must be a whole number from ${min} to ${max}` })
      .max(max, { error: `must be a whole number from ${min} to ${max}` })
      .default(fallback),
  );
}

const schema = z.object({
  BROKER_CLIENT_ID: z
    .string()
    .trim()
    .regex(guid, "must be the application (client) ID, a GUID"),
  BROKER_CLIENT_CREDENTIAL: z.preprocess(
    (value) =>
      typeof value === "string" && value.trim() !== ""
        ? value.trim().toLowerCase()
        : undefined,
    z.enum(clientCredentialKinds).default("secret"),
  ),
  BROKER_CLIENT_SECRET: optionalSecret,
  BROKER_CLIENT_CERTIFICATE_NAME: optionalText.pipe(
    z
      .string()
      .regex(
        /^[0-9A-Za-z-]{1,127}$/,
        "must be the name of a Key Vault certificate: 1 to 127 letters, digits and dashes",
      )
      .optional(),
  ),
  MANAGED_IDENTITY_CLIENT_ID: optionalText.pipe(
    z
      .string()
      .regex(
        guid,
        "must be the client ID of the user-assigned managed identity, a GUID",
      )
      .optional(),
  ),
  BROKER_REDIRECT_URI: serviceUrl
    .refine(
      (text) => new URL(text).pathname === "/api/auth/callback",
      "must end in /api/auth/callback, the path of the callback function",
    )
    .refine((text) => {
      const url = new URL(text);
      return url.search === "" && url.hash === "";
    }, "must have no query string or fragment; register and set exactly https://<host>/api/auth/callback"),
  BROKER_CLOUD: z.enum(cloudNames).default("public"),
  BROKER_SIGNIN_TENANT: z
    .string()
    .trim()
    .regex(
      /^(organizations|common|consumers|[0-9a-f-]{36}|[a-z0-9.-]+\.[a-z]{2,})$/i,
      "must be organizations, common, consumers, a tenant ID or a tenant domain",
    )
    .default("organizations"),
  BROKER_AUTHORITY_HOST: optionalText.pipe(serviceUrl.optional()),
  BROKER_MAIL_SCOPES: optionalText,
  SITE_ALLOWLIST: z.string().default("*.equisonline.com"),
  TABLES_CONNECTION_STRING: optionalText,
  TABLES_ENDPOINT: optionalText.pipe(serviceUrl.optional()),
  TABLE_NAME_PREFIX: z
    .string()
    .trim()
    .regex(
      /^[A-Za-z][A-Za-z0-9]{0,40}$/,
      "must be a letter followed by up to 40 letters or digits",
    )
    .default("broker"),
  KEY_VAULT_URL: serviceUrl,
  SIGNIN_TIMEOUT_MINUTES: integerSetting(2, 60, 10),
  REFRESH_SCHEDULE: z
    .string()
    .trim()
    .regex(
      /^\S+( \S+){5}$/,
      "must be an NCRONTAB expression of six fields (second minute hour day month weekday), in UTC",
    )
    .default("0 */15 * * * *")
    .refine(isValidSchedule, "is not a valid NCRONTAB expression"),
  REFRESH_AFTER_HOURS: integerSetting(1, 24 * 60, 24),
  IDENTITY_TIMEOUT_SECONDS: integerSetting(1, 120, 15),
  MIN_TOKEN_LIFETIME_MINUTES: integerSetting(5, 60, 15),
  TOKEN_CACHE_SIZE: integerSetting(100, 1_000_000, 10_000),
  GRANT_CACHE_SECONDS: integerSetting(0, 300, 10),
  FAILED_ATTEMPTS_PER_ADDRESS: integerSetting(1, 10_000, 30),
  FAILED_ATTEMPTS_PER_GRANT: integerSetting(1, 10_000, 10),
  FAILED_ATTEMPTS_WINDOW_SECONDS: integerSetting(1, 86_400, 600),
  MAX_REFRESHES_PER_GRANT_PER_MINUTE: integerSetting(1, 600, 6),
  REFRESH_CONCURRENCY: integerSetting(1, 64, 8),
  DEGRADED_AFTER_DAYS: integerSetting(1, 60, 3),
  NOTIFY_WEBHOOK_URL: optionalText.pipe(serviceUrl.optional()),
  NOTIFY_WEBHOOK_SECRET: optionalText.pipe(
    z
      .string()
      .min(32, "must be at least 32 characters, to key HMAC-SHA256")
      .optional(),
  ),
});

type Settings = z.infer<typeof schema>;

/** Every setting the schema reads; the deployment templates must set exactly these. */
export const settingNames = Object.keys(schema.shape) as (keyof Settings)[];

/** Reads and validates every setting; throws one ConfigError naming all problems. */
export function loadConfig(
  env: Record<string, string | undefined>,
): BrokerConfig {
  const problems: string[] = [];
  const invalid = new Set<string>();
  const settings = parseEachSetting(env, problems, invalid);
  const cloud = cloudProfiles[settings.BROKER_CLOUD ?? "public"];

  const authorityHost = checkAuthorityHost(settings, cloud, problems);
  const scopes = checkMailScopes(settings.BROKER_MAIL_SCOPES, cloud, problems);
  const siteAllowlist = checkSiteAllowlist(
    settings.SITE_ALLOWLIST ?? "",
    problems,
  );
  // A setting already reported as invalid is left out of the checks across settings, so that it
  // is not also reported as missing.
  const tables = isAnyInvalid(invalid, [
    "TABLES_CONNECTION_STRING",
    "TABLES_ENDPOINT",
  ])
    ? undefined
    : checkTables(settings, problems);
  const clientCredential = isAnyInvalid(invalid, [
    "BROKER_CLIENT_SECRET",
    "BROKER_CLIENT_CERTIFICATE_NAME",
  ])
    ? undefined
    : checkClientCredential(settings, problems);
  const webhook = isAnyInvalid(invalid, [
    "NOTIFY_WEBHOOK_URL",
    "NOTIFY_WEBHOOK_SECRET",
  ])
    ? undefined
    : checkWebhook(settings, problems);

  if (problems.length > 0) throw new ConfigError(problems);
  const valid = settings as Settings;

  return {
    clientId: valid.BROKER_CLIENT_ID,
    clientCredential: clientCredential ?? { kind: "federated" },
    managedIdentityClientId: valid.MANAGED_IDENTITY_CLIENT_ID,
    redirectUri: valid.BROKER_REDIRECT_URI,
    cloud,
    authorityHost,
    signInTenant: valid.BROKER_SIGNIN_TENANT,
    mailScopes: scopes,
    siteAllowlist,
    tables: tables ?? { endpoint: "" },
    tableNamePrefix: valid.TABLE_NAME_PREFIX,
    keyVaultUrl: valid.KEY_VAULT_URL.replace(/\/+$/, ""),
    signInTimeoutMinutes: valid.SIGNIN_TIMEOUT_MINUTES,
    identityTimeoutMs: valid.IDENTITY_TIMEOUT_SECONDS * 1000,
    minTokenLifetimeMs: valid.MIN_TOKEN_LIFETIME_MINUTES * 60_000,
    tokenCacheSize: valid.TOKEN_CACHE_SIZE,
    grantCacheMs: valid.GRANT_CACHE_SECONDS * 1000,
    limits: {
      failedPerAddress: valid.FAILED_ATTEMPTS_PER_ADDRESS,
      failedPerGrant: valid.FAILED_ATTEMPTS_PER_GRANT,
      failedWindowMs: valid.FAILED_ATTEMPTS_WINDOW_SECONDS * 1000,
      refreshesPerGrantPerMinute: valid.MAX_REFRESHES_PER_GRANT_PER_MINUTE,
    },
    refresh: {
      schedule: valid.REFRESH_SCHEDULE,
      afterHours: valid.REFRESH_AFTER_HOURS,
      concurrency: valid.REFRESH_CONCURRENCY,
      degradedAfterDays: valid.DEGRADED_AFTER_DAYS,
    },
    webhook,
  };
}

/** Parses every setting on its own, so that one bad setting does not hide the others. */
function parseEachSetting(
  env: Record<string, string | undefined>,
  problems: string[],
  invalid: Set<string>,
): Partial<Settings> {
  const settings: Record<string, unknown> = {};
  for (const [name, fieldSchema] of Object.entries(schema.shape)) {
    // App Service leaves a Key Vault reference it cannot resolve in the setting as text. Taken as
    // the value, it would become, for example, the webhook's signing key.
    if (env[name]?.trim().startsWith("@Microsoft.KeyVault(") === true) {
      invalid.add(name);
      problems.push(
        `${name} is a Key Vault reference that the Function App could not resolve; check that the secret exists and that the app's identity may read it`,
      );
      continue;
    }
    const parsed = fieldSchema.safeParse(env[name]);
    if (parsed.success) {
      settings[name] = parsed.data;
    } else {
      invalid.add(name);
      problems.push(
        ...parsed.error.issues.map((issue) =>
          describeIssue(name, env[name], issue),
        ),
      );
    }
  }
  return settings as Partial<Settings>;
}

function isAnyInvalid(invalid: Set<string>, names: string[]): boolean {
  return names.some((name) => invalid.has(name));
}

function describeIssue(
  name: string,
  value: string | undefined,
  issue: z.core.$ZodIssue,
): string {
  if (value === undefined || value.trim() === "") return `${name} is missing`;
  if (issue.code === "invalid_value" && "values" in issue) {
    return `${name} must be one of ${issue.values.join(", ")}, not "${value}"`;
  }
  return `${name} ${issue.message}`;
}

function checkAuthorityHost(
  settings: Partial<Settings>,
  cloud: CloudProfile,
  problems: string[],
): string {
  const override = settings.BROKER_AUTHORITY_HOST?.replace(/\/+$/, "");
  if (override === undefined) return cloud.authorityHost;

  const otherCloud = Object.values(cloudProfiles).find(
    (profile) =>
      profile.name !== cloud.name && profile.authorityHost === override,
  );
  if (otherCloud !== undefined) {
    problems.push(
      `BROKER_AUTHORITY_HOST is the authority of the ${otherCloud.name} cloud but BROKER_CLOUD is ${cloud.name}; set both for one cloud`,
    );
  }
  if (!override.startsWith("https://")) {
    problems.push(
      "BROKER_AUTHORITY_HOST must use https (MSAL rejects other authorities)",
    );
  }
  return override;
}

/**
 * Checks configured scopes: each must be the cloud's Outlook resource followed by
 * IMAP.AccessAsUser.All or SMTP.Send, because a token has one audience and a Graph or bare scope
 * gives one that Exchange rejects for IMAP and SMTP.
 */
function checkMailScopes(
  text: string | undefined,
  cloud: CloudProfile,
  problems: string[],
): string[] {
  const expected = mailScopes(cloud);
  if (text === undefined) return expected;

  const scopes = text.split(/[\s,]+/).filter((scope) => scope !== "");
  const wrong = scopes.filter((scope) => !expected.includes(scope));
  const missing = expected.filter((scope) => !scopes.includes(scope));
  if (wrong.length > 0 || missing.length > 0) {
    const parts = [];
    if (wrong.length > 0) parts.push(`not allowed: ${wrong.join(" ")}`);
    if (missing.length > 0) parts.push(`missing: ${missing.join(" ")}`);
    problems.push(
      `BROKER_MAIL_SCOPES must be exactly "${expected.join(" ")}" for the ${cloud.name} cloud (${parts.join("; ")}); remove the setting to use that default`,
    );
  }
  return expected;
}

function checkSiteAllowlist(text: string, problems: string[]): SiteAllowlist {
  const { allowlist, invalid } = parseSiteAllowlist(text);
  if (invalid.length > 0) {
    problems.push(
      `SITE_ALLOWLIST has entries that are not host names or *.suffix patterns: ${invalid.join(", ")}`,
    );
  } else if (allowlist.suffixes.length + allowlist.hosts.length === 0) {
    problems.push(
      "SITE_ALLOWLIST is empty; list at least one host or *.suffix",
    );
  }
  return allowlist;
}

function checkWebhook(
  settings: Partial<Settings>,
  problems: string[],
): BrokerConfig["webhook"] {
  const url = settings.NOTIFY_WEBHOOK_URL;
  const secret = settings.NOTIFY_WEBHOOK_SECRET;
  if (url === undefined && secret === undefined) return undefined;
  if (url === undefined || secret === undefined) {
    problems.push(
      "set both NOTIFY_WEBHOOK_URL and NOTIFY_WEBHOOK_SECRET, or neither",
    );
    return undefined;
  }
  return { url, secret };
}

/**
 * Checks that exactly the settings of the chosen client credential are present. A secret left in
 * the settings of a deployment that no longer uses it would expire unnoticed, so it is an error.
 */
function checkClientCredential(
  settings: Partial<Settings>,
  problems: string[],
): ClientCredentialConfig | undefined {
  const kind = settings.BROKER_CLIENT_CREDENTIAL;
  if (kind === undefined) return undefined;

  const secret = settings.BROKER_CLIENT_SECRET;
  const certificateName = settings.BROKER_CLIENT_CERTIFICATE_NAME;
  const count = problems.length;
  const unused = (name: string) =>
    `${name} is set but BROKER_CLIENT_CREDENTIAL is ${kind}; remove ${name}`;

  if (kind !== "secret" && secret !== undefined) {
    problems.push(
      `${unused("BROKER_CLIENT_SECRET")}, and delete the secret from the app registration once the ${kind} credential works`,
    );
  }
  if (kind !== "certificate" && certificateName !== undefined) {
    problems.push(
      `${unused("BROKER_CLIENT_CERTIFICATE_NAME")}, or set BROKER_CLIENT_CREDENTIAL to certificate`,
    );
  }
  if (kind === "secret" && secret === undefined) {
    problems.push(
      "BROKER_CLIENT_SECRET is missing; BROKER_CLIENT_CREDENTIAL is secret (the default), so set it to a client secret of the app registration, or set BROKER_CLIENT_CREDENTIAL to federated or certificate",
    );
  }
  if (kind === "certificate" && certificateName === undefined) {
    problems.push(
      "BROKER_CLIENT_CERTIFICATE_NAME is missing; BROKER_CLIENT_CREDENTIAL is certificate, so set it to the name of the certificate in the key vault at KEY_VAULT_URL",
    );
  }
  if (problems.length > count) return undefined;

  if (kind === "secret") return { kind, secret: secret ?? "" };
  if (kind === "certificate")
    return { kind, certificateName: certificateName ?? "" };
  return { kind };
}

function checkTables(
  settings: Partial<Settings>,
  problems: string[],
): BrokerConfig["tables"] | undefined {
  const connectionString = settings.TABLES_CONNECTION_STRING;
  const endpoint = settings.TABLES_ENDPOINT;

  if (connectionString !== undefined && endpoint !== undefined) {
    problems.push(
      "set only one of TABLES_CONNECTION_STRING and TABLES_ENDPOINT",
    );
    return undefined;
  }
  if (connectionString !== undefined) {
    const problem = checkConnectionString(connectionString);
    if (problem === undefined) return { connectionString };
    problems.push(`TABLES_CONNECTION_STRING ${problem}`);
    return undefined;
  }
  if (endpoint !== undefined) return { endpoint: endpoint.replace(/\/+$/, "") };

  problems.push(
    "TABLES_ENDPOINT is missing (the Table service URL, reached with the app's managed identity); TABLES_CONNECTION_STRING may be set instead for a local emulator",
  );
  return undefined;
}

/**
 * Checks the form the Tables SDK parses: `Name=value` pairs separated by semicolons, with an
 * account name and a key or shared access signature, or `UseDevelopmentStorage=true`. The SDK
 * itself fails on other text with an error that names no setting. Returns the problem, if any.
 */
function checkConnectionString(text: string): string | undefined {
  const fields = new Map<string, string>();
  for (const part of text.split(";")) {
    if (part.trim() === "") continue;
    const equals = part.indexOf("=");
    if (equals <= 0) {
      return "must be Name=value pairs separated by semicolons, as the storage account's Access keys page shows them";
    }
    fields.set(
      part.slice(0, equals).trim().toLowerCase(),
      part.slice(equals + 1).trim(),
    );
  }
  if (fields.get("usedevelopmentstorage")?.toLowerCase() === "true")
    return undefined;

  const missing = [];
  if (!fields.get("accountname")) missing.push("AccountName");
  if (!fields.get("accountkey") && !fields.get("sharedaccesssignature"))
    missing.push("AccountKey or SharedAccessSignature");
  if (missing.length > 0) return `lacks ${missing.join(" and ")}`;

  const endpoint = fields.get("tableendpoint");
  if (endpoint !== undefined && !URL.canParse(endpoint)) {
    return "has a TableEndpoint that is not an absolute URL";
  }
  return undefined;
}

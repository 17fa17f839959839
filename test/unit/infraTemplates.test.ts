import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

import {
  BicepArray,
  BicepExpression,
  BicepObject,
  bodyOf,
  declaredValue,
  readBicep,
  resourceDeclarations,
  scanBicep,
  topLevelDeclarations,
  type BicepFile,
  type BicepValue,
} from "../../infra/checks/bicepText.js";

// No Bicep compiler can be installed where these tests run, so they check the templates as text:
// what a compiler would reject in the way these files are written, and the security settings.

const root = fileURLToPath(new URL("../..", import.meta.url));
const infra = join(root, "infra");

function bicepFilesUnder(folder: string): string[] {
  return readdirSync(folder, { withFileTypes: true }).flatMap((entry) => {
    const path = join(folder, entry.name);
    if (entry.isDirectory()) return bicepFilesUnder(path);
    return entry.name.endsWith(".bicep") ? [path] : [];
  });
}

const bicepFiles = bicepFilesUnder(infra).map(readBicep);
const armTemplatePaths = readdirSync(join(infra, "modules"))
  .filter((name) => name.endsWith(".json"))
  .map((name) => join(infra, "modules", name));

function template(path: string): BicepFile {
  const file = bicepFiles.find(
    (candidate) => candidate.path === join(infra, path),
  );
  if (file === undefined) throw new Error(`infra/${path} is missing`);
  return file;
}

function withReplaced(file: BicepFile, from: string, to: string): BicepFile {
  if (!file.source.includes(from))
    throw new Error(`"${from}" is not in ${file.path}`);
  return scanBicep(file.path, file.source.replace(from, to));
}

function where(file: BicepFile, line: number): string {
  return `${relative(root, file.path)}:${line}`;
}

function declaration(file: BicepFile, keyword: string, name: string) {
  const found = topLevelDeclarations(file).find(
    (candidate) => candidate.keyword === keyword && candidate.name === name,
  );
  if (found === undefined)
    throw new Error(`${keyword} ${name} is not in ${file.path}`);
  return found;
}

function resourceBody(file: BicepFile, typePrefix: string): BicepObject {
  const resource = resourceDeclarations(file).find((candidate) =>
    candidate.type.startsWith(`${typePrefix}@`),
  );
  if (resource === undefined)
    throw new Error(`no ${typePrefix} in ${file.path}`);
  return bodyOf(file, resource.start);
}

function member(
  value: BicepValue | undefined,
  ...path: string[]
): BicepValue | undefined {
  let current = value;
  for (const key of path) {
    current = current instanceof BicepObject ? current.get(key) : undefined;
  }
  return current;
}

function expressionText(value: BicepValue | undefined): string | undefined {
  return value instanceof BicepExpression ? value.text : undefined;
}

/** Each `param` needs a `@description` decorator. */
function descriptionProblems(file: BicepFile): string[] {
  return topLevelDeclarations(file)
    .filter((candidate) => candidate.keyword === "param")
    .filter(
      (param) =>
        !param.decorators.some((text) => /^@(sys\.)?description\(/.test(text)),
    )
    .map(
      (param) =>
        `${where(file, param.line)}: param ${param.name} has no @description`,
    );
}

const apiVersion = /@(\d{4}-\d{2}-\d{2})(-preview)?$/;

/**
 * Each resource type names its API version: a date for Azure types, v1.0 for Microsoft Graph
 * types. A preview version needs a comment on the line above that gives the reason.
 */
function apiVersionProblems(file: BicepFile): string[] {
  const usesGraph = /^extension\s+microsoftGraphV1\b/m.test(file.code);
  const lines = file.source.split("\n");
  return resourceDeclarations(file).flatMap((resource) => {
    const isGraph = usesGraph && resource.type.endsWith("@v1.0");
    const match = apiVersion.exec(resource.type);
    if (!isGraph && match === null) {
      return [
        `${where(file, resource.line)}: ${resource.type} has no pinned API version`,
      ];
    }
    const above = lines[resource.line - 2] ?? "";
    if (match?.[2] !== undefined && !/\/\/.*preview/i.test(above)) {
      return [
        `${where(file, resource.line)}: ${resource.type} is a preview without a reason`,
      ];
    }
    return [];
  });
}

/** Local module and JSON paths must exist. Registry modules cannot be checked here, so they are rejected. */
function pathProblems(file: BicepFile): string[] {
  const references = [
    ...file.code.matchAll(/\bmodule\s+[A-Za-z_]\w*\s+'/g),
    ...file.code.matchAll(/\bload(?:Json|Text|Yaml)Content\(\s*'/g),
  ];
  return references.flatMap((reference) => {
    const quote = reference.index + reference[0].length - 1;
    const path = file.source.slice(
      quote + 1,
      file.source.indexOf("'", quote + 1),
    );
    const line = file.source.slice(0, quote).split("\n").length;
    if (/^(br|ts)[:/]/.test(path))
      return [`${where(file, line)}: registry reference ${path}`];
    const target = join(dirname(file.path), path);
    return existsSync(target)
      ? []
      : [`${where(file, line)}: ${path} does not exist`];
  });
}

const forbiddenText: [RegExp, string][] = [
  [
    /\blist[A-Z]\w*\(/,
    "a list*() call reads keys or secrets into the deployment",
  ],
  [/accountKey/i, "a storage account key"],
  [/SharedAccessKey|SharedAccessSignature/i, "a connection string with a key"],
  [/\bpassword\b/i, "a password"],
];

/** No keys, key-bearing connection strings or passwords, and no output marked secure. */
function secretProblems(file: BicepFile): string[] {
  const problems = forbiddenText.flatMap(([pattern, what]) => {
    const match = pattern.exec(file.text);
    if (match === null) return [];
    return [
      `${where(file, file.source.slice(0, match.index).split("\n").length)}: ${what}`,
    ];
  });
  for (const output of topLevelDeclarations(file)) {
    if (output.keyword !== "output") continue;
    if (output.decorators.some((text) => text.startsWith("@secure("))) {
      problems.push(
        `${where(file, output.line)}: output ${output.name} is marked @secure()`,
      );
    }
  }
  return problems;
}

const stringLiteral = /^'(?:[^'\\]|\\.)*'$/;

/**
 * Lists app settings whose name contains SECRET or PASSWORD or ends in KEY but whose value is not
 * '' or a Key Vault reference, directly or in both branches of a condition.
 */
function appSettingSecretProblems(settings: BicepObject): string[] {
  const problems: string[] = [];
  for (const [name, entry] of settings.members) {
    if (!/SECRET|PASSWORD|KEY$/i.test(name)) continue;
    const text =
      typeof entry.value === "string"
        ? `'${entry.value}'`
        : (expressionText(entry.value) ?? "");
    const condition = /^.+?\s\?\s(.+?)\s:\s(.+)$/.exec(text);
    const branches =
      condition === null ? [text] : [condition[1] ?? "", condition[2] ?? ""];
    const allowed = branches.every(
      (branch) =>
        stringLiteral.test(branch.trim()) &&
        (branch.trim() === "''" ||
          branch.trim().startsWith("'@Microsoft.KeyVault(")),
    );
    if (!allowed) problems.push(`${name} may hold a secret value: ${text}`);
  }
  return problems;
}

function appSettingsOf(file: BicepFile): BicepObject {
  const properties = member(
    resourceBody(file, "Microsoft.Web/sites/config"),
    "properties",
  );
  if (!(properties instanceof BicepObject))
    throw new Error("app settings are not an object");
  return properties;
}

function functionAppProblems(file: BicepFile): string[] {
  const site = resourceBody(file, "Microsoft.Web/sites");
  const plan = resourceBody(file, "Microsoft.Web/serverfarms");
  const expected: [string[], BicepValue, BicepValue | undefined][] = [
    [
      ["properties", "httpsOnly"],
      true,
      member(site, "properties", "httpsOnly"),
    ],
    [
      ["properties", "siteConfig", "minTlsVersion"],
      "1.2",
      member(site, "properties", "siteConfig", "minTlsVersion"),
    ],
    [
      ["properties", "siteConfig", "ftpsState"],
      "Disabled",
      member(site, "properties", "siteConfig", "ftpsState"),
    ],
    [["sku", "name"], "FC1", member(plan, "sku", "name")],
    [["sku", "tier"], "FlexConsumption", member(plan, "sku", "tier")],
    [
      ["functionAppConfig", "runtime", "name"],
      "node",
      member(site, "properties", "functionAppConfig", "runtime", "name"),
    ],
    [
      ["functionAppConfig", "runtime", "version"],
      "22",
      member(site, "properties", "functionAppConfig", "runtime", "version"),
    ],
    [
      ["functionAppConfig", "deployment", "storage", "authentication", "type"],
      "UserAssignedIdentity",
      member(
        site,
        "properties",
        "functionAppConfig",
        "deployment",
        "storage",
        "authentication",
        "type",
      ),
    ],
  ];
  return expected
    .filter(([, want, actual]) => actual !== want)
    .map(
      ([path, want, actual]) =>
        `${path.join(".")} is ${String(actual)}, not ${String(want)}`,
    );
}

function keyVaultProblems(file: BicepFile): string[] {
  const properties = member(
    resourceBody(file, "Microsoft.KeyVault/vaults"),
    "properties",
  );
  return [
    "enableRbacAuthorization",
    "enableSoftDelete",
    "enablePurgeProtection",
  ]
    .filter((name) => member(properties, name) !== true)
    .map((name) => `${name} is not true`);
}

function storageProblems(file: BicepFile): string[] {
  const properties = member(
    resourceBody(file, "Microsoft.Storage/storageAccounts"),
    "properties",
  );
  const expected: [string, BicepValue][] = [
    ["allowSharedKeyAccess", false],
    ["allowBlobPublicAccess", false],
    ["minimumTlsVersion", "TLS1_2"],
    ["supportsHttpsTrafficOnly", true],
  ];
  return expected
    .filter(([name, want]) => member(properties, name) !== want)
    .map(([name, want]) => `${name} is not ${String(want)}`);
}

/** Built-in role definition IDs of Azure RBAC and the role each one is. */
const builtInRoles = new Map([
  ["b86a8fe4-44ce-4948-aee5-eccb2c155cd7", "Key Vault Secrets Officer"],
  ["0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3", "Storage Table Data Contributor"],
  ["b7e6dc6d-f1e8-4753-8033-0f276bb0955b", "Storage Blob Data Owner"],
  ["974c5e8b-45b9-4653-ba55-5f855dd0fb88", "Storage Queue Data Contributor"],
  ["3913510d-42f4-4e42-8a64-420c390055eb", "Monitoring Metrics Publisher"],
]);

/** The least-privilege roles of the managed identity and the resource each is granted on. */
const expectedRoles = [
  "Key Vault Secrets Officer on keyVault.id",
  "Storage Table Data Contributor on storage.id",
  "Storage Blob Data Owner on storage.id",
  "Monitoring Metrics Publisher on applicationInsights.id",
];

function roleAssignmentProblems(
  files: BicepFile[],
  roles: BicepFile,
): string[] {
  const problems: string[] = [];
  for (const file of files) {
    for (const resource of resourceDeclarations(file)) {
      if (
        resource.type.startsWith("Microsoft.Authorization/roleAssignments@")
      ) {
        problems.push(
          `${where(file, resource.line)}: a role assignment outside the loop`,
        );
      }
    }
  }

  const loops = resourceDeclarations(roles).filter((resource) => {
    const equals = roles.code.indexOf("=", resource.start);
    return /^\s*\[\s*for\s+assignment\s+in\s+assignments\s*:/.test(
      roles.code.slice(equals + 1),
    );
  });
  if (loops.length !== 1)
    problems.push(`${loops.length} loops over assignments, not 1`);
  const loop = loops[0];
  if (loop !== undefined) {
    const next = topLevelDeclarations(roles).find(
      (candidate) => candidate.start > loop.start,
    );
    const loopText = roles.text.slice(loop.start, next?.start);
    if (!loop.type.startsWith("Microsoft.Resources/deployments@")) {
      problems.push(`the loop deploys ${loop.type}, not a nested template`);
    }
    if (!loopText.includes("loadJsonContent('roleAssignment.json')")) {
      problems.push("the loop does not deploy roleAssignment.json");
    }
    if (
      !loopText.includes(
        "guid(assignment.scope, principalId, assignment.roleDefinitionId)",
      )
    ) {
      problems.push(
        "the loop's deployment names are not unique per assignment",
      );
    }
  }

  const list = declaredValue(roles, declaration(roles, "var", "assignments"));
  const granted = list instanceof BicepArray ? list.items : [];
  const names = granted.map((item) => {
    const roleEntry =
      item.value instanceof BicepObject
        ? item.value.members.get("roleDefinitionId")
        : undefined;
    const id = typeof roleEntry?.value === "string" ? roleEntry.value : "";
    const role = builtInRoles.get(id);
    if (role === undefined)
      problems.push(`line ${item.line}: ${id} is not a known built-in role`);
    if (role !== undefined && roleEntry?.comment !== role) {
      problems.push(
        `line ${roleEntry?.line}: the comment beside ${id} is not "${role}"`,
      );
    }
    return `${role ?? id} on ${expressionText(member(item.value, "scope")) ?? "?"}`;
  });
  if (JSON.stringify(names) !== JSON.stringify(expectedRoles)) {
    problems.push(`the roles are ${names.join(", ")}`);
  }
  return problems;
}

const armTemplate = JSON.parse(
  readFileSync(join(infra, "modules", "roleAssignment.json"), "utf8"),
) as {
  parameters: Record<string, { metadata?: { description?: string } }>;
  resources: Record<string, unknown>[];
};

describe("infra template text", () => {
  it("Bicep files are found", () => {
    expect(bicepFiles.map((file) => relative(infra, file.path)).sort()).toEqual(
      [
        "main.bicep",
        "modules/appRegistration.bicep",
        "modules/appSettings.bicep",
        "modules/functionApp.bicep",
        "modules/identity.bicep",
        "modules/keyVault.bicep",
        "modules/monitoring.bicep",
        "modules/roleAssignments.bicep",
        "modules/storage.bicep",
      ],
    );
  });

  it("strings, comments and brackets close", () => {
    expect(bicepFiles.flatMap((file) => file.problems)).toEqual([]);
  });

  it("every param has a description", () => {
    expect(bicepFiles.flatMap(descriptionProblems)).toEqual([]);
  });

  it("every ARM template parameter has a description", () => {
    for (const path of armTemplatePaths) {
      const parsed = JSON.parse(
        readFileSync(path, "utf8"),
      ) as typeof armTemplate;
      for (const [name, parameter] of Object.entries(parsed.parameters)) {
        expect(
          parameter.metadata?.description,
          `${path} parameter ${name}`,
        ).toBeTruthy();
      }
    }
  });

  it("resource types pin an API version", () => {
    expect(bicepFiles.flatMap(apiVersionProblems)).toEqual([]);
    for (const resource of armTemplate.resources) {
      expect(String(resource.apiVersion)).toMatch(/^\d{4}-\d{2}-\d{2}$/);
    }
  });

  it("module and JSON paths exist", () => {
    expect(bicepFiles.flatMap(pathProblems)).toEqual([]);
  });

  it("no keys, passwords or secure outputs", () => {
    expect(bicepFiles.flatMap(secretProblems)).toEqual([]);
    for (const path of armTemplatePaths) {
      const file = scanBicep(path, readFileSync(path, "utf8"));
      expect(secretProblems(file)).toEqual([]);
    }
  });

  it("app settings hold no secret values", () => {
    const settings = appSettingsOf(template("modules/appSettings.bicep"));

    expect(appSettingSecretProblems(settings)).toEqual([]);
    expect(settings.members.has("BROKER_CLIENT_SECRET")).toBe(false);
  });

  it("Functions host storage and telemetry use the identity", () => {
    const settings = appSettingsOf(template("modules/appSettings.bicep"));
    const monitoring = resourceBody(
      template("modules/monitoring.bicep"),
      "Microsoft.Insights/components",
    );

    expect(settings.members.has("AzureWebJobsStorage")).toBe(false);
    expect(settings.get("AzureWebJobsStorage__credential")).toBe(
      "managedidentity",
    );
    expect(
      expressionText(settings.get("AzureWebJobsStorage__accountName")),
    ).toBe("storageAccountName");
    expect(expressionText(settings.get("AzureWebJobsStorage__clientId"))).toBe(
      "managedIdentityClientId",
    );
    expect(
      expressionText(settings.get("APPLICATIONINSIGHTS_AUTHENTICATION_STRING")),
    ).toBe("'ClientId=${managedIdentityClientId};Authorization=AAD'");
    expect(member(monitoring, "properties", "DisableLocalAuth")).toBe(true);
  });

  it("Flex Consumption gets no runtime app settings", () => {
    // Flex Consumption sets the runtime in functionAppConfig and rejects these app settings.
    const settings = appSettingsOf(template("modules/appSettings.bicep"));

    expect(settings.members.has("FUNCTIONS_WORKER_RUNTIME")).toBe(false);
    expect(settings.members.has("FUNCTIONS_EXTENSION_VERSION")).toBe(false);
    expect(settings.members.has("WEBSITE_RUN_FROM_PACKAGE")).toBe(false);
  });

  it("Function App is HTTPS-only Flex Consumption on Node 22", () => {
    expect(functionAppProblems(template("modules/functionApp.bicep"))).toEqual(
      [],
    );
  });

  it("Key Vault uses RBAC and purge protection", () => {
    expect(keyVaultProblems(template("modules/keyVault.bicep"))).toEqual([]);
  });

  it("Storage accepts no shared key", () => {
    expect(storageProblems(template("modules/storage.bicep"))).toEqual([]);
  });

  it("role assignments are one loop", () => {
    expect(
      roleAssignmentProblems(
        bicepFiles,
        template("modules/roleAssignments.bicep"),
      ),
    ).toEqual([]);

    const [assignment, ...others] = armTemplate.resources;
    expect(others).toEqual([]);
    expect(assignment?.type).toBe("Microsoft.Authorization/roleAssignments");
    expect(assignment?.scope).toBe("[parameters('scope')]");
    expect(assignment?.name).toBe(
      "[guid(parameters('scope'), parameters('principalId'), parameters('roleDefinitionId'))]",
    );
    expect(
      (assignment?.properties as { principalType?: string }).principalType,
    ).toBe("ServicePrincipal");
  });
});

describe("infra template checks catch mistakes", () => {
  const main = template("main.bicep");

  it.each([
    ["param without description", "param x string\n", descriptionProblems],
    [
      "unpinned API version",
      "resource s 'Microsoft.Web/sites' = {\n}\n",
      apiVersionProblems,
    ],
    [
      "preview without reason",
      "resource s 'Microsoft.Web/sites@2024-01-01-preview' = {\n}\n",
      apiVersionProblems,
    ],
    ["missing module", "module m 'modules/none.bicep' = {\n}\n", pathProblems],
    [
      "registry module",
      "module m 'br/public:avm/res/web/site:0.1.0' = {\n}\n",
      pathProblems,
    ],
    ["listKeys", "var k = storage.listKeys().keys[0].value\n", secretProblems],
    [
      "account key",
      "var c = 'DefaultEndpointsProtocol=https;AccountKey=${k}'\n",
      secretProblems,
    ],
    ["secure output", "@secure()\noutput o string = x\n", secretProblems],
  ])("%s", (_case, source, check) => {
    expect(
      check(scanBicep(join(infra, "sample.bicep"), source)).length,
    ).toBeGreaterThan(0);
  });

  it.each([
    ["unclosed brace", "var x = {\n  a: 1\n"],
    ["extra bracket", "var x = [\n  1\n]]\n"],
    ["unclosed string", "var x = 'abc\n"],
  ])("%s", (_case, source) => {
    expect(scanBicep("sample.bicep", source).problems.length).toBeGreaterThan(
      0,
    );
  });

  it("brackets inside strings and comments are ignored", () => {
    const source = "var x = '${a}{['\n// ]\n/* { */\nvar y = [\n  '}'\n]\n";
    expect(scanBicep("sample.bicep", source).problems).toEqual([]);
  });

  it("secret-named setting with a value", () => {
    const settings = appSettingsOf(
      withReplaced(
        template("modules/appSettings.bicep"),
        "NOTIFY_WEBHOOK_URL: notifyWebhookUrl",
        "NOTIFY_WEBHOOK_URL: notifyWebhookUrl\n    BROKER_CLIENT_SECRET: clientSecret",
      ),
    );
    expect(appSettingSecretProblems(settings)).toEqual([
      "BROKER_CLIENT_SECRET may hold a secret value: clientSecret",
    ]);
  });

  it("Function App without HTTPS only", () => {
    const file = withReplaced(
      template("modules/functionApp.bicep"),
      "httpsOnly: true",
      "httpsOnly: false",
    );
    expect(functionAppProblems(file)).toEqual([
      "properties.httpsOnly is false, not true",
    ]);
  });

  it("Key Vault without purge protection", () => {
    const file = withReplaced(
      template("modules/keyVault.bicep"),
      "enablePurgeProtection: true",
      "",
    );
    expect(keyVaultProblems(file)).toEqual([
      "enablePurgeProtection is not true",
    ]);
  });

  it("Storage with shared key access", () => {
    const file = withReplaced(
      template("modules/storage.bicep"),
      "allowSharedKeyAccess: false",
      "allowSharedKeyAccess: true",
    );
    expect(storageProblems(file)).toEqual([
      "allowSharedKeyAccess is not false",
    ]);
  });

  it("role assignment copied out of the loop", () => {
    const copy = withReplaced(
      main,
      "output AZURE_LOCATION",
      "resource extra 'Microsoft.Authorization/roleAssignments@2022-04-01' = {\n}\n\noutput AZURE_LOCATION",
    );
    const files = bicepFiles.map((file) => (file === main ? copy : file));
    expect(
      roleAssignmentProblems(files, template("modules/roleAssignments.bicep")),
    ).toHaveLength(1);
  });

  it("role comment that names another role", () => {
    const roles = withReplaced(
      template("modules/roleAssignments.bicep"),
      "// Storage Blob Data Owner",
      "// Storage Blob Data Contributor",
    );
    expect(roleAssignmentProblems(bicepFiles, roles)).toHaveLength(1);
  });

  it("queue role added to the list", () => {
    const roles = withReplaced(
      template("modules/roleAssignments.bicep"),
      "'b7e6dc6d-f1e8-4753-8033-0f276bb0955b' // Storage Blob Data Owner",
      "'974c5e8b-45b9-4653-ba55-5f855dd0fb88' // Storage Queue Data Contributor",
    );
    expect(roleAssignmentProblems(bicepFiles, roles)).toHaveLength(1);
  });
});

/** Reads the keys of azure.yaml that these checks need, because no YAML parser is a dependency. */
function readAzureYaml(path: string): {
  name: string | undefined;
  services: Map<string, Map<string, string>>;
} {
  const services = new Map<string, Map<string, string>>();
  let name: string | undefined;
  let section = "";
  let service: Map<string, string> | undefined;
  for (const line of readFileSync(path, "utf8").split("\n")) {
    if (/^\s*(#|$)/.test(line)) continue;
    const match = /^( *)([A-Za-z0-9_-]+):\s*(.*?)\s*$/.exec(line);
    if (match === null) continue;
    const [, indent = "", key = "", value = ""] = match;
    if (indent === "") {
      section = key;
      if (key === "name") name = value;
    } else if (section === "services" && indent.length === 2) {
      service = new Map();
      services.set(key, service);
    } else if (section === "services" && indent.length === 4) {
      service?.set(key, value);
    }
  }
  return { name, services };
}

function paramDefaults(file: BicepFile): Map<string, BicepValue | undefined> {
  return new Map(
    topLevelDeclarations(file)
      .filter((candidate) => candidate.keyword === "param")
      .map((param) => [param.name, declaredValue(file, param)]),
  );
}

describe("azd layout", () => {
  const main = template("main.bicep");

  it("azure.yaml deploys to the tagged Function App", () => {
    const project = readAzureYaml(join(root, "azure.yaml"));
    const serviceTags = declaredValue(
      main,
      declaration(main, "var", "siteTags"),
    );
    const site = resourceBody(
      template("modules/functionApp.bicep"),
      "Microsoft.Web/sites",
    );
    const siteTagsPassed = member(
      bodyOf(main, declaration(main, "module", "functionApp").start),
      "params",
      "siteTags",
    );

    expect(project.name).toMatch(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
    expect([...project.services.keys()]).toEqual(["broker"]);
    const broker = project.services.get("broker");
    expect(broker?.get("host")).toBe("function");
    expect(broker?.get("language")).toMatch(/^(ts|js)$/);
    expect(broker?.get("project")).toBe(".");
    expect(declaredValue(main, declaration(main, "var", "serviceName"))).toBe(
      "broker",
    );
    expect(expressionText(serviceTags)).toContain(
      "'azd-service-name': serviceName",
    );
    expect(expressionText(siteTagsPassed)).toBe("siteTags");
    expect(expressionText(member(site, "tags"))).toBe("siteTags");
  });

  it("main.parameters.json sets only declared params", () => {
    const parameters = JSON.parse(
      readFileSync(join(infra, "main.parameters.json"), "utf8"),
    ) as { parameters: Record<string, { value: unknown }> };
    const defaults = paramDefaults(main);

    for (const [name, { value }] of Object.entries(parameters.parameters)) {
      expect(defaults.has(name), `main.bicep declares ${name}`).toBe(true);
      const substitution = /^\$\{([A-Z][A-Z0-9_]*)(?:=(.*))?\}$/.exec(
        String(value),
      );
      expect(substitution, `${name} is an azd substitution`).not.toBeNull();
      const fallback = substitution?.[2];
      if (fallback !== undefined) {
        expect(fallback, `${name} falls back to the Bicep default`).toBe(
          String(defaults.get(name)),
        );
      }
    }
    for (const [name, fallback] of defaults) {
      if (fallback === undefined) {
        expect(
          Object.keys(parameters.parameters),
          `${name} has no default`,
        ).toContain(name);
      }
    }
  });

  it("resource names come from abbreviations and the token", () => {
    const abbreviations = JSON.parse(
      readFileSync(join(infra, "abbreviations.json"), "utf8"),
    ) as Record<string, string>;
    const token = declaredValue(
      main,
      declaration(main, "var", "resourceToken"),
    );
    const tags = declaredValue(main, declaration(main, "var", "tags"));
    const used = [...main.text.matchAll(/\$\{abbreviations\.(\w+)\}/g)].map(
      (match) => match[1],
    );
    const names = [
      ...main.text.matchAll(
        /^\s*(\w*[nN]ame):\s*('\$\{abbreviations\.\w+\}.*)$/gm,
      ),
    ];

    expect(expressionText(token)).toBe(
      "toLower(uniqueString(subscription().id, environmentName, location))",
    );
    expect(expressionText(member(tags, "azd-env-name"))).toBe(
      "environmentName",
    );
    expect(
      used.filter((key) => key === undefined || !(key in abbreviations)),
    ).toEqual([]);
    // Every abbreviation names one resource with the token. The resource group is named after
    // the environment, as azd does.
    const tokenNamed = names.map(([, , value = ""]) => {
      expect(value).toMatch(/^'\$\{abbreviations\.\w+\}\$\{resourceToken\}'$/);
      return /abbreviations\.(\w+)/.exec(value)?.[1];
    });
    expect(tokenNamed.sort()).toEqual(
      Object.keys(abbreviations)
        .filter((key) => key !== "resourcesResourceGroups")
        .sort(),
    );
    expect(main.text).toContain(
      "'${abbreviations.resourcesResourceGroups}${environmentName}'",
    );
  });

  it("outputs follow azd conventions", () => {
    const outputs = topLevelDeclarations(main)
      .filter((candidate) => candidate.keyword === "output")
      .map((output) => output.name);

    expect(outputs.filter((name) => !/^[A-Z][A-Z0-9_]*$/.test(name))).toEqual(
      [],
    );
    expect(outputs).toEqual(
      expect.arrayContaining([
        "AZURE_LOCATION",
        "AZURE_TENANT_ID",
        "AZURE_RESOURCE_GROUP",
        "AZURE_FUNCTION_APP_NAME",
        "AZURE_FUNCTION_APP_URL",
        "BROKER_PAGE_URL",
        "AZURE_KEY_VAULT_ENDPOINT",
        "BROKER_REDIRECT_URI",
        "BROKER_CLIENT_ID",
      ]),
    );
  });
});

/** Delegated permissions the broker requests, by resource app ID and permission ID. */
const expectedPermissions = new Map([
  [
    "00000002-0000-0ff1-ce00-000000000000",
    new Map([
      ["195adc35-e27b-454b-a7ed-1ecdffa1c09f", "IMAP.AccessAsUser.All"],
      ["76faac2a-0f20-42f1-928a-50de5b9dbe52", "SMTP.Send"],
    ]),
  ],
  [
    "00000003-0000-0000-c000-000000000000",
    new Map([
      ["7427e0e9-2fba-42fe-b0c0-848c9e6a8182", "offline_access"],
      ["37f7f235-527c-4136-accd-4a02d197296e", "openid"],
      ["14dad69e-099b-42c9-810b-d002981feec1", "profile"],
    ]),
  ],
]);

describe("app registration template", () => {
  const registration = template("modules/appRegistration.bicep");
  const application = resourceBody(
    registration,
    "Microsoft.Graph/applications",
  );

  it("uses the Graph extension from bicepconfig.json", () => {
    const config = JSON.parse(
      readFileSync(join(infra, "bicepconfig.json"), "utf8"),
    ) as {
      extensions?: Record<string, string>;
    };

    expect(config.extensions?.microsoftGraphV1).toMatch(
      /^br:mcr\.microsoft\.com\/bicep\/extensions\/microsoftgraph\/v1\.0:\d+\.\d+\.\d+$/,
    );
    expect(registration.code).toMatch(/^extension microsoftGraphV1$/m);
  });

  it("registers the callback on the Web platform", () => {
    const redirects = member(application, "web", "redirectUris");

    expect(application.members.has("spa")).toBe(false);
    expect(
      redirects instanceof BicepArray
        ? redirects.items.map((item) => expressionText(item.value))
        : [],
    ).toEqual(["redirectUri"]);
  });

  it("requests exactly the delegated mail permissions", () => {
    const resourceAppIds = new Map(
      ["exchangeOnlineAppId", "microsoftGraphAppId"].map((name) => [
        name,
        declaredValue(registration, declaration(registration, "var", name)),
      ]),
    );
    const requested = member(application, "requiredResourceAccess");
    const granted = new Map<unknown, Map<string, string | undefined>>();

    for (const resource of requested instanceof BicepArray
      ? requested.items
      : []) {
      const appId = resourceAppIds.get(
        expressionText(member(resource.value, "resourceAppId")) ?? "",
      );
      const access = member(resource.value, "resourceAccess");
      const permissions = new Map<string, string | undefined>();
      for (const item of access instanceof BicepArray ? access.items : []) {
        const entry =
          item.value instanceof BicepObject
            ? item.value.members.get("id")
            : undefined;
        expect(
          member(item.value, "type"),
          `permission ${String(entry?.value)}`,
        ).toBe("Scope");
        permissions.set(String(entry?.value), entry?.comment);
      }
      granted.set(appId, permissions);
    }

    expect(granted).toEqual(expectedPermissions);
  });

  it("trusts the managed identity as a federated credential", () => {
    const credential = resourceBody(
      registration,
      "federatedIdentityCredentials",
    );

    expect(expressionText(member(credential, "issuer"))).toBe(
      "'${environment().authentication.loginEndpoint}${tenant().tenantId}/v2.0'",
    );
    expect(expressionText(member(credential, "subject"))).toBe(
      "federatedIdentityPrincipalId",
    );
    const audiences = member(credential, "audiences");
    expect(
      audiences instanceof BicepArray
        ? audiences.items.map((item) => expressionText(item.value))
        : [],
    ).toEqual(["tokenExchangeAudience"]);
    expect(
      expressionText(
        member(
          resourceBody(registration, "Microsoft.Graph/servicePrincipals"),
          "appId",
        ),
      ),
    ).toBe("application.appId");
  });
});

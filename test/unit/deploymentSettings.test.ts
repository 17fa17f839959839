import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

import { callbackRoute } from "../../functions/callback.js";
import { pageRoute } from "../../functions/page.js";
import {
  BicepExpression,
  BicepObject,
  bodyOf,
  declaredValue,
  readBicep,
  resourceDeclarations,
  topLevelDeclarations,
  type BicepFile,
  type BicepValue,
} from "../../infra/checks/bicepText.js";
import { cloudNames, cloudProfiles, mailScopes } from "../../shared/cloud.js";
import { loadConfig, settingNames } from "../../shared/config.js";

// The deployment templates and the local example must set every setting that shared/config.ts
// reads, and nothing it does not know, so that a new setting cannot reach production unset.

const root = fileURLToPath(new URL("../..", import.meta.url));
const main = readBicep(join(root, "infra", "main.bicep"));
const appSettingsModule = readBicep(
  join(root, "infra", "modules", "appSettings.bicep"),
);

/** Broker settings the template leaves unset, because they apply only to other hosting. */
const notSetOnAzure = new Map([
  ["BROKER_CLIENT_SECRET", "secret mode, for hosting without an identity"],
  ["TABLES_CONNECTION_STRING", "the Azurite emulator"],
  ["BROKER_AUTHORITY_HOST", "the local identity stand-in"],
]);

/** Settings of the Functions host, which shared/config.ts does not read. */
const hostSettings = new Set([
  "FUNCTIONS_WORKER_RUNTIME",
  "FUNCTIONS_EXTENSION_VERSION",
  "AzureWebJobsStorage",
  "AzureWebJobsStorage__accountName",
  "AzureWebJobsStorage__credential",
  "AzureWebJobsStorage__clientId",
  "APPLICATIONINSIGHTS_CONNECTION_STRING",
  "APPLICATIONINSIGHTS_AUTHENTICATION_STRING",
]);

/** Template defaults that differ from the broker's on purpose. */
const azureDefaults = new Map([
  // The broker defaults to secret for local runs. On Azure nothing should need rotating.
  ["BROKER_CLIENT_CREDENTIAL", "federated"],
]);

/** A configuration that loads. Each default check adds one setting to it. */
const minimalEnvironment: Record<string, string> = {
  BROKER_CLIENT_ID: "6731de76-14a6-49ae-97bc-6eba6914391e",
  BROKER_CLIENT_SECRET: "client-secret-value",
  BROKER_REDIRECT_URI: "https://broker.example/api/auth/callback",
  TABLES_ENDPOINT: "https://acct.table.core.windows.net",
  KEY_VAULT_URL: "https://vault.vault.azure.net",
};

const known = new Set<string>(settingNames);

function appSettings(file: BicepFile): BicepObject {
  const resource = resourceDeclarations(file).find((candidate) =>
    candidate.type.startsWith("Microsoft.Web/sites/config@"),
  );
  if (resource === undefined)
    throw new Error(`no app settings in ${file.path}`);
  const properties = bodyOf(file, resource.start).get("properties");
  if (!(properties instanceof BicepObject))
    throw new Error("app settings are not an object");
  return properties;
}

function mainVar(name: string): BicepValue | undefined {
  const found = topLevelDeclarations(main).find(
    (declaration) => declaration.keyword === "var" && declaration.name === name,
  );
  if (found === undefined) throw new Error(`main.bicep has no var ${name}`);
  return declaredValue(main, found);
}

function mainParams(): Map<string, BicepValue | undefined> {
  return new Map(
    topLevelDeclarations(main)
      .filter((declaration) => declaration.keyword === "param")
      .map((param) => [param.name, declaredValue(main, param)]),
  );
}

/** Params main.bicep passes to the app settings module, by module param name. */
function appSettingsModuleParams(): BicepObject {
  const call = topLevelDeclarations(main).find(
    (declaration) =>
      declaration.keyword === "module" && declaration.name === "appSettings",
  );
  if (call === undefined)
    throw new Error("main.bicep does not call the app settings module");
  const params = bodyOf(main, call.start).get("params");
  if (!(params instanceof BicepObject))
    throw new Error("the module call has no params");
  return params;
}

/** The main.bicep param an app setting comes from, when its value is `name` or `string(name)`. */
function sourceParam(value: BicepValue): string | undefined {
  if (!(value instanceof BicepExpression)) return undefined;
  const moduleParam = /^(?:string\()?([A-Za-z_]\w*)\)?$/.exec(value.text)?.[1];
  if (moduleParam === undefined) return undefined;
  const passed = appSettingsModuleParams().get(moduleParam);
  if (!(passed instanceof BicepExpression) || passed.text !== moduleParam)
    return undefined;
  return mainParams().has(moduleParam) ? moduleParam : undefined;
}

function localValues(): Record<string, string> {
  const path = join(root, "local.settings.example.json");
  const example = JSON.parse(readFileSync(path, "utf8")) as {
    Values: Record<string, string>;
  };
  return example.Values;
}

function textOf(value: BicepValue | undefined): string {
  return value instanceof BicepExpression ? value.text : String(value);
}

describe("deployment settings", () => {
  const settings = appSettings(appSettingsModule);
  const setOnAzure = [...settings.members.keys()];

  it("Bicep sets every broker setting", () => {
    const missing = settingNames.filter(
      (name) => !notSetOnAzure.has(name) && !settings.members.has(name),
    );
    expect(
      missing,
      "settings missing from infra/modules/appSettings.bicep",
    ).toEqual([]);
  });

  it("Bicep sets no unknown setting", () => {
    const unknown = setOnAzure.filter(
      (name) => !known.has(name) && !hostSettings.has(name),
    );
    expect(unknown, "settings shared/config.ts does not read").toEqual([]);
  });

  it("settings left unset on Azure exist", () => {
    for (const [name, purpose] of notSetOnAzure) {
      expect(known.has(name), `${name} is a broker setting`).toBe(true);
      expect(settings.members.has(name), `${name} is only for ${purpose}`).toBe(
        false,
      );
    }
  });

  it("local example lists every setting", () => {
    const values = localValues();
    expect(settingNames.filter((name) => !(name in values))).toEqual([]);
  });

  it("local example lists no unknown setting", () => {
    const names = Object.keys(localValues());
    expect(
      names.filter((name) => !known.has(name) && !hostSettings.has(name)),
    ).toEqual([]);
  });

  it("local example is a valid configuration", () => {
    expect(() => loadConfig(localValues())).not.toThrow();
  });

  it("template defaults are the broker's defaults", () => {
    // A default is right when the configuration that loadConfig builds with it equals the one
    // it builds without the setting.
    const params = mainParams();
    const baseline = loadConfig(minimalEnvironment);
    let compared = 0;

    for (const [name, entry] of settings.members) {
      if (!known.has(name)) continue;
      const param = sourceParam(entry.value);
      if (param === undefined) continue;
      const fallback = params.get(param);
      expect(
        fallback,
        `main.bicep param ${param} (${name}) has a default`,
      ).toBeDefined();

      const deviation = azureDefaults.get(name);
      if (deviation !== undefined) {
        expect(fallback, `${name} on Azure`).toBe(deviation);
        continue;
      }
      const withDefault = loadConfig({
        ...minimalEnvironment,
        [name]: String(fallback),
      });
      expect(
        withDefault,
        `${name} = ${String(fallback)} is the broker's default`,
      ).toEqual(baseline);
      compared += 1;
    }
    expect(
      compared,
      "settings whose default was compared",
    ).toBeGreaterThanOrEqual(18);
  });

  it("cloud values match the broker's cloud profiles", () => {
    const profiles = mainVar("cloudProfiles");
    const allowed = main.source.match(
      /@allowed\(\[\s*'public'\s*'usgov'\s*\]\)\nparam brokerCloud string/,
    );

    expect(allowed, "brokerCloud allows the broker's clouds").not.toBeNull();
    expect(
      profiles instanceof BicepObject ? [...profiles.members.keys()] : [],
    ).toEqual([...cloudNames]);
    for (const name of cloudNames) {
      const profile = cloudProfiles[name];
      const bicep =
        profiles instanceof BicepObject ? profiles.get(name) : undefined;
      const outlookResource =
        bicep instanceof BicepObject ? bicep.get("outlookResource") : "";
      const audience =
        bicep instanceof BicepObject ? bicep.get("tokenExchangeAudience") : "";
      const scopes = textOf(mainVar("mailScopes"))
        .replace(/^'|'$/g, "")
        .replaceAll("${outlookResource}", String(outlookResource));

      expect(outlookResource, `${name} Outlook resource`).toBe(
        profile.outlookResource,
      );
      expect(audience, `${name} token exchange audience`).toBe(
        profile.tokenExchangeAudience,
      );
      expect(scopes, `${name} mail scopes`).toBe(mailScopes(profile).join(" "));
    }
    expect(textOf(settings.get("BROKER_MAIL_SCOPES"))).toBe("mailScopes");
  });

  it("URLs follow the host's routes", () => {
    const host = JSON.parse(readFileSync(join(root, "host.json"), "utf8")) as {
      extensions?: { http?: { routePrefix?: string } };
    };

    expect(host.extensions?.http?.routePrefix).toBe("");
    expect(setOnAzure.filter((name) => /routePrefix/i.test(name))).toEqual([]);
    expect(textOf(mainVar("redirectUri"))).toBe(
      `'https://\${brokerHostName}/${callbackRoute.route}'`,
    );
    expect(textOf(mainVar("pageUrl"))).toBe(
      `'https://\${brokerHostName}/${pageRoute.route}'`,
    );
    expect(textOf(settings.get("BROKER_REDIRECT_URI"))).toBe("redirectUri");
  });
});

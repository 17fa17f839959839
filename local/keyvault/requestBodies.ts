// Parsing of the JSON bodies of set secret (PUT) and update secret (PATCH). JSON null counts
// as an absent property. Read-only attributes (created, updated, recoveryLevel) are ignored.

import { badParameter, invalidProperty, valueTooLarge } from "./errors.js";
import type { SecretInput, SecretUpdate } from "./store.js";

/** Maximum size of a secret value in UTF-8 bytes (25 KB), as Key Vault documents it. */
export const maxValueBytes = 25_600;

/** Maximum length of contentType in characters, as Key Vault documents it. */
export const maxContentTypeLength = 255;

type JsonObject = Record<string, unknown>;

function isJsonObject(value: unknown): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function parseJsonObject(body: string): JsonObject {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    throw badParameter("The request body is not valid JSON.");
  }
  if (!isJsonObject(parsed)) {
    throw badParameter("The request body must be a JSON object.");
  }
  return parsed;
}

function readOptionalString(
  object: JsonObject,
  property: string,
  path: string,
): string | undefined {
  const value = object[property];
  if (value === undefined || value === null) {
    return undefined;
  }
  if (typeof value !== "string") {
    throw invalidProperty(path);
  }
  return value;
}

function readContentType(object: JsonObject): string | undefined {
  const contentType = readOptionalString(object, "contentType", "contentType");
  if (contentType !== undefined && contentType.length > maxContentTypeLength) {
    throw invalidProperty("contentType");
  }
  return contentType;
}

function readTags(object: JsonObject): Record<string, string> | undefined {
  const tags = object["tags"];
  if (tags === undefined || tags === null) {
    return undefined;
  }
  if (!isJsonObject(tags)) {
    throw invalidProperty("tags");
  }

  const result: Record<string, string> = {};
  for (const [key, value] of Object.entries(tags)) {
    if (typeof value !== "string") {
      throw invalidProperty(`tags.${key}`);
    }
    result[key] = value;
  }
  return result;
}

interface AttributesInput {
  enabled?: boolean;
  notBefore?: number;
  expires?: number;
}

function readUnixTime(
  attributes: JsonObject,
  property: "nbf" | "exp",
): number | undefined {
  const value = attributes[property];
  if (value === undefined || value === null) {
    return undefined;
  }
  if (typeof value !== "number" || !Number.isInteger(value)) {
    throw invalidProperty(`attributes.${property}`);
  }
  return value;
}

function readAttributes(object: JsonObject): AttributesInput {
  const attributes = object["attributes"];
  if (attributes === undefined || attributes === null) {
    return {};
  }
  if (!isJsonObject(attributes)) {
    throw invalidProperty("attributes");
  }

  const enabled = attributes["enabled"];
  if (
    enabled !== undefined &&
    enabled !== null &&
    typeof enabled !== "boolean"
  ) {
    throw invalidProperty("attributes.enabled");
  }
  return {
    enabled: typeof enabled === "boolean" ? enabled : undefined,
    notBefore: readUnixTime(attributes, "nbf"),
    expires: readUnixTime(attributes, "exp"),
  };
}

/** Parses a set secret body: `{ value, contentType?, tags?, attributes? }`. */
export function parseSetSecretBody(body: string): SecretInput {
  const object = parseJsonObject(body);
  const value = readOptionalString(object, "value", "value");
  if (value === undefined) {
    throw invalidProperty("value");
  }
  if (Buffer.byteLength(value, "utf8") > maxValueBytes) {
    throw valueTooLarge(maxValueBytes);
  }

  return {
    value,
    contentType: readContentType(object),
    tags: readTags(object),
    ...readAttributes(object),
  };
}

/** Parses an update secret body: `{ contentType?, tags?, attributes? }`. */
export function parseUpdateSecretBody(body: string): SecretUpdate {
  const object = parseJsonObject(body);
  return {
    contentType: readContentType(object),
    tags: readTags(object),
    ...readAttributes(object),
  };
}

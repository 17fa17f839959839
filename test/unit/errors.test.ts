import { describe, expect, it } from "vitest";

import {
  BrokerError,
  errorCatalogue,
  toErrorBody,
  type ErrorCode,
} from "../../shared/errors.js";

const codes = Object.keys(errorCatalogue) as ErrorCode[];

describe("error catalogue", () => {
  it("catalogue statuses are HTTP errors", () => {
    for (const code of codes) {
      const { status } = errorCatalogue[code];
      expect(status, code).toBeGreaterThanOrEqual(400);
      expect(status, code).toBeLessThanOrEqual(599);
    }
  });

  it("catalogue messages are not empty", () => {
    for (const code of codes) {
      expect(errorCatalogue[code].message.trim(), code).not.toBe("");
    }
  });

  it("catalogue codes are snake_case", () => {
    for (const code of codes) {
      expect(code).toMatch(/^[a-z]+(_[a-z]+)*$/);
    }
  });

  it("broker error takes status and message from catalogue", () => {
    for (const code of codes) {
      const error = new BrokerError(code);
      expect(error.status, code).toBe(errorCatalogue[code].status);
      expect(error.message, code).toBe(errorCatalogue[code].message);
    }
  });

  it("broker error keeps a custom message", () => {
    const error = new BrokerError("invalid_email", "Enter a full address.");

    expect(error.message).toBe("Enter a full address.");
    expect(error.status).toBe(400);
  });
});

describe("toErrorBody", () => {
  it("error body has only code and message by default", () => {
    const body = toErrorBody(new BrokerError("not_found"));

    expect(body).toEqual({ code: "not_found", message: "Not found." });
    expect(Object.keys(body).sort()).toEqual(["code", "message"]);
  });

  it("error body includes field when set", () => {
    const body = toErrorBody(
      new BrokerError("invalid_site_url", undefined, { field: "siteUrl" }),
    );

    expect(body.field).toBe("siteUrl");
    expect(Object.keys(body).sort()).toEqual(["code", "field", "message"]);
  });

  it("error body includes aadsts when set", () => {
    const body = toErrorBody(
      new BrokerError("reauth_required", undefined, { aadsts: 700082 }),
    );

    expect(body.aadsts).toBe(700082);
    expect(Object.keys(body).sort()).toEqual(["aadsts", "code", "message"]);
  });

  it("error body includes remedy when set", () => {
    const body = toErrorBody(
      new BrokerError("grant_revoked", undefined, { remedy: "Sign in again." }),
    );

    expect(body.remedy).toBe("Sign in again.");
    expect(Object.keys(body).sort()).toEqual(["code", "message", "remedy"]);
  });

  it("error body never includes cause or retry delay", () => {
    const secret = "refresh-token-value-0123456789";
    const error = new BrokerError("identity_unavailable", undefined, {
      cause: new Error(`request failed with ${secret}`),
      retryAfterSeconds: 30,
    });

    const body = toErrorBody(error);

    expect(error.cause).toBeInstanceOf(Error);
    expect(Object.keys(body).sort()).toEqual(["code", "message"]);
    expect(JSON.stringify(body)).not.toContain(secret);
  });
});

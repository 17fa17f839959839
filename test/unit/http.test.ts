import { HttpRequest } from "@azure/functions";
import { describe, expect, it, vi } from "vitest";

import { BrokerError } from "../../shared/errors.js";
import {
  describeCause,
  readBearerToken,
  readJsonObject,
} from "../../shared/http.js";

const url = "https://broker.example/api/auth/start";

function postRequest(
  body: string,
  headers: Record<string, string> = { "content-type": "text/plain" },
): HttpRequest {
  return new HttpRequest({
    method: "POST",
    url,
    headers,
    body: { string: body },
  });
}

function requestWithHeaders(headers: Record<string, string>): HttpRequest {
  return new HttpRequest({ method: "POST", url, headers });
}

async function captureBodyError(
  request: HttpRequest,
  options: { optional?: boolean } = {},
): Promise<BrokerError> {
  try {
    await readJsonObject(request, options);
  } catch (error) {
    expect(error).toBeInstanceOf(BrokerError);
    return error as BrokerError;
  }
  throw new Error("Expected readJsonObject to reject the body, but it passed");
}

describe("readJsonObject", () => {
  it("body parses JSON sent as text/plain", async () => {
    const request = postRequest('{"siteUrl":"https://mysite.equisonline.com"}');

    await expect(readJsonObject(request)).resolves.toEqual({
      siteUrl: "https://mysite.equisonline.com",
    });
  });

  it("body parses JSON with no content type", async () => {
    const request = postRequest('{"a":1}', {});

    await expect(readJsonObject(request)).resolves.toEqual({ a: 1 });
  });

  it("body rejects non-object JSON and malformed text", async () => {
    const cases: Record<string, string> = {
      malformed: '{"siteUrl":',
      array: '["https://mysite.equisonline.com"]',
      string: '"https://mysite.equisonline.com"',
      number: "42",
      null: "null",
      empty: "",
      whitespace: "  \n ",
    };

    for (const [name, body] of Object.entries(cases)) {
      const error = await captureBodyError(postRequest(body));
      expect(error.code, name).toBe("invalid_body");
      expect(error.status, name).toBe(400);
    }
  });

  it("body returns undefined when empty and optional", async () => {
    await expect(
      readJsonObject(postRequest(""), { optional: true }),
    ).resolves.toBeUndefined();
  });

  it("body returns undefined when missing and optional", async () => {
    const request = new HttpRequest({ method: "POST", url });

    await expect(
      readJsonObject(request, { optional: true }),
    ).resolves.toBeUndefined();
  });

  it("optional body still rejects malformed JSON", async () => {
    const error = await captureBodyError(postRequest("{"), { optional: true });

    expect(error.code).toBe("invalid_body");
  });

  it("body is read only once", async () => {
    const request = postRequest('{"a":1}');
    const text = vi.spyOn(request, "text");
    const json = vi.spyOn(request, "json");

    await expect(readJsonObject(request)).resolves.toEqual({ a: 1 });
    expect(text).toHaveBeenCalledTimes(1);
    expect(json).not.toHaveBeenCalled();
  });
});

describe("readBearerToken", () => {
  it("bearer token is read in any header case", () => {
    for (const name of ["Authorization", "authorization", "AUTHORIZATION"]) {
      const request = requestWithHeaders({ [name]: "Bearer m365b_token" });
      expect(readBearerToken(request), name).toBe("m365b_token");
    }
  });

  it("bearer scheme is case-insensitive", () => {
    const request = requestWithHeaders({ authorization: "bearer m365b_token" });

    expect(readBearerToken(request)).toBe("m365b_token");
  });

  it("bearer token rejects other schemes", () => {
    for (const value of [
      "Basic dXNlcjpwYXNz",
      "Token m365b_token",
      "m365b_token",
    ]) {
      const request = requestWithHeaders({ authorization: value });
      expect(readBearerToken(request), value).toBeUndefined();
    }
  });

  it("bearer token rejects missing values", () => {
    for (const value of ["Bearer", "Bearer ", ""]) {
      const request = requestWithHeaders({ authorization: value });
      expect(readBearerToken(request), JSON.stringify(value)).toBeUndefined();
    }
  });

  it("bearer token keeps a value with spaces whole", () => {
    const request = requestWithHeaders({ authorization: "Bearer a b" });
    expect(readBearerToken(request)).toBe("a b");
  });

  it("bearer token is undefined without header", () => {
    expect(readBearerToken(requestWithHeaders({}))).toBeUndefined();
  });
});

describe("describeCause", () => {
  const fakeToken = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.fake-token-value";

  it("cause description omits error message", () => {
    const cause = new Error(`refresh failed for token ${fakeToken}`);

    const description = describeCause(cause);

    expect(description).toBe("Error");
    expect(description).not.toContain(fakeToken);
  });

  it("cause description names kind, code and status", () => {
    const cause = Object.assign(new TypeError(`bad ${fakeToken}`), {
      code: "ECONNRESET",
      statusCode: 503,
    });

    const description = describeCause(cause);

    expect(description).toBe("TypeError ECONNRESET 503");
    expect(description).not.toContain(fakeToken);
  });

  it("cause description prefers errorCode and statusCode", () => {
    const cause = Object.assign(new Error(fakeToken), {
      errorCode: "invalid_grant",
      code: "other",
      statusCode: 400,
      status: 500,
    });

    expect(describeCause(cause)).toBe("Error invalid_grant 400");
  });

  it("cause description names non-error causes by type", () => {
    expect(describeCause(fakeToken)).toBe("string");
    expect(describeCause({ message: fakeToken })).toBe("object");
    expect(describeCause(undefined)).toBeUndefined();
  });
});

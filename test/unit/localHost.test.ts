import functionsLibrary, {
  type HttpHandler,
  type HttpResponseInit,
} from "@azure/functions";
import { describe, expect, it } from "vitest";

import type { RouteDefinition } from "../../functions/route.js";
import type { Broker } from "../../shared/broker.js";
import { expiredCookie, sessionCookie } from "../../shared/cookies.js";
import {
  compileRouteTemplate,
  serializeCookie,
  startLocalHost,
} from "../../local/host.js";

const { HttpResponse } = functionsLibrary;

describe("compileRouteTemplate", () => {
  it("route matches its path with optional slash", () => {
    const { pattern, parameterNames } = compileRouteTemplate("api/auth/start");

    expect(pattern.test("/api/auth/start")).toBe(true);
    expect(pattern.test("/api/auth/start/")).toBe(true);
    expect(parameterNames).toEqual([]);
  });

  it("route ignores case", () => {
    const { pattern } = compileRouteTemplate("api/auth/start");

    expect(pattern.test("/API/Auth/Start")).toBe(true);
  });

  it("route rejects longer or other paths", () => {
    const { pattern } = compileRouteTemplate("api/auth/start");

    for (const path of [
      "/api/auth/starts",
      "/api/auth/start/x",
      "/api/auth",
      "/xapi/auth/start",
      "api/auth/start",
    ]) {
      expect(pattern.test(path), path).toBe(false);
    }
  });

  it("route escapes literal dots", () => {
    const { pattern } = compileRouteTemplate("api/auth/page.js");

    expect(pattern.test("/api/auth/page.js")).toBe(true);
    expect(pattern.test("/api/auth/pagexjs")).toBe(false);
  });

  it("maxlength(0) route matches only root", () => {
    const { pattern, parameterNames } = compileRouteTemplate(
      "{ignored:maxlength(0)?}",
    );

    expect(pattern.test("/")).toBe(true);
    expect(parameterNames).toEqual(["ignored"]);
    for (const path of ["/x", "/index.html", "/api", "/api/auth/start"]) {
      expect(pattern.test(path), path).toBe(false);
    }
  });

  it("route captures a named parameter", () => {
    const { pattern, parameterNames } = compileRouteTemplate(
      "api/auth/assets/{name}",
    );

    const match = pattern.exec("/api/auth/assets/page.js");

    expect(parameterNames).toEqual(["name"]);
    expect(match?.[1]).toBe("page.js");
  });

  it("route parameter needs one segment", () => {
    const { pattern } = compileRouteTemplate("api/auth/assets/{name}");

    expect(pattern.test("/api/auth/assets/")).toBe(false);
    expect(pattern.test("/api/auth/assets/a/b")).toBe(false);
  });

  it("optional parameter may be absent", () => {
    const { pattern } = compileRouteTemplate("api/auth/assets/{name?}");

    expect(pattern.test("/api/auth/assets/")).toBe(true);
    expect(pattern.exec("/api/auth/assets/app.css")?.[1]).toBe("app.css");
  });
});

describe("serializeCookie", () => {
  it("cookie writes every attribute", () => {
    const header = serializeCookie({
      name: "m365b_browser",
      value: "value123",
      path: "/api/auth",
      maxAge: 600,
      secure: true,
      httpOnly: true,
      sameSite: "Lax",
    });

    expect(header).toBe(
      "m365b_browser=value123; Path=/api/auth; Max-Age=600; Secure; HttpOnly; SameSite=Lax",
    );
  });

  it("cookie writes session cookie attributes", () => {
    const header = serializeCookie(sessionCookie("m365b_signin", "abc", 900));
    const attributes = header.split("; ");

    expect(attributes[0]).toBe("m365b_signin=abc");
    expect(attributes).toContain("Path=/api/auth");
    expect(attributes).toContain("Max-Age=900");
    expect(attributes).toContain("Secure");
    expect(attributes).toContain("HttpOnly");
    expect(attributes).toContain("SameSite=Lax");
  });

  it("cookie writes zero max age", () => {
    const header = serializeCookie(expiredCookie("m365b_browser"));

    expect(header.split("; ")).toContain("Max-Age=0");
    expect(header.startsWith("m365b_browser=;")).toBe(true);
  });

  it("cookie omits unset attributes", () => {
    const header = serializeCookie({ name: "a", value: "b" });

    expect(header).toBe("a=b");
  });

  it("cookie writes domain and expiry", () => {
    const header = serializeCookie({
      name: "a",
      value: "b",
      domain: "broker.example",
      expires: new Date(Date.UTC(2030, 0, 2, 3, 4, 5)),
    });

    expect(header).toBe(
      "a=b; Domain=broker.example; Expires=Wed, 02 Jan 2030 03:04:05 GMT",
    );
  });
});

describe("local host responses", () => {
  const results: Record<string, HttpResponseInit> = {
    plain: { status: 201, jsonBody: { a: 1, text: "é" } },
    headers: {
      jsonBody: [1, 2],
      headers: { "Cache-Control": "no-store", "X-Extra": "yes" },
    },
    typed: {
      jsonBody: { a: 1 },
      headers: { "Content-Type": "application/problem+json" },
    },
    empty: { status: 204, jsonBody: { dropped: true } },
    null: { jsonBody: null },
    cookie: {
      jsonBody: { a: 1 },
      cookies: [{ name: "c", value: "v", httpOnly: true }],
    },
  };

  /** Serves each result twice: as returned, and wrapped in the library's HttpResponse. */
  function routesFor(name: string): RouteDefinition[] {
    const result = results[name] as HttpResponseInit;
    const route = (path: string, handler: HttpHandler): RouteDefinition => ({
      name: path,
      methods: ["GET"],
      route: path,
      authLevel: "anonymous",
      createHandler: () => handler,
    });
    return [
      route("init", async () => result),
      route("response", async () => new HttpResponse(result)),
    ];
  }

  async function fetchBoth(name: string) {
    const host = await startLocalHost({
      broker: {} as Broker,
      routes: routesFor(name),
    });
    try {
      const read = async (path: string) => {
        const response = await fetch(`${host.url}/${path}`);
        const headers = Object.fromEntries(
          [...response.headers].filter(
            ([header]) =>
              !["date", "connection", "keep-alive"].includes(header),
          ),
        );
        return {
          status: response.status,
          headers,
          body: await response.text(),
        };
      };
      return { init: await read("init"), response: await read("response") };
    } finally {
      await host.close();
    }
  }

  it.each(Object.keys(results))(
    "a %s result is written as the library's HttpResponse writes it",
    async (name) => {
      const { init, response } = await fetchBoth(name);
      expect(init).toEqual(response);
    },
  );
});

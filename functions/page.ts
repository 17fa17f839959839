import type {
  HttpHandler,
  HttpRequest,
  HttpResponseInit,
  InvocationContext,
} from "@azure/functions";
import { errorResponse } from "../shared/http.js";
import { BrokerError } from "../shared/errors.js";
import {
  pageFileResponse,
  redirectResponse,
  signInPagePath,
} from "../shared/pages.js";
import type { RouteDefinition } from "./route.js";

/** GET /microsoft365_oauth.html: the sign-in page. */
export function createPageHandler(): HttpHandler {
  return async function page(
    _request: HttpRequest,
    _context: InvocationContext,
  ): Promise<HttpResponseInit> {
    return (
      pageFileResponse("microsoft365_oauth.html") ??
      errorResponse(new BrokerError("not_found"))
    );
  };
}

const pageAssets = new Set(["page.js", "page.css", "callback.js"]);

/** GET /api/auth/assets/{name}: the page's scripts and style sheet. */
export function createPageAssetHandler(): HttpHandler {
  return async function pageAsset(
    request: HttpRequest,
    _context: InvocationContext,
  ): Promise<HttpResponseInit> {
    const name = request.params.name ?? "";
    const isAsset = pageAssets.has(name);
    return (
      (isAsset ? pageFileResponse(name) : undefined) ??
      errorResponse(new BrokerError("not_found"))
    );
  };
}

/** GET /: sends the browser to the sign-in page. */
export function createRootHandler(): HttpHandler {
  return async function root(
    _request: HttpRequest,
    _context: InvocationContext,
  ): Promise<HttpResponseInit> {
    return redirectResponse(signInPagePath);
  };
}

export const pageRoute: RouteDefinition = {
  name: "page",
  methods: ["GET"],
  route: "microsoft365_oauth.html",
  authLevel: "anonymous",
  createHandler: createPageHandler,
};

export const pageAssetRoute: RouteDefinition = {
  name: "pageAsset",
  methods: ["GET"],
  route: "api/auth/assets/{name}",
  authLevel: "anonymous",
  createHandler: createPageAssetHandler,
};

export const rootRoute: RouteDefinition = {
  name: "root",
  methods: ["GET"],
  // The Functions host allows no empty route; an optional parameter of length 0 matches only "/".
  route: "{ignored:maxlength(0)?}",
  authLevel: "anonymous",
  createHandler: createRootHandler,
};

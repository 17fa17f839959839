import { authResultRoute } from "./authResult.js";
import { callbackRoute } from "./callback.js";
import { healthRoute } from "./health.js";
import { pageAssetRoute, pageRoute, rootRoute } from "./page.js";
import type { RouteDefinition } from "./route.js";
import { startAuthRoute } from "./startAuth.js";
import { tokenExchangeRoute } from "./tokenExchange.js";

/** Every HTTP function, registered with the Functions host by index.ts and served by the local host. */
export const routes: RouteDefinition[] = [
  startAuthRoute,
  callbackRoute,
  authResultRoute,
  tokenExchangeRoute,
  healthRoute,
  pageRoute,
  pageAssetRoute,
  rootRoute,
];

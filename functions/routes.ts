import { authResultRoute } from "./authResult.js";
import { callbackRoute } from "./callback.js";
import { healthRoute } from "./health.js";
import { pageAssetRoute, pageRoute, rootRoute } from "./page.js";
import type { RouteDefinition } from "./route.js";
import { startAuthRoute } from "./startAuth.js";
import { newIdentifierRoute } from "./newIdentifier.js";
import { revokeTokenRoute } from "./revokeToken.js";
import { tokenExchangeRoute } from "./tokenExchange.js";
import { tokenStatusRoute } from "./tokenStatus.js";

/** Every HTTP function, registered with the Functions host by index.ts and served by the local host. */
export const routes: RouteDefinition[] = [
  startAuthRoute,
  callbackRoute,
  authResultRoute,
  newIdentifierRoute,
  tokenExchangeRoute,
  tokenStatusRoute,
  revokeTokenRoute,
  healthRoute,
  pageRoute,
  pageAssetRoute,
  rootRoute,
];

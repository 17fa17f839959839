/**
 * Entry point of the function app (package.json `main`). Reading the configuration here makes the
 * host fail at start-up, with every bad setting named, instead of at the first request.
 */
import { app } from "@azure/functions";
import { createBroker } from "../shared/broker.js";
import { loadConfig } from "../shared/config.js";
import { createRefreshTimerHandler, refreshTimerName } from "./refreshTimer.js";
import { routes } from "./routes.js";

const config = loadConfig(process.env);
const broker = createBroker(config);

app.setup({ enableHttpStream: false });

for (const route of routes) {
  app.http(route.name, {
    methods: route.methods,
    route: route.route,
    authLevel: route.authLevel,
    handler: route.createHandler(broker),
  });
}

app.timer(refreshTimerName, {
  schedule: config.refresh.schedule,
  runOnStartup: false,
  useMonitor: true,
  handler: createRefreshTimerHandler(broker),
});

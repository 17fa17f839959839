import type { HttpHandler, HttpMethod } from "@azure/functions";
import type { Broker } from "../shared/broker.js";

/**
 * One HTTP function: its registration and how to build its handler. The Functions host and the
 * local host both serve the same list of these.
 */
export interface RouteDefinition {
  name: string;
  methods: HttpMethod[];
  /** Route template as the Functions host reads it; the host's route prefix is empty. */
  route: string;
  authLevel: "anonymous" | "function" | "admin";
  createHandler(broker: Broker): HttpHandler;
}

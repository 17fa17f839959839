// State shared by the request handlers of one stand-in instance.

import type { JSONWebKeySet } from "jose";
import type { AccountDirectory } from "./accounts.js";
import type { RegisteredClient } from "./clientAssertion.js";
import type { ControlState } from "./control.js";
import type { StateStore } from "./store.js";
import type { SigningKey } from "./tokens.js";

export interface IdentityContext {
  /** "https://127.0.0.1:PORT", the authority host and the base of every issuer. */
  url: string;
  clients: Map<string, RegisteredClient>;
  /** Key sets of trusted federated issuers, by issuer. */
  issuerKeys: Map<string, JSONWebKeySet>;
  directory: AccountDirectory;
  store: StateStore;
  key: SigningKey;
  control: ControlState;
  /** Milliseconds since the epoch. */
  now: () => number;
  /** Receives one line for each error response. */
  log: (message: string) => void;
}

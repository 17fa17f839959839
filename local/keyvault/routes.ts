// Mapping of method and path to Key Vault secrets operations. Every path may end with a slash,
// because SecretClient sends GET /secrets/{name}/ for the latest version.
// NOTE: backup and restore (POST /secrets/{name}/backup, POST /secrets/restore) are not served.

export type VaultRoute =
  | { operation: "setSecret"; name: string }
  /** An empty version means the current version. */
  | { operation: "getSecret"; name: string; version: string }
  | { operation: "listVersions"; name: string }
  | { operation: "listSecrets" }
  | { operation: "updateSecret"; name: string; version: string }
  | { operation: "deleteSecret"; name: string }
  | { operation: "getDeletedSecret"; name: string }
  | { operation: "listDeletedSecrets" }
  | { operation: "purgeDeletedSecret"; name: string }
  | { operation: "recoverDeletedSecret"; name: string };

function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    // An undecodable segment keeps its "%" and so fails the name check later.
    return segment;
  }
}

function pathSegments(pathname: string): string[] {
  const segments = pathname.split("/").slice(1).map(decodeSegment);
  if (segments.length > 1 && segments.at(-1) === "") {
    segments.pop();
  }
  return segments;
}

function matchSecretsRoute(
  method: string,
  segments: string[],
): VaultRoute | undefined {
  const [, name, child] = segments;
  if (name === undefined) {
    return method === "GET" ? { operation: "listSecrets" } : undefined;
  }

  if (child === undefined) {
    switch (method) {
      case "PUT":
        return { operation: "setSecret", name };
      case "GET":
        return { operation: "getSecret", name, version: "" };
      case "PATCH":
        return { operation: "updateSecret", name, version: "" };
      case "DELETE":
        return { operation: "deleteSecret", name };
      default:
        return undefined;
    }
  }

  if (segments.length > 3) {
    return undefined;
  }
  if (method === "GET") {
    return child === "versions"
      ? { operation: "listVersions", name }
      : { operation: "getSecret", name, version: child };
  }
  return method === "PATCH"
    ? { operation: "updateSecret", name, version: child }
    : undefined;
}

function matchDeletedSecretsRoute(
  method: string,
  segments: string[],
): VaultRoute | undefined {
  const [, name, child] = segments;
  if (name === undefined) {
    return method === "GET" ? { operation: "listDeletedSecrets" } : undefined;
  }

  if (child === undefined) {
    if (method === "GET") {
      return { operation: "getDeletedSecret", name };
    }
    return method === "DELETE"
      ? { operation: "purgeDeletedSecret", name }
      : undefined;
  }

  if (segments.length === 3 && child === "recover" && method === "POST") {
    return { operation: "recoverDeletedSecret", name };
  }
  return undefined;
}

/** Returns the operation that `method` and `pathname` address, or undefined when none does. */
export function matchRoute(
  method: string,
  pathname: string,
): VaultRoute | undefined {
  const segments = pathSegments(pathname);
  switch (segments[0]) {
    case "secrets":
      return matchSecretsRoute(method, segments);
    case "deletedsecrets":
      return matchDeletedSecretsRoute(method, segments);
    default:
      return undefined;
  }
}

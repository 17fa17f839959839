// Error codes and messages of the Key Vault secrets REST API. Unless a comment states otherwise,
// the wording matches responses of the real service in the Azure SDK for JavaScript test recordings.

/** Error response body of Key Vault: `{ "error": { "code", "message", "innererror"? } }`. */
export interface KeyVaultErrorBody {
  error: {
    code: string;
    message: string;
    innererror?: { code: string };
  };
}

/** Failure of a Key Vault operation, carrying the HTTP status and the service's error code. */
export class KeyVaultError extends Error {
  readonly status: number;
  readonly code: string;
  readonly innerCode: string | undefined;

  constructor(
    status: number,
    code: string,
    message: string,
    innerCode?: string,
  ) {
    super(message);
    this.name = "KeyVaultError";
    this.status = status;
    this.code = code;
    this.innerCode = innerCode;
  }

  toBody(): KeyVaultErrorBody {
    const body: KeyVaultErrorBody = {
      error: { code: this.code, message: this.message },
    };
    if (this.innerCode !== undefined) {
      body.error.innererror = { code: this.innerCode };
    }
    return body;
  }
}

export function unauthorized(): KeyVaultError {
  return new KeyVaultError(
    401,
    "Unauthorized",
    "Request is missing a Bearer or PoP token.",
  );
}

/**
 * Returns the 404 for a missing or soft-deleted secret. `identifier` is `name` or `name/version`.
 * The service's message ends with a help link, which is left out here.
 */
export function secretNotFound(identifier: string): KeyVaultError {
  return new KeyVaultError(
    404,
    "SecretNotFound",
    `A secret with (name/id) ${identifier} was not found in this key vault. ` +
      "If you recently deleted this secret you may be able to recover it using the correct recovery command.",
  );
}

export function deletedSecretNotFound(name: string): KeyVaultError {
  return new KeyVaultError(
    404,
    "SecretNotFound",
    `Deleted Secret not found: ${name}`,
  );
}

export function secretDisabled(): KeyVaultError {
  return new KeyVaultError(
    403,
    "Forbidden",
    "Operation get is not allowed on a disabled secret.",
    "SecretDisabled",
  );
}

export function secretDeletedButRecoverable(name: string): KeyVaultError {
  return new KeyVaultError(
    409,
    "Conflict",
    `Secret ${name} is currently in a deleted but recoverable state, and its name cannot be reused; ` +
      "in this state, the secret can only be recovered or purged.",
    "ObjectIsDeletedButRecoverable",
  );
}

export function invalidName(name: string): KeyVaultError {
  return new KeyVaultError(
    400,
    "BadParameter",
    `The request URI contains an invalid name: ${name}`,
  );
}

/**
 * Returns a 400 for an invalid body property. Recorded responses read "Property  has invalid
 * value" with an empty name, and this message fills the name in.
 */
export function invalidProperty(property: string): KeyVaultError {
  return new KeyVaultError(
    400,
    "BadParameter",
    `Property ${property} has invalid value`,
  );
}

// NOTE: the status and code of the errors below follow the service's conventions, but their
// wording is not taken from a recorded response.

export function badParameter(message: string): KeyVaultError {
  return new KeyVaultError(400, "BadParameter", message);
}

export function missingApiVersion(): KeyVaultError {
  return badParameter(
    "The request URI is missing the required 'api-version' query parameter.",
  );
}

export function valueTooLarge(maxBytes: number): KeyVaultError {
  return badParameter(
    `Secret is beyond the maximum permitted length of ${maxBytes} bytes.`,
  );
}

export function routeNotFound(method: string, path: string): KeyVaultError {
  return new KeyVaultError(
    404,
    "NotFound",
    `No Key Vault secrets operation matches ${method} ${path}.`,
  );
}

export function internalError(): KeyVaultError {
  return new KeyVaultError(
    500,
    "InternalServerError",
    "The service encountered an internal error.",
  );
}

/** Returns the error response of an injected fault with `status`. */
export function faultError(status: 429 | 503 | 500): KeyVaultError {
  switch (status) {
    case 429:
      return new KeyVaultError(
        429,
        "Throttled",
        "Request was not processed because too many requests were received.",
      );
    case 503:
      return new KeyVaultError(
        503,
        "ServiceUnavailable",
        "The service is temporarily unavailable.",
      );
    case 500:
      return internalError();
  }
}

// Paging of the list operations. Like Key Vault, a page contains at most `maxresults` items
// (1 to 25, default 25) and `nextLink` repeats the request with a `$skiptoken` that
// marks where the next page starts, or is null on the last page.

import { badParameter } from "./errors.js";

const defaultPageSize = 25;
const maxPageSize = 25;

export interface PageRequest {
  pageSize: number;
  /** `maxresults` exactly as the request sent it, repeated in nextLink. */
  maxResultsParameter: string | undefined;
  /** Key of the last item of the previous page, after which this page starts. */
  marker: string | undefined;
}

export interface Page<T> {
  items: T[];
  /** Marker for the next page, or undefined on the last page. */
  nextMarker: string | undefined;
}

interface SkipToken {
  NextMarker: string;
  TargetLocation: number;
}

// The token is base64url JSON in the shape Key Vault uses, so it stays opaque to clients.
function encodeSkipToken(marker: string): string {
  const token: SkipToken = { NextMarker: marker, TargetLocation: 0 };
  return Buffer.from(JSON.stringify(token)).toString("base64url");
}

function decodeSkipToken(token: string): string {
  try {
    const parsed: unknown = JSON.parse(
      Buffer.from(token, "base64url").toString("utf8"),
    );
    if (
      typeof parsed === "object" &&
      parsed !== null &&
      "NextMarker" in parsed
    ) {
      const marker = parsed.NextMarker;
      if (typeof marker === "string") {
        return marker;
      }
    }
  } catch {
    // Falls through to the error below.
  }
  throw badParameter(`The $skiptoken ${token} is invalid.`);
}

/** Reads `maxresults` and `$skiptoken`. Rejects a page size outside 1 to 25 and an invalid token. */
export function parsePageRequest(query: URLSearchParams): PageRequest {
  const maxResultsParameter = query.get("maxresults") ?? undefined;
  let pageSize = defaultPageSize;
  if (maxResultsParameter !== undefined) {
    pageSize = Number(maxResultsParameter);
    if (
      !/^\d+$/.test(maxResultsParameter) ||
      pageSize < 1 ||
      pageSize > maxPageSize
    ) {
      throw badParameter(
        `Invalid maxresults ${maxResultsParameter}: expected an integer from 1 to ${maxPageSize}.`,
      );
    }
  }

  const token = query.get("$skiptoken");
  const marker = token === null ? undefined : decodeSkipToken(token);
  return { pageSize, maxResultsParameter, marker };
}

/** Returns the page of `items` (sorted by `keyOf`) that follows the request's marker. */
export function takePage<T>(
  items: T[],
  keyOf: (item: T) => string,
  request: PageRequest,
): Page<T> {
  const marker = request.marker;
  const remaining =
    marker === undefined ? items : items.filter((item) => keyOf(item) > marker);
  const pageItems = remaining.slice(0, request.pageSize);
  const last = pageItems.at(-1);
  if (remaining.length <= request.pageSize || last === undefined) {
    return { items: pageItems, nextMarker: undefined };
  }
  return { items: pageItems, nextMarker: keyOf(last) };
}

/** Builds the nextLink for `path`, or returns null when `nextMarker` is undefined. */
export function buildNextLink(
  vaultUrl: string,
  path: string,
  apiVersion: string,
  request: PageRequest,
  nextMarker: string | undefined,
): string | null {
  if (nextMarker === undefined) {
    return null;
  }

  // Built by hand because URLSearchParams would encode "$skiptoken" as "%24skiptoken".
  let link = `${vaultUrl}${path}?api-version=${encodeURIComponent(apiVersion)}`;
  link += `&$skiptoken=${encodeSkipToken(nextMarker)}`;
  if (request.maxResultsParameter !== undefined) {
    link += `&maxresults=${encodeURIComponent(request.maxResultsParameter)}`;
  }
  return link;
}

import { describe, expect, it } from "vitest";
import {
  catalogueByAadsts,
  catalogueRows,
  classifyFailure,
  entryForReason,
} from "../../shared/failureCatalogue.js";

const entries = Object.entries(catalogueByAadsts).map(([aadsts, entry]) => ({
  aadsts: Number(aadsts),
  entry,
}));

function failure(error: string, aadsts?: number, transient = false) {
  return { error, aadsts, transient };
}

describe("failure catalogue", () => {
  it.each(entries)(
    "catalogue classifies AADSTS$aadsts by its number",
    ({ aadsts, entry }) => {
      for (const error of [
        "invalid_grant",
        "interaction_required",
        "invalid_client",
      ]) {
        const classified = classifyFailure(failure(error, aadsts));
        expect(classified.entry).toBe(entry);
        expect(classified.known).toBe(true);
      }
    },
  );

  it("catalogue names 90 days for AADSTS700082", () => {
    const { entry } = classifyFailure(failure("invalid_grant", 700082));

    expect(entry.kind).toBe("customer");
    expect(entry.reason).toBe("expired_by_inactivity");
    expect(entry.description).toContain("90 days without use");
  });

  it("catalogue names a password change for AADSTS50173", () => {
    const { entry } = classifyFailure(failure("invalid_grant", 50173));

    expect(entry.kind).toBe("customer");
    expect(entry.reason).toBe("grant_revoked_by_microsoft");
    expect(entry.description).toContain("password change");
  });

  it.each([
    { aadsts: 50076, reason: "mfa_required" },
    { aadsts: 50079, reason: "mfa_registration_required" },
    { aadsts: 53003, reason: "conditional_access_blocked" },
    { aadsts: 70043, reason: "sign_in_frequency_expired" },
  ])("catalogue gives AADSTS$aadsts its own reason", ({ aadsts, reason }) => {
    const { entry } = classifyFailure(failure("interaction_required", aadsts));

    expect(entry.kind).toBe("customer");
    expect(entry.reason).toBe(reason);
  });

  it.each([
    { aadsts: 7000215, reason: "client_secret_invalid" },
    { aadsts: 7000222, reason: "client_secret_expired" },
    { aadsts: 700016, reason: "app_not_found" },
  ])("catalogue blames the app for AADSTS$aadsts", ({ aadsts, reason }) => {
    const { entry } = classifyFailure(failure("invalid_client", aadsts));

    expect(entry.kind).toBe("operator");
    expect(entry.reason).toBe(reason);
    expect(entry.remedy).toMatch(/BROKER_CLIENT_(ID|SECRET)/);
  });

  it.each([
    { error: "invalid_client", reason: "client_credential_rejected" },
    { error: "unauthorized_client", reason: "client_not_authorized" },
  ])("catalogue blames the app for $error", ({ error, reason }) => {
    const classified = classifyFailure(failure(error));

    expect(classified.entry.kind).toBe("operator");
    expect(classified.entry.reason).toBe(reason);
    expect(classified.known).toBe(true);
  });

  it.each([
    { error: "interaction_required", reason: "interaction_required" },
    { error: "consent_required", reason: "consent_missing" },
  ])("catalogue marks $error for a new sign-in", ({ error, reason }) => {
    const classified = classifyFailure(failure(error));

    expect(classified.entry.kind).toBe("customer");
    expect(classified.entry.reason).toBe(reason);
    expect(classified.known).toBe(true);
  });

  it("catalogue marks unknown interaction_required", () => {
    const classified = classifyFailure(failure("interaction_required", 50158));

    expect(classified.entry.kind).toBe("customer");
    expect(classified.entry.reason).toBe("interaction_required");
    expect(classified.known).toBe(false);
  });

  it("catalogue blames the app for unknown invalid_client", () => {
    const classified = classifyFailure(failure("invalid_client", 7000218));

    expect(classified.entry.kind).toBe("operator");
    expect(classified.entry.reason).toBe("client_credential_rejected");
    expect(classified.known).toBe(false);
  });

  it.each([
    "temporarily_unavailable",
    "server_error",
    "network_error",
    "empty_response",
    "endpoints_resolution_error",
    "post_request_failed",
  ])("catalogue retries %s", (error) => {
    const classified = classifyFailure(failure(error));

    expect(classified.entry.kind).toBe("transient");
    expect(classified.entry.reason).toBe("identity_platform_unavailable");
    expect(classified.known).toBe(true);
  });

  it("catalogue retries a transient response whatever its AADSTS", () => {
    const classified = classifyFailure(failure("invalid_grant", 50173, true));

    expect(classified.entry.kind).toBe("transient");
    expect(classified.entry.reason).toBe("identity_platform_unavailable");
  });

  it("catalogue retries an unknown AADSTS", () => {
    const classified = classifyFailure(failure("invalid_grant", 5999001));

    expect(classified.entry.kind).toBe("transient");
    expect(classified.entry.reason).toBe("unknown_failure");
    expect(classified.known).toBe(false);
  });

  it("catalogue retries an unknown error code", () => {
    const classified = classifyFailure(failure("something_new"));

    expect(classified.entry.kind).toBe("transient");
    expect(classified.entry.reason).toBe("unknown_failure");
    expect(classified.known).toBe(false);
  });

  it("catalogue finds every row by its reason", () => {
    for (const row of catalogueRows()) {
      const entry = entryForReason(row.reason);
      if (row.kind === "transient") continue;
      expect(entry?.description, row.reason).toBe(row.description);
      expect(entry?.remedy, row.reason).toBe(row.remedy);
    }
  });

  it("catalogue does not find an unknown reason", () => {
    expect(entryForReason("no_such_reason")).toBeUndefined();
  });

  it("catalogue lists every AADSTS entry", () => {
    const listed = catalogueRows()
      .map((row) => row.aadsts)
      .filter((aadsts) => aadsts !== undefined);

    expect(listed.sort()).toEqual(entries.map((row) => row.aadsts).sort());
  });

  it("catalogue uses snake_case reasons", () => {
    for (const row of catalogueRows())
      expect(row.reason).toMatch(/^[a-z]+(_[a-z0-9]+)*$/);
  });

  it("catalogue tells customers to sign in again", () => {
    for (const row of catalogueRows().filter(
      (candidate) => candidate.kind === "customer",
    ))
      expect(row.remedy.toLowerCase(), row.reason).toContain("sign in again");
  });

  it("catalogue descriptions and remedies are sentences", () => {
    for (const row of catalogueRows()) {
      expect(row.description, row.reason).toMatch(/^[A-Z].*\.$/);
      expect(row.remedy, row.reason).toMatch(/^[A-Z].*\.$/);
    }
  });
});

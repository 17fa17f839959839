/**
 * Microsoft cloud profiles. The authority host, the Outlook resource that IMAP and SMTP scopes
 * belong to, and the mail hosts always come from one profile, so a grant never mixes clouds.
 */

export interface MailEndpoint {
  host: string;
  port: number;
  security: "SSL/TLS" | "STARTTLS";
}

export interface CloudProfile {
  name: CloudName;
  authorityHost: string;
  /** Resource of the IMAP and SMTP scopes; also the `aud` of the access tokens. */
  outlookResource: string;
  /**
   * Audience of the managed identity token that a federated identity credential accepts, as
   * Microsoft lists it per cloud for app registrations that trust a managed identity.
   */
  tokenExchangeAudience: string;
  imap: MailEndpoint;
  smtp: MailEndpoint;
}

export const cloudNames = ["public", "usgov"] as const;
export type CloudName = (typeof cloudNames)[number];

export const cloudProfiles: Record<CloudName, CloudProfile> = {
  public: {
    name: "public",
    authorityHost: "https://login.microsoftonline.com",
    outlookResource: "https://outlook.office.com",
    tokenExchangeAudience: "api://AzureADTokenExchange",
    imap: { host: "outlook.office365.com", port: 993, security: "SSL/TLS" },
    smtp: { host: "smtp.office365.com", port: 587, security: "STARTTLS" },
  },
  // US Government GCC High and DoD.
  usgov: {
    name: "usgov",
    authorityHost: "https://login.microsoftonline.us",
    outlookResource: "https://outlook.office365.us",
    tokenExchangeAudience: "api://AzureADTokenExchangeUSGov",
    imap: { host: "outlook.office365.us", port: 993, security: "SSL/TLS" },
    smtp: { host: "smtp.office365.us", port: 587, security: "STARTTLS" },
  },
};

/** Returns the IMAP and SMTP scopes of a cloud, without `offline_access`. */
export function mailScopes(cloud: CloudProfile): string[] {
  return [
    `${cloud.outlookResource}/IMAP.AccessAsUser.All`,
    `${cloud.outlookResource}/SMTP.Send`,
  ];
}

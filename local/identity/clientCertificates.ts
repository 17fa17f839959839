// Self-signed RSA client certificates for an app registration of the identity stand-in, in the
// PEM form Key Vault returns for a certificate of content type application/x-pem-file.

import { X509Certificate } from "node:crypto";
import { generate } from "selfsigned";

export interface ClientCertificateFiles {
  /** The certificate alone, for registering on the app. */
  certificatePem: string;
  /** Private key and certificate in one PEM, as the secret of a Key Vault certificate contains them. */
  keyVaultPem: string;
  /** Upper-case hex SHA-256 thumbprint of the certificate. */
  thumbprintSha256: string;
}

/**
 * Creates an RSA 2048 certificate, signed with SHA-256, valid from now for `validDays` days
 * (365 by default).
 */
export async function createClientCertificate(
  commonName: string,
  validDays = 365,
): Promise<ClientCertificateFiles> {
  const notBeforeDate = new Date(Date.now() - 60_000);
  const notAfterDate = new Date(
    notBeforeDate.getTime() + validDays * 86_400_000,
  );
  const generated = await generate(
    [{ name: "commonName", value: commonName }],
    {
      keyType: "rsa",
      keySize: 2048,
      algorithm: "sha256",
      notBeforeDate,
      notAfterDate,
    },
  );
  const certificate = new X509Certificate(generated.cert);
  return {
    certificatePem: generated.cert,
    keyVaultPem: `${generated.private.trim()}\n${generated.cert.trim()}\n`,
    thumbprintSha256: certificate.fingerprint256.replaceAll(":", ""),
  };
}

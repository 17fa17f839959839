// Local certificate authority and server certificates for the HTTPS stand-ins.
//
// Node's crypto module signs data but has no API that builds X.509 certificates, and
// the `selfsigned` package is asynchronous only (version 5). Config files need a
// synchronous call, so this module encodes the certificates in DER itself. All keys
// are ECDSA P-256 and every certificate is signed with ecdsa-with-SHA256.

import {
  X509Certificate,
  createHash,
  createPrivateKey,
  generateKeyPairSync,
  randomBytes,
  sign,
} from "node:crypto";
import type { KeyObject } from "node:crypto";
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { isIP } from "node:net";
import { join, resolve } from "node:path";

export interface LocalCertificateAuthority {
  /** Absolute path of the CA certificate PEM, the value for NODE_EXTRA_CA_CERTS. */
  certificatePath: string;
  certificatePem: string;
  privateKeyPem: string;
}

export interface ServerCertificate {
  certificatePem: string;
  privateKeyPem: string;
}

const dayMilliseconds = 24 * 60 * 60 * 1000;
const authorityLifetimeDays = 3650;
// Browsers reject leaf certificates valid for more than 398 days.
const serverLifetimeDays = 90;
// A CA that expires sooner than this is replaced, so a long `npm start` run keeps working.
const authorityRenewalDays = 30;
const lockTimeoutMilliseconds = 10_000;

/**
 * Creates `dir/ca.pem` and `dir/ca-key.pem` on the first call and reuses them after.
 * A CA that is unreadable, expires within 30 days or does not match its key is
 * replaced. A lock file keeps concurrent processes from writing mismatched halves.
 */
export function ensureLocalCertificateAuthority(
  dir: string,
): LocalCertificateAuthority {
  const directory = resolve(dir);
  mkdirSync(directory, { recursive: true, mode: 0o700 });
  const certificatePath = join(directory, "ca.pem");
  const keyPath = join(directory, "ca-key.pem");

  const existing = readCertificateAuthority(certificatePath, keyPath);
  if (existing) {
    return existing;
  }

  const lockPath = join(directory, "ca.lock");
  acquireLock(lockPath);
  try {
    // Another process may have created the CA while this one waited for the lock.
    const created = readCertificateAuthority(certificatePath, keyPath);
    if (created) {
      return created;
    }
    const authority = createCertificateAuthority(certificatePath);
    writeFileAtomically(keyPath, authority.privateKeyPem, 0o600);
    writeFileAtomically(certificatePath, authority.certificatePem, 0o644);
    return authority;
  } finally {
    rmSync(lockPath, { force: true });
  }
}

/**
 * Issues a server certificate signed by the CA. Each host becomes a subject
 * alternative name: IP addresses as iPAddress entries, other names as dNSName entries.
 */
export function issueServerCertificate(
  ca: LocalCertificateAuthority,
  hosts: string[],
): ServerCertificate {
  const commonName = hosts[0];
  if (commonName === undefined) {
    throw new TypeError(
      "issueServerCertificate needs at least one host name or IP address.",
    );
  }
  const authorityCertificate = new X509Certificate(ca.certificatePem);
  const authorityKey = createPrivateKey(ca.privateKeyPem);
  const { privateKey, publicKey } = generateKeyPairSync("ec", {
    namedCurve: "P-256",
  });
  const now = Date.now();

  const extensions = [
    extension(oids.basicConstraints, true, sequence()),
    extension(oids.keyUsage, true, keyUsageBits({ digitalSignature: true })),
    extension(
      oids.extendedKeyUsage,
      false,
      sequence(objectIdentifier(oids.serverAuth)),
    ),
    extension(
      oids.subjectAlternativeName,
      false,
      subjectAlternativeNames(hosts),
    ),
    extension(
      oids.subjectKeyIdentifier,
      false,
      octetString(keyIdentifier(publicKey)),
    ),
    extension(
      oids.authorityKeyIdentifier,
      false,
      sequence(tlv(0x80, keyIdentifier(authorityCertificate.publicKey))),
    ),
  ];
  const certificateDer = signCertificate({
    issuer: subjectName(authorityCertificate.raw),
    subject: name(commonName),
    subjectPublicKey: publicKey,
    notBefore: new Date(now - 60 * 60 * 1000),
    notAfter: new Date(now + serverLifetimeDays * dayMilliseconds),
    extensions,
    signingKey: authorityKey,
  });
  return {
    certificatePem: toPem("CERTIFICATE", certificateDer),
    privateKeyPem: privateKey
      .export({ type: "pkcs8", format: "pem" })
      .toString(),
  };
}

function readCertificateAuthority(
  certificatePath: string,
  keyPath: string,
): LocalCertificateAuthority | undefined {
  if (!existsSync(certificatePath) || !existsSync(keyPath)) {
    return undefined;
  }
  try {
    const certificatePem = readFileSync(certificatePath, "utf8");
    const privateKeyPem = readFileSync(keyPath, "utf8");
    const certificate = new X509Certificate(certificatePem);
    const renewBy = Date.now() + authorityRenewalDays * dayMilliseconds;
    if (!certificate.ca || Date.parse(certificate.validTo) < renewBy) {
      return undefined;
    }
    if (!certificate.checkPrivateKey(createPrivateKey(privateKeyPem))) {
      return undefined;
    }
    return { certificatePath, certificatePem, privateKeyPem };
  } catch {
    // Unreadable or corrupt files are replaced with a new CA.
    return undefined;
  }
}

function createCertificateAuthority(
  certificatePath: string,
): LocalCertificateAuthority {
  const { privateKey, publicKey } = generateKeyPairSync("ec", {
    namedCurve: "P-256",
  });
  const subject = name("m365-mail-oauth-broker local development CA");
  const now = Date.now();
  const extensions = [
    extension(
      oids.basicConstraints,
      true,
      sequence(boolean(true), integer(Buffer.from([0]))),
    ),
    extension(
      oids.keyUsage,
      true,
      keyUsageBits({
        digitalSignature: true,
        keyCertSign: true,
        cRLSign: true,
      }),
    ),
    extension(
      oids.subjectKeyIdentifier,
      false,
      octetString(keyIdentifier(publicKey)),
    ),
  ];
  const certificateDer = signCertificate({
    issuer: subject,
    subject,
    subjectPublicKey: publicKey,
    notBefore: new Date(now - 60 * 60 * 1000),
    notAfter: new Date(now + authorityLifetimeDays * dayMilliseconds),
    extensions,
    signingKey: privateKey,
  });
  return {
    certificatePath,
    certificatePem: toPem("CERTIFICATE", certificateDer),
    privateKeyPem: privateKey
      .export({ type: "pkcs8", format: "pem" })
      .toString(),
  };
}

function acquireLock(lockPath: string): void {
  const deadline = Date.now() + lockTimeoutMilliseconds;
  for (;;) {
    try {
      closeSync(openSync(lockPath, "wx"));
      return;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") {
        throw error;
      }
    }
    const lock = statSync(lockPath, { throwIfNoEntry: false });
    if (lock === undefined) {
      continue;
    }
    // A lock older than the timeout belongs to a process that died while writing.
    const lockAge = Date.now() - lock.mtimeMs;
    if (Date.now() > deadline || lockAge > lockTimeoutMilliseconds) {
      rmSync(lockPath, { force: true });
      continue;
    }
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 50);
  }
}

function writeFileAtomically(
  path: string,
  content: string,
  mode: number,
): void {
  const temporaryPath = `${path}.${process.pid}.tmp`;
  writeFileSync(temporaryPath, content, { mode });
  renameSync(temporaryPath, path);
}

// --- X.509 structure (RFC 5280) ---

const oids = {
  commonName: "2.5.4.3",
  ecdsaWithSha256: "1.2.840.10045.4.3.2",
  basicConstraints: "2.5.29.19",
  keyUsage: "2.5.29.15",
  extendedKeyUsage: "2.5.29.37",
  serverAuth: "1.3.6.1.5.5.7.3.1",
  subjectAlternativeName: "2.5.29.17",
  subjectKeyIdentifier: "2.5.29.14",
  authorityKeyIdentifier: "2.5.29.35",
};

interface CertificateFields {
  issuer: Buffer;
  subject: Buffer;
  subjectPublicKey: KeyObject;
  notBefore: Date;
  notAfter: Date;
  extensions: Buffer[];
  signingKey: KeyObject;
}

function signCertificate(fields: CertificateFields): Buffer {
  const signatureAlgorithm = sequence(objectIdentifier(oids.ecdsaWithSha256));
  const serialNumber = randomBytes(16);
  const tbsCertificate = sequence(
    tlv(0xa0, integer(Buffer.from([2]))),
    integer(serialNumber),
    signatureAlgorithm,
    fields.issuer,
    sequence(time(fields.notBefore), time(fields.notAfter)),
    fields.subject,
    fields.subjectPublicKey.export({ type: "spki", format: "der" }),
    tlv(0xa3, sequence(...fields.extensions)),
  );
  // Node returns ECDSA signatures DER-encoded, the form X.509 requires.
  const signature = sign("sha256", tbsCertificate, fields.signingKey);
  return sequence(tbsCertificate, signatureAlgorithm, bitString(signature));
}

function name(commonName: string): Buffer {
  return sequence(
    set(
      sequence(
        objectIdentifier(oids.commonName),
        tlv(0x0c, Buffer.from(commonName, "utf8")),
      ),
    ),
  );
}

function extension(oid: string, critical: boolean, value: Buffer): Buffer {
  const parts = [objectIdentifier(oid)];
  if (critical) {
    parts.push(boolean(true));
  }
  parts.push(octetString(value));
  return sequence(...parts);
}

function keyUsageBits(usage: {
  digitalSignature?: boolean;
  keyCertSign?: boolean;
  cRLSign?: boolean;
}): Buffer {
  // Bit 0 is the most significant bit of the first byte.
  let bits = 0;
  if (usage.digitalSignature) bits |= 0x80;
  if (usage.keyCertSign) bits |= 0x04;
  if (usage.cRLSign) bits |= 0x02;
  // DER drops trailing zero bits, so the unused-bit count is the trailing zeros.
  let unusedBits = 0;
  while (unusedBits < 7 && (bits & (1 << unusedBits)) === 0) {
    unusedBits += 1;
  }
  return tlv(0x03, Buffer.from([unusedBits, bits]));
}

function subjectAlternativeNames(hosts: string[]): Buffer {
  const names = hosts.map((host) => {
    if (isIP(host) !== 0) {
      return tlv(0x87, ipAddressBytes(host));
    }
    return tlv(0x82, Buffer.from(host, "ascii"));
  });
  return sequence(...names);
}

function ipAddressBytes(address: string): Buffer {
  if (isIP(address) === 4) {
    return Buffer.from(address.split(".").map(Number));
  }
  // IPv6: expand "::" into the missing zero groups.
  const [head = "", tail] = address.split("::");
  const headGroups = head === "" ? [] : head.split(":");
  const tailGroups = tail === undefined || tail === "" ? [] : tail.split(":");
  const zeroGroups = new Array<string>(
    8 - headGroups.length - tailGroups.length,
  ).fill("0");
  const groups =
    tail === undefined
      ? headGroups
      : [...headGroups, ...zeroGroups, ...tailGroups];
  const bytes = Buffer.alloc(16);
  groups.forEach((group, index) =>
    bytes.writeUInt16BE(Number.parseInt(group, 16), index * 2),
  );
  return bytes;
}

/** SHA-1 of the public key point, method 1 of RFC 5280 section 4.2.1.2. */
function keyIdentifier(publicKey: KeyObject): Buffer {
  const jwk = publicKey.export({ format: "jwk" });
  const point = Buffer.concat([
    Buffer.from([0x04]),
    Buffer.from(jwk.x ?? "", "base64url"),
    Buffer.from(jwk.y ?? "", "base64url"),
  ]);
  return createHash("sha1").update(point).digest();
}

/** Returns the DER of the subject Name, the sixth field of the TBSCertificate. */
function subjectName(certificateDer: Buffer): Buffer {
  const [tbsCertificate] = readElements(
    certificateDer,
    0,
    certificateDer.length,
  );
  if (tbsCertificate === undefined) {
    throw new Error("The CA certificate is not a DER SEQUENCE.");
  }
  const outer = readElements(
    certificateDer,
    tbsCertificate.contentStart,
    tbsCertificate.end,
  );
  const tbsFields = readElements(
    certificateDer,
    outer[0]?.contentStart ?? 0,
    outer[0]?.end ?? 0,
  );
  const subject = tbsFields[5];
  if (subject === undefined) {
    throw new Error("The CA certificate has no subject field.");
  }
  return certificateDer.subarray(subject.start, subject.end);
}

interface DerElement {
  start: number;
  contentStart: number;
  end: number;
}

/** Splits the DER bytes between start and end into their top-level elements. */
function readElements(der: Buffer, start: number, end: number): DerElement[] {
  const elements: DerElement[] = [];
  let offset = start;
  while (offset < end) {
    const firstLengthByte = der[offset + 1] ?? 0;
    let length = firstLengthByte;
    let contentStart = offset + 2;
    if (firstLengthByte & 0x80) {
      const lengthBytes = firstLengthByte & 0x7f;
      length = 0;
      for (let index = 0; index < lengthBytes; index += 1) {
        length = length * 256 + (der[offset + 2 + index] ?? 0);
      }
      contentStart += lengthBytes;
    }
    elements.push({ start: offset, contentStart, end: contentStart + length });
    offset = contentStart + length;
  }
  return elements;
}

function toPem(label: string, der: Buffer): string {
  const lines = der.toString("base64").match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join("\n")}\n-----END ${label}-----\n`;
}

// --- DER encoding (ITU-T X.690) ---

function tlv(tag: number, content: Buffer): Buffer {
  return Buffer.concat([
    Buffer.from([tag]),
    encodeLength(content.length),
    content,
  ]);
}

function encodeLength(length: number): Buffer {
  if (length < 0x80) {
    return Buffer.from([length]);
  }
  const bytes: number[] = [];
  for (
    let remaining = length;
    remaining > 0;
    remaining = Math.floor(remaining / 256)
  ) {
    bytes.unshift(remaining % 256);
  }
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

function sequence(...items: Buffer[]): Buffer {
  return tlv(0x30, Buffer.concat(items));
}

function set(...items: Buffer[]): Buffer {
  return tlv(0x31, Buffer.concat(items));
}

function boolean(value: boolean): Buffer {
  return tlv(0x01, Buffer.from([value ? 0xff : 0x00]));
}

/** Encodes unsigned big-endian bytes as a positive INTEGER. */
function integer(bytes: Buffer): Buffer {
  let start = 0;
  while (start < bytes.length - 1 && bytes[start] === 0) {
    start += 1;
  }
  const trimmed = bytes.subarray(start);
  const needsPadding = (trimmed[0] ?? 0) & 0x80;
  return tlv(
    0x02,
    needsPadding ? Buffer.concat([Buffer.from([0]), trimmed]) : trimmed,
  );
}

function bitString(content: Buffer): Buffer {
  return tlv(0x03, Buffer.concat([Buffer.from([0]), content]));
}

function octetString(content: Buffer): Buffer {
  return tlv(0x04, content);
}

function objectIdentifier(oid: string): Buffer {
  const [first = 0, second = 0, ...rest] = oid.split(".").map(Number);
  const bytes = [first * 40 + second];
  for (const arc of rest) {
    const encoded = [arc & 0x7f];
    for (let remaining = arc >>> 7; remaining > 0; remaining >>>= 7) {
      encoded.unshift((remaining & 0x7f) | 0x80);
    }
    bytes.push(...encoded);
  }
  return tlv(0x06, Buffer.from(bytes));
}

/** UTCTime through 2049 and GeneralizedTime after, as RFC 5280 section 4.1.2.5 requires. */
function time(date: Date): Buffer {
  const iso = date.toISOString();
  const digits = `${iso.slice(0, 4)}${iso.slice(5, 7)}${iso.slice(8, 10)}${iso.slice(11, 13)}${iso.slice(14, 16)}${iso.slice(17, 19)}Z`;
  if (date.getUTCFullYear() < 2050) {
    return tlv(0x17, Buffer.from(digits.slice(2), "ascii"));
  }
  return tlv(0x18, Buffer.from(digits, "ascii"));
}

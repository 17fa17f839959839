// Starts a private Dovecot 2.3 IMAP server that validates OAuth bearer tokens
// locally, so tests can prove that an access token logs in to a real mailbox.
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync, rmSync } from "node:fs";
import { chmod, chown, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import net from "node:net";
import os from "node:os";
import path from "node:path";

export const dovecotPath = "/usr/sbin/dovecot";

export type DovecotMechanism = "xoauth2" | "oauthbearer";

export interface DovecotOptions {
  /** PEM (SPKI) RS256 public key that signs access tokens. */
  publicKeyPem: string;
  /** Key id from the token header (`kid`). */
  keyId: string;
  /** Client id from the token's `azp` claim. */
  clientId: string;
  /** Value the token's `aud` claim must contain; default "https://outlook.office.com". */
  audience?: string;
  /** Value the token's `iss` claim must equal; no issuer check when unset. */
  issuer?: string;
  /** SASL mechanisms to advertise; default both. imapflow prefers OAUTHBEARER when offered. */
  mechanisms?: readonly DovecotMechanism[];
}

export interface DovecotServer {
  host: "127.0.0.1";
  port: number;
  stop(): Promise<void>;
  /** Dovecot's log file and its standard error, including the reason for each failed login. */
  logs(): string;
}

const defaultAudience = "https://outlook.office.com";
const host = "127.0.0.1";
const startupTimeoutMs = 20_000;
const stopTimeoutMs = 10_000;
const maxPortAttempts = 3;

// Characters that are safe unquoted in dovecot.conf. Dovecot expands `%` and `$`
// in values, so paths and claims containing them would change meaning.
const plainConfigValue = /^[A-Za-z0-9._/:@+-]+$/;

interface Accounts {
  /** True when running as root, so Dovecot can chroot and switch users. */
  privileged: boolean;
  internalUser: string;
  internalGroup: string;
  loginUser: string;
  mailUid: number;
  mailGid: number;
}

interface Paths {
  directory: string;
  config: string;
  oauth2Config: string;
  log: string;
  keys: string;
  home: string;
}

/**
 * Starts Dovecot with its own configuration in a temporary directory and
 * resolves once the IMAP port sends its greeting.
 *
 * Dovecot 2.3.19 checks the signature, `exp` (and `nbf`, `iat`), that `aud`
 * contains the audience, and that `preferred_username` equals the SASL user
 * ignoring case. It also rejects tokens without a `typ` header or `sub` claim.
 */
export async function startDovecot(
  options: DovecotOptions,
): Promise<DovecotServer> {
  const audience = options.audience ?? defaultAudience;
  const mechanisms = options.mechanisms ?? ["xoauth2", "oauthbearer"];
  if (options.keyId === "") {
    throw new Error("Invalid keyId: Dovecot rejects tokens with an empty kid");
  }
  if (mechanisms.length === 0) {
    throw new Error("Invalid mechanisms: list at least one SASL mechanism");
  }
  checkConfigValue("audience", audience);
  if (options.issuer !== undefined) {
    checkConfigValue("issuer", options.issuer);
  }

  const directory = await mkdtemp(path.join(os.tmpdir(), "dovecot-"));
  const paths: Paths = {
    directory,
    config: path.join(directory, "dovecot.conf"),
    oauth2Config: path.join(directory, "oauth2.conf"),
    log: path.join(directory, "dovecot.log"),
    keys: path.join(directory, "keys"),
    home: path.join(directory, "home"),
  };

  try {
    checkConfigValue("temporary directory", directory);
    const accounts = findAccounts();
    await prepareDirectories(paths, accounts);
    await writeKeys(paths.keys, options);
    await writeFile(
      paths.oauth2Config,
      renderOauth2Config(paths, audience, options.issuer),
      { mode: 0o644 },
    );

    for (let attempt = 1; ; attempt++) {
      const port = await findFreePort();
      await writeFile(paths.log, "");
      await writeFile(
        paths.config,
        renderConfig(paths, accounts, port, mechanisms),
      );
      const instance = launch(paths);
      const outcome = await waitUntilReady(instance, port);
      if (outcome === "ready") {
        return createServer(instance, paths, port);
      }
      await terminate(instance);
      const logs = instance.logs();
      const portTaken = logs.includes("Address already in use");
      if (portTaken && attempt < maxPortAttempts) {
        continue;
      }
      throw new Error(`Dovecot failed to start: ${outcome}\n${logs}`);
    }
  } catch (error) {
    await rm(directory, { recursive: true, force: true, maxRetries: 3 });
    throw error;
  }
}

/**
 * Sends `AUTHENTICATE XOAUTH2` with a ready SASL string (base64 of
 * `user=U\x01auth=Bearer T\x01\x01`) and returns the tagged response line,
 * such as "A1 OK ..." or "A1 NO [AUTHENTICATIONFAILED] ...".
 */
export async function authenticateXoauth2Raw(
  server: Pick<DovecotServer, "host" | "port">,
  sasl: string,
): Promise<string> {
  const [reply = ""] = await runImapSessionRaw(server, [
    `AUTHENTICATE XOAUTH2 ${sasl}`,
  ]);
  return reply;
}

/**
 * Sends IMAP commands one after another on one plain connection, tagged A1,
 * A2 and so on, and returns each tagged response line. It stops after the
 * first response that is not OK.
 */
export async function runImapSessionRaw(
  server: Pick<DovecotServer, "host" | "port">,
  commands: string[],
): Promise<string[]> {
  const socket = net.connect(server.port, server.host);
  socket.setEncoding("utf8");
  socket.setTimeout(15_000);
  const replies: string[] = [];

  const sendNext = () => {
    socket.write(`A${replies.length + 1} ${commands[replies.length]}\r\n`);
  };

  try {
    return await new Promise<string[]>((resolve, reject) => {
      let buffered = "";
      let greeted = false;

      socket.on("data", (chunk: string) => {
        buffered += chunk;
        let end = buffered.indexOf("\r\n");
        while (end >= 0) {
          const line = buffered.slice(0, end);
          buffered = buffered.slice(end + 2);
          if (!greeted) {
            if (!line.startsWith("* OK")) {
              reject(new Error(`Unexpected IMAP greeting: ${line}`));
              return;
            }
            greeted = true;
            sendNext();
          } else if (line.startsWith("+")) {
            // On failure the server sends a JSON error as a challenge, and an
            // XOAUTH2 client replies with an empty line to get the tagged response.
            socket.write("\r\n");
          } else if (line.startsWith(`A${replies.length + 1} `)) {
            replies.push(line);
            const ok = /^A\d+ OK/.test(line);
            if (!ok || replies.length === commands.length) {
              resolve(replies);
              return;
            }
            sendNext();
          }
          end = buffered.indexOf("\r\n");
        }
      });
      socket.on("timeout", () => {
        reject(new Error("Timed out waiting for a tagged IMAP response"));
      });
      socket.on("error", reject);
      socket.on("close", () => {
        reject(new Error("IMAP connection closed before a tagged response"));
      });
    });
  } finally {
    socket.destroy();
  }
}

function checkConfigValue(name: string, value: string): void {
  if (!plainConfigValue.test(value)) {
    throw new Error(
      `Invalid ${name} for dovecot.conf: ${JSON.stringify(value)} may contain only letters, digits and ._/:@+-`,
    );
  }
}

// Dovecot will not run login processes as root or imap with uid 0, so a
// root test run (as on CI) uses the dovecot and dovenull accounts that the
// Debian package creates, and nobody as the mail account. Any other user runs
// every process as itself.
function findAccounts(): Accounts {
  const uid = process.getuid?.();
  const gid = process.getgid?.();
  if (uid === undefined || gid === undefined) {
    throw new Error("Dovecot tests need a POSIX system with user ids");
  }
  if (uid !== 0) {
    const user = os.userInfo().username;
    const group = findGroupName(gid);
    return {
      privileged: false,
      internalUser: user,
      internalGroup: group,
      loginUser: user,
      mailUid: uid,
      mailGid: gid,
    };
  }

  const accounts = readPasswd();
  for (const name of ["dovecot", "dovenull", "nobody"]) {
    if (!accounts.has(name)) {
      throw new Error(
        `User ${name} not found in /etc/passwd. Install dovecot-imapd, which creates dovecot and dovenull.`,
      );
    }
  }
  const nobody = accounts.get("nobody");
  return {
    privileged: true,
    internalUser: "dovecot",
    internalGroup: "dovecot",
    loginUser: "dovenull",
    mailUid: nobody?.uid ?? 65534,
    mailGid: nobody?.gid ?? 65534,
  };
}

function readPasswd(): Map<string, { uid: number; gid: number }> {
  const accounts = new Map<string, { uid: number; gid: number }>();
  for (const line of readFileSync("/etc/passwd", "utf8").split("\n")) {
    const [name, , uid, gid] = line.split(":");
    if (name && uid && gid) {
      accounts.set(name, { uid: Number(uid), gid: Number(gid) });
    }
  }
  return accounts;
}

function findGroupName(gid: number): string {
  for (const line of readFileSync("/etc/group", "utf8").split("\n")) {
    const [name, , id] = line.split(":");
    if (name && Number(id) === gid) {
      return name;
    }
  }
  throw new Error(`Group ${gid} not found in /etc/group`);
}

async function prepareDirectories(
  paths: Paths,
  accounts: Accounts,
): Promise<void> {
  for (const directory of ["base", "state"]) {
    await mkdir(path.join(paths.directory, directory), { mode: 0o755 });
  }
  await mkdir(paths.home, { mode: 0o755 });
  if (accounts.privileged) {
    // The auth and mail processes run as other accounts, which must reach
    // their files through the otherwise private temporary directory.
    // NOTE: os.tmpdir() itself must be searchable by those accounts, as /tmp is.
    await chmod(paths.directory, 0o711);
    await chown(paths.home, accounts.mailUid, accounts.mailGid);
  }
}

// Dovecot looks keys up as <azp or "default">/<alg>/<kid> in the dict and
// escapes "/" and "%" in azp and kid as %2f and %25 (dovecot/core
// src/lib-oauth2/oauth2-jwt.c).
// The fs dict strips the "shared/" prefix, so each key is one file.
async function writeKeys(
  keysDirectory: string,
  options: DovecotOptions,
): Promise<void> {
  const keyFile = escapeKeyPathPart(options.keyId);
  for (const client of [escapeKeyPathPart(options.clientId), "default"]) {
    const directory = path.join(keysDirectory, client, "RS256");
    await mkdir(directory, { recursive: true, mode: 0o755 });
    await writeFile(path.join(directory, keyFile), options.publicKeyPem, {
      mode: 0o644,
    });
  }
}

function escapeKeyPathPart(identifier: string): string {
  return identifier.replaceAll("%", "%25").replaceAll("/", "%2f");
}

function renderOauth2Config(
  paths: Paths,
  audience: string,
  issuer: string | undefined,
): string {
  const lines = [
    "introspection_mode = local",
    `local_validation_key_dict = fs:posix:prefix=${paths.keys}/`,
    "username_attribute = preferred_username",
    // In local validation mode Dovecot requires client_id among the aud values.
    `client_id = ${audience}`,
  ];
  if (issuer !== undefined) {
    lines.push(`issuers = ${issuer}`);
  }
  return `${lines.join("\n")}\n`;
}

function renderConfig(
  paths: Paths,
  accounts: Accounts,
  port: number,
  mechanisms: readonly DovecotMechanism[],
): string {
  const directory = paths.directory;
  const mechanismList = mechanisms.join(" ");
  // Only root may chroot, which anvil and imap-login do by default.
  const chroot = accounts.privileged ? "" : "\n  chroot =";
  return `base_dir = ${directory}/base
state_dir = ${directory}/state
log_path = ${paths.log}
protocols = imap
listen = ${host}
ssl = no
default_internal_user = ${accounts.internalUser}
default_internal_group = ${accounts.internalGroup}
default_login_user = ${accounts.loginUser}
first_valid_uid = ${accounts.mailUid}
auth_mechanisms = ${mechanismList}
# Tests connect over plain TCP on the loopback interface.
disable_plaintext_auth = no
auth_verbose = yes
# Reply to a failed login at once instead of after the default 2 seconds.
auth_failure_delay = 0
mail_location = maildir:~/Maildir

passdb {
  driver = oauth2
  mechanisms = ${mechanismList}
  args = ${paths.oauth2Config}
}

userdb {
  driver = static
  args = uid=${accounts.mailUid} gid=${accounts.mailGid} home=${paths.home}/%u
}

# Mode 0 keeps the auth process, which never runs as root here, from reaching
# anvil's penalty socket. That disables the penalty, which would otherwise delay
# repeated failed logins from one IP by up to 15 seconds.
service anvil {${chroot}
  unix_listener anvil-auth-penalty {
    mode = 0
  }
}

service imap-login {${chroot}
  inet_listener imap {
    address = ${host}
    port = ${port}
  }
  inet_listener imaps {
    port = 0
  }
}
`;
}

async function findFreePort(): Promise<number> {
  const probe = net.createServer();
  await new Promise<void>((resolve, reject) => {
    probe.once("error", reject);
    probe.listen(0, host, resolve);
  });
  const address = probe.address();
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  if (address === null || typeof address === "string") {
    throw new Error("Failed to read the port of a probe listener");
  }
  return address.port;
}

interface Instance {
  child: ChildProcess;
  exited: Promise<void>;
  logs(): string;
}

function launch(paths: Paths): Instance {
  // A separate process group lets stop() end processes that outlive the master.
  const child = spawn(dovecotPath, ["-F", "-c", paths.config], {
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout?.setEncoding("utf8");
  child.stderr?.setEncoding("utf8");
  child.stdout?.on("data", (chunk: string) => (output += chunk));
  child.stderr?.on("data", (chunk: string) => (output += chunk));

  const exited = new Promise<void>((resolve) => {
    child.once("exit", () => resolve());
    child.once("error", (error) => {
      output += `${error.message}\n`;
      resolve();
    });
  });

  return {
    child,
    exited,
    logs: () => `${readLog(paths.log)}${output}`,
  };
}

function readLog(file: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch {
    return "";
  }
}

function hasExited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

async function waitUntilReady(
  instance: Instance,
  port: number,
): Promise<"ready" | string> {
  let exited = false;
  void instance.exited.then(() => (exited = true));
  const deadline = Date.now() + startupTimeoutMs;

  while (Date.now() < deadline) {
    if (exited || hasExited(instance.child)) {
      return `exited with code ${instance.child.exitCode ?? instance.child.signalCode}`;
    }
    // The master keeps restarting a service that fails, so stop waiting at the
    // first fatal error.
    if (instance.logs().includes("Fatal: ")) {
      return "a process reported a fatal error";
    }
    if (await receivesGreeting(port)) {
      return "ready";
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }

  return `timed out after ${startupTimeoutMs} ms waiting for the IMAP greeting on port ${port}`;
}

function receivesGreeting(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, host);
    socket.setEncoding("utf8");
    socket.setTimeout(2_000);
    let received = "";
    const finish = (result: boolean) => {
      socket.destroy();
      resolve(result);
    };
    socket.on("data", (chunk: string) => {
      received += chunk;
      if (received.includes("\r\n")) {
        finish(received.startsWith("* OK"));
      }
    });
    socket.on("timeout", () => finish(false));
    socket.on("error", () => finish(false));
    socket.on("close", () => finish(false));
  });
}

// Ends the master with SIGTERM so it stops its children, then kills whatever
// is left in the process group.
async function terminate(instance: Instance): Promise<void> {
  const { child } = instance;
  if (!hasExited(child)) {
    child.kill("SIGTERM");
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, stopTimeoutMs);
    });
    await Promise.race([instance.exited, timedOut]);
    clearTimeout(timer);
  }
  killGroup(child, "SIGKILL");
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) {
    return;
  }
  try {
    process.kill(-child.pid, signal);
  } catch (error) {
    // ESRCH: every process of the group has already exited.
    if ((error as NodeJS.ErrnoException).code !== "ESRCH") {
      throw error;
    }
  }
}

function createServer(
  instance: Instance,
  paths: Paths,
  port: number,
): DovecotServer {
  let stopped: Promise<void> | undefined;
  let finalLogs: string | undefined;

  // Stops Dovecot if the test process exits without calling stop().
  const onExit = () => {
    killGroup(instance.child, "SIGKILL");
    rmSync(paths.directory, { recursive: true, force: true });
  };
  process.once("exit", onExit);

  const stop = async () => {
    process.off("exit", onExit);
    await terminate(instance);
    finalLogs = instance.logs();
    await rm(paths.directory, { recursive: true, force: true, maxRetries: 3 });
  };

  return {
    host,
    port,
    stop: () => (stopped ??= stop()),
    logs: () => finalLogs ?? instance.logs(),
  };
}

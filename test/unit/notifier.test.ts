import { createHmac, timingSafeEqual } from "node:crypto";
import {
  createServer,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";

import {
  createNotifier,
  parseRetryAfterMs,
  type GrantStatusChange,
  type NotifierLog,
  type NotifierOptions,
} from "../../shared/notifier.js";

const secret = "webhook-secret-0123456789abcdef0123456789";
const querySecret = "query-secret-value";

const change: GrantStatusChange = {
  grantId: "grant-0001",
  siteUrl: "https://mysite.equisonline.com",
  mailbox: "EQuIS@mycompany.com",
  previousStatus: "active",
  status: "reauth_required",
  reason: "expired_by_inactivity",
  aadsts: 700082,
  remedy: "Sign in again for this mailbox on the broker page.",
};

/** Receiver behaviour for one request: respond with a status, drop the connection or never respond. */
type Reply =
  { status: number; headers?: Record<string, string> } | "drop" | "hang";

interface ReceivedRequest {
  method: string | undefined;
  url: string | undefined;
  headers: IncomingHttpHeaders;
  body: string;
}

/** HTTP receiver on 127.0.0.1 that records each request and sends the scripted replies in order. */
class Receiver {
  readonly requests: ReceivedRequest[] = [];
  private replies: Reply[] = [];
  private readonly server: Server = createServer((request, response) =>
    this.handle(request, response),
  );

  async start(): Promise<void> {
    await new Promise<void>((resolve) =>
      this.server.listen(0, "127.0.0.1", resolve),
    );
  }

  get baseUrl(): string {
    const { port } = this.server.address() as AddressInfo;
    return `http://127.0.0.1:${port}`;
  }

  /** Webhook URL with a query, to prove the query never reaches a log. */
  get webhookUrl(): string {
    return `${this.baseUrl}/hook?token=${querySecret}`;
  }

  script(...replies: Reply[]): void {
    this.replies = replies;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private handle(request: IncomingMessage, response: ServerResponse): void {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => {
      const reply = this.replies[this.requests.length] ?? { status: 200 };
      this.requests.push({
        method: request.method,
        url: request.url,
        headers: request.headers,
        body: Buffer.concat(chunks).toString("utf8"),
      });

      if (reply === "drop") {
        request.socket.destroy();
      } else if (reply !== "hang") {
        response.writeHead(reply.status, reply.headers).end("receiver body");
      }
    });
  }
}

interface LogCall {
  level: "warn" | "error";
  message: string;
  fields: Record<string, unknown>;
}

function recordingLog(): { log: NotifierLog; calls: LogCall[] } {
  const calls: LogCall[] = [];
  const log: NotifierLog = {
    warn: (message, fields) => calls.push({ level: "warn", message, fields }),
    error: (message, fields) => calls.push({ level: "error", message, fields }),
  };
  return { log, calls };
}

function callsAt(calls: LogCall[], level: LogCall["level"]): LogCall[] {
  return calls.filter((call) => call.level === level);
}

/** Computes the signature as a receiver would, independently of the notifier's code. */
function expectedSignature(
  key: string,
  timestamp: string,
  body: string,
): string {
  const hex = createHmac("sha256", key)
    .update(`${timestamp}.${body}`)
    .digest("hex");
  return `sha256=${hex}`;
}

function signatureMatches(
  key: string,
  timestamp: string,
  body: string,
  header: string,
): boolean {
  const expected = Buffer.from(expectedSignature(key, timestamp, body));
  const received = Buffer.from(header);
  return (
    expected.length === received.length && timingSafeEqual(expected, received)
  );
}

function header(request: ReceivedRequest | undefined, name: string): string {
  const value = request?.headers[name];
  if (typeof value !== "string") {
    throw new Error(`Expected one ${name} header, got ${String(value)}`);
  }
  return value;
}

function onlyRequest(receiver: Receiver): ReceivedRequest {
  expect(receiver.requests).toHaveLength(1);
  const request = receiver.requests[0];
  if (request === undefined) throw new Error("The receiver got no request");
  return request;
}

let receiver: Receiver;
let sleeps: number[];

beforeEach(async () => {
  receiver = new Receiver();
  await receiver.start();
  sleeps = [];
});

afterEach(async () => {
  vi.restoreAllMocks();
  await receiver.stop();
});

function notifier(options: NotifierOptions = {}) {
  return createNotifier(
    { url: receiver.webhookUrl, secret },
    {
      sleep: (ms) => {
        sleeps.push(ms);
        return Promise.resolve();
      },
      ...options,
    },
  );
}

describe("notifier delivery", () => {
  it("delivery posts the event body", async () => {
    const { log, calls } = recordingLog();

    await notifier().notifyStatusChange(change, log);

    const request = onlyRequest(receiver);
    expect(request.method).toBe("POST");
    expect(request.url).toBe(`/hook?token=${querySecret}`);
    const event = JSON.parse(request.body) as Record<string, unknown>;
    expect(event).toEqual({
      type: "grant.status_changed",
      id: expect.any(String),
      occurredAt: expect.any(String),
      ...change,
    });
    expect(event.id).toMatch(
      /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/,
    );
    expect(event.occurredAt).toMatch(
      /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/,
    );
    expect(calls).toEqual([]);
  });

  it("delivery sends the documented headers", async () => {
    await notifier().notifyStatusChange(change, recordingLog().log);

    const request = onlyRequest(receiver);
    const event = JSON.parse(request.body) as {
      id: string;
      occurredAt: string;
    };
    expect(header(request, "content-type")).toBe("application/json");
    expect(header(request, "user-agent")).toBe("m365-mail-oauth-broker");
    expect(header(request, "x-broker-event-id")).toBe(event.id);
    expect(header(request, "x-broker-timestamp")).toBe(
      String(Math.floor(Date.parse(event.occurredAt) / 1000)),
    );
    expect(header(request, "x-broker-signature")).toMatch(
      /^sha256=[0-9a-f]{64}$/,
    );
  });

  it("each event gets its own id", async () => {
    const sender = notifier();

    await sender.notifyStatusChange(change, recordingLog().log);
    await sender.notifyStatusChange(change, recordingLog().log);

    expect(receiver.requests).toHaveLength(2);
    const ids = receiver.requests.map((request) =>
      header(request, "x-broker-event-id"),
    );
    expect(ids[0]).not.toBe(ids[1]);
  });

  it("body leaves out undefined optional fields", async () => {
    const minimal: GrantStatusChange = {
      grantId: "grant-0002",
      siteUrl: "https://mysite.equisonline.com",
      mailbox: "EQuIS@mycompany.com",
      previousStatus: "degraded",
      status: "active",
    };

    await notifier().notifyStatusChange(minimal, recordingLog().log);

    const event = JSON.parse(onlyRequest(receiver).body) as object;
    expect(Object.keys(event).sort()).toEqual([
      "grantId",
      "id",
      "mailbox",
      "occurredAt",
      "previousStatus",
      "siteUrl",
      "status",
      "type",
    ]);
  });

  it("body never carries fields beyond the event", async () => {
    const grantRecord = {
      ...change,
      refreshToken: "refresh-token-value",
      identifier: "m365b_identifier-value",
    };

    await notifier().notifyStatusChange(grantRecord, recordingLog().log);

    const { body } = onlyRequest(receiver);
    expect(body).not.toContain("refresh-token-value");
    expect(body).not.toContain("m365b_identifier-value");
    expect(body).not.toContain("refreshToken");
    expect(body).not.toContain("identifier");
  });

  it("no webhook sends nothing", async () => {
    const fetchSpy = vi.spyOn(globalThis, "fetch");
    const { log, calls } = recordingLog();

    await expect(
      createNotifier(undefined).notifyStatusChange(change, log),
    ).resolves.toBeUndefined();

    expect(fetchSpy).not.toHaveBeenCalled();
    expect(receiver.requests).toEqual([]);
    expect(calls).toEqual([]);
  });
});

describe("notifier signature", () => {
  it("signature verifies with the secret", async () => {
    await notifier().notifyStatusChange(change, recordingLog().log);

    const request = onlyRequest(receiver);
    const timestamp = header(request, "x-broker-timestamp");
    const signature = header(request, "x-broker-signature");
    expect(signature).toBe(expectedSignature(secret, timestamp, request.body));
    expect(signatureMatches(secret, timestamp, request.body, signature)).toBe(
      true,
    );
  });

  it("signature fails with another secret", async () => {
    await notifier().notifyStatusChange(change, recordingLog().log);

    const request = onlyRequest(receiver);
    const timestamp = header(request, "x-broker-timestamp");
    const signature = header(request, "x-broker-signature");
    const otherSecret = "another-secret-0123456789abcdef012345678";
    expect(
      signatureMatches(otherSecret, timestamp, request.body, signature),
    ).toBe(false);
  });

  it("signature fails for a changed body", async () => {
    await notifier().notifyStatusChange(change, recordingLog().log);

    const request = onlyRequest(receiver);
    const timestamp = header(request, "x-broker-timestamp");
    const signature = header(request, "x-broker-signature");
    const changedBody = request.body.replace(
      '"status":"reauth_required"',
      '"status":"active"',
    );
    expect(changedBody).not.toBe(request.body);
    expect(signatureMatches(secret, timestamp, changedBody, signature)).toBe(
      false,
    );
  });

  it("signature fails for a changed timestamp", async () => {
    await notifier().notifyStatusChange(change, recordingLog().log);

    const request = onlyRequest(receiver);
    const timestamp = header(request, "x-broker-timestamp");
    const signature = header(request, "x-broker-signature");
    const laterTimestamp = String(Number(timestamp) + 600);
    expect(
      signatureMatches(secret, laterTimestamp, request.body, signature),
    ).toBe(false);
  });
});

describe("notifier retries", () => {
  const retriedCases: {
    name: string;
    reply: Reply;
    failure: Record<string, unknown>;
  }[] = [
    { name: "500", reply: { status: 500 }, failure: { status: 500 } },
    {
      name: "503 with Retry-After",
      reply: { status: 503, headers: { "Retry-After": "2" } },
      failure: { status: 503 },
    },
    { name: "429", reply: { status: 429 }, failure: { status: 429 } },
    { name: "408", reply: { status: 408 }, failure: { status: 408 } },
    {
      name: "dropped connection",
      reply: "drop",
      failure: { cause: expect.stringMatching(/^TypeError/) },
    },
    {
      name: "timeout",
      reply: "hang",
      failure: { cause: expect.stringMatching(/^TimeoutError/) },
    },
  ];

  it.each(retriedCases)(
    "retry after $name keeps the event",
    async ({ reply, failure }) => {
      receiver.script(reply, { status: 200 });
      const { log, calls } = recordingLog();

      await notifier({ timeoutMs: 200 }).notifyStatusChange(change, log);

      expect(receiver.requests).toHaveLength(2);
      const [first, second] = receiver.requests;
      for (const name of [
        "x-broker-event-id",
        "x-broker-timestamp",
        "x-broker-signature",
      ]) {
        expect(header(second, name)).toBe(header(first, name));
      }
      expect(second?.body).toBe(first?.body);

      const eventId = header(first, "x-broker-event-id");
      expect(callsAt(calls, "error")).toEqual([]);
      expect(callsAt(calls, "warn")).toEqual([
        {
          level: "warn",
          message: expect.any(String),
          fields: expect.objectContaining({
            grant_id: change.grantId,
            event_id: eventId,
            attempt: 1,
            ...failure,
          }),
        },
      ]);
      expect(sleeps).toHaveLength(1);
    },
  );

  it("Retry-After sets the wait on 503", async () => {
    receiver.script({ status: 503, headers: { "Retry-After": "2" } });

    await notifier().notifyStatusChange(change, recordingLog().log);

    expect(sleeps).toEqual([2000]);
  });

  it("Retry-After is capped at 30 seconds", async () => {
    receiver.script({ status: 429, headers: { "Retry-After": "120" } });

    await notifier().notifyStatusChange(change, recordingLog().log);

    expect(sleeps).toEqual([30_000]);
  });

  it("Retry-After is ignored on 500", async () => {
    vi.spyOn(Math, "random").mockReturnValue(0.5);
    receiver.script({ status: 500, headers: { "Retry-After": "20" } });

    await notifier().notifyStatusChange(change, recordingLog().log);

    expect(sleeps).toEqual([250]);
  });

  it("backoff doubles up to the jitter ceiling", async () => {
    vi.spyOn(Math, "random").mockReturnValue(0.999);
    receiver.script({ status: 500 }, { status: 500 }, { status: 500 });

    await notifier().notifyStatusChange(change, recordingLog().log);

    expect(receiver.requests).toHaveLength(4);
    expect(sleeps).toEqual([499, 999, 1998]);
  });

  it("backoff jitter reaches zero", async () => {
    vi.spyOn(Math, "random").mockReturnValue(0);
    receiver.script({ status: 500 }, { status: 500 });

    await notifier().notifyStatusChange(change, recordingLog().log);

    expect(sleeps).toEqual([0, 0]);
  });

  it("backoff is capped at 30 seconds", async () => {
    vi.spyOn(Math, "random").mockReturnValue(0.999);
    receiver.script(...Array<Reply>(8).fill({ status: 500 }));

    await notifier({ attempts: 9 }).notifyStatusChange(
      change,
      recordingLog().log,
    );

    expect(sleeps.at(-1)).toBe(29_970);
    expect(Math.max(...sleeps)).toBeLessThan(30_000);
  });

  it.each([400, 401, 404, 410, 422])("no retry after %i", async (status) => {
    receiver.script({ status });
    const { log, calls } = recordingLog();

    await notifier().notifyStatusChange(change, log);

    const request = onlyRequest(receiver);
    expect(sleeps).toEqual([]);
    expect(callsAt(calls, "warn")).toEqual([]);
    expect(callsAt(calls, "error")).toEqual([
      {
        level: "error",
        message: expect.any(String),
        fields: expect.objectContaining({
          grant_id: change.grantId,
          event_id: header(request, "x-broker-event-id"),
          attempt: 1,
          status,
        }),
      },
    ]);
  });

  it("redirect is not followed", async () => {
    receiver.script({
      status: 302,
      headers: { Location: `${receiver.baseUrl}/moved` },
    });
    const { log, calls } = recordingLog();

    await notifier().notifyStatusChange(change, log);

    const request = onlyRequest(receiver);
    expect(request.url).toBe(`/hook?token=${querySecret}`);
    expect(callsAt(calls, "error")).toHaveLength(1);
    expect(callsAt(calls, "error")[0]?.fields).toMatchObject({ status: 302 });
    expect(callsAt(calls, "error")[0]?.message).toContain("NOTIFY_WEBHOOK_URL");
  });
});

describe("notifier giving up", () => {
  it("last failed attempt logs one error", async () => {
    receiver.script({ status: 500 }, { status: 502 }, { status: 503 });
    const { log, calls } = recordingLog();

    await expect(
      notifier({ attempts: 3 }).notifyStatusChange(change, log),
    ).resolves.toBeUndefined();

    expect(receiver.requests).toHaveLength(3);
    expect(callsAt(calls, "warn").map((call) => call.fields.attempt)).toEqual([
      1, 2,
    ]);
    const errors = callsAt(calls, "error");
    expect(errors).toHaveLength(1);
    expect(errors[0]?.fields).toMatchObject({
      grant_id: change.grantId,
      event_id: header(receiver.requests[0], "x-broker-event-id"),
      attempt: 3,
      status: 503,
    });
  });

  it("default is four attempts", async () => {
    receiver.script(...Array<Reply>(5).fill({ status: 500 }));

    await notifier().notifyStatusChange(change, recordingLog().log);

    expect(receiver.requests).toHaveLength(4);
  });

  it("every attempt failing resolves", async () => {
    receiver.script("drop", "hang", { status: 500 });
    const { log, calls } = recordingLog();

    await expect(
      notifier({ attempts: 3, timeoutMs: 200 }).notifyStatusChange(change, log),
    ).resolves.toBeUndefined();

    expect(receiver.requests).toHaveLength(3);
    expect(callsAt(calls, "warn")).toHaveLength(2);
    expect(callsAt(calls, "error")).toHaveLength(1);
  });

  it("unreachable receiver resolves", async () => {
    const url = receiver.webhookUrl;
    await receiver.stop();
    receiver = new Receiver();
    await receiver.start();
    const { log, calls } = recordingLog();

    await expect(
      createNotifier(
        { url, secret },
        { attempts: 2, sleep: () => Promise.resolve() },
      ).notifyStatusChange(change, log),
    ).resolves.toBeUndefined();

    expect(callsAt(calls, "warn")).toHaveLength(1);
    expect(callsAt(calls, "error")).toEqual([
      {
        level: "error",
        message: expect.any(String),
        fields: expect.objectContaining({
          attempt: 2,
          cause: expect.stringMatching(/^TypeError: .*ECONNREFUSED/),
        }),
      },
    ]);
  });
});

describe("notifier logging", () => {
  it("logs hold no secret, signature or query", async () => {
    receiver.script(
      { status: 500 },
      "drop",
      "hang",
      { status: 429, headers: { "Retry-After": "1" } },
      { status: 400 },
    );
    const { log, calls } = recordingLog();

    await notifier({ attempts: 6, timeoutMs: 200 }).notifyStatusChange(
      change,
      log,
    );

    expect(receiver.requests).toHaveLength(5);
    expect(callsAt(calls, "warn")).toHaveLength(4);
    expect(callsAt(calls, "error")).toHaveLength(1);

    const signature = header(receiver.requests[0], "x-broker-signature");
    const logged = JSON.stringify(calls);
    expect(logged).not.toContain(secret);
    expect(logged).not.toContain(signature.slice("sha256=".length));
    expect(logged).not.toContain(querySecret);
    expect(logged).not.toContain(receiver.baseUrl);
  });
});

describe("createNotifier options", () => {
  it.each([0, -1, 1.5, Number.NaN])("attempts %s is rejected", (attempts) => {
    expect(() =>
      createNotifier({ url: receiver.webhookUrl, secret }, { attempts }),
    ).toThrow(RangeError);
  });

  it.each([0, -5, Number.NaN])("timeoutMs %s is rejected", (timeoutMs) => {
    expect(() =>
      createNotifier({ url: receiver.webhookUrl, secret }, { timeoutMs }),
    ).toThrow(RangeError);
  });
});

describe("parseRetryAfterMs", () => {
  const now = Date.parse("2025-03-01T12:00:00Z");

  it("seconds become ms", () => {
    expect(parseRetryAfterMs("0", now)).toBe(0);
    expect(parseRetryAfterMs("2", now)).toBe(2000);
    expect(parseRetryAfterMs(" 7 ", now)).toBe(7000);
  });

  it("seconds are capped at 30", () => {
    expect(parseRetryAfterMs("31", now)).toBe(30_000);
    expect(parseRetryAfterMs("86400", now)).toBe(30_000);
  });

  it("HTTP date counts from now", () => {
    expect(parseRetryAfterMs("Sat, 01 Mar 2025 12:00:10 GMT", now)).toBe(
      10_000,
    );
    expect(parseRetryAfterMs("Sat, 01 Mar 2025 11:59:00 GMT", now)).toBe(0);
    expect(parseRetryAfterMs("Sat, 01 Mar 2025 13:00:00 GMT", now)).toBe(
      30_000,
    );
  });

  it("invalid values are undefined", () => {
    for (const value of [null, "", "soon", "-1", "1.5", "2025-03-01"]) {
      expect(parseRetryAfterMs(value, now)).toBeUndefined();
    }
  });
});

/// <reference lib="dom" />
import {
  chromium,
  type Browser,
  type BrowserContext,
  type Page,
} from "playwright-core";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { routes } from "../../functions/routes.js";
import { findFreePort } from "../../local/azurite.js";
import { startLocalHost, type LocalHost } from "../../local/host.js";
import { requireTool } from "../support/requireTool.js";
import { startTestStack, type TestStack } from "../support/testStack.js";

const chromiumPath = "/usr/bin/chromium";
const chromiumAvailable = requireTool(chromiumPath, "chromium");
const siteUrl = "https://mysite.equisonline.com";

let stack: TestStack;
let host: LocalHost;
let browser: Browser;

describe.skipIf(!chromiumAvailable)(
  "sign-in page in Chromium (needs chromium)",
  () => {
    beforeAll(async () => {
      const port = await findFreePort();
      stack = await startTestStack({
        brokerOrigin: `http://localhost:${port}`,
      });
      host = await startLocalHost({
        broker: stack.createBroker(),
        routes,
        port,
      });
      // Playwright starts Chromium with a new, empty profile in a temporary folder of its own.
      browser = await chromium.launch({
        executablePath: chromiumPath,
        headless: true,
        args: [
          "--no-sandbox",
          "--disable-gpu",
          "--disable-background-networking",
          "--disable-component-update",
          "--disable-sync",
          "--no-first-run",
        ],
      });
    });

    afterAll(async () => {
      await browser?.close();
      await host?.close();
      await stack?.stop();
    });

    let context: BrowserContext;
    let page: Page;
    const consoleErrors: string[] = [];

    beforeEach(async () => {
      // The identity stand-in's certificate comes from the local CA, which Chromium does not trust.
      context = await browser.newContext({ ignoreHTTPSErrors: true });
      await context.grantPermissions(["clipboard-read", "clipboard-write"], {
        origin: host.url,
      });
      // Only loopback may be reached; anything else fails the request.
      await context.route(
        /^https?:\/\/(?!localhost[:/]|127\.0\.0\.1[:/])/,
        (route) => route.abort(),
      );
      page = await context.newPage();
      consoleErrors.length = 0;
      page.on("console", (message) => {
        if (
          message.type() === "error" &&
          !message.text().startsWith("Failed to load resource")
        ) {
          consoleErrors.push(message.text());
        }
      });
    });

    async function fillAndStart(email: string): Promise<void> {
      await page.goto(`${host.url}/`);
      await expect(page.title()).resolves.toContain("Microsoft 365");
      await page.getByLabel("EQuIS site URL").fill(siteUrl);
      await page.getByLabel("Mailbox address").fill(email);
      await page
        .getByRole("button", { name: "Sign in with Microsoft" })
        .click();
      await page.waitForURL((url) => url.origin === stack.identity.url);
    }

    it("person connects a mailbox and the copied identifier exchanges for a token", async () => {
      const email = "EQuIS@Contoso.Example";
      await fillAndStart(email);

      await expect(page.locator("#username").inputValue()).resolves.toBe(email);
      await page.getByRole("button", { name: "Sign in", exact: true }).click();
      await page.waitForURL(`${host.url}/microsoft365_oauth.html`);

      const identifierBox = page.locator("#identifier");
      await identifierBox.waitFor({ state: "visible" });
      expect(page.url()).toBe(`${host.url}/microsoft365_oauth.html`);
      await expect(page.locator("#site-url").inputValue()).resolves.toBe(
        siteUrl,
      );
      await expect(page.locator("#email").inputValue()).resolves.toBe(email);
      await expect(
        identifierBox.getAttribute("readonly"),
      ).resolves.not.toBeNull();
      await expect(
        page.evaluate(() => document.activeElement?.id),
      ).resolves.toBe("identifier");
      await expect(
        page.locator("#equis-settings").innerText(),
      ).resolves.toContain("outlook.office365.com");
      await expect(
        page.locator("#equis-settings").innerText(),
      ).resolves.toContain("smtp.office365.com");

      await page.getByRole("button", { name: "Copy" }).click();
      await page.getByRole("status").filter({ hasText: "Copied" }).waitFor();
      const copied = await page.evaluate(() => navigator.clipboard.readText());
      expect(copied).toBe(await identifierBox.inputValue());
      expect(copied).toMatch(/^m365b_[A-Za-z0-9_-]{81}$/);

      const history = await page.evaluate(() =>
        JSON.stringify({
          url: location.href,
          storage: { ...sessionStorage },
          local: { ...localStorage },
        }),
      );
      expect(history).not.toContain(copied);

      const response = await fetch(`${host.url}/api/token`, {
        method: "POST",
        headers: {
          Authorization: `Bearer ${copied}`,
          "Content-Type": "application/json",
        },
        body: JSON.stringify({ siteUrl }),
      });
      expect(response.status).toBe(200);
      const token = (await response.json()) as {
        access_token: string;
        xoauth2_user: string;
      };
      expect(token.access_token.split(".")).toHaveLength(3);
      expect(token.xoauth2_user).toBe(email);
      expect(consoleErrors).toEqual([]);
    });

    it("second sign-in for a mailbox keeps the identifier", async () => {
      const email = "renewed@contoso.example";
      for (let attempt = 1; attempt <= 2; attempt++) {
        await fillAndStart(email);
        await page
          .getByRole("button", { name: "Sign in", exact: true })
          .click();
        await page.waitForURL(`${host.url}/microsoft365_oauth.html`);
        await page.locator("#result").waitFor({ state: "visible" });
      }

      const notice = page.locator("#already-connected");
      await expect(notice.isVisible()).resolves.toBe(true);
      await expect(notice.innerText()).resolves.toContain("keeps working");
      await expect(page.locator("#identifier").isVisible()).resolves.toBe(
        false,
      );
      await expect(
        page.evaluate(() => document.activeElement?.id),
      ).resolves.toBe("already-connected");
    });

    it("person issues a new identifier", async () => {
      const email = "reissued@contoso.example";
      const identifierBox = page.locator("#identifier");
      await fillAndStart(email);
      await page.getByRole("button", { name: "Sign in", exact: true }).click();
      await page.waitForURL(`${host.url}/microsoft365_oauth.html`);
      await identifierBox.waitFor({ state: "visible" });
      const oldIdentifier = await identifierBox.inputValue();
      expect(oldIdentifier).toMatch(/^m365b_[A-Za-z0-9_-]{81}$/);

      await fillAndStart(email);
      await page.getByRole("button", { name: "Sign in", exact: true }).click();
      await page.waitForURL(`${host.url}/microsoft365_oauth.html`);
      await page.locator("#result").waitFor({ state: "visible" });
      const notice = page.locator("#already-connected");
      const issueButton = page.getByRole("button", {
        name: "Issue a new identifier",
      });
      await expect(notice.isVisible()).resolves.toBe(true);
      await expect(issueButton.isVisible()).resolves.toBe(true);
      await expect(identifierBox.isVisible()).resolves.toBe(false);

      await issueButton.click();
      await page
        .getByRole("status")
        .filter({ hasText: "New identifier issued" })
        .waitFor();

      await expect(identifierBox.isVisible()).resolves.toBe(true);
      const newIdentifier = await identifierBox.inputValue();
      expect(newIdentifier).toMatch(/^m365b_[A-Za-z0-9_-]{81}$/);
      expect(newIdentifier).not.toBe(oldIdentifier);
      await expect(
        identifierBox.getAttribute("readonly"),
      ).resolves.not.toBeNull();
      await expect(
        page.evaluate(() => document.activeElement?.id),
      ).resolves.toBe("identifier");
      await expect(issueButton.isVisible()).resolves.toBe(false);
      // The notice states that the old identifier keeps working, which is no longer true.
      await expect(notice.isVisible()).resolves.toBe(false);

      const exchangeWith = (identifier: string) =>
        fetch(`${host.url}/api/token`, {
          method: "POST",
          headers: { Authorization: `Bearer ${identifier}` },
        });
      const exchanged = await exchangeWith(newIdentifier);
      expect(exchanged.status).toBe(200);
      const token = (await exchanged.json()) as { xoauth2_user: string };
      expect(token.xoauth2_user).toBe(email);
      expect((await exchangeWith(oldIdentifier)).status).toBe(401);
      expect(consoleErrors).toEqual([]);
    });

    it("page shows a field error for a site off the allowlist", async () => {
      await page.goto(`${host.url}/microsoft365_oauth.html`);
      await page
        .getByLabel("EQuIS site URL")
        .fill("https://mysite.example.org");
      await page.getByLabel("Mailbox address").fill("equis@contoso.example");
      await page
        .getByRole("button", { name: "Sign in with Microsoft" })
        .click();

      const error = page.locator("#site-url-error");
      await error.waitFor({ state: "visible" });
      await expect(error.innerText()).resolves.toContain(
        "not an EQuIS site this service connects",
      );
      await expect(
        page.locator("#site-url").getAttribute("aria-invalid"),
      ).resolves.toBe("true");
      expect(page.url()).toBe(`${host.url}/microsoft365_oauth.html`);
    });

    it("two tabs keep the identifiers of their own mailboxes", async () => {
      const tabs = [page, await context.newPage()];
      const mailboxes = ["tab.one@contoso.example", "tab.two@contoso.example"];

      // Both sign-ins finish at Microsoft before either page fetches its result.
      for (const [index, tab] of tabs.entries()) {
        await tab.goto(`${host.url}/microsoft365_oauth.html`);
        await tab.getByLabel("EQuIS site URL").fill(siteUrl);
        await tab.getByLabel("Mailbox address").fill(mailboxes[index] ?? "");
        await tab
          .getByRole("button", { name: "Sign in with Microsoft" })
          .click();
        await tab.waitForURL((url) => url.origin === stack.identity.url);
      }
      for (const tab of tabs) {
        await tab.getByRole("button", { name: "Sign in", exact: true }).click();
        await tab.waitForURL(`${host.url}/microsoft365_oauth.html`);
      }

      for (const [index, tab] of tabs.entries()) {
        await tab.locator("#identifier").waitFor({ state: "visible" });
        await expect(tab.locator("#email").inputValue()).resolves.toBe(
          mailboxes[index],
        );
        const identifier = await tab.locator("#identifier").inputValue();
        const response = await fetch(`${host.url}/api/token`, {
          method: "POST",
          headers: { Authorization: `Bearer ${identifier}` },
        });
        const token = (await response.json()) as { xoauth2_user: string };
        expect(token.xoauth2_user).toBe(mailboxes[index]);
      }
    });

    it("cancelled sign-in is explained with the next step", async () => {
      await fillAndStart("cancel@contoso.example");
      await page.getByRole("button", { name: "Cancel" }).click();
      await page.waitForURL((url) => url.pathname === "/api/auth/callback");

      const text = await page.locator("main").innerText();
      expect(text).toContain("Permission was not granted");
      expect(text).toContain("Next step");
      await page.waitForFunction(() => location.search === "");
      expect(page.url()).toBe(`${host.url}/api/auth/callback`);
      await page
        .getByRole("link", { name: "Back to the sign-in page" })
        .click();
      await page.waitForURL(`${host.url}/microsoft365_oauth.html`);
    });

    it("sign-in as another account is refused in plain words", async () => {
      await fillAndStart("shared@contoso.example");
      await page.locator("#username").fill("admin@contoso.example");
      await page.getByRole("button", { name: "Sign in", exact: true }).click();
      await page.waitForURL((url) => url.pathname === "/api/auth/callback");

      const text = await page.locator("main").innerText();
      expect(text).toContain(
        "You signed in as admin@contoso.example; this page was started for shared@contoso.example.",
      );
    });

    it("callback finished in another browser is refused", async () => {
      await fillAndStart("tabs@contoso.example");
      await context.clearCookies();
      await page.getByRole("button", { name: "Sign in", exact: true }).click();
      await page.waitForURL((url) => url.pathname === "/api/auth/callback");

      await expect(page.locator("main").innerText()).resolves.toContain(
        "started in another browser",
      );
    });
  },
);

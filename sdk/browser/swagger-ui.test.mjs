// Swagger UI in a real browser: Debian's chromium, driven by playwright-core.
// Authorizes with the write token, uses "Try it out" to PUT a birthday and
// GET the greeting, reads the status codes and the message the page shows,
// and checks that the page talked to no host but the server (the UI must
// work with no internet access). sdk/ci.sh starts the server and sets
// BIRTHDAY_API_URL and BIRTHDAY_API_TOKEN; the screenshot goes to
// target/sdk/swagger-ui.png.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";

import { chromium } from "playwright-core";

const baseUrl = process.env.BIRTHDAY_API_URL;
const token = process.env.BIRTHDAY_API_TOKEN;
assert.ok(baseUrl && token, "BIRTHDAY_API_URL and BIRTHDAY_API_TOKEN must be set");
const serverOrigin = new URL(baseUrl).origin;
const screenshot = new URL("../../target/sdk/swagger-ui.png", import.meta.url).pathname;
// Letters only, and no other driver uses it, so the drivers can share a server.
const username = "Swaggerui";

let profile;
let context;
const requested = [];

before(async () => {
  profile = await mkdtemp(join(tmpdir(), "swagger-ui-chromium-"));
  context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    headless: true,
    viewport: { width: 1280, height: 2000 },
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  context.on("request", (request) => requested.push(request.url()));
});

after(async () => {
  await context?.close();
  if (profile) await rm(profile, { recursive: true, force: true });
});

/** Expands an operation, presses "Try it out", fills the username. */
async function tryOut(page, operationId) {
  const operation = page.locator(`#operations-Birthdays-${operationId}`);
  await operation.locator(".opblock-summary").click();
  await operation.locator("button.try-out__btn").click();
  await operation.locator('input[placeholder="username"]').fill(username);
  return operation;
}

/** Presses "Execute" and returns the status code and body the page shows. */
async function execute(operation) {
  await operation.locator("button.execute").click();
  const live = operation.locator(".live-responses-table tbody tr.response").first();
  await live.waitFor();
  const status = (await live.locator(".response-col_status").innerText()).trim();
  const body = await live.locator(".response-col_description pre").first().innerText().catch(() => "");
  return { status, body };
}

test("Swagger UI saves a birthday and shows the greeting", async () => {
  const page = await context.newPage();
  const pageErrors = [];
  page.on("pageerror", (error) => pageErrors.push(error.message));
  await page.goto(`${baseUrl}/docs`);
  await page.locator("#operations-Birthdays-putBirthday").waitFor();

  await page.getByRole("button", { name: "Authorize" }).first().click();
  const dialog = page.locator(".dialog-ux");
  await dialog.locator("input").first().fill(token);
  await dialog.locator("button.modal-btn.authorize").click();
  await dialog.locator("button.btn-done").click();

  const put = await tryOut(page, "putBirthday");
  // The deprecated query form starts empty: "Try it out" must not send it
  // next to the body. The body editor starts with the document's example.
  assert.equal(await put.locator('input[placeholder="dateOfBirth"]').inputValue(), "");
  const bodyEditor = put.locator("textarea.body-param__text");
  assert.deepEqual(JSON.parse(await bodyEditor.inputValue()), { dateOfBirth: "1990-07-14" });
  const saved = await execute(put);
  assert.equal(saved.status, "204");

  const get = await tryOut(page, "getGreeting");
  const greeting = await execute(get);
  assert.equal(greeting.status, "200");
  const { message } = JSON.parse(greeting.body);
  assert.match(message, /^Hello, Swaggerui! (Your birthday is in [1-9][0-9]* day\(s\)|Happy birthday!)$/);

  await page.screenshot({ path: screenshot, fullPage: true });
  await page.close();
  assert.deepEqual(pageErrors, [], "the page threw");

  const web = requested.filter((url) => /^(https?|wss?):/.test(url));
  assert.ok(web.length > 0, "no request was seen at all");
  const elsewhere = web.filter((url) => new URL(url).origin !== serverOrigin);
  assert.deepEqual(elsewhere, [], "the page requested other hosts");
});

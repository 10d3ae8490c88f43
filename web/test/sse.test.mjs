// Browser test of the Server-Sent Events routes: real EventSources in Debian's Chromium
// (driven by playwright-core) against a real streamgate-server (embedded broker) that
// requires a token (--auth-file), as a deployed one does.
//
// 1. An EventSource on a records stream without a session is refused (HTTP 401, which
//    EventSource does not retry). The page then calls OpenEventSession over Connect with its
//    token (a plain same-origin fetch); the answer's HttpOnly cookie is what the browser's
//    EventSources send from then on.
// 2. Nine records are published over Connect. The page opens
//    `new EventSource("/v1/topics/<topic>/records?from=earliest&max_records=2&fields=value")`:
//    the server ends each stream after two records, and the browser reconnects by itself,
//    sending the last event's id as Last-Event-ID (and the cookie). Passes when the page has
//    seen the nine values exactly once each, over at least five connections (no gap, no
//    repeat), with no console error and no request to another origin.
// 3. The original application's analytics page (examples/seed-page/index.html, its
//    SmoothieChart served from the npm package in place of cdnjs) is opened on the server's
//    origin, unchanged: its `new EventSource("/analytics")` gets the supplier's page counts
//    and the chart draws both pages' lines (green P1 and red P2 pixels on the canvas).
//    Screenshot: target/seed-page.png.
//
// Env: STREAMGATE_SERVER_BIN (default target/debug/streamgate-server), CHROMIUM (default
// /usr/bin/chromium).

import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";
import { startServer } from "./server.mjs";

const chromiumPath = process.env.CHROMIUM ?? "/usr/bin/chromium";
const root = new URL("../../", import.meta.url).pathname;
const token = "sse-test-token";

function authFile(dir) {
  const sha = createHash("sha256").update(token).digest("hex");
  const path = join(dir, "auth.toml");
  writeFileSync(path, [
    "[[principal]]", 'name = "sse-page"', `token_sha256 = "${sha}"`,
    'allow = ["publish:*", "subscribe:*", "stats"]', "",
  ].join("\n"));
  return path;
}

async function publish(url, topic, value) {
  const response = await fetch(`${url}/streamgate.v1.EventGateway/Publish`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
    body: JSON.stringify({ topic, value: Buffer.from(value).toString("base64") }),
  });
  if (response.status !== 200) {
    throw new Error(`publish ${value}: ${response.status} ${await response.text()}`);
  }
}

/// In the page: an EventSource on `path`, until it fails; resolves with its readyState then.
function refusedInPage(path) {
  return new Promise((resolve) => {
    const source = new EventSource(path);
    source.onerror = () => {
      const state = source.readyState;
      source.close();
      resolve(state);
    };
    source.onmessage = () => resolve("served");
  });
}

/// In the page: opens an EventSource session with the token; resolves with the answer.
async function openSessionInPage(token) {
  const response = await fetch("/streamgate.v1.EventGateway/OpenEventSession", {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
    body: JSON.stringify({ ttl: "600s" }),
  });
  return { status: response.status, body: await response.json() };
}

/// In the page: reads nine records over as many reconnects as the server forces.
function nineRecordsInPage(path) {
  return new Promise((resolve, reject) => {
    const source = new EventSource(path);
    const got = { opens: 0, values: [], ids: [] };
    const timer = setTimeout(() => {
      source.close();
      reject(new Error(`only ${JSON.stringify(got)} within 60 s`));
    }, 60000);
    source.onopen = () => got.opens++;
    source.onmessage = (event) => {
      got.values.push(atob(JSON.parse(event.data).value));
      got.ids.push(event.lastEventId);
      if (got.values.length === 9) {
        clearTimeout(timer);
        source.close();
        resolve(got);
      }
    };
  });
}

async function recordsResume(context, url, problems) {
  const topic = `sse-${Date.now()}`;
  const values = Array.from({ length: 9 }, (_, i) => `v${i}`);
  for (const value of values) await publish(url, topic, value);
  const path = `/v1/topics/${topic}/records?from=earliest&max_records=2&fields=value`;

  // Refused without a session: on a page of its own, whose console error (the 401's
  // content type) is expected.
  const probe = await context.newPage();
  await probe.goto(`${url}/`);
  const state = await probe.evaluate(refusedInPage, path);
  if (state !== 2) throw new Error(`an EventSource without a session: ${state}, want CLOSED (2)`);
  await probe.close();

  const page = await context.newPage();
  page.on("console", (m) => m.type() === "error" && problems.push(`console: ${m.text()}`));
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  page.on("request", (r) => !r.url().startsWith(url) && problems.push(`request to ${r.url()}`));
  // The dashboard's page: the EventSource runs same-origin, as the seed's page did.
  await page.goto(`${url}/`);
  const session = await page.evaluate(openSessionInPage, token);
  if (session.status !== 200 || session.body.cookieName !== "streamgate_session") {
    throw new Error(`OpenEventSession: ${JSON.stringify(session)}`);
  }
  const cookies = await context.cookies(url);
  const cookie = cookies.find((c) => c.name === "streamgate_session");
  if (!cookie?.httpOnly || cookie.sameSite !== "Strict") {
    throw new Error(`the session cookie: ${JSON.stringify(cookie)}`);
  }
  if (await page.evaluate(() => document.cookie.includes("streamgate_session"))) {
    throw new Error("a script can read the session cookie");
  }
  const seen = await page.evaluate(nineRecordsInPage, path);
  const sorted = [...seen.values].sort();
  if (JSON.stringify(sorted) !== JSON.stringify(values)) {
    throw new Error(`values seen ${JSON.stringify(seen.values)}, want each of ${JSON.stringify(values)} once`);
  }
  if (seen.opens < 5) throw new Error(`${seen.opens} connections: the server should have ended each after 2 records`);
  console.log(`sse test: records ok (${seen.values.length} records over ${seen.opens} connections, last id ${seen.ids.at(-1)})`);
  await page.close();
}

/// The counts of P1 and P2 pixels in the chart's colours.
function chartPixelsInPage() {
  const canvas = document.getElementById("chart2");
  const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
  let green = 0;
  let red = 0;
  for (let i = 0; i < data.length; i += 4) {
    const [r, g, b] = [data[i], data[i + 1], data[i + 2]];
    if (g > 200 && r < 60 && b < 60) green++;
    if (r > 200 && g < 60 && b < 60) red++;
  }
  return { green, red, events: window.analyticsEvents.length, last: window.analyticsEvents.at(-1) };
}

async function seedPage(context, url, problems) {
  const page = await context.newPage();
  page.on("pageerror", (e) => problems.push(`seed page error: ${e.message}`));
  // The page's own two requests: itself (on the server's origin, as the seed served it) and
  // SmoothieChart (from the npm package instead of cdnjs: the test runs offline).
  await page.route(`${url}/seed/`, (route) =>
    route.fulfill({ contentType: "text/html", body: readFileSync(`${root}examples/seed-page/index.html`) }));
  await page.route("https://cdnjs.cloudflare.com/**", (route) =>
    route.fulfill({
      contentType: "application/javascript",
      body: readFileSync(`${root}web/node_modules/smoothie/smoothie.js`),
    }));
  // Counts what the page's EventSource receives, without touching the page.
  await page.addInitScript(() => {
    window.analyticsEvents = [];
    const Original = window.EventSource;
    window.EventSource = class extends Original {
      constructor(...args) {
        super(...args);
        this.addEventListener("message", (e) => window.analyticsEvents.push(JSON.parse(e.data)));
      }
    };
  });
  await page.goto(`${url}/seed/`);
  let drawn;
  const deadline = Date.now() + 60000;
  for (;;) {
    drawn = await page.evaluate(chartPixelsInPage);
    const counted = drawn.last && drawn.last.P1 > 0 && drawn.last.P2 > 0;
    if (counted && drawn.events >= 5 && drawn.green > 50 && drawn.red > 50) break;
    if (Date.now() > deadline) throw new Error(`the seed page within 60 s: ${JSON.stringify(drawn)}`);
    await page.waitForTimeout(250);
  }
  await page.screenshot({ path: `${root}target/seed-page.png` });
  console.log(`sse test: the seed's page ok (${drawn.events} events, last ${JSON.stringify(drawn.last)}; screenshot: target/seed-page.png)`);
}

async function main() {
  const dir = mkdtempSync(join(tmpdir(), "streamgate-sse-"));
  const { child, url } = await startServer([
    "--listen", "127.0.0.1:0", "--auto-create-topics", "--supplier-rate", "20",
    "--auth-file", authFile(dir), "--insecure-embedded-broker",
  ]);
  const browser = await chromium.launch({ executablePath: chromiumPath, args: ["--no-sandbox"] });
  const problems = [];
  try {
    const context = await browser.newContext();
    await recordsResume(context, url, problems);
    await seedPage(context, url, problems);
    if (problems.length > 0) throw new Error(problems.join("\n"));
    console.log("sse test: ok");
  } finally {
    await browser.close();
    child.kill("SIGTERM");
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(`sse test: FAILED: ${e.stack ?? e}`);
  process.exit(1);
});

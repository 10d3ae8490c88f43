// Browser test of the dashboard: Debian's Chromium driven by playwright-core against a real
// streamgate-server (embedded broker, supplier at 20 events/s).
//
// It waits for P1 and P2 counts above 0, stops the supplier from the page (keyboard), waits
// for the rolling counts to fall to 0, publishes a PageEvent for page P7 over gRPC (the CLI)
// and waits for a P7 series and a P7 row in the tail, starts the supplier again from the
// page, then restarts the server on the same address and waits for the page to reconnect by itself. Any console error, page error or
// request to another origin fails it. Screenshots (1280x800 and phone width) go to target/.
//
// Env: STREAMGATE_SERVER_BIN, STREAMGATE_CLI_BIN (default target/debug/…), CHROMIUM
// (default /usr/bin/chromium).

import { chromium } from "playwright-core";
import { spawn, execFileSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import { createInterface } from "node:readline";

const root = new URL("../../", import.meta.url).pathname;
const serverBin = process.env.STREAMGATE_SERVER_BIN ?? `${root}target/debug/streamgate-server`;
const cliBin = process.env.STREAMGATE_CLI_BIN ?? `${root}target/debug/streamgate`;
const chromiumPath = process.env.CHROMIUM ?? "/usr/bin/chromium";

function startServer(listen = "127.0.0.1:0") {
  const child = spawn(serverBin, ["--listen", listen, "--supplier-rate", "20"], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, RUST_LOG: "warn" },
  });
  child.stderr.on("data", (chunk) => process.stderr.write(`server> ${chunk}`));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("no banner from the server within 30 s")), 30000);
    child.on("exit", (code) => reject(new Error(`server exited early with ${code}`)));
    createInterface({ input: child.stdout }).on("line", (line) => {
      const match = line.match(/(http:\/\/[0-9.:]+)/);
      if (match && line.includes("gRPC")) {
        clearTimeout(timer);
        resolve({ child, url: match[1] });
      }
    });
  });
}

async function waitFor(what, check, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (await check()) return;
    } catch {
      // Not there yet.
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

let { child: server, url } = await startServer();
let restarting = false;
const browser = await chromium.launch({
  executablePath: chromiumPath,
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const problems = [];
let failed = false;
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  page.on("console", (m) => {
    // While the server is down on purpose, the browser reports the refused connections.
    if (m.type() === "error" && !(restarting && m.text().includes("Failed to load resource"))) {
      problems.push(`console error: ${m.text()}`);
    }
  });
  page.on("pageerror", (e) => problems.push(`page error: ${e}`));
  page.on("request", (r) => { if (!r.url().startsWith(url)) problems.push(`request outside the origin: ${r.url()}`); });

  const started = Date.now();
  await page.goto(`${url}/`);
  await page.waitForSelector("#connection.up", { timeout: 30000 });
  console.log(`page live in ${Date.now() - started} ms`);

  const value = async (p) => Number(await page.locator(`#legend li[data-page="${p}"] .value`).textContent({ timeout: 500 }));
  await waitFor("P1 and P2 counted", async () => (await value("P1")) > 0 && (await value("P2")) > 0, 60000);
  console.log("ok: the chart shows P1 and P2 with counts above 0");

  // Stop the supplier from the page, with the keyboard.
  await page.locator("#stop").focus();
  await page.keyboard.press("Enter");
  await waitFor("supplier stopped", async () => (await page.locator("#supplier-status").getAttribute("data-running")) === "false", 10000);
  await waitFor("rolling counts at 0", async () => (await value("P1")) === 0 && (await value("P2")) === 0, 60000);
  console.log("ok: after stopping the supplier from the page, the rolling counts fell to 0");

  // A page published over gRPC appears as a new line and in the tail.
  execFileSync(cliBin, ["--server", url, "publish", "R2", "--name", "P7", "--duration", "500"], { stdio: "inherit" });
  await waitFor("P7 counted in the chart", async () => (await value("P7")) > 0, 30000);
  await waitFor("P7 in the tail", async () => (await page.locator('#tail li[data-page="P7"]').count()) >= 1, 30000);
  console.log("ok: P7 appeared as a series and in the tail");

  // Start the supplier again from the page: the counts climb again.
  await page.locator("#start").click();
  await waitFor("supplier running", async () => (await page.locator("#supplier-status").getAttribute("data-running")) === "true", 10000);
  await waitFor("P1 counted again", async () => (await value("P1")) > 0, 60000);
  console.log("ok: after starting the supplier from the page, the counts rose again");

  // The server restarts on the same address: the page reconnects by itself.
  restarting = true;
  server.kill("SIGTERM");
  await new Promise((resolve) => server.on("exit", resolve));
  await page.waitForSelector("#connection.down", { timeout: 30000 });
  ({ child: server } = await startServer(url.replace("http://", "")));
  await page.waitForSelector("#connection.up", { timeout: 60000 });
  await waitFor("counts from the new server", async () => (await value("P1")) > 0, 60000);
  restarting = false;
  console.log("ok: after a server restart the page reconnected by itself");

  mkdirSync(`${root}target`, { recursive: true });
  await page.screenshot({ path: `${root}target/dashboard.png`, fullPage: true });
  await page.setViewportSize({ width: 390, height: 844 });
  await page.screenshot({ path: `${root}target/dashboard-phone.png`, fullPage: true });
  console.log("screenshots: target/dashboard.png, target/dashboard-phone.png");
} catch (error) {
  failed = true;
  console.error(`FAILED: ${error.message}`);
} finally {
  await browser.close();
  server.kill("SIGTERM");
}
if (problems.length) {
  failed = true;
  for (const p of problems) console.error(`FAILED: ${p}`);
}
console.log(failed ? "dashboard test: FAILED" : "dashboard test: passed");
process.exit(failed ? 1 : 0);

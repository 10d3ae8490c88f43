// Browser test of the Server-Sent Events records stream: a real EventSource in Debian's
// Chromium (driven by playwright-core) against a real streamgate-server (embedded broker).
//
// Nine records are published over Connect (a plain fetch with JSON). The page opens
// `new EventSource("/v1/topics/<topic>/records?from=earliest&max_records=2&fields=value")`:
// the server ends each stream after two records, and the browser reconnects by itself,
// sending the last event's id as Last-Event-ID. The test passes when the page has seen the
// nine values exactly once each, over at least five connections (no gap, no repeat), and
// no console error or request to another origin happened.
//
// Env: STREAMGATE_SERVER_BIN (default target/debug/streamgate-server), CHROMIUM (default
// /usr/bin/chromium).

import { chromium } from "playwright-core";
import { startServer as startShared } from "./server.mjs";

const chromiumPath = process.env.CHROMIUM ?? "/usr/bin/chromium";

function startServer() {
  return startShared(["--listen", "127.0.0.1:0", "--supplier-stopped", "--auto-create-topics"]);
}

async function publish(url, topic, value) {
  const response = await fetch(`${url}/streamgate.v1.EventGateway/Publish`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ topic, value: Buffer.from(value).toString("base64") }),
  });
  if (response.status !== 200) {
    throw new Error(`publish ${value}: ${response.status} ${await response.text()}`);
  }
}

async function main() {
  const { child, url } = await startServer();
  const browser = await chromium.launch({ executablePath: chromiumPath, args: ["--no-sandbox"] });
  const problems = [];
  try {
    const topic = `sse-${Date.now()}`;
    const values = Array.from({ length: 9 }, (_, i) => `v${i}`);
    for (const value of values) await publish(url, topic, value);

    const page = await browser.newPage();
    page.on("console", (m) => m.type() === "error" && problems.push(`console: ${m.text()}`));
    page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
    page.on("request", (r) => !r.url().startsWith(url) && problems.push(`request to ${r.url()}`));
    // The dashboard's page: the EventSource runs same-origin, as the seed's page did.
    await page.goto(`${url}/`);
    const path = `/v1/topics/${topic}/records?from=earliest&max_records=2&fields=value`;
    const seen = await page.evaluate(
      (path) =>
        new Promise((resolve, reject) => {
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
        }),
      path,
    );
    const sorted = [...seen.values].sort();
    if (JSON.stringify(sorted) !== JSON.stringify(values)) {
      throw new Error(`values seen ${JSON.stringify(seen.values)}, want each of ${JSON.stringify(values)} once`);
    }
    if (seen.opens < 5) throw new Error(`${seen.opens} connections: the server should have ended each after 2 records`);
    if (problems.length > 0) throw new Error(problems.join("\n"));
    console.log(`sse test: ok (${seen.values.length} records over ${seen.opens} connections, last id ${seen.ids.at(-1)})`);
  } finally {
    await browser.close();
    child.kill("SIGTERM");
  }
}

main().catch((e) => {
  console.error(`sse test: FAILED: ${e.stack ?? e}`);
  process.exit(1);
});

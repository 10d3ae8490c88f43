// Browser test of the dashboard's Topics and Groups views (AdminService over grpc-web):
// Debian's Chromium driven by playwright-core against a real streamgate-server with its
// embedded broker. Two scenarios.
//
// 1. Open server (every caller is admin).
//    Topics: the nav bar reaches the view with the keyboard; a topic with 6 partitions is
//    created through the form (review, then confirm) and described with 6 partitions (leader,
//    replicas, in-sync replicas, watermarks) and its configs or the reason they are not
//    listed, and no schema; R2 shows its built-in JSON Schema (format, source, and the
//    definition in a collapsed <details>); 12 records published over Connect (2 per partition) show as 12 records and
//    high watermark 2 per partition; deleting it (typing the name to confirm) shows the
//    server's UNIMPLEMENTED message in the dialog (the embedded broker has no DeleteTopics).
//    Groups: a consumer group reads 5 of the 12 records (Connect Subscribe, max_records 5);
//    the group is listed, and its page shows 6 partition rows whose lag is log end - committed,
//    summing to the total lag 7; 3 more records raise the total to 10 with no click (the 2 s
//    refresh); a reset to earliest shows the dry run's plan (6 partitions, each CURRENT → 0),
//    then, confirmed, the total lag becomes 15; while a Subscribe stream of the group is open
//    it is listed as a member and the reset's commit is refused with the server's
//    FAILED_PRECONDITION message; deleting the group (confirmed by name) shows the server's
//    UNIMPLEMENTED message. The refresh stops while the tab is hidden and when the view is
//    left, and starts again when it is shown. At phone width the page does not scroll
//    sideways. Screenshots: target/dashboard-topics.png, target/dashboard-groups.png (lag),
//    target/dashboard-groups-reset.png (after the reset, or its error),
//    target/dashboard-groups-delete.png (the delete dialog's answer),
//    target/dashboard-groups-phone.png.
//
// 2. Server with --auth-file: a principal without `topics:manage:` tries to create a topic;
//    the PERMISSION_DENIED answer disables Create topic with the server's message naming the
//    permission; signing in as a principal with it enables Create topic again, and it works.
//
// Any console error, page error or request to another origin fails the test. It tests the
// bundle in web/dist: when the server binary embeds another one (not rebuilt since
// `npm run build`), the page's three files are served from web/dist instead, and it says so.
//
// Env: STREAMGATE_SERVER_BIN (default target/debug/streamgate-server), CHROMIUM (default
// /usr/bin/chromium).

import { chromium } from "playwright-core";
import { createHash, randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startServer } from "./server.mjs";

const root = new URL("../../", import.meta.url).pathname;
const chromiumPath = process.env.CHROMIUM ?? "/usr/bin/chromium";
const chromiumArgs = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync"];

/** Polls `check` until it returns true; its last failure or value is in the timeout's message. */
async function waitFor(what, check, timeoutMs = 30000) {
  const deadline = Date.now() + timeoutMs;
  let last = "";
  for (;;) {
    try {
      const ok = await check();
      if (ok === true) return;
      last = ok === false || ok === undefined ? "" : ` (last: ${ok})`;
    } catch (error) {
      last = ` (last: ${error.message.split("\n")[0]})`;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}${last}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

function check(condition, message) {
  if (!condition) throw new Error(message);
}

// ---------------------------------------------------------------- Connect calls from node

function headers(token, contentType = "application/json") {
  return { "content-type": contentType, ...(token ? { authorization: `Bearer ${token}` } : {}) };
}

/** Publishes one raw record to a given partition (Connect unary, JSON). */
async function publish(url, topic, partition, value, token) {
  const response = await fetch(`${url}/streamgate.v1.EventGateway/Publish`, {
    method: "POST",
    headers: headers(token),
    body: JSON.stringify({ topic, partition, value: Buffer.from(value).toString("base64") }),
  });
  const text = await response.text();
  if (response.status !== 200) throw new Error(`Publish ${topic}/${partition}: HTTP ${response.status} ${text}`);
  return JSON.parse(text);
}

/** A Connect stream envelope: flags 0, big-endian length, the JSON message. */
function envelope(message) {
  const json = Buffer.from(JSON.stringify(message));
  const out = Buffer.alloc(5 + json.length);
  out.writeUInt32BE(json.length, 1);
  json.copy(out, 5);
  return out;
}

/**
 * A server-streaming Connect call (JSON): yields each message; throws the end-stream error.
 * `signal` ends it from this side.
 */
async function* connectStream(url, method, request, { token, signal } = {}) {
  const response = await fetch(`${url}/streamgate.v1.EventGateway/${method}`, {
    method: "POST",
    headers: headers(token, "application/connect+json"),
    body: envelope(request),
    signal,
  });
  if (response.status !== 200) throw new Error(`${method}: HTTP ${response.status} ${await response.text()}`);
  let buffer = Buffer.alloc(0);
  for await (const chunk of response.body) {
    buffer = Buffer.concat([buffer, chunk]);
    while (buffer.length >= 5 && buffer.length >= 5 + buffer.readUInt32BE(1)) {
      const flags = buffer[0];
      const length = buffer.readUInt32BE(1);
      const message = JSON.parse(buffer.subarray(5, 5 + length).toString() || "{}");
      buffer = buffer.subarray(5 + length);
      if (flags & 2) {
        if (message.error) throw new Error(`${method}: ${message.error.code}: ${message.error.message}`);
        return;
      }
      yield message;
    }
  }
  throw new Error(`${method}: the stream ended without its end message`);
}

/** Reads `max` records of `topic` in `group` from the earliest, so the group commits them. */
async function readInGroup(url, topic, group, max, token) {
  let records = 0;
  let assigned = false;
  const request = { topics: [topic], group, start: { earliest: true }, maxRecords: String(max) };
  for await (const message of connectStream(url, "Subscribe", request, { token })) {
    if (message.assignment) assigned = true;
    records += message.records?.records.length ?? (message.record ? 1 : 0);
  }
  check(assigned, "Subscribe sent no Assignment");
  check(records === max, `Subscribe in group ${group} delivered ${records} records, want ${max}`);
}

// ---------------------------------------------------------------- the page

async function openPage(browser, url, problems, viewport = { width: 1280, height: 800 }) {
  const page = await browser.newPage({ viewport });
  page.on("console", (m) => { if (m.type() === "error") problems.push(`console error: ${m.text()}`); });
  page.on("pageerror", (e) => problems.push(`page error: ${e}`));
  page.on("request", (r) => { if (!r.url().startsWith(url)) problems.push(`request outside the origin: ${r.url()}`); });
  const served = await (await fetch(`${url}/app.js`)).text();
  if (served !== readFileSync(`${root}web/dist/app.js`, "utf8")) {
    console.log("note: the server binary embeds another bundle than web/dist (rebuild it: cargo build -p streamgate-server); serving web/dist's files to the page instead");
    const types = { "index.html": "text/html; charset=utf-8", "app.js": "text/javascript; charset=utf-8", "app.css": "text/css; charset=utf-8" };
    await page.route((u) => u.href.startsWith(url) && ["/", "/index.html", "/app.js", "/app.css"].includes(u.pathname), (route) => {
      const path = new URL(route.request().url()).pathname;
      const file = path === "/" ? "index.html" : path.slice(1);
      return route.fulfill({ body: readFileSync(`${root}web/dist/${file}`), contentType: types[file] });
    });
  }
  return page;
}

/** The rows of a data table: each row's data attributes and cell texts. */
function rowsOf(page, table) {
  return page.$$eval(`${table} tbody tr`, (rows) => rows.map((r) => ({ data: { ...r.dataset }, cells: [...r.cells].map((c) => c.textContent.trim()) })));
}

const text = async (page, selector) => (await page.locator(selector).textContent({ timeout: 1000 }))?.trim() ?? "";

/** Follows a nav bar link with the keyboard, and checks the view, the link and the focus. */
async function navigate(page, view, heading) {
  await page.locator(`#nav-${view}`).focus();
  await page.keyboard.press("Enter");
  await page.locator(`#view-${view}`).waitFor({ state: "visible", timeout: 5000 });
  check((await page.locator(`#nav-${view}`).getAttribute("aria-current")) === "page", `the ${view} link is not marked current`);
  await waitFor(`focus on ${heading}`, () => page.evaluate((id) => document.activeElement?.id === id, heading), 5000);
  for (const other of ["live", "topics", "groups"].filter((v) => v !== view)) {
    check(await page.locator(`#view-${other}`).isHidden(), `the ${other} view is still shown`);
  }
}

// ---------------------------------------------------------------- 1. topics and groups

async function topicsAndGroups(browser, url, problems) {
  const id = randomBytes(3).toString("hex");
  const topic = `admin-test-${id}`;
  const group = `admin-test-group-${id}`;
  const page = await openPage(browser, url, problems);
  await page.goto(`${url}/`);
  await page.locator("#view-live").waitFor({ state: "visible" });

  // ---- Topics: list, create (review, confirm), describe
  await navigate(page, "topics", "topics-title");
  await page.locator('#topics-table tr[data-topic="R2"]').waitFor({ timeout: 30000 });
  console.log(`ok: the nav bar opens Topics with the keyboard; ${await text(page, "#topics-status")}`);

  await page.locator("#topic-create").click();
  await page.locator("#create-dialog").waitFor({ state: "visible" });
  await page.locator("#create-name").fill(topic);
  await page.locator("#create-partitions").fill("6");
  await page.locator("#create-configs").fill("retention.ms=86400000\n");
  await page.locator("#create-form button[type=submit]").click();
  await page.locator("#create-review").waitFor({ state: "visible" });
  const review = await text(page, "#create-summary");
  check(review.includes(topic) && review.includes("6") && review.includes("retention.ms=86400000"), `the review says: ${review}`);
  await page.locator("#create-confirm").click();
  const created = async () => page.url().endsWith(`#topics/${topic}`) && (await page.locator("#create-dialog").isHidden());
  await waitFor("the topic created, or an error in the dialog", async () =>
    (await created()) || ((await text(page, "#create-error")) !== "" && (await text(page, "#create-error")) !== "creating…"));
  let configsRefusal = "";
  if (!(await created())) {
    // The embedded broker keeps no topic configs: the server refuses them, and the dialog
    // says so in its words; Back, without the config, then creates the topic.
    configsRefusal = await text(page, "#create-error");
    check(/^UNIMPLEMENTED: .*configs/.test(configsRefusal), `CreateTopic with a config: ${configsRefusal}`);
    check(await page.locator("#create-dialog").isVisible(), "the dialog closed on a failed creation");
    await page.locator("#create-back").click();
    await page.locator("#create-configs").fill("");
    await page.locator("#create-form button[type=submit]").click();
    await page.locator("#create-confirm").click();
    await waitFor("the created topic's page", async () => (await created()) || text(page, "#create-error"));
    console.log(`ok: CreateTopic with retention.ms showed the server's refusal in the dialog ("${configsRefusal}"); Back, without it, created the topic`);
  }
  await waitFor("6 partitions described", async () => (await page.locator("#topic-summary").getAttribute("data-partitions")) === "6" || text(page, "#topic-error"));
  const partitions = await rowsOf(page, "#topic-partitions");
  check(partitions.length === 6, `${partitions.length} partition rows, want 6`);
  check(partitions.every((p, i) => p.cells[0] === String(i) && /^\d+$/.test(p.cells[1]) && p.cells[2] !== "?" && p.cells[3] !== "?"),
    `partition rows without leader, replicas or in-sync replicas: ${JSON.stringify(partitions)}`);
  const configsNote = (await page.locator("#topic-configs-note").isVisible()) ? await text(page, "#topic-configs-note") : "";
  const configs = await rowsOf(page, "#topic-configs");
  if (configsNote) {
    check(/^Configs unavailable: \S/.test(configsNote), `the configs note: ${configsNote}`);
  } else {
    const retention = configs.find((c) => c.data.config === "retention.ms");
    check(retention?.cells[1] === "86400000" && retention.cells[3] === "no", `retention.ms in the configs table: ${JSON.stringify(retention)}`);
  }
  check(await page.locator("#topic-schema").isHidden(), "an untyped topic shows a schema");
  console.log(`ok: created ${topic} through the form; described with 6 partitions (${partitions[0].cells.join(" | ")}); configs: ${configsNote || `${configs.length} listed, retention.ms=86400000 set for the topic`}; no schema`);

  // ---- 12 records, 2 per partition, then Refresh
  for (let p = 0; p < 6; p++) for (let i = 0; i < 2; i++) await publish(url, topic, p, `r${p}-${i}`);
  await page.locator("#topic-refresh").click();
  await waitFor("12 records described", async () => (await text(page, "#topic-summary")).includes("· 12 records"));
  const filled = await rowsOf(page, "#topic-partitions");
  check(filled.every((p) => p.cells[4] === "0" && p.cells[5] === "2" && p.cells[6] === "2"), `low/high/records per partition: ${JSON.stringify(filled.map((p) => p.cells.slice(4)))}`);
  mkdirSync(`${root}target`, { recursive: true });
  await page.screenshot({ path: `${root}target/dashboard-topics.png`, fullPage: true });
  console.log("ok: 12 published records show as 12 records, high watermark 2 in each partition (screenshot: target/dashboard-topics.png)");

  // ---- Delete topic: the name must be typed; the embedded broker cannot delete
  await page.locator("#topic-delete").click();
  await page.locator("#confirm-dialog").waitFor({ state: "visible" });
  await page.locator("#confirm-input").fill(topic.slice(0, -1));
  check(await page.locator("#confirm-ok").isDisabled(), "Delete is enabled before the name is typed in full");
  await page.locator("#confirm-input").fill(topic);
  check(await page.locator("#confirm-ok").isEnabled(), "Delete stays disabled with the name typed");
  await page.locator("#confirm-input").press("Enter");
  await waitFor("the DeleteTopic error in the dialog", async () => (await text(page, "#confirm-error")) !== "");
  const topicRefusal = await text(page, "#confirm-error");
  check(/^UNIMPLEMENTED: \S/.test(topicRefusal) && !topicRefusal.includes("no message from the server"), `DeleteTopic's error in the dialog: ${topicRefusal}`);
  check(await page.locator("#confirm-dialog").isVisible(), "the dialog closed on a failed deletion");
  await page.locator("#confirm-cancel").click();
  await page.locator("#confirm-dialog").waitFor({ state: "hidden" });
  console.log(`ok: Delete topic asks for the name, and shows the server's answer: "${topicRefusal}"`);

  // ---- A typed topic: R2's built-in schema
  await page.evaluate(() => { window.location.hash = "#topics/R2"; });
  await waitFor("R2's schema", async () => (await page.locator("#topic-schema").isVisible()) || text(page, "#topic-error"));
  const schema = await page.$$eval("#topic-schema-summary dt", (dts) => dts.map((dt) => `${dt.textContent}: ${dt.nextElementSibling?.textContent}`).join(", "));
  check(schema.includes("JSON Schema") && schema.includes("built-in"), `R2's schema summary: ${schema}`);
  check(!(await page.locator("#topic-schema-definition").isVisible()), "the schema definition is not collapsed");
  await page.locator("#topic-schema-details summary").click();
  const definition = await text(page, "#topic-schema-definition");
  check(await page.locator("#topic-schema-definition").isVisible() && definition.includes('"PageEvent"'), `R2's schema definition: ${definition.slice(0, 200)}`);
  console.log(`ok: R2 shows its schema (${schema}), the definition in a collapsed <details>`);

  // ---- A group reads 5 of the 12 records
  await readInGroup(url, topic, group, 5);

  // ---- Groups: listed, described, live
  await navigate(page, "groups", "groups-title");
  await waitFor(`${group} listed`, async () => {
    if ((await page.locator(`#groups-table tr[data-group="${group}"]`).count()) === 1) return true;
    await page.locator("#groups-refresh").click();
    return text(page, "#groups-error");
  });
  const groupsNote = (await page.locator("#groups-note").isVisible()) ? await text(page, "#groups-note") : "(none)";
  console.log(`ok: ${group} is listed (${await text(page, `#groups-table tr[data-group="${group}"] td:nth-child(2)`)}); note: ${groupsNote}`);
  await page.locator(`#groups-table tr[data-group="${group}"] a`).click();
  await page.locator("#group-detail").waitFor({ state: "visible" });

  const lagRows = async () => (await rowsOf(page, "#group-partitions")).filter((r) => r.data.topic === topic);
  const totalLag = async () => Number(await page.locator("#group-total-lag").getAttribute("data-value", { timeout: 1000 }));
  await waitFor("total lag 7", async () => (await totalLag()) === 7 || `${await totalLag()}; ${await text(page, "#group-error")}`);
  const checkLag = async (want) => {
    const rows = await lagRows();
    check(rows.length === 6, `${rows.length} partition rows of ${topic}, want 6: ${JSON.stringify(rows)}`);
    let sum = 0;
    for (const r of rows) {
      const [, , lag, committed, logEnd] = r.cells;
      const expected = Number(logEnd) - (committed === "none" ? 0 : Number(committed));
      check(Number(lag) === expected, `partition ${r.data.partition}: lag ${lag}, want ${logEnd} - ${committed}`);
      sum += Number(lag);
    }
    check(sum === want, `the partitions' lag sums to ${sum}, want ${want}`);
    const footer = await page.$$eval("#group-partitions tfoot td", (cells) => cells.map((c) => c.textContent));
    check(footer[2] === String(want), `the table's total row says ${footer[2]}, want ${want}`);
    return rows;
  };
  const before = await checkLag(7);
  check(/^live · updated/.test(await text(page, "#group-live")), `the live line: ${await text(page, "#group-live")}`);
  const membersNote = (await page.locator("#group-note").isVisible()) ? await text(page, "#group-note") : "(none)";
  console.log(`ok: ${group}: 6 partitions, lag = log end - committed each, total 7 (partition:committed/log end ${before.map((r) => `${r.data.partition}:${r.cells[3]}/${r.cells[4]}`).join(" ")}); state ${await text(page, "#group-state")}; members note: ${membersNote}`);

  // 3 more records: the page sees the lag grow by itself, within a few refreshes.
  for (let i = 0; i < 3; i++) await publish(url, topic, 0, `later-${i}`);
  await waitFor("total lag 10 without a click", async () => (await totalLag()) === 10, 10000);
  await checkLag(10);
  await page.screenshot({ path: `${root}target/dashboard-groups.png`, fullPage: true });
  console.log("ok: 3 more records raise the total lag to 10 with no click (refreshed every 2 s; screenshot: target/dashboard-groups.png)");

  // ---- Reset to earliest: dry run, plan, confirm
  await page.locator("#group-reset").click();
  await page.locator("#reset-dialog").waitFor({ state: "visible" });
  check(await page.locator(`#reset-topics input[value="${topic}"]`).isChecked(), `${topic} is not offered, checked, in the reset form`);
  await page.locator("#reset-target").selectOption("earliest");
  await page.locator("#reset-form button[type=submit]").click();
  await page.locator("#reset-plan").waitFor({ state: "visible", timeout: 30000 }).catch(async () => {
    throw new Error(`no plan: ${await text(page, "#reset-error")}`);
  });
  const plan = await rowsOf(page, "#reset-plan-table");
  const committedBefore = Object.fromEntries((await lagRows()).map((r) => [r.data.partition, r.cells[3]]));
  check(plan.length === 6 && plan.every((m) => m.data.topic === topic && m.cells[3] === "0"), `the plan: ${JSON.stringify(plan)}`);
  check(plan.every((m) => m.cells[2] === committedBefore[m.data.partition]), `the plan's current offsets ${JSON.stringify(plan.map((m) => m.cells[2]))} differ from the committed ones ${JSON.stringify(committedBefore)}`);
  const summary = await text(page, "#reset-plan-summary");
  check(/^Dry run: 6 partitions of 1 topic would move/.test(summary), `the plan's summary: ${summary}`);
  check((await totalLag()) === 10, "the dry run moved the offsets");
  await page.locator("#reset-execute").click();
  await waitFor("the reset executed, or an error in the dialog", async () =>
    (await page.locator("#reset-dialog").isHidden()) || (await text(page, "#reset-error")) !== "");
  const planText = plan.map((m) => `${m.data.partition}: ${m.cells[2]} → ${m.cells[3]}`).join(", ");
  if (await page.locator("#reset-dialog").isVisible()) {
    // A failure, but not one that stops the scenario: the checks after it still say what
    // they find. The screenshot shows the dialog with the server's answer.
    problems.push(`the reset to earliest (plan ${planText}) was not executed: ${await text(page, "#reset-error")} (screenshot: target/dashboard-groups-reset.png)`);
    await page.screenshot({ path: `${root}target/dashboard-groups-reset.png`, fullPage: true });
    await page.keyboard.press("Escape");
    await page.locator("#reset-dialog").waitFor({ state: "hidden" });
  } else {
    await waitFor("total lag 15 after the reset", async () => (await totalLag()) === 15);
    await checkLag(15);
    check(/^offsets of 6 partitions reset/.test(await text(page, "#group-status")), `the status line: ${await text(page, "#group-status")}`);
    await page.screenshot({ path: `${root}target/dashboard-groups-reset.png`, fullPage: true });
    console.log(`ok: reset to earliest: plan ${planText}; confirmed, total lag 10 → 15 (screenshot: target/dashboard-groups-reset.png)`);
  }

  // ---- An active member: it shows in the members table, and the reset's commit is refused
  const stop = new AbortController();
  const reading = (async () => {
    for await (const _ of connectStream(url, "Subscribe", { topics: [topic], group }, { signal: stop.signal })) { /* held open */ }
  })().catch((error) => { if (!stop.signal.aborted) problems.push(`the member's stream: ${error.message}`); });
  // Without DescribeGroups (the embedded broker) the server knows only its own streams: it
  // lists them as members, or counts them in the note; either way the page must show it.
  const memberShown = async () => (await page.locator("#group-members tbody tr[data-member]").count()) >= 1 ||
    ((await page.locator("#group-note").isVisible()) && /\b1 stream\(s\) of this server are in the group now/.test(await text(page, "#group-note")));
  await waitFor("the member shown", memberShown, 15000);
  const members = await rowsOf(page, "#group-members");
  const memberSeen = members[0]?.data.member !== undefined ? `listed: ${members[0].cells.join(" | ")}` : `in the note: "${await text(page, "#group-note")}"`;
  await page.locator("#group-reset").click();
  await page.locator("#reset-target").selectOption("latest");
  await page.locator("#reset-form button[type=submit]").click();
  // The dry run may answer a plan (then the commit is refused) or be refused itself.
  await waitFor("a plan or an error", async () => (await page.locator("#reset-plan").isVisible()) || (await text(page, "#reset-error")) !== "");
  if (await page.locator("#reset-plan").isVisible()) await page.locator("#reset-execute").click();
  await waitFor("FAILED_PRECONDITION shown", async () => /^FAILED_PRECONDITION: \S/.test(await text(page, "#reset-error")) || text(page, "#reset-error"));
  const precondition = await text(page, "#reset-error");
  await page.keyboard.press("Escape");
  await page.locator("#reset-dialog").waitFor({ state: "hidden" });
  stop.abort();
  await reading;
  await waitFor("no member after the stream ended", async () => !(await memberShown()), 30000);
  console.log(`ok: with a Subscribe stream open, the member is shown (${memberSeen}) and the reset shows: "${precondition}"`);

  // ---- The refresh stops while the tab is hidden, and when the view is left
  const describes = [];
  page.on("request", (r) => { if (r.url().endsWith("/streamgate.v1.AdminService/DescribeGroup")) describes.push(Date.now()); });
  const setHidden = (hidden) => page.evaluate((h) => {
    Object.defineProperty(document, "hidden", { value: h, configurable: true });
    Object.defineProperty(document, "visibilityState", { value: h ? "hidden" : "visible", configurable: true });
    document.dispatchEvent(new Event("visibilitychange"));
  }, hidden);
  await waitFor("a refresh while shown", () => describes.length >= 1, 5000);
  await setHidden(true);
  // An observation window, not a synchronisation: no request may come in 2.5 refresh periods.
  const hiddenAt = Date.now();
  await page.waitForTimeout(5000);
  check(!describes.some((t) => t > hiddenAt + 100), `DescribeGroup called while the tab was hidden: ${describes.filter((t) => t > hiddenAt).length} times`);
  check(/paused/.test(await text(page, "#group-live")), `the live line while hidden: ${await text(page, "#group-live")}`);
  const shownAt = Date.now();
  await setHidden(false);
  await waitFor("a refresh once visible again", () => describes.some((t) => t >= shownAt), 3000);
  await navigate(page, "topics", "topics-title");
  const leftAt = Date.now();
  await page.waitForTimeout(5000); // observation window, as above
  check(!describes.some((t) => t > leftAt + 100), "DescribeGroup called after leaving the Groups view");
  await page.goBack(); // the fragment is the route: back to the group's page
  await page.locator("#group-detail").waitFor({ state: "visible" });
  await waitFor("a refresh on coming back", () => describes.some((t) => t > leftAt + 5000), 3000);
  console.log("ok: the group's refresh pauses while the tab is hidden and stops when the view is left; Back brings the group again");

  // ---- Delete group: confirmed by name; the embedded broker cannot delete
  await page.locator("#group-delete").click();
  await page.locator("#confirm-dialog").waitFor({ state: "visible" });
  check((await text(page, "#confirm-prompt")) === `Type ${group} to confirm`, `the prompt: ${await text(page, "#confirm-prompt")}`);
  check(await page.locator("#confirm-ok").isDisabled(), "Delete group is enabled before the name is typed");
  await page.locator("#confirm-input").fill(group);
  await page.locator("#confirm-ok").click();
  await waitFor("the DeleteGroup error in the dialog", async () => (await text(page, "#confirm-error")) !== "");
  const groupRefusal = await text(page, "#confirm-error");
  check(/^UNIMPLEMENTED: \S/.test(groupRefusal) && !groupRefusal.includes("no message from the server"), `DeleteGroup's error in the dialog: ${groupRefusal}`);
  await page.screenshot({ path: `${root}target/dashboard-groups-delete.png` });
  await page.locator("#confirm-cancel").click();
  await page.locator("#confirm-dialog").waitFor({ state: "hidden" });
  console.log(`ok: Delete group asks for the id, and shows the server's answer: "${groupRefusal}"`);

  // ---- Phone width: the tabs stay reachable; nothing scrolls sideways but the tables
  await page.setViewportSize({ width: 390, height: 844 });
  await waitFor("no sideways scrolling at 390 px", () => page.evaluate(() => document.documentElement.scrollWidth <= 390 || document.documentElement.scrollWidth));
  check(await page.locator("#nav-topics").isVisible(), "the nav bar is not visible at phone width");
  await page.screenshot({ path: `${root}target/dashboard-groups-phone.png`, fullPage: true });
  console.log("ok: at 390 px the page fits its width (screenshot: target/dashboard-groups-phone.png)");
  await page.close();
}

// ---------------------------------------------------------------- 2. permissions

async function permissions(browser, problems) {
  const dir = mkdtempSync(join(tmpdir(), "streamgate-admin-"));
  const viewer = randomBytes(24).toString("hex");
  const manager = randomBytes(24).toString("hex");
  const sha = (t) => createHash("sha256").update(t).digest("hex");
  writeFileSync(join(dir, "auth.toml"), [
    "[[principal]]", 'name = "viewer"', `token_sha256 = "${sha(viewer)}"`, 'allow = ["stats", "topics", "subscribe:*"]', "",
    "[[principal]]", 'name = "manager"', `token_sha256 = "${sha(manager)}"`, 'allow = ["stats", "topics", "subscribe:*", "topics:manage:perm-*"]', "",
  ].join("\n"));
  const { child, url } = await startServer(["--listen", "127.0.0.1:0", "--supplier-stopped",
    "--auth-file", join(dir, "auth.toml"), "--insecure-embedded-broker"]);
  try {
    const page = await openPage(browser, url, problems);
    const topic = `perm-${randomBytes(3).toString("hex")}`;
    const signIn = async (token) => {
      await page.locator("#signin").waitFor({ state: "visible", timeout: 30000 });
      await page.locator("#token").fill(token);
      await page.locator("#token").press("Enter");
    };
    const create = async () => {
      await page.locator("#topic-create").click();
      await page.locator("#create-name").fill(topic);
      await page.locator("#create-partitions").fill("2");
      await page.locator("#create-form button[type=submit]").click();
      await page.locator("#create-confirm").click();
    };
    await page.goto(`${url}/#topics`);
    await signIn(viewer);
    await page.locator('#topics-table tr[data-topic="R2"]').waitFor({ timeout: 30000 });
    await create();
    await waitFor("the refusal in the dialog", async () => (await text(page, "#create-error")).startsWith("not allowed"));
    check(await page.locator("#create-confirm").isDisabled(), "Create stays enabled in the dialog after a refusal");
    await page.locator("#create-dialog").press("Escape");
    const note = await text(page, "#topic-create-note");
    check(await page.locator("#topic-create").isDisabled(), "Create topic is enabled after PERMISSION_DENIED");
    check(/^not allowed: missing permission topics:manage:perm-/.test(note), `the note by Create topic: ${note}`);
    check((await page.locator("#topic-create").getAttribute("aria-describedby")) === "topic-create-note", "Create topic is not described by the note");
    console.log(`ok: without topics:manage, Create topic is disabled with the server's words: "${note}"`);

    await page.locator("#signout").click();
    await signIn(manager);
    await waitFor("Create topic enabled for the manager", () => page.locator("#topic-create").isEnabled());
    check((await text(page, "#topic-create-note")) === "", "the refusal note stayed after signing in as another principal");
    await create();
    await waitFor("the created topic described", async () =>
      page.url().endsWith(`#topics/${topic}`) && (await page.locator("#topic-summary").getAttribute("data-partitions")) === "2");
    console.log(`ok: signed in with topics:manage:perm-*, Create topic is enabled again and creates ${topic}`);
    await page.close();
  } finally {
    child.kill("SIGTERM");
    rmSync(dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------- main

let failed = false;
const browser = await chromium.launch({ executablePath: chromiumPath, headless: true, args: chromiumArgs });
const scenarios = [
  ["topics and groups", async (problems) => {
    const { child, url } = await startServer(["--listen", "127.0.0.1:0", "--supplier-stopped"]);
    try {
      await topicsAndGroups(browser, url, problems);
    } finally {
      child.kill("SIGTERM");
    }
  }],
  ["permissions", (problems) => permissions(browser, problems)],
];
try {
  for (const [name, run] of scenarios) {
    const problems = [];
    try {
      await run(problems);
    } catch (error) {
      failed = true;
      console.error(`FAILED: ${name}: ${error.message}`);
    }
    for (const p of problems) {
      failed = true;
      console.error(`FAILED: ${name}: ${p}`);
    }
  }
} finally {
  await browser.close();
}

console.log(failed ? "admin test: FAILED" : "admin test: passed");
process.exit(failed ? 1 : 0);

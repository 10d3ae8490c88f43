// Node test of the Connect protocol with the real Connect-ES client: @connectrpc/connect-node's
// createConnectTransport (httpVersion "2") against a real streamgate-server (embedded broker,
// supplier stopped, --auto-create-topics).
//
// Every RPC of streamgate.v1.EventGateway is called twice, once with JSON bodies
// (useBinaryFormat: false) and once with protobuf bodies (useBinaryFormat: true), each run on
// a topic of its own, and the answers are checked, not only that calls returned:
//
// - Publish: topic, partition, offset and timestamp come back; three records with one key
//   land in one partition at consecutive offsets; a bad topic name is INVALID_ARGUMENT.
// - PublishStream (bidi over HTTP/2): each record is sent only after the previous one's
//   result arrived (so the stream really runs both ways at once); one result per record, in
//   order (`sequence` 0, 1, ...), acks at offsets continuing Publish's, and a bad record in the
//   middle gets an INVALID_ARGUMENT result while the stream goes on.
// - Subscribe (earliest, stop_at_end): the first message is the Assignment (watermarks that
//   hold exactly the published records), then exactly the published records (partition,
//   offset, value, key, headers), then the stream ends by itself.
// - Consume (bidi): every record comes with delivery_attempt 1; one is nacked and the others
//   acked; the nacked one comes again with attempt 2 and a new ack id, is acked, and the
//   half-close ends the stream with OK. A second stream of the same group then starts every
//   partition at its end: all acks were committed.
// - ControlSupplier: the status says stopped; an invalid START (negative rate) is
//   INVALID_ARGUMENT and starts nothing; a START answers running with the requested settings,
//   events of the requested page are acknowledged; a STOP answers stopped.
// - WatchPageStats: a negative rolling period is INVALID_ARGUMENT; the first message comes
//   with the requested rolling period, a window and sorted pages; the stream goes on until the
//   supplier's page is counted.
// - ListTopics: by POST and by GET (useHttpGet: true; the request log proves the method); the
//   topic is listed with watermarks that hold exactly the published records, the same both
//   ways.
// - OpenEventSession: on the open server, no cookie and no expires_at. On a second server,
//   with --auth-file (one principal, a random token): the answer's set-cookie is
//   `streamgate_session=<43 characters>; Max-Age=120; Path=/; HttpOnly; SameSite=Strict` for a
//   ttl of 120 s and expires_at is 120 s ahead; 2 h is shortened to the 1 h maximum; a negative
//   ttl is INVALID_ARGUMENT; no token is UNAUTHENTICATED; the cookie opens an SSE stream
//   (/v1/stats) but a Connect call with the cookie and no token is UNAUTHENTICATED.
// - PublishStream over an HTTP/1.1 transport: Connect-ES reports a ConnectError (code
//   Unknown, "HTTP 505", as the protocol maps a 505 status for streams); the server's own
//   answer to the same request (node:http) is 505 with the Connect error JSON: code
//   unimplemented and a message saying to use HTTP/2. Nothing is published.
//
// Every request the HTTP/2 clients make is logged: the test checks that each used the
// format's content type. A check fails with `FAILED: [format] RPC: what`; the remaining checks
// of that format are skipped (they build on the records the earlier ones published). An RPC of
// EventGateway with no entry in the table fails the test, so a new RPC needs its check.
// Every call has a deadline (the transport's defaultTimeoutMs, 30 s: the client gives up then,
// and the server gets it as Connect-Timeout-Ms; the test checks every request carried it), and
// a watchdog fails the test after 120 s. Nothing sleeps to synchronise: streams are read until
// the awaited message comes, and the supplier's status is polled until it shows the events.
//
// Two servers run: the open one above for everything, and the one with --auth-file (and
// --insecure-embedded-broker, which the server wants with authentication on an embedded
// broker) for OpenEventSession only.
//
// Run: node web/test/connect.test.mjs (from any directory; needs `npm ci` in web/).
// Env: STREAMGATE_SERVER_BIN (default target/debug/streamgate-server).

import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { request as httpRequest } from "node:http";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { build } from "esbuild";
import { create, toBinary, toJsonString } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport, Http2SessionManager } from "@connectrpc/connect-node";
import { serverBin, startServer } from "./server.mjs";

const WATCHDOG_MS = 120_000;
// The deadline of every call, streams included: a stream that stops sending fails its read
// with DEADLINE_EXCEEDED instead of hanging.
const CALL_MS = 30_000;

// server.mjs's spawn has no error handler: a missing binary would end in an unhandled 'error'.
if (!existsSync(serverBin)) {
  console.error(`connect test: FAILED: no server binary at ${serverBin} (build it, or set STREAMGATE_SERVER_BIN)`);
  process.exit(1);
}

// The servers, once started, and the temporary directory: the watchdog cleans them up too,
// so that nothing outlives the test.
const servers = [];
const dir = mkdtempSync(join(tmpdir(), "streamgate-connect-test-"));
const watchdog = setTimeout(() => {
  console.error(`connect test: FAILED: not finished within ${WATCHDOG_MS / 1000} s (watchdog)`);
  for (const child of servers) child.kill("SIGKILL");
  rmSync(dir, { recursive: true, force: true });
  process.exit(1);
}, WATCHDOG_MS);
watchdog.unref();

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const bytes = (s) => encoder.encode(s);
const text = (b) => (b === undefined ? undefined : decoder.decode(b));
const runId = `${Date.now().toString(36)}-${process.pid}`;

// ---------------------------------------------------------------- generated code

/**
 * Bundles the generated TypeScript (web/src/gen) into one ESM file in `dir` and imports it:
 * Node 20 does not load .ts. Packages stay outside the bundle, imported by absolute file URL
 * from web/node_modules, so the generated descriptors share @bufbuild/protobuf with the
 * Connect client (one copy of the runtime) although the file lives in the temporary directory,
 * where a bare `@bufbuild/protobuf` would not resolve.
 */
async function loadGenerated(dir) {
  const genDir = fileURLToPath(new URL("../src/gen/streamgate/v1/", import.meta.url));
  const outfile = join(dir, "streamgate-v1.mjs");
  await build({
    stdin: {
      contents: ["gateway_pb", "event_pb", "stats_pb", "supplier_pb"]
        .map((name) => `export * from "./${name}.ts";`)
        .join("\n"),
      resolveDir: genDir,
      sourcefile: "connect-test-entry.js",
    },
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    outfile,
    logLevel: "warning",
    plugins: [
      {
        name: "packages-from-web",
        setup(b) {
          b.onResolve({ filter: /^[^./]/ }, (args) => ({ path: import.meta.resolve(args.path), external: true }));
        },
      },
    ],
  });
  return import(pathToFileURL(outfile).href);
}

// ---------------------------------------------------------------- helpers

/** An async iterable of requests the test pushes into while the call runs (a bidi stream's input). */
function channel() {
  const queue = [];
  let wake = null;
  let closed = false;
  const poke = () => {
    wake?.();
    wake = null;
  };
  return {
    push(item) {
      assert.ok(!closed, "pushed into a closed request stream");
      queue.push(item);
      poke();
    },
    close() {
      closed = true;
      poke();
    },
    async *[Symbol.asyncIterator]() {
      for (;;) {
        if (queue.length > 0) yield queue.shift();
        else if (closed) return;
        else await new Promise((resolve) => (wake = resolve));
      }
    },
  };
}

/** Awaits `call`, which must fail with a ConnectError of `code` whose message matches `pattern`. */
async function expectConnectError(what, call, code, pattern) {
  let error = null;
  try {
    await call();
  } catch (e) {
    error = e;
  }
  assert.ok(error !== null, `${what}: succeeded, want ${Code[code]}`);
  assert.ok(error instanceof ConnectError, `${what}: threw ${error?.stack ?? error}, not a ConnectError`);
  assert.equal(error.code, code, `${what}: ${Code[error.code]} "${error.rawMessage}", want ${Code[code]}`);
  assert.match(error.rawMessage, pattern, `${what}: the message`);
  return error;
}

/** Polls `check` until it returns something truthy (returned), failing after `timeoutMs`. */
async function waitFor(what, check, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

const millis = (ts) => Number(ts.seconds) * 1000 + Math.floor(ts.nanos / 1e6);
const where = (partition, offset) => `${partition}:${offset}`;

/** Records each HTTP/2 request the client makes: method, path, content type, GET encoding, deadline. */
class LoggingSessionManager extends Http2SessionManager {
  constructor(url, log) {
    super(url);
    this.log = log;
  }

  request(method, path, headers, options) {
    const url = new URL(path, "http://x");
    this.log.push({
      method,
      path: url.pathname,
      contentType: headers["content-type"],
      encoding: url.searchParams.get("encoding"),
      timeoutMs: headers["connect-timeout-ms"],
    });
    return super.request(method, path, headers, options);
  }
}

/** One HTTP/1.1 POST with node:http: what the server itself answers, without a client's reading of it. */
function http1Post(url, path, headers, body) {
  return new Promise((resolve, reject) => {
    const req = httpRequest(`${url}${path}`, { method: "POST", headers, timeout: CALL_MS }, (res) => {
      const chunks = [];
      res.on("data", (c) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString() }));
      res.on("error", reject);
    });
    req.on("timeout", () => req.destroy(new Error(`no answer to POST ${path} within ${CALL_MS} ms`)));
    req.on("error", reject);
    req.end(body);
  });
}

/** An HTTP/1.1 GET with node:http: the status and headers; then the request is dropped (an SSE stream never ends). */
function http1ResponseHeaders(url, path, headers) {
  return new Promise((resolve, reject) => {
    const req = httpRequest(`${url}${path}`, { method: "GET", headers, timeout: CALL_MS }, (res) => {
      resolve({ status: res.statusCode, headers: res.headers });
      req.destroy();
    });
    req.on("timeout", () => req.destroy(new Error(`no answer to GET ${path} within ${CALL_MS} ms`)));
    req.on("error", reject); // after the answer: our own destroy, and a no-op
    req.end();
  });
}

/** A Connect stream envelope: flags 0, big-endian length, the message. */
function envelope(message) {
  const out = Buffer.alloc(5 + message.length);
  out.writeUInt32BE(message.length, 1);
  out.set(message, 5);
  return out;
}

// ---------------------------------------------------------------- the checks, one entry per RPC

// Each entry: the RPC (its name in the proto; the coverage check uses it), a label, and
// `run(ctx)`. They run in this order for each format and share `ctx`: `ctx.published` holds
// every record published so far on `ctx.topic` ({partition, offset, value, key, headers}).
const checks = [
  {
    rpc: "Publish",
    async run(ctx) {
      const key = "k-connect";
      const answers = [];
      for (let i = 0; i < 3; i++) {
        const value = `publish-${ctx.format}-${i}`;
        const headers = [{ key: "h", value: bytes(`hv${i}`) }];
        const res = await ctx.client.publish({ topic: ctx.topic, key: bytes(key), payload: { case: "value", value: bytes(value) }, headers });
        assert.equal(res.topic, ctx.topic, "the answer's topic");
        assert.equal(typeof res.offset, "bigint", "offset is an int64");
        assert.ok(res.partition >= 0 && res.offset >= 0n, `partition ${res.partition}, offset ${res.offset}`);
        assert.ok(res.timestamp, "no timestamp in the answer");
        const age = Math.abs(Date.now() - millis(res.timestamp));
        assert.ok(age < 60_000, `timestamp ${res.timestamp.seconds}s is ${age} ms from now`);
        answers.push(res);
        ctx.published.push({ partition: res.partition, offset: res.offset, value, key, headers: [["h", `hv${i}`]] });
      }
      // One key, one partition (murmur2 of the key), and consecutive offsets there: the
      // answers say where the records really are, in the order they were published.
      for (const [i, res] of answers.entries()) {
        assert.equal(res.partition, answers[0].partition, `record ${i}: same key, another partition`);
        assert.equal(res.offset, answers[0].offset + BigInt(i), `record ${i}: offsets not consecutive`);
      }
      await expectConnectError(
        "Publish to topic \"bad topic!\"",
        () => ctx.client.publish({ topic: "bad topic!", payload: { case: "value", value: bytes("x") } }),
        Code.InvalidArgument,
        /topic name "bad topic!"/,
      );
      return `3 records at ${answers[0].partition}:${answers[0].offset}..${answers[2].offset}; bad topic name: InvalidArgument`;
    },
  },
  {
    rpc: "PublishStream",
    async run(ctx) {
      const key = "k-connect"; // Publish's key: same partition, so the offsets must continue
      const last = ctx.published.at(-1);
      const sent = ["s0", "s1", null, "s2", "s3"].map((v) =>
        v === null
          ? { topic: "bad topic!", payload: { case: "value", value: bytes("refused") } } // rejected; the stream goes on
          : { topic: ctx.topic, key: bytes(key), payload: { case: "value", value: bytes(`stream-${ctx.format}-${v}`) } },
      );
      const requests = channel();
      const results = [];
      requests.push(sent[0]);
      try {
        for await (const result of ctx.client.publishStream(requests)) {
          results.push(result);
          // The next record goes only after this result came: a half-duplex transport
          // would never deliver it, so this proves the call runs both ways at once.
          if (results.length < sent.length) requests.push(sent[results.length]);
          else requests.close();
        }
      } finally {
        requests.close();
      }
      assert.equal(results.length, sent.length, "one result per record");
      let offset = last.offset;
      for (const [i, result] of results.entries()) {
        assert.equal(result.sequence, BigInt(i), `result ${i}: sequence`);
        if (sent[i].topic !== ctx.topic) {
          assert.equal(result.outcome.case, "error", `result ${i} (bad topic): ${result.outcome.case}, want an error`);
          assert.equal(result.outcome.value.code, Code.InvalidArgument, `result ${i}: error code`);
          assert.match(result.outcome.value.message, /topic name "bad topic!"/, `result ${i}: error message`);
          continue;
        }
        assert.equal(result.outcome.case, "ack", `result ${i}: ${JSON.stringify(result.outcome.value?.message)}`);
        const ack = result.outcome.value;
        offset += 1n;
        assert.equal(ack.topic, ctx.topic, `result ${i}: topic`);
        assert.equal(ack.partition, last.partition, `result ${i}: same key as Publish, another partition`);
        assert.equal(ack.offset, offset, `result ${i}: offset does not continue the partition`);
        assert.ok(ack.timestamp, `result ${i}: no timestamp`);
        ctx.published.push({ partition: ack.partition, offset: ack.offset, value: text(sent[i].payload.value), key, headers: [] });
      }
      return `${results.length} results in order, ${results.length - 1} acks at offsets ${last.offset + 1n}..${offset}, 1 InvalidArgument result`;
    },
  },
  {
    rpc: "Subscribe",
    async run(ctx) {
      const messages = [];
      const request = { topics: [ctx.topic], start: { position: { case: "earliest", value: true } }, stopAtEnd: true };
      for await (const message of ctx.client.subscribe(request)) messages.push(message);
      assert.ok(messages.length > 0, "the stream ended without a message");
      assert.equal(messages[0].message.case, "assignment", "the first message");
      const assignment = messages[0].message.value;
      assert.equal(assignment.group, undefined, "no group asked, one in the Assignment");
      assert.ok(assignment.partitions.length > 0, "an Assignment without partitions");
      let stored = 0n;
      for (const p of assignment.partitions) {
        assert.equal(p.topic, ctx.topic, "assigned topic");
        assert.equal(p.startOffset, p.lowWatermark, `partition ${p.partition}: earliest starts at the low watermark`);
        stored += p.highWatermark - p.lowWatermark;
      }
      assert.equal(stored, BigInt(ctx.published.length), "records stored in the partitions, by the watermarks");
      const records = [];
      for (const m of messages.slice(1)) {
        // A server may send single `record`s; this one sends `records` batches: take both.
        if (m.message.case === "records") records.push(...m.message.value.records);
        else if (m.message.case === "record") records.push(m.message.value);
        else assert.fail(`after the Assignment: a ${m.message.case} message`);
      }
      const got = records.map((r) => ({
        at: where(r.partition, r.offset),
        value: text(r.value),
        key: text(r.key),
        headers: r.headers.map((h) => [h.key, text(h.value)]),
      }));
      const want = ctx.published.map((r) => ({ at: where(r.partition, r.offset), value: r.value, key: r.key, headers: r.headers }));
      const order = (a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : 0);
      assert.deepEqual(got.sort(order), want.sort(order), "the records read are not exactly the records published");
      for (const r of records) assert.equal(r.topic, ctx.topic, "record topic");
      return `Assignment of ${assignment.partitions.length} partitions, then the ${records.length} published records in ${messages.length - 1} batch(es), then the end`;
    },
  },
  {
    rpc: "Consume",
    async run(ctx) {
      const group = `connect-${ctx.format}-${runId}`;
      const expected = new Map(ctx.published.map((r) => [where(r.partition, r.offset), r]));
      const requests = channel();
      requests.push({
        request: {
          case: "start",
          // The ack deadline outlives the call: any redelivery seen is the nack's.
          value: { group, topics: [ctx.topic], start: { position: { case: "earliest", value: true } }, ackDeadline: { seconds: 120n } },
        },
      });
      const first = new Map();
      let assigned = false;
      let victim = null;
      let again = null;
      try {
        for await (const res of ctx.client.consume(requests)) {
          if (res.message.case === "assignment") {
            assert.equal(res.message.value.group, group, "the Assignment's group");
            // During the group's first rebalance an empty Assignment may come first.
            if (res.message.value.partitions.length > 0) {
              assert.ok(!assigned, "a second Assignment with partitions: a rebalance in a group of one");
              assigned = true;
            }
            continue;
          }
          assert.equal(res.message.case, "records", "a Consume message");
          assert.ok(assigned, "records before an Assignment with partitions");
          for (const d of res.message.value.records) {
            const at = where(d.record.partition, d.record.offset);
            const want = expected.get(at);
            assert.ok(want, `record ${at} was not published`);
            assert.equal(text(d.record.value), want.value, `record ${at}: value`);
            assert.ok(d.ackId.length > 0, `record ${at}: no ack id`);
            if (victim === null) {
              assert.equal(d.deliveryAttempt, 1, `record ${at}: first delivery's attempt`);
              assert.ok(!first.has(at), `record ${at} came twice before any nack`);
              first.set(at, d);
            } else {
              assert.equal(again, null, `record ${at} came again: only the nacked record should`);
              assert.equal(at, where(victim.record.partition, victim.record.offset), "the redelivered record is not the nacked one");
              assert.equal(d.deliveryAttempt, 2, "the redelivery's attempt");
              assert.notEqual(d.ackId, victim.ackId, "the redelivery kept the old ack id");
              again = d;
              requests.push({ request: { case: "ack", value: { ackIds: [d.ackId] } } });
              // Half-close: the server commits what was acked, leaves the group, ends with OK.
              requests.close();
            }
          }
          if (victim === null && first.size === expected.size) {
            // The first record of its partition: unacked, it holds back that partition's commit.
            victim = first.values().next().value;
            requests.push({ request: { case: "nack", value: { ackIds: [victim.ackId] } } });
            const others = [...first.values()].filter((d) => d !== victim).map((d) => d.ackId);
            requests.push({ request: { case: "ack", value: { ackIds: others } } });
          }
        }
      } finally {
        requests.close();
      }
      assert.equal(first.size, expected.size, "records delivered before the stream ended");
      assert.ok(again, "the stream ended without redelivering the nacked record");

      // Everything was acked before the half-close: a new stream of the group must start
      // every partition at its end (start_offset is where the group's commit puts it). It
      // asks for `earliest`, which applies only where the group has no commit: without the
      // commit, a partition would start at its low watermark, not at its end.
      const second = channel();
      second.push({
        request: { case: "start", value: { group, topics: [ctx.topic], start: { position: { case: "earliest", value: true } } } },
      });
      let starts = null;
      try {
        for await (const res of ctx.client.consume(second)) {
          if (res.message.case === "records") {
            const r = res.message.value.records[0];
            assert.fail(`after every record was acked, ${where(r.record.partition, r.record.offset)} came again to the group`);
          }
          if (res.message.value.partitions.length === 0) continue;
          starts = res.message.value.partitions;
          second.close();
        }
      } finally {
        second.close();
      }
      assert.ok(starts, "the second stream ended without an Assignment with partitions");
      for (const p of starts) {
        assert.equal(p.startOffset, p.highWatermark, `partition ${p.partition}: the group resumes at ${p.startOffset}, the end is ${p.highWatermark}`);
      }
      return `${first.size} records at attempt 1; the nacked ${where(victim.record.partition, victim.record.offset)} again at attempt 2; clean end; the group resumes at the end of all ${starts.length} partitions`;
    },
  },
  {
    rpc: "ControlSupplier",
    async run(ctx) {
      const { SupplierAction } = ctx.gen;
      const before = await ctx.client.controlSupplier({});
      assert.equal(before.running, false, "the supplier runs: the server was started with --supplier-stopped");
      assert.equal(before.settings?.topic, "R2", "the supplier's topic");
      await expectConnectError(
        "START with rate -1",
        () => ctx.client.controlSupplier({ action: SupplierAction.START, settings: { ratePerSecond: -1 } }),
        Code.InvalidArgument,
        /rate/,
      );
      assert.equal((await ctx.client.controlSupplier({})).running, false, "a refused START started the supplier");

      // A page of this run's own, and durations above the analytics' 100 ms filter, so that
      // WatchPageStats can see these events counted.
      const page = `CS-${ctx.format}-${runId}`;
      const settings = { ratePerSecond: 20, pages: { values: [page] }, minDurationMs: 500n, maxDurationMs: 1000n };
      const started = await ctx.client.controlSupplier({ action: SupplierAction.START, settings });
      assert.equal(started.running, true, "START answered a stopped supplier");
      assert.equal(started.settings.ratePerSecond, 20, "rate");
      assert.deepEqual(started.settings.pages, [page], "pages");
      assert.equal(started.settings.minDurationMs, 500n, "min duration");
      assert.equal(started.settings.maxDurationMs, 1000n, "max duration");
      const sending = await waitFor(
        `3 events of ${page} acknowledged`,
        async () => {
          const s = await ctx.client.controlSupplier({});
          return s.eventsSent >= before.eventsSent + 3n && s.lastEvent?.name === page ? s : null;
        },
        20_000,
      );
      assert.equal(sending.running, true, "running while sending");
      assert.equal(sending.errors, before.errors, "broker errors while sending");
      const duration = sending.lastEvent.durationMs;
      assert.ok(duration >= 500n && duration <= 1000n, `last event's duration ${duration} ms is outside 500..1000`);
      assert.ok(sending.lastSentAt, "no last_sent_at while sending");
      const stopped = await ctx.client.controlSupplier({ action: SupplierAction.STOP });
      assert.equal(stopped.running, false, "STOP answered a running supplier");
      assert.ok(stopped.eventsSent >= sending.eventsSent, "events_sent went down");
      ctx.supplierPage = page;
      return `stopped; rate -1: InvalidArgument, still stopped; START: running, ${sending.eventsSent - before.eventsSent} events of ${page} acked; STOP: stopped`;
    },
  },
  {
    rpc: "WatchPageStats",
    async run(ctx) {
      await expectConnectError(
        "WatchPageStats with rolling -5s",
        async () => {
          for await (const _ of ctx.client.watchPageStats({ rolling: { seconds: -5n } })) assert.fail("a message for rolling -5s");
        },
        Code.InvalidArgument,
        /rolling/,
      );
      const opened = Date.now();
      let first = null;
      let firstAfterMs = 0;
      let messages = 0;
      let counted = null;
      for await (const stats of ctx.client.watchPageStats({ rolling: { seconds: 60n } })) {
        messages++;
        if (first === null) {
          first = stats;
          firstAfterMs = Date.now() - opened;
          assert.equal(stats.rolling?.seconds, 60n, "the rolling period asked for");
          assert.ok(stats.windowStart && stats.windowEnd, "no window bounds");
          assert.ok(millis(stats.windowEnd) > millis(stats.windowStart), "the window ends before it starts");
          assert.ok(stats.generatedAt, "no generated_at");
          const skew = Math.abs(Date.now() - millis(stats.generatedAt));
          assert.ok(skew < 30_000, `generated_at is ${skew} ms from now`);
          const names = stats.pages.map((p) => p.page);
          assert.deepEqual(names, [...names].sort(), "pages not sorted");
        }
        // Ends the stream (the client cancels) once the supplier's events are counted.
        counted = stats.pages.find((p) => p.page === ctx.supplierPage && p.rollingCount > 0n);
        if (counted) break;
      }
      assert.ok(first, "the stream ended without a message");
      assert.ok(counted, `the stream ended before ${ctx.supplierPage} was counted`);
      return `first message after ${firstAfterMs} ms (rolling 60s, ${first.pages.length} pages); ${ctx.supplierPage} counted ${counted.rollingCount} in message ${messages}`;
    },
  },
  {
    rpc: "OpenEventSession",
    async run(ctx) {
      let header = null;
      const open = await ctx.client.openEventSession({}, { onHeader: (h) => (header = h) });
      assert.equal(open.expiresAt, undefined, "expires_at from a server without authentication");
      assert.equal(open.cookieName, "", "a cookie name from a server without authentication");
      assert.equal(header?.get("set-cookie"), null, "a cookie from a server without authentication");
      await expectConnectError(
        "OpenEventSession with ttl -5s on the open server",
        () => ctx.client.openEventSession({ ttl: { seconds: -5n } }),
        Code.InvalidArgument,
        /negative/,
      );

      const bearer = { authorization: `Bearer ${ctx.token}` };
      let setCookie = null;
      const asked = Date.now();
      const session = await ctx.lockedClient.openEventSession(
        { ttl: { seconds: 120n } },
        { headers: bearer, onHeader: (h) => (setCookie = h.get("set-cookie")) },
      );
      const answered = Date.now();
      assert.equal(session.cookieName, "streamgate_session", "cookie name");
      assert.ok(session.expiresAt, "no expires_at with authentication on");
      const expires = millis(session.expiresAt);
      assert.ok(expires >= asked + 119_000 && expires <= answered + 121_000, `expires_at ${expires - answered} ms ahead, want 120 s`);
      const cookie = setCookie?.match(/^(streamgate_session=[A-Za-z0-9_-]{43}); Max-Age=120; Path=\/; HttpOnly; SameSite=Strict$/)?.[1];
      assert.ok(cookie, `set-cookie: ${setCookie}`);

      const long = await ctx.lockedClient.openEventSession({ ttl: { seconds: 7200n } }, { headers: bearer });
      const ahead = millis(long.expiresAt) - Date.now();
      assert.ok(ahead > 3_500_000 && ahead <= 3_600_000, `a 2 h ttl expires in ${ahead} ms, want the 1 h maximum`);
      await expectConnectError(
        "OpenEventSession with ttl -5s",
        () => ctx.lockedClient.openEventSession({ ttl: { seconds: -5n } }, { headers: bearer }),
        Code.InvalidArgument,
        /ttl/,
      );
      await expectConnectError("OpenEventSession without a token", () => ctx.lockedClient.openEventSession({}), Code.Unauthenticated, /token/);
      // The cookie stands in for the token on the SSE routes, and only there.
      const sse = await http1ResponseHeaders(ctx.lockedUrl, "/v1/stats", { cookie });
      assert.equal(sse.status, 200, "GET /v1/stats with the cookie");
      assert.equal(sse.headers["content-type"], "text/event-stream", "GET /v1/stats with the cookie: content type");
      await expectConnectError(
        "ListTopics with the cookie and no token",
        () => ctx.lockedClient.listTopics({}, { headers: { cookie } }),
        Code.Unauthenticated,
        /token/,
      );
      return "open server: no cookie; locked server: HttpOnly SameSite=Strict cookie for 120 s, 2 h shortened to 1 h, -5s InvalidArgument, no token Unauthenticated, the cookie opens /v1/stats and not ListTopics";
    },
  },
  {
    rpc: "PublishStream",
    label: "PublishStream over HTTP/1.1",
    async run(ctx) {
      const h1 = createClient(
        ctx.gen.EventGateway,
        createConnectTransport({ baseUrl: ctx.url, httpVersion: "1.1", useBinaryFormat: ctx.binary, defaultTimeoutMs: CALL_MS }),
      );
      const requests = channel();
      requests.push({ topic: ctx.topic, payload: { case: "value", value: bytes("over-http1") } });
      try {
        // Connect-ES turns a stream's non-200 status into an error by the status alone
        // (505 is not in the protocol's table: Unknown); it does not read the body.
        await expectConnectError(
          "PublishStream over HTTP/1.1",
          async () => {
            for await (const result of h1.publishStream(requests)) assert.fail(`a result over HTTP/1.1: ${result.outcome.case}`);
          },
          Code.Unknown,
          /^HTTP 505$/,
        );
      } finally {
        requests.close();
      }
      // What the server answers, read with node:http.
      const schema = ctx.gen.PublishRequestSchema;
      const message = create(schema, { topic: ctx.topic, payload: { case: "value", value: bytes("over-http1") } });
      const body = envelope(ctx.binary ? toBinary(schema, message) : bytes(toJsonString(schema, message)));
      const contentType = ctx.binary ? "application/connect+proto" : "application/connect+json";
      const res = await http1Post(ctx.url, "/streamgate.v1.EventGateway/PublishStream", { "content-type": contentType, "connect-protocol-version": "1" }, body);
      assert.equal(res.status, 505, `the server's status: ${res.body}`);
      assert.equal(res.headers["content-type"], "application/json", "the error's content type");
      const error = JSON.parse(res.body);
      assert.equal(error.code, "unimplemented", `the error's code: ${res.body}`);
      assert.match(error.message, /^PublishStream streams both ways: over Connect it needs HTTP\/2/, "the error's message");
      // ListTopics (next) checks that neither request published anything.
      return `Connect-ES: [unknown] HTTP 505; the server: 505 ${res.body}`;
    },
  },
  {
    rpc: "ListTopics",
    async run(ctx) {
      const byPost = await ctx.client.listTopics({});
      const byGet = await ctx.getClient.listTopics({});
      const names = byPost.topics.map((t) => t.name);
      assert.deepEqual(names, [...names].sort(), "topics not sorted by name");
      assert.ok(!names.some((n) => n.startsWith("__")), "internal topics listed without include_internal");
      for (const r of ["R1", "R2", "R3", "R4"]) assert.ok(names.includes(r), `the server's topic ${r} is not listed`);
      const topic = byPost.topics.find((t) => t.name === ctx.topic);
      assert.ok(topic, `${ctx.topic} is not listed (POST): ${names.join(", ")}`);
      const ids = topic.partitions.map((p) => p.partition);
      assert.deepEqual(ids, ids.map((_, i) => i), "partitions not listed by id");
      let stored = 0n;
      for (const p of topic.partitions) {
        const last = ctx.published.filter((r) => r.partition === p.partition).at(-1);
        assert.equal(p.highWatermark, last ? last.offset + 1n : p.lowWatermark, `partition ${p.partition}: high watermark`);
        stored += p.highWatermark - p.lowWatermark;
      }
      assert.equal(stored, BigInt(ctx.published.length), "records stored, by the watermarks");
      assert.deepEqual(byGet.topics.find((t) => t.name === ctx.topic), topic, `${ctx.topic} by GET differs from by POST`);
      const path = "/streamgate.v1.EventGateway/ListTopics";
      assert.ok(ctx.log.some((e) => e.method === "POST" && e.path === path), "no POST ListTopics in the request log");
      assert.ok(!ctx.log.some((e) => e.method === "GET"), "the POST client sent a GET");
      assert.deepEqual(ctx.getLog.map((e) => `${e.method} ${e.path} ${e.encoding}`), [`GET ${path} ${ctx.binary ? "proto" : "json"}`], "the GET client's requests");
      return `POST and GET (encoding=${ctx.getLog[0].encoding}) list ${ctx.topic} with ${topic.partitions.length} partitions holding ${stored} records`;
    },
  },
];

// ---------------------------------------------------------------- main

const formats = [
  { format: "json", binary: false },
  { format: "binary", binary: true },
];

async function main() {
  const sessions = [];
  const failures = [];
  try {
    const gen = await loadGenerated(dir);
    const rpcs = gen.EventGateway.methods.map((m) => m.name);
    const missing = rpcs.filter((name) => !checks.some((c) => c.rpc === name));
    if (missing.length > 0) failures.push(`no check for ${missing.join(", ")}: every RPC of EventGateway needs an entry in \`checks\``);

    const started = await startServer(["--listen", "127.0.0.1:0", "--supplier-stopped", "--auto-create-topics"]);
    servers.push(started.child);
    const url = started.url;
    const token = randomBytes(24).toString("hex");
    const authFile = join(dir, "auth.toml");
    writeFileSync(authFile, [
      "[[principal]]",
      'name = "connect-test"',
      `token_sha256 = "${createHash("sha256").update(token).digest("hex")}"`,
      'allow = ["stats"]',
      "",
    ].join("\n"));
    const locked = await startServer(["--listen", "127.0.0.1:0", "--supplier-stopped", "--auth-file", authFile, "--insecure-embedded-broker"]);
    servers.push(locked.child);
    console.log(`connect test: server at ${url}, with --auth-file at ${locked.url}; RPCs ${rpcs.join(", ")}`);

    for (const { format, binary } of formats) {
      const log = [];
      const getLog = [];
      const transport = (requestLog, useHttpGet, baseUrl = url) => {
        const sessionManager = new LoggingSessionManager(baseUrl, requestLog);
        sessions.push(sessionManager);
        return createConnectTransport({
          baseUrl,
          httpVersion: "2",
          useBinaryFormat: binary,
          useHttpGet,
          sessionManager,
          defaultTimeoutMs: CALL_MS,
        });
      };
      const ctx = {
        format,
        binary,
        url,
        gen,
        log,
        getLog,
        client: createClient(gen.EventGateway, transport(log, false)),
        getClient: createClient(gen.EventGateway, transport(getLog, true)),
        lockedUrl: locked.url,
        lockedClient: createClient(gen.EventGateway, transport(log, false, locked.url)),
        token,
        topic: `connect-${format}-${runId}`,
        published: [],
      };
      let failed = false;
      for (const check of checks) {
        const name = `[${format}] ${check.label ?? check.rpc}`;
        if (failed) {
          console.log(`skipped: ${name}`);
          continue;
        }
        const t0 = Date.now();
        try {
          const summary = await check.run(ctx);
          console.log(`ok: ${name} (${Date.now() - t0} ms): ${summary}`);
        } catch (error) {
          failed = true;
          const detail = error instanceof ConnectError ? `ConnectError ${Code[error.code]}: ${error.rawMessage}` : (error.stack ?? String(error));
          failures.push(`${name}: ${detail}`);
          console.error(`FAILED: ${name}: ${detail}`);
        }
      }
      if (!failed) {
        // Every request of the format's HTTP/2 clients carried the format's content type.
        const unary = binary ? "application/proto" : "application/json";
        const stream = binary ? "application/connect+proto" : "application/connect+json";
        const streaming = new Set(gen.EventGateway.methods.filter((m) => m.methodKind !== "unary").map((m) => `/streamgate.v1.EventGateway/${m.name}`));
        const wrong = log.filter((e) => e.contentType !== (streaming.has(e.path) ? stream : unary));
        if (wrong.length > 0) failures.push(`[${format}] requests with another content type: ${JSON.stringify(wrong)}`);
        else console.log(`ok: [${format}] all ${log.length} HTTP/2 POSTs were ${unary} or ${stream}`);
        // defaultTimeoutMs reached every call as its deadline (Connect-Timeout-Ms).
        const unbounded = [...log, ...getLog].filter((e) => !(Number(e.timeoutMs) > 0));
        if (unbounded.length > 0) failures.push(`[${format}] requests without a deadline: ${JSON.stringify(unbounded)}`);
      }
    }
  } finally {
    for (const s of sessions) s.abort();
    await Promise.all(servers.map(stopServer));
    rmSync(dir, { recursive: true, force: true });
  }
  return failures;
}

/** SIGTERM, and waits for the exit (SIGKILL after 15 s): no server outlives the test. */
async function stopServer(child) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once("exit", resolve));
  child.kill("SIGTERM");
  let timer;
  const late = new Promise((resolve) => (timer = setTimeout(() => resolve("late"), 15_000)));
  if ((await Promise.race([exited, late])) === "late") {
    console.error("connect test: the server did not stop within 15 s of SIGTERM; killing it");
    child.kill("SIGKILL");
    await exited;
  }
  clearTimeout(timer);
}

main().then(
  (failures) => {
    if (failures.length > 0) {
      console.error(`connect test: FAILED (${failures.length}):\n${failures.map((f) => `  ${f}`).join("\n")}`);
      process.exit(1);
    }
    console.log("connect test: ok");
    process.exit(0);
  },
  (error) => {
    console.error(`connect test: FAILED: ${error.stack ?? error}`);
    process.exit(1);
  },
);

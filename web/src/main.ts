// The streamgate dashboard: live per-page counts (WatchPageStats) drawn with uPlot, supplier
// controls (ControlSupplier) and a live tail of a topic (Subscribe), all over grpc-web to the
// server that serves this page. Every stream reconnects by itself when the server comes back.
//
// A server run with --auth-file (or --jwt-key) answers UNAUTHENTICATED without a bearer token:
// the page then asks for one, keeps it in sessionStorage (this tab only), sends it as
// `authorization: Bearer <token>` on every call and restarts its streams with it.
// PERMISSION_DENIED is shown in the panel concerned, as what it is.

import { createClient, Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import { timestampMs } from "@bufbuild/protobuf/wkt";
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import "./app.css";
import { EventGateway } from "./gen/streamgate/v1/gateway_pb";
import type { Record as KafkaRecord } from "./gen/streamgate/v1/event_pb";
import type { PageStats } from "./gen/streamgate/v1/stats_pb";
import { SupplierAction, type SupplierStatus } from "./gen/streamgate/v1/supplier_pb";

// ---------------------------------------------------------------- the token

/** sessionStorage key of the bearer token: the tab's session only, never localStorage. */
const TOKEN_KEY = "streamgate.token";

function storedToken(): string | null {
  try {
    return sessionStorage.getItem(TOKEN_KEY);
  } catch {
    return null; // storage disabled: the token lives in this page only
  }
}

let token: string | null = storedToken();

/** Sends the token, when there is one, on every call. */
const bearer: Interceptor = (next) => (request) => {
  if (token) request.header.set("authorization", `Bearer ${token}`);
  return next(request);
};

const client = createClient(
  EventGateway,
  createGrpcWebTransport({ baseUrl: window.location.origin, interceptors: [bearer] }),
);

/** Points kept on the chart: five minutes at one tick a second. */
const MAX_POINTS = 300;
/** Records kept in the tail. */
const MAX_TAIL = 100;

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function describe(error: unknown): string {
  if (error instanceof ConnectError && error.code === Code.PermissionDenied) return `not allowed: ${error.rawMessage}`;
  if (error instanceof ConnectError) return `${error.code ? codeName(error.code) + ": " : ""}${error.rawMessage}`;
  return error instanceof Error ? error.message : String(error);
}

function codeName(code: number): string {
  const names = ["OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
    "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED",
    "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED"];
  return names[code] ?? `code ${code}`;
}

function codeOf(error: unknown): Code | undefined {
  return error instanceof ConnectError ? error.code : undefined;
}

// ---------------------------------------------------------------- session: sign in, sign out

// Streams wait on `changed` while the server wants a token they do not have; it resolves when
// the token changes (sign in, sign out). `session` is aborted then, so running streams restart
// with the new token at once.
let session = new AbortController();
let wake: () => void = () => {};
let changed = new Promise<void>((resolve) => (wake = resolve));

function tokenChanged() {
  session.abort();
  session = new AbortController();
  const resolve = wake;
  changed = new Promise<void>((r) => (wake = r));
  resolve();
}

/** Resolves after `ms`, or earlier when the token changes. */
function pause(ms: number): Promise<void> {
  return Promise.race([sleep(ms), changed]);
}

/** A signal aborted when any of `signals` is. */
function linked(...signals: AbortSignal[]): AbortSignal {
  const controller = new AbortController();
  for (const signal of signals) {
    if (signal.aborted) controller.abort();
    else signal.addEventListener("abort", () => controller.abort(), { once: true });
  }
  return controller.signal;
}

const signin = $("signin");
const tokenInput = $<HTMLInputElement>("token");
const signout = $<HTMLButtonElement>("signout");

function renderSession() {
  signout.hidden = !token;
}

/**
 * The server answered UNAUTHENTICATED to a call made with `used` (the token then, or null).
 * Forgets a refused token and shows the form; `refusal` says why, for a refused token.
 */
function askForToken(used: string | null, refusal: string) {
  if (used !== token) return; // a newer token is already in use
  if (token) {
    token = null;
    try {
      sessionStorage.removeItem(TOKEN_KEY);
    } catch {
      // storage disabled: nothing kept
    }
    $("signin-error").textContent = `token refused${refusal ? ` (${refusal})` : ""}`;
  }
  lastMessageAt = 0;
  setConnection(false, "sign-in needed");
  renderSession();
  if (signin.hidden) {
    signin.hidden = false;
    tokenInput.focus();
  }
}

$("signin-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const value = tokenInput.value.trim();
  // A header value: printable ASCII, no spaces (what a bearer token is).
  if (!/^[\x21-\x7e]+$/.test(value)) {
    $("signin-error").textContent = "a token is printable ASCII without spaces";
    tokenInput.focus();
    return;
  }
  token = value;
  try {
    sessionStorage.setItem(TOKEN_KEY, value);
  } catch {
    // storage disabled: the token lives in this page only
  }
  tokenInput.value = "";
  $("signin-error").textContent = "";
  signin.hidden = true;
  setConnection(false, "signing in…");
  renderSession();
  tokenChanged();
});

signout.addEventListener("click", () => {
  token = null;
  try {
    sessionStorage.removeItem(TOKEN_KEY);
  } catch {
    // nothing kept
  }
  $("signin-error").textContent = "";
  renderSession();
  tokenChanged();
});

/**
 * What a loop does after a failed call made with `used`: for UNAUTHENTICATED, ask for a token
 * and wait until there is a new one; for PERMISSION_DENIED, `show` it and try again later (or
 * with another token); otherwise `show` the error and wait `backoff` ms. Returns whether the
 * failure was about the token or a permission.
 */
async function afterFailure(error: unknown, used: string | null, show: (text: string) => void, backoff: number): Promise<boolean> {
  const code = codeOf(error);
  if (code === Code.Unauthenticated) {
    show("");
    askForToken(used, error instanceof ConnectError ? error.rawMessage : "");
    if (used === token || token === null) await changed;
    return true;
  }
  if (code === Code.PermissionDenied) {
    show(describe(error));
    await pause(15000);
    return true;
  }
  show(describe(error));
  await pause(backoff);
  return false;
}

// ---------------------------------------------------------------- connection indicator

const connection = $("connection");
let lastMessageAt = 0;

function setConnection(up: boolean, text: string) {
  connection.classList.toggle("up", up);
  connection.classList.toggle("down", !up);
  connection.querySelector(".text")!.textContent = text;
}

setInterval(() => {
  // No tick for a while although the stream looked fine: say so.
  if (lastMessageAt && Date.now() - lastMessageAt > 5000) setConnection(false, "no data for 5 s…");
}, 1000);

// ---------------------------------------------------------------- chart

type Mode = "rolling" | "window";
let mode: Mode = "rolling";
const times: number[] = [];
const series = new Map<string, { rolling: (number | null)[]; window: (number | null)[] }>();
let plot: uPlot | null = null;
let plottedPages = "";

/** Distinct colours (Tableau 10), given to pages in the order they first appear. */
const PALETTE = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"];
const colours = new Map<string, string>();

/** A page's colour: stable for the whole session; beyond ten pages, hues from a hash. */
function colour(page: string): string {
  let c = colours.get(page);
  if (!c) {
    c = PALETTE[colours.size] ?? hashedColour(page);
    colours.set(page, c);
  }
  return c;
}

/** A hue from the page's name (FNV-1a), for pages beyond the palette. */
function hashedColour(page: string): string {
  let hash = 2166136261;
  for (let i = 0; i < page.length; i++) hash = Math.imul(hash ^ page.charCodeAt(i), 16777619);
  return `hsl(${(hash >>> 0) % 360} 65% 42%)`;
}

function chartSize(): { width: number; height: number } {
  const width = Math.max(280, $("chart").clientWidth);
  return { width, height: Math.round(Math.min(360, Math.max(220, width * 0.45))) };
}

function redraw() {
  const pages = [...series.keys()].sort();
  const data: uPlot.AlignedData = [times, ...pages.map((p) => series.get(p)![mode])];
  const key = pages.join("\u0000");
  if (!plot || key !== plottedPages) {
    // Pages appear as they arrive: a new page means new series, so rebuild.
    plot?.destroy();
    plot = new uPlot(
      {
        ...chartSize(),
        legend: { show: false },
        scales: { x: { time: true }, y: { range: (_u, _min, max) => [0, Math.max(5, max * 1.1)] } },
        axes: [{}, { label: mode === "rolling" ? "visits (rolling)" : "visits in window" }],
        series: [{}, ...pages.map((p) => ({ label: p, stroke: colour(p), width: 2, spanGaps: false }))],
      },
      data,
      $("chart"),
    );
    plottedPages = key;
  } else {
    plot.setData(data);
  }
}

function renderLegend(stats: PageStats) {
  const legend = $("legend");
  legend.replaceChildren(
    ...stats.pages.map((p) => {
      const item = document.createElement("li");
      item.dataset.page = p.page;
      const swatch = document.createElement("span");
      swatch.className = "swatch";
      swatch.style.background = colour(p.page);
      const name = document.createElement("span");
      name.className = "name";
      name.textContent = p.page;
      const value = document.createElement("span");
      value.className = "value";
      value.textContent = String(mode === "rolling" ? p.rollingCount : p.count);
      item.append(swatch, name, value);
      return item;
    }),
  );
}

let lastStats: PageStats | null = null;

function onStats(stats: PageStats) {
  lastStats = stats;
  const t = (stats.generatedAt ? timestampMs(stats.generatedAt) : Date.now()) / 1000;
  times.push(t);
  const seen = new Set<string>();
  for (const p of stats.pages) {
    seen.add(p.page);
    let s = series.get(p.page);
    if (!s) {
      // A new page: no values before it appeared.
      s = { rolling: times.slice(0, -1).map(() => null), window: times.slice(0, -1).map(() => null) };
      series.set(p.page, s);
    }
    s.rolling.push(Number(p.rollingCount));
    s.window.push(Number(p.count));
  }
  for (const [page, s] of series) {
    if (!seen.has(page)) {
      s.rolling.push(null);
      s.window.push(null);
    }
  }
  if (times.length > MAX_POINTS) {
    times.shift();
    for (const s of series.values()) {
      s.rolling.shift();
      s.window.shift();
    }
  }
  const start = stats.windowStart ? new Date(timestampMs(stats.windowStart)) : null;
  const end = stats.windowEnd ? new Date(timestampMs(stats.windowEnd)) : null;
  $("window").textContent = start && end
    ? `window ${start.toLocaleTimeString()} – ${end.toLocaleTimeString()}${stats.final ? " (final)" : ""}` +
      ` · rolling over ${Number(stats.rolling?.seconds ?? 5n)} s` +
      (stats.skippedTicks > 0n ? ` · ${stats.skippedTicks} ticks skipped` : "")
    : "";
  renderLegend(stats);
  redraw();
}

for (const input of document.querySelectorAll<HTMLInputElement>("input[name=mode]")) {
  input.addEventListener("change", () => {
    mode = input.value as Mode;
    plottedPages = ""; // the axis label changes
    if (lastStats) renderLegend(lastStats);
    redraw();
  });
}

window.addEventListener("resize", () => plot?.setSize(chartSize()));

async function watchStats() {
  for (let backoff = 500; ; backoff = Math.min(backoff * 2, 5000)) {
    const used = token;
    const signal = session.signal;
    try {
      for await (const stats of client.watchPageStats({}, { signal })) {
        backoff = 500;
        lastMessageAt = Date.now();
        setConnection(true, "live");
        $("chart-error").textContent = "";
        onStats(stats);
      }
      setConnection(false, "server closed the stream; reconnecting…");
    } catch (error) {
      if (signal.aborted) {
        backoff = 250; // restarted for a new token
        continue;
      }
      const code = codeOf(error);
      if (code === Code.PermissionDenied) {
        lastMessageAt = 0;
        setConnection(true, "connected (page counts not allowed)");
      } else if (code !== Code.Unauthenticated) {
        setConnection(false, `disconnected (${describe(error)}); reconnecting…`);
      }
      const show = (text: string) => { $("chart-error").textContent = code === Code.PermissionDenied ? text : ""; };
      if (await afterFailure(error, used, show, backoff)) backoff = 250;
      continue;
    }
    await pause(backoff);
  }
}

// ---------------------------------------------------------------- supplier

let formFilled = false;

function renderSupplier(status: SupplierStatus) {
  const settings = status.settings;
  const rate = settings?.ratePerSecond ?? 0;
  $("supplier-status").textContent =
    `${status.running ? "running" : "stopped"} · ${rate} events/s` +
    (status.running ? ` (achieved ${status.achievedRatePerSecond.toFixed(1)}/s)` : "") +
    ` · pages ${settings?.pages.join(",") ?? "?"} · sent ${status.eventsSent}` +
    (status.errors > 0n ? ` · ${status.errors} errors` : "");
  $("supplier-status").dataset.running = String(status.running);
  if (!formFilled && settings) {
    $<HTMLInputElement>("rate").value = String(rate);
    $<HTMLInputElement>("pages").value = settings.pages.join(",");
    formFilled = true;
  }
}

async function control(request: Parameters<typeof client.controlSupplier>[0]) {
  const used = token;
  try {
    renderSupplier(await client.controlSupplier(request));
    $("supplier-error").textContent = "";
  } catch (error) {
    if (codeOf(error) === Code.Unauthenticated) {
      $("supplier-error").textContent = "sign in first";
      askForToken(used, error instanceof ConnectError ? error.rawMessage : "");
    } else {
      $("supplier-error").textContent = describe(error);
    }
  }
}

$("start").addEventListener("click", () => control({ action: SupplierAction.START }));
$("stop").addEventListener("click", () => control({ action: SupplierAction.STOP }));
$("supplier-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const rate = Number($<HTMLInputElement>("rate").value);
  const pages = $<HTMLInputElement>("pages").value.split(",").map((p) => p.trim()).filter(Boolean);
  control({ settings: { ratePerSecond: rate, pages: { values: pages } } });
});

async function pollSupplier() {
  let denied = false; // the supplier error shown is this poll's (refused or not allowed)
  for (;;) {
    const used = token;
    try {
      renderSupplier(await client.controlSupplier({}, { signal: session.signal }));
      if (denied) $("supplier-error").textContent = "";
      denied = false;
    } catch (error) {
      const code = codeOf(error);
      if (code === Code.Unauthenticated || code === Code.PermissionDenied) {
        denied = true;
        if (code === Code.PermissionDenied) $("supplier-status").textContent = "status not allowed";
        await afterFailure(error, used, (text) => { if (text) $("supplier-error").textContent = text; }, 2000);
        continue;
      }
      // Other errors: the connection indicator says it; the next poll retries.
    }
    await pause(2000);
  }
}

// ---------------------------------------------------------------- tail

let tailAbort: AbortController | null = null;
const TAIL_FIELDS = ["topic", "partition", "offset", "timestamp", "value", "page_event"];
const decoder = new TextDecoder();

function field(name: string, value: string): HTMLElement {
  const span = document.createElement("span");
  span.className = "field";
  const b = document.createElement("b");
  b.textContent = `${name} `;
  span.append(b, value);
  return span;
}

function renderRecord(record: KafkaRecord): HTMLElement {
  const item = document.createElement("li");
  const where = document.createElement("span");
  where.className = "where";
  const when = record.timestamp ? new Date(timestampMs(record.timestamp)).toLocaleTimeString() : "";
  where.textContent = `${record.topic}/${record.partition}@${record.offset} ${when}`;
  item.append(where);
  const event = record.pageEvent;
  if (event) {
    item.dataset.page = event.name;
    item.append(
      field("page", event.name),
      field("user", event.user ?? ""),
      field("duration", `${event.durationMs ?? 0n} ms`),
      field("date", event.date ? new Date(timestampMs(event.date)).toISOString() : ""),
    );
  } else {
    const text = record.value ? decoder.decode(record.value) : "(null)";
    item.append(field("value", text.length > 200 ? `${text.slice(0, 200)}…` : text));
  }
  return item;
}

async function followTail(topic: string) {
  tailAbort?.abort();
  const abort = new AbortController();
  tailAbort = abort;
  const list = $("tail");
  list.replaceChildren();
  const show = (text: string) => { if (!abort.signal.aborted) $("tail-error").textContent = text; };
  for (let backoff = 500; !abort.signal.aborted; backoff = Math.min(backoff * 2, 5000)) {
    const used = token;
    const restart = session.signal;
    try {
      const stream = client.subscribe(
        {
          topics: [topic],
          start: { position: { case: "latest", value: true } },
          // What renderRecord shows: the server then neither sends nor parses headers.
          readMask: { paths: TAIL_FIELDS },
        },
        { signal: linked(abort.signal, restart) },
      );
      for await (const message of stream) {
        backoff = 500;
        $("tail-error").textContent = "";
        const m = message.message;
        // Records come in batches; a server of an older version sends them one by one.
        const records = m.case === "records" ? m.value.records : m.case === "record" ? [m.value] : [];
        // Only the newest MAX_TAIL of a large batch can stay on screen.
        for (const record of records.slice(-MAX_TAIL)) list.prepend(renderRecord(record));
        while (list.children.length > MAX_TAIL) list.lastElementChild?.remove();
      }
    } catch (error) {
      if (abort.signal.aborted) return;
      if (restart.aborted) {
        backoff = 250; // restarted for a new token
        continue;
      }
      if (await afterFailure(error, used, show, backoff)) backoff = 250;
      continue;
    }
    await pause(backoff);
  }
}

$("tail-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const topic = $<HTMLInputElement>("tail-topic").value.trim();
  if (topic) void followTail(topic);
});

renderSession();
void watchStats();
void pollSupplier();
void followTail($<HTMLInputElement>("tail-topic").value.trim() || "R2");

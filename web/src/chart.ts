// The page-visits panel: WatchPageStats drawn with uPlot, one line per page, and a legend
// with the current counts. The stream reconnects by itself.

import { Code, type Client } from "@connectrpc/connect";
import { timestampMs } from "@bufbuild/protobuf/wkt";
import uPlot from "uplot";
import type { EventGateway } from "./gen/streamgate/v1/gateway_pb";
import type { PageStats } from "./gen/streamgate/v1/stats_pb";
import type { ConnectionIndicator, Session } from "./connection";
import { codeOf, describe } from "./errors";

/** What the chart calls. */
export type StatsClient = Pick<Client<typeof EventGateway>, "watchPageStats">;

export interface ChartElements {
  /** The uPlot container. */
  readonly chart: HTMLElement;
  readonly legend: HTMLElement;
  /** The line about the current window. */
  readonly window: HTMLElement;
  readonly error: HTMLElement;
  /** The radio buttons choosing the counts to plot (values: the modes). */
  readonly modes: readonly HTMLInputElement[];
}

/** Points kept on the chart: five minutes at one tick a second. */
const MAX_POINTS = 300;

type Mode = "rolling" | "window";

function isMode(value: string): value is Mode {
  return value === "rolling" || value === "window";
}

/** A page's values, one per tick (null: the page was not in that tick). */
type Series = Record<Mode, (number | null)[]>;

/** Distinct colours (Tableau 10), given to pages in the order they first appear. */
const PALETTE = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"];

/** A hue from the page's name (FNV-1a), for pages beyond the palette. */
function hashedColour(page: string): string {
  let hash = 2166136261;
  for (let i = 0; i < page.length; i++) hash = Math.imul(hash ^ page.charCodeAt(i), 16777619);
  return `hsl(${(hash >>> 0) % 360} 65% 42%)`;
}

/** Default sort order of strings (UTF-16 code units), for sorting by key. */
function byKey<T>([a]: [string, T], [b]: [string, T]): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export class ChartPanel {
  readonly #client: StatsClient;
  readonly #session: Session;
  readonly #indicator: ConnectionIndicator;
  readonly #elements: ChartElements;
  #mode: Mode = "rolling";
  readonly #times: number[] = [];
  readonly #series = new Map<string, Series>();
  #plot: uPlot | null = null;
  /** The pages of the plot's series, joined: a new page means a new plot. */
  #plottedPages = "";
  readonly #colours = new Map<string, string>();
  #lastStats: PageStats | null = null;

  constructor(client: StatsClient, session: Session, indicator: ConnectionIndicator, elements: ChartElements) {
    this.#client = client;
    this.#session = session;
    this.#indicator = indicator;
    this.#elements = elements;
  }

  /** Wires the mode buttons and follows the page counts, for as long as the page lives. */
  start(): void {
    for (const input of this.#elements.modes) {
      const mode = input.value;
      if (!isMode(mode)) throw new Error(`dashboard: unknown chart mode ${JSON.stringify(mode)}`);
      input.addEventListener("change", () => this.#setMode(mode));
    }
    void this.#watch();
  }

  /** Fits the chart to its container again (the window was resized). */
  resize(): void {
    this.#plot?.setSize(this.#size());
  }

  async #watch(): Promise<void> {
    const session = this.#session;
    for (let backoff = 500; ; backoff = Math.min(backoff * 2, 5000)) {
      const used = session.token;
      const signal = session.signal;
      try {
        for await (const stats of this.#client.watchPageStats({}, { signal })) {
          backoff = 500;
          this.#indicator.live();
          this.#elements.error.textContent = "";
          this.#onStats(stats);
        }
        this.#indicator.show(false, "server closed the stream; reconnecting…");
      } catch (error) {
        if (signal.aborted) {
          backoff = 250; // restarted for a new token
          continue;
        }
        const code = codeOf(error);
        if (code === Code.PermissionDenied) {
          this.#indicator.idle();
          this.#indicator.show(true, "connected (page counts not allowed)");
        } else if (code !== Code.Unauthenticated) {
          this.#indicator.show(false, `disconnected (${describe(error)}); reconnecting…`);
        }
        const show = (text: string) => { this.#elements.error.textContent = code === Code.PermissionDenied ? text : ""; };
        if (await session.afterFailure(error, used, show, backoff)) backoff = 250;
        continue;
      }
      await session.pause(backoff);
    }
  }

  #setMode(mode: Mode): void {
    this.#mode = mode;
    this.#plottedPages = ""; // the axis label changes
    if (this.#lastStats) this.#renderLegend(this.#lastStats);
    this.#redraw();
  }

  /** A page's colour: stable for the whole session; beyond ten pages, hues from a hash. */
  #colour(page: string): string {
    let c = this.#colours.get(page);
    if (!c) {
      c = PALETTE[this.#colours.size] ?? hashedColour(page);
      this.#colours.set(page, c);
    }
    return c;
  }

  #size(): { width: number; height: number } {
    const width = Math.max(280, this.#elements.chart.clientWidth);
    return { width, height: Math.round(Math.min(360, Math.max(220, width * 0.45))) };
  }

  #redraw(): void {
    const mode = this.#mode;
    const series = [...this.#series].sort(byKey);
    const pages = series.map(([page]) => page);
    const data: uPlot.AlignedData = [this.#times, ...series.map(([, s]) => s[mode])];
    const key = pages.join("\u0000");
    if (!this.#plot || key !== this.#plottedPages) {
      // Pages appear as they arrive: a new page means new series, so rebuild.
      this.#plot?.destroy();
      this.#plot = new uPlot(
        {
          ...this.#size(),
          legend: { show: false },
          scales: { x: { time: true }, y: { range: (_u, _min, max) => [0, Math.max(5, max * 1.1)] } },
          axes: [{}, { label: mode === "rolling" ? "visits (rolling)" : "visits in window" }],
          series: [{}, ...pages.map((p) => ({ label: p, stroke: this.#colour(p), width: 2, spanGaps: false }))],
        },
        data,
        this.#elements.chart,
      );
      this.#plottedPages = key;
    } else {
      this.#plot.setData(data);
    }
  }

  #renderLegend(stats: PageStats): void {
    this.#elements.legend.replaceChildren(
      ...stats.pages.map((p) => {
        const item = document.createElement("li");
        item.dataset.page = p.page;
        const swatch = document.createElement("span");
        swatch.className = "swatch";
        swatch.style.background = this.#colour(p.page);
        const name = document.createElement("span");
        name.className = "name";
        name.textContent = p.page;
        const value = document.createElement("span");
        value.className = "value";
        value.textContent = String(this.#mode === "rolling" ? p.rollingCount : p.count);
        item.append(swatch, name, value);
        return item;
      }),
    );
  }

  #onStats(stats: PageStats): void {
    this.#lastStats = stats;
    const times = this.#times;
    const t = (stats.generatedAt ? timestampMs(stats.generatedAt) : Date.now()) / 1000;
    times.push(t);
    const seen = new Set<string>();
    for (const p of stats.pages) {
      seen.add(p.page);
      let s = this.#series.get(p.page);
      if (!s) {
        // A new page: no values before it appeared.
        s = { rolling: times.slice(0, -1).map(() => null), window: times.slice(0, -1).map(() => null) };
        this.#series.set(p.page, s);
      }
      s.rolling.push(Number(p.rollingCount));
      s.window.push(Number(p.count));
    }
    for (const [page, s] of this.#series) {
      if (!seen.has(page)) {
        s.rolling.push(null);
        s.window.push(null);
      }
    }
    if (times.length > MAX_POINTS) {
      times.shift();
      for (const s of this.#series.values()) {
        s.rolling.shift();
        s.window.shift();
      }
    }
    this.#elements.window.textContent = windowLine(stats);
    this.#renderLegend(stats);
    this.#redraw();
  }
}

/** The line about the current window: its bounds, the rolling period, skipped ticks. */
function windowLine(stats: PageStats): string {
  const start = stats.windowStart ? new Date(timestampMs(stats.windowStart)) : null;
  const end = stats.windowEnd ? new Date(timestampMs(stats.windowEnd)) : null;
  return start && end
    ? `window ${start.toLocaleTimeString()} – ${end.toLocaleTimeString()}${stats.final ? " (final)" : ""}` +
      ` · rolling over ${Number(stats.rolling?.seconds ?? 5n)} s` +
      (stats.skippedTicks > 0n ? ` · ${stats.skippedTicks} ticks skipped` : "")
    : "";
}

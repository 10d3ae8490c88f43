// The live tail: Subscribe to one topic from its end, newest record first, the last
// MAX_TAIL kept. Following another topic, or applying another filter, stops the previous tail.
//
// The filter is a CEL expression the server evaluates (`value.duration > 8000`): only the
// records it matches are sent. Values come decoded as JSON by the topic's schema (or as the
// JSON they are), shown compact. A filter the server refuses (INVALID_ARGUMENT: a syntax
// error, an unknown name, too long or costly) stops the tail with the server's words next to
// the filter box: retrying cannot help, and showing every record would look like a match.

import { Code, type Client } from "@connectrpc/connect";
import { toJson } from "@bufbuild/protobuf";
import { timestampMs, ValueSchema } from "@bufbuild/protobuf/wkt";
import type { Record as KafkaRecord } from "./gen/streamgate/v1/event_pb";
import type { EventGateway } from "./gen/streamgate/v1/gateway_pb";
import type { Session } from "./connection";
import { codeOf, describe, rawMessageOf } from "./errors";
import { linked } from "./signals";

/** What the tail calls. */
export type TailClient = Pick<Client<typeof EventGateway>, "subscribe">;

export interface TailElements {
  readonly form: HTMLFormElement;
  readonly topic: HTMLInputElement;
  /** The filter box: its form applies it on Enter or with its button. */
  readonly filterForm: HTMLFormElement;
  readonly filter: HTMLInputElement;
  /** Why the server refused the filter; "" while it is accepted. */
  readonly filterError: HTMLElement;
  /** The records, newest first. */
  readonly list: HTMLElement;
  readonly error: HTMLElement;
}

/** Records kept in the tail. */
const MAX_TAIL = 100;
/** The topic followed when the topic field is empty at start. */
const DEFAULT_TOPIC = "R2";
/** What renderRecord shows: the server then neither sends nor parses headers. */
const TAIL_FIELDS = ["topic", "partition", "offset", "timestamp", "value", "page_event", "decoded", "decode_error"];
/** Characters of a value shown before it is cut. */
const MAX_SHOWN = 200;

function cut(text: string): string {
  return text.length > MAX_SHOWN ? `${text.slice(0, MAX_SHOWN)}…` : text;
}

function field(name: string, value: string): HTMLElement {
  const span = document.createElement("span");
  span.className = "field";
  const b = document.createElement("b");
  b.textContent = `${name} `;
  span.append(b, value);
  return span;
}

function renderRecord(record: KafkaRecord, decoder: TextDecoder): HTMLElement {
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
  } else if (record.decoded) {
    // Compact JSON: the value as the topic's schema reads it (a Protobuf value included).
    item.append(field("json", cut(JSON.stringify(toJson(ValueSchema, record.decoded)))));
  } else {
    const text = record.value ? decoder.decode(record.value) : "(null)";
    item.append(field("value", cut(text)));
  }
  if (record.decodeError) item.append(field("not decoded", record.decodeError));
  return item;
}

/** Whether the server refused the request because of its filter (rather than, say, the topic). */
function filterRefused(failure: unknown, filter: string): boolean {
  return filter !== "" && codeOf(failure) === Code.InvalidArgument && rawMessageOf(failure).startsWith("filter");
}

export class TailPanel {
  readonly #client: TailClient;
  readonly #session: Session;
  readonly #elements: TailElements;
  readonly #decoder = new TextDecoder();
  /** Stops the tail being followed. */
  #abort: AbortController | null = null;
  /** The topic followed. */
  #topic = DEFAULT_TOPIC;

  constructor(client: TailClient, session: Session, elements: TailElements) {
    this.#client = client;
    this.#session = session;
    this.#elements = elements;
  }

  /** Wires the topic and filter forms and follows the topic in them (or R2). */
  start(): void {
    const { form, topic, filterForm, filter } = this.#elements;
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const name = topic.value.trim();
      if (name) void this.follow(name, filter.value.trim());
    });
    filterForm.addEventListener("submit", (event) => {
      event.preventDefault();
      void this.follow(topic.value.trim() || this.#topic, filter.value.trim());
    });
    void this.follow(topic.value.trim() || DEFAULT_TOPIC, filter.value.trim());
  }

  /**
   * Follows `topic` (instead of the one followed until now), with only the records `filter`
   * matches ("" for all), until another is followed.
   */
  async follow(topic: string, filter = ""): Promise<void> {
    this.#abort?.abort();
    const abort = new AbortController();
    this.#abort = abort;
    this.#topic = topic;
    const session = this.#session;
    const { list, error } = this.#elements;
    list.replaceChildren();
    this.#filterRefused("");
    const show = (text: string) => { if (!abort.signal.aborted) error.textContent = text; };
    for (let backoff = 500; !abort.signal.aborted; backoff = Math.min(backoff * 2, 5000)) {
      const used = session.token;
      const restart = session.signal;
      try {
        const stream = this.#client.subscribe(
          {
            topics: [topic],
            start: { position: { case: "latest", value: true } },
            readMask: { paths: TAIL_FIELDS },
            filter,
            decode: true,
          },
          { signal: linked(abort.signal, restart) },
        );
        for await (const message of stream) {
          backoff = 500;
          error.textContent = "";
          const m = message.message;
          // Records come in batches; a server of an older version sends them one by one.
          const records = m.case === "records" ? m.value.records : m.case === "record" ? [m.value] : [];
          // Only the newest MAX_TAIL of a large batch can stay on screen.
          for (const record of records.slice(-MAX_TAIL)) list.prepend(renderRecord(record, this.#decoder));
          while (list.children.length > MAX_TAIL) list.lastElementChild?.remove();
        }
      } catch (failure) {
        if (abort.signal.aborted) return;
        if (restart.aborted) {
          backoff = 250; // restarted for a new token
          continue;
        }
        if (filterRefused(failure, filter)) {
          // The same request would be refused again: stop, and say why next to the box.
          error.textContent = "";
          this.#filterRefused(describe(failure));
          return;
        }
        if (await session.afterFailure(failure, used, show, backoff)) backoff = 250;
        continue;
      }
      await session.pause(backoff);
    }
  }

  /** Shows why the server refused the filter ("": it did not). */
  #filterRefused(text: string): void {
    const { filter, filterError } = this.#elements;
    filterError.textContent = text;
    if (text) filter.setAttribute("aria-invalid", "true");
    else filter.removeAttribute("aria-invalid");
  }
}

// The live tail: Subscribe to one topic from its end, newest record first, the last
// MAX_TAIL kept. Following another topic stops the previous tail.

import type { Client } from "@connectrpc/connect";
import { timestampMs } from "@bufbuild/protobuf/wkt";
import type { Record as KafkaRecord } from "./gen/streamgate/v1/event_pb";
import type { EventGateway } from "./gen/streamgate/v1/gateway_pb";
import type { Session } from "./connection";
import { linked } from "./signals";

/** What the tail calls. */
export type TailClient = Pick<Client<typeof EventGateway>, "subscribe">;

export interface TailElements {
  readonly form: HTMLFormElement;
  readonly topic: HTMLInputElement;
  /** The records, newest first. */
  readonly list: HTMLElement;
  readonly error: HTMLElement;
}

/** Records kept in the tail. */
const MAX_TAIL = 100;
/** The topic followed when the topic field is empty at start. */
const DEFAULT_TOPIC = "R2";
/** What renderRecord shows: the server then neither sends nor parses headers. */
const TAIL_FIELDS = ["topic", "partition", "offset", "timestamp", "value", "page_event"];

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
  } else {
    const text = record.value ? decoder.decode(record.value) : "(null)";
    item.append(field("value", text.length > 200 ? `${text.slice(0, 200)}…` : text));
  }
  return item;
}

export class TailPanel {
  readonly #client: TailClient;
  readonly #session: Session;
  readonly #elements: TailElements;
  readonly #decoder = new TextDecoder();
  /** Stops the tail being followed. */
  #abort: AbortController | null = null;

  constructor(client: TailClient, session: Session, elements: TailElements) {
    this.#client = client;
    this.#session = session;
    this.#elements = elements;
  }

  /** Wires the topic form and follows the topic in it (or R2). */
  start(): void {
    const { form, topic } = this.#elements;
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const name = topic.value.trim();
      if (name) void this.follow(name);
    });
    void this.follow(topic.value.trim() || DEFAULT_TOPIC);
  }

  /** Follows `topic` (instead of the one followed until now) until another is followed. */
  async follow(topic: string): Promise<void> {
    this.#abort?.abort();
    const abort = new AbortController();
    this.#abort = abort;
    const session = this.#session;
    const { list, error } = this.#elements;
    list.replaceChildren();
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
        if (await session.afterFailure(failure, used, show, backoff)) backoff = 250;
        continue;
      }
      await session.pause(backoff);
    }
  }
}

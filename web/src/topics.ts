// The Topics view: the cluster's topics (ListTopics: partitions, records held), and one topic
// described (DescribeTopic: each partition's leader, replicas, in-sync replicas and
// watermarks, its configs and its schema), with Create and Delete.
//
// `#topics` shows the list, `#topics/<name>` one topic: two pages rather than a split pane,
// because the partition and config tables need the width, on a phone above all.

import type { Client } from "@connectrpc/connect";
import { ConfigSource, type PartitionDescription, type TopicConfig, type TopicDescription, type TopicSchema } from "./gen/streamgate/v1/admin_pb";
import type { EventGateway, TopicInfo } from "./gen/streamgate/v1/gateway_pb";
import type { Session } from "./connection";
import type { ConfirmDialog } from "./confirm";
import { describe } from "./errors";
import type { CreateTopicDialog } from "./topic-form";
import { type AdminClient, type Cell, cell, explain, fillTable, Gate, link, now, num, numHead, onTokenChange } from "./ui";
import { href, type View } from "./views";

/** What the view calls on EventGateway. */
export type TopicsGateway = Pick<Client<typeof EventGateway>, "listTopics">;

export interface TopicsElements {
  readonly list: HTMLElement;
  readonly listTitle: HTMLElement;
  readonly filter: HTMLInputElement;
  readonly refresh: HTMLButtonElement;
  readonly create: HTMLButtonElement;
  readonly createNote: HTMLElement;
  readonly status: HTMLElement;
  readonly error: HTMLElement;
  readonly table: HTMLTableElement;

  readonly detail: HTMLElement;
  readonly crumb: HTMLElement;
  readonly title: HTMLElement;
  readonly detailRefresh: HTMLButtonElement;
  readonly remove: HTMLButtonElement;
  readonly removeNote: HTMLElement;
  readonly summary: HTMLElement;
  readonly detailError: HTMLElement;
  readonly partitions: HTMLTableElement;
  /** The schema: hidden for an untyped topic. */
  readonly schema: HTMLElement;
  readonly schemaSummary: HTMLElement;
  readonly schemaDetails: HTMLDetailsElement;
  readonly schemaDefinition: HTMLElement;
  readonly configsNote: HTMLElement;
  readonly overridesOnly: HTMLInputElement;
  readonly configs: HTMLTableElement;
}

/** Records a topic holds: the sum over its partitions of high - low watermark. */
function recordsOf(partitions: readonly { lowWatermark: bigint; highWatermark: bigint }[]): bigint {
  return partitions.reduce((sum, p) => sum + (p.highWatermark - p.lowWatermark), 0n);
}

const SOURCE_NAMES: Record<ConfigSource, string> = {
  [ConfigSource.UNSPECIFIED]: "unspecified",
  [ConfigSource.TOPIC]: "topic",
  [ConfigSource.DYNAMIC_BROKER]: "dynamic broker",
  [ConfigSource.DYNAMIC_DEFAULT_BROKER]: "dynamic default broker",
  [ConfigSource.STATIC_BROKER]: "static broker",
  [ConfigSource.DEFAULT]: "default",
};

/** The words for a schema's format, as the server names it. */
const FORMAT_NAMES: Record<string, string> = {
  protobuf: "Protobuf",
  json_schema: "JSON Schema",
};

function tag(text: string, className = "tag"): HTMLElement {
  const span = document.createElement("span");
  span.className = className;
  span.textContent = text;
  return span;
}

function ids(list: readonly number[]): string {
  return list.length ? list.join(", ") : "none";
}

function configValue(config: TopicConfig): Node {
  const value = document.createDocumentFragment();
  value.append(config.sensitive ? tag("hidden") : config.value === undefined ? "—" : config.value);
  if (config.readOnly) value.append(" ", tag("read-only"));
  return value;
}

export class TopicsView implements View {
  readonly #admin: AdminClient;
  readonly #gateway: TopicsGateway;
  readonly #session: Session;
  readonly #elements: TopicsElements;
  readonly #confirm: ConfirmDialog;
  readonly #createDialog: CreateTopicDialog;
  readonly #createGate: Gate;
  readonly #removeGate: Gate;
  /** The topics of the last ListTopics, for the filter and as a fallback description. */
  #topics: TopicInfo[] = [];
  /** The topic shown, or null for the list; answers for another are dropped. */
  #topic: string | null = null;
  #description: TopicDescription | null = null;
  /** Topics whose deletion the server refused, with its words, until the token changes. */
  readonly #deleteDenied = new Map<string, string>();
  /** Said once on the list's status line (a topic was deleted), then forgotten. */
  #notice = "";

  constructor(
    admin: AdminClient, gateway: TopicsGateway, session: Session, elements: TopicsElements,
    confirm: ConfirmDialog, createDialog: CreateTopicDialog,
  ) {
    this.#admin = admin;
    this.#gateway = gateway;
    this.#session = session;
    this.#elements = elements;
    this.#confirm = confirm;
    this.#createDialog = createDialog;
    this.#createGate = new Gate(elements.create, elements.createNote);
    this.#removeGate = new Gate(elements.remove, elements.removeNote);
  }

  start(): void {
    const e = this.#elements;
    e.filter.addEventListener("input", () => this.#renderList());
    e.refresh.addEventListener("click", () => void this.#loadList());
    e.detailRefresh.addEventListener("click", () => { if (this.#topic) void this.#describe(this.#topic); });
    e.overridesOnly.addEventListener("change", () => { if (this.#description) this.#renderConfigs(this.#description); });
    e.create.addEventListener("click", () => void this.#create());
    e.remove.addEventListener("click", () => void this.#remove());
    onTokenChange(this.#session, () => {
      // Another principal: what was refused may be allowed now, and what was listed may not.
      this.#createGate.allow();
      this.#deleteDenied.clear();
      if (this.#elements.list.hidden && this.#elements.detail.hidden) return; // view not shown
      if (this.#topic) void this.#describe(this.#topic);
      else void this.#loadList();
    });
  }

  show(item: string | null): HTMLElement {
    const e = this.#elements;
    this.#topic = item;
    e.list.hidden = item !== null;
    e.detail.hidden = item === null;
    if (item === null) {
      void this.#loadList();
      return e.listTitle;
    }
    this.#openTopic(item);
    return e.title;
  }

  hide(): void {
    this.#topic = null;
    this.#elements.list.hidden = true;
    this.#elements.detail.hidden = true;
  }

  // ------------------------------------------------------------ the list

  async #loadList(): Promise<void> {
    const { status, error } = this.#elements;
    const used = this.#session.token;
    status.textContent = "loading…";
    try {
      const answer = await this.#gateway.listTopics({});
      this.#topics = answer.topics;
      error.textContent = "";
      this.#renderList();
    } catch (failure) {
      status.textContent = "";
      error.textContent = explain(this.#session, used, failure);
    }
  }

  #renderList(): void {
    const { filter, status, table } = this.#elements;
    const wanted = filter.value.trim().toLowerCase();
    const shown = this.#topics.filter((t) => t.name.toLowerCase().includes(wanted));
    const total = shown.reduce((sum, t) => sum + recordsOf(t.partitions), 0n);
    status.textContent = (this.#notice ? `${this.#notice} · ` : "") +
      `${shown.length} of ${this.#topics.length} topics · ${total.toLocaleString("en-US")} records · updated ${now()}`;
    this.#notice = "";
    fillTable(
      table,
      ["Topic", numHead("Partitions"), numHead("Records")],
      shown.map((t) => ({
        data: { topic: t.name },
        cells: [cell(link(t.name, href("topics", t.name)), "name"), num(t.partitions.length), num(recordsOf(t.partitions))],
      })),
      { empty: this.#topics.length ? "No topic matches the filter." : "No topics." },
    );
  }

  async #create(): Promise<void> {
    const created = await this.#createDialog.open((failure) => this.#createGate.refused(failure));
    if (created !== null) window.location.hash = href("topics", created);
  }

  // ------------------------------------------------------------ one topic

  #openTopic(name: string): void {
    const e = this.#elements;
    e.crumb.textContent = name;
    e.title.textContent = name;
    e.summary.textContent = "loading…";
    e.detailError.textContent = "";
    e.configsNote.hidden = true;
    e.schema.hidden = true;
    e.schemaDetails.open = false;
    this.#description = null;
    for (const table of [e.partitions, e.configs]) table.replaceChildren();
    const denied = this.#deleteDenied.get(name);
    if (denied !== undefined) this.#removeGate.deny(denied);
    else this.#removeGate.allow();
    void this.#describe(name);
  }

  async #describe(name: string): Promise<void> {
    const e = this.#elements;
    const used = this.#session.token;
    try {
      const answer = await this.#admin.describeTopic({ topic: name });
      if (this.#topic !== name) return;
      if (!answer.topic) throw new Error("the server answered no topic");
      e.detailError.textContent = "";
      this.#render(answer.topic);
    } catch (failure) {
      if (this.#topic !== name) return;
      e.detailError.textContent = `DescribeTopic failed: ${explain(this.#session, used, failure)}`;
      this.#fallback(name);
    }
  }

  /** Without DescribeTopic, what ListTopics said of the topic, so the page is not blank. */
  #fallback(name: string): void {
    const e = this.#elements;
    const info = this.#topics.find((t) => t.name === name);
    e.schema.hidden = true;
    if (!info) {
      e.summary.textContent = "";
      return;
    }
    e.summary.textContent =
      `${info.partitions.length} partitions · ${recordsOf(info.partitions).toLocaleString("en-US")} records` +
      ` (from ListTopics: no replicas, in-sync replicas or configs)`;
    this.#renderPartitions(info.partitions.map((p) => ({ ...p, replicas: [], inSyncReplicas: [] })), false);
    fillTable(e.configs, ["Name", "Value", "Source", "Default"], [], { empty: "Not known without DescribeTopic." });
  }

  #render(topic: TopicDescription): void {
    const e = this.#elements;
    this.#description = topic;
    const factor = Math.max(0, ...topic.partitions.map((p) => p.replicas.length));
    const under = topic.partitions.filter((p) => p.inSyncReplicas.length < p.replicas.length).length;
    e.summary.replaceChildren(
      `${topic.partitions.length} partitions · ${topic.records.toLocaleString("en-US")} records · replication factor ${factor}`,
      ...(under ? [" · ", tag(`${under} under-replicated`, "tag bad")] : []),
      ...(topic.internal ? [" · ", tag("internal")] : []),
      ` · updated ${now()}`,
    );
    e.summary.dataset.partitions = String(topic.partitions.length);
    // The server never manages Kafka's own topics: say so rather than offer a button that fails.
    if (topic.internal) this.#removeGate.deny("Kafka's internal topics are not managed here");
    this.#renderPartitions(topic.partitions, true);
    this.#renderSchema(topic.schema);
    this.#renderConfigs(topic);
  }

  /** What the topic's values are checked against and decoded with; hidden when untyped. */
  #renderSchema(schema: TopicSchema | undefined): void {
    const e = this.#elements;
    e.schema.hidden = !schema;
    if (!schema) return;
    const rows: [string, string][] = [
      ["Format", FORMAT_NAMES[schema.format] ?? schema.format],
      ...(schema.message ? [["Message", schema.message] as [string, string]] : []),
      ["Declared for", schema.pattern],
      ["Source", schema.source],
    ];
    e.schemaSummary.replaceChildren(...rows.flatMap(([name, value]) => {
      const dt = document.createElement("dt");
      dt.textContent = name;
      const dd = document.createElement("dd");
      dd.textContent = value || "—";
      return [dt, dd];
    }));
    e.schema.dataset.format = schema.format;
    e.schemaDefinition.textContent = schema.definition;
    e.schemaDetails.hidden = schema.definition === "";
  }

  #renderPartitions(
    partitions: readonly Pick<PartitionDescription, "partition" | "leader" | "replicas" | "inSyncReplicas" | "lowWatermark" | "highWatermark">[],
    replicasKnown: boolean,
  ): void {
    fillTable(
      this.#elements.partitions,
      [numHead("Partition"), numHead("Leader"), "Replicas", "In sync", numHead("Low"), numHead("High"), numHead("Records")],
      partitions.map((p) => {
        const under = replicasKnown && p.inSyncReplicas.length < p.replicas.length;
        return {
          data: { partition: String(p.partition) },
          ...(under ? { className: "warn" } : {}),
          cells: [
            num(p.partition),
            p.leader < 0 ? cell(tag("no leader", "tag bad")) : num(p.leader),
            cell(replicasKnown ? ids(p.replicas) : "?"),
            cell(replicasKnown ? ids(p.inSyncReplicas) : "?"),
            num(p.lowWatermark),
            num(p.highWatermark),
            num(p.highWatermark - p.lowWatermark),
          ],
        };
      }),
    );
  }

  #renderConfigs(topic: TopicDescription): void {
    const e = this.#elements;
    e.configsNote.hidden = topic.configsUnavailable === "";
    e.configsNote.textContent = topic.configsUnavailable ? `Configs unavailable: ${topic.configsUnavailable}` : "";
    const configs = e.overridesOnly.checked ? topic.configs.filter((c) => !c.isDefault) : topic.configs;
    const rows = configs.map((c) => ({
      data: { config: c.name },
      ...(c.isDefault ? {} : { className: "override" }),
      cells: [cell(c.name, "name"), cell(configValue(c)), cell(SOURCE_NAMES[c.source] ?? String(c.source)), cell(c.isDefault ? "yes" : "no")] as Cell[],
    }));
    const empty = topic.configsUnavailable ? "Not listed (see above)." : e.overridesOnly.checked ? "Every config has its default value." : "No configs.";
    fillTable(e.configs, ["Name", "Value", "Source", "Default"], rows, { empty });
  }

  async #remove(): Promise<void> {
    const name = this.#topic;
    if (!name) return;
    const deleted = await this.#confirm.ask({
      title: "Delete topic",
      message: `Topic ${name} and every record in it will be deleted. This cannot be undone.`,
      name,
      action: "Delete topic",
      run: async () => { await this.#admin.deleteTopic({ topic: name }); },
      failed: (failure) => {
        if (this.#removeGate.refused(failure)) this.#deleteDenied.set(name, describe(failure));
      },
    });
    if (deleted) {
      this.#notice = `topic ${name} deleted`;
      window.location.hash = href("topics");
    }
  }
}

// Creating a topic: a modal form (name, partitions, optional replication factor, optional
// configs as key=value lines), then a review of exactly what will be asked for, and only
// then CreateTopic. The review is the confirmation: partitions cannot be taken back, and a
// typo in a name makes a second topic rather than an error.

import { Code } from "@connectrpc/connect";
import type { CreateTopicRequest } from "./gen/streamgate/v1/admin_pb";
import type { Session } from "./connection";
import { codeOf } from "./errors";
import { type AdminClient, explain } from "./ui";

export interface CreateTopicElements {
  readonly dialog: HTMLDialogElement;
  readonly form: HTMLFormElement;
  readonly name: HTMLInputElement;
  readonly partitions: HTMLInputElement;
  readonly replication: HTMLInputElement;
  readonly configs: HTMLTextAreaElement;
  readonly cancel: HTMLButtonElement;
  /** The review step, hidden while the form is filled in. */
  readonly review: HTMLElement;
  readonly summary: HTMLElement;
  readonly confirm: HTMLButtonElement;
  readonly back: HTMLButtonElement;
  readonly error: HTMLElement;
}

type Fields = Pick<CreateTopicRequest, "topic" | "partitions" | "replicationFactor" | "configs">;

/** Kafka's rule for topic names, checked here so a typo is caught before the review. */
const TOPIC_NAME = /^[a-zA-Z0-9._-]{1,249}$/;

/** An optional whole number in [min, max]; "" is 0 (the server's or broker's default). */
function whole(text: string, what: string, min: number, max: number): number {
  const trimmed = text.trim();
  if (trimmed === "") return 0;
  const n = Number(trimmed);
  if (!Number.isInteger(n) || n < min || n > max) throw new Error(`${what}: a whole number from ${min} to ${max}, or empty for the default`);
  return n;
}

/** `key=value` lines; blank lines and `#` comments skipped; a key given twice is a mistake. */
export function parseConfigs(text: string): Record<string, string> {
  const configs: Record<string, string> = {};
  text.split("\n").forEach((raw, index) => {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) return;
    const eq = line.indexOf("=");
    const key = eq < 0 ? "" : line.slice(0, eq).trim();
    if (key === "") throw new Error(`configs, line ${index + 1}: expected name=value, got ${JSON.stringify(line)}`);
    if (Object.hasOwn(configs, key)) throw new Error(`configs, line ${index + 1}: ${key} is given twice`);
    configs[key] = line.slice(eq + 1).trim();
  });
  return configs;
}

export class CreateTopicDialog {
  readonly #admin: AdminClient;
  readonly #session: Session;
  readonly #elements: CreateTopicElements;
  /** What the review shows and Create sends. */
  #fields: Fields | null = null;
  #settle: ((created: string | null) => void) | null = null;
  #failed: (error: unknown) => void = () => {};
  #busy = false;

  constructor(admin: AdminClient, session: Session, elements: CreateTopicElements) {
    this.#admin = admin;
    this.#session = session;
    this.#elements = elements;
    const { dialog, form, cancel, confirm, back } = elements;
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.#review();
    });
    cancel.addEventListener("click", () => dialog.close());
    back.addEventListener("click", () => this.#step("form"));
    confirm.addEventListener("click", () => void this.#create());
    dialog.addEventListener("close", () => this.#finish(null));
  }

  /**
   * Opens the form; resolves with the created topic's name, or null when cancelled.
   * `failed` hears of a failed CreateTopic (the view disables Create on a refusal).
   */
  open(failed: (error: unknown) => void): Promise<string | null> {
    this.#finish(null);
    this.#failed = failed;
    this.#elements.form.reset();
    this.#elements.error.textContent = "";
    this.#step("form");
    this.#elements.dialog.showModal();
    this.#elements.name.focus();
    return new Promise((resolve) => (this.#settle = resolve));
  }

  #step(step: "form" | "review"): void {
    const { form, review, name, confirm } = this.#elements;
    form.hidden = step !== "form";
    review.hidden = step !== "review";
    if (step === "form") {
      this.#fields = null;
      name.focus();
    } else {
      confirm.disabled = false;
      confirm.focus();
    }
  }

  #review(): void {
    const e = this.#elements;
    try {
      const topic = e.name.value.trim();
      if (!TOPIC_NAME.test(topic) || topic === "." || topic === "..") {
        throw new Error("name: 1 to 249 characters of letters, digits, '.', '_' and '-', not '.' or '..'");
      }
      this.#fields = {
        topic,
        partitions: whole(e.partitions.value, "partitions", 1, 10000),
        replicationFactor: whole(e.replication.value, "replication factor", 1, 32767),
        configs: parseConfigs(e.configs.value),
      };
    } catch (mistake) {
      e.error.textContent = mistake instanceof Error ? mistake.message : String(mistake);
      return;
    }
    e.error.textContent = "";
    this.#renderSummary(this.#fields);
    this.#step("review");
  }

  #renderSummary(fields: Fields): void {
    const item = (label: string, value: string) => {
      const dt = document.createElement("dt");
      dt.textContent = label;
      const dd = document.createElement("dd");
      dd.textContent = value;
      return [dt, dd];
    };
    const configs = Object.entries(fields.configs);
    this.#elements.summary.replaceChildren(
      ...item("Topic", fields.topic),
      ...item("Partitions", fields.partitions ? String(fields.partitions) : "the server's default"),
      ...item("Replication factor", fields.replicationFactor ? String(fields.replicationFactor) : "the broker's default"),
      ...item("Configs", configs.length ? configs.map(([k, v]) => `${k}=${v}`).join("\n") : "the defaults"),
    );
  }

  async #create(): Promise<void> {
    const fields = this.#fields;
    const e = this.#elements;
    if (!fields || this.#busy) return;
    const used = this.#session.token;
    this.#busy = true;
    e.confirm.disabled = true;
    e.error.textContent = "creating…";
    try {
      const answer = await this.#admin.createTopic(fields);
      this.#finish(answer.topic?.name ?? fields.topic);
      e.dialog.close();
    } catch (failure) {
      if (this.#fields !== fields) return; // closed meanwhile
      e.error.textContent = explain(this.#session, used, failure);
      this.#failed(failure);
      // The same request with the same token would be refused again; anything else may pass.
      e.confirm.disabled = codeOf(failure) === Code.PermissionDenied;
    } finally {
      this.#busy = false;
    }
  }

  #finish(created: string | null): void {
    this.#fields = null;
    const settle = this.#settle;
    this.#settle = null;
    settle?.(created);
  }
}

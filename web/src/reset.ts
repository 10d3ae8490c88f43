// Resetting a group's offsets, as `kafka-consumer-groups.sh --reset-offsets` does: choose the
// topics and the target (earliest, latest, an offset, a date and time, or a shift by N), see
// the dry run's plan (each partition's current and new offset), and only then commit that
// plan with execute=true. Changing the form drops the plan, so what is committed is always
// what was shown.

import { Code } from "@connectrpc/connect";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import type { ResetGroupOffsetsRequest, ResetGroupOffsetsResponse } from "./gen/streamgate/v1/admin_pb";
import type { Session } from "./connection";
import { codeOf } from "./errors";
import { type AdminClient, cell, explain, fillTable, num, numHead } from "./ui";

export interface ResetElements {
  readonly dialog: HTMLDialogElement;
  readonly group: HTMLElement;
  readonly form: HTMLFormElement;
  /** Where a checkbox per topic of the group goes. */
  readonly topics: HTMLElement;
  /** Other topics, comma-separated (a group with no commits has no topics to offer). */
  readonly otherTopics: HTMLInputElement;
  readonly target: HTMLSelectElement;
  /** The offset or the shift, shown for those targets. */
  readonly numberRow: HTMLElement;
  readonly numberLabel: HTMLElement;
  readonly number: HTMLInputElement;
  /** The date and time, shown for that target. */
  readonly datetimeRow: HTMLElement;
  readonly datetime: HTMLInputElement;
  readonly cancel: HTMLButtonElement;
  readonly plan: HTMLElement;
  readonly planSummary: HTMLElement;
  readonly planTable: HTMLTableElement;
  readonly execute: HTMLButtonElement;
  readonly error: HTMLElement;
}

type Target = ResetGroupOffsetsRequest["target"];
type Request = Pick<ResetGroupOffsetsRequest, "group" | "topics" | "target">;

/** A whole number, as int64 wants it; `signed` allows a minus (shift back). */
function int64(text: string, what: string, signed: boolean): bigint {
  const trimmed = text.trim();
  if (!(signed ? /^-?\d+$/ : /^\d+$/).test(trimmed)) {
    throw new Error(`${what}: ${signed ? "a whole number, negative to go back" : "a whole number, 0 or more"}`);
  }
  return BigInt(trimmed);
}

export class ResetDialog {
  readonly #admin: AdminClient;
  readonly #session: Session;
  readonly #elements: ResetElements;
  #group = "";
  /** The request the plan on screen answers; null while there is none. */
  #planned: Request | null = null;
  #settle: ((done: ResetGroupOffsetsResponse | null) => void) | null = null;
  #failed: (error: unknown) => void = () => {};
  #busy = false;

  constructor(admin: AdminClient, session: Session, elements: ResetElements) {
    this.#admin = admin;
    this.#session = session;
    this.#elements = elements;
    const { dialog, form, target, cancel, execute } = elements;
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      void this.#dryRun();
    });
    // Any change makes the plan on screen stale: it must not be committed.
    form.addEventListener("input", () => this.#dropPlan());
    form.addEventListener("change", () => this.#dropPlan());
    target.addEventListener("change", () => this.#showValueFor());
    cancel.addEventListener("click", () => dialog.close());
    execute.addEventListener("click", () => void this.#execute());
    dialog.addEventListener("close", () => this.#finish(null));
  }

  /**
   * Opens the form for `group`, offering `topics` (checked). Resolves with the executed
   * plan, or null when closed without one. `failed` hears of each failed call.
   */
  open(group: string, topics: readonly string[], failed: (error: unknown) => void): Promise<ResetGroupOffsetsResponse | null> {
    this.#finish(null);
    const e = this.#elements;
    this.#group = group;
    this.#failed = failed;
    e.group.textContent = group;
    e.form.reset();
    e.topics.replaceChildren(...topics.map((topic) => {
      const label = document.createElement("label");
      const box = document.createElement("input");
      box.type = "checkbox";
      box.name = "topic";
      box.value = topic;
      box.checked = true;
      label.append(box, ` ${topic}`);
      return label;
    }));
    if (topics.length === 0) e.topics.textContent = "The group has no committed offsets yet: name the topics below.";
    e.error.textContent = "";
    this.#dropPlan();
    this.#showValueFor();
    e.dialog.showModal();
    e.target.focus();
    return new Promise((resolve) => (this.#settle = resolve));
  }

  /** Shows the input the chosen target needs, if any. */
  #showValueFor(): void {
    const e = this.#elements;
    const target = e.target.value;
    e.numberRow.hidden = target !== "offset" && target !== "shift";
    e.datetimeRow.hidden = target !== "datetime";
    e.numberLabel.textContent = target === "shift" ? "Shift by (negative: back)" : "Offset";
    e.number.min = target === "shift" ? "" : "0";
  }

  #request(): Request {
    const e = this.#elements;
    const checked = [...e.topics.querySelectorAll<HTMLInputElement>("input[name=topic]:checked")].map((box) => box.value);
    const others = e.otherTopics.value.split(/[\s,]+/).filter(Boolean);
    const topics = [...new Set([...checked, ...others])];
    if (topics.length === 0) throw new Error("choose at least one topic");
    let target: Target;
    switch (e.target.value) {
      case "earliest": target = { case: "toEarliest", value: true }; break;
      case "latest": target = { case: "toLatest", value: true }; break;
      case "offset": target = { case: "toOffset", value: int64(e.number.value, "offset", false) }; break;
      case "shift": target = { case: "shiftBy", value: int64(e.number.value, "shift", true) }; break;
      case "datetime": {
        // datetime-local is the browser's local time, which is what the user read off a clock.
        const ms = new Date(e.datetime.value).getTime();
        if (!e.datetime.value || Number.isNaN(ms)) throw new Error("date and time: choose one");
        target = { case: "toDatetime", value: timestampFromMs(ms) };
        break;
      }
      default: throw new Error(`unknown target ${JSON.stringify(e.target.value)}`);
    }
    return { group: this.#group, topics, target };
  }

  async #dryRun(): Promise<void> {
    const e = this.#elements;
    let request: Request;
    try {
      request = this.#request();
    } catch (mistake) {
      e.error.textContent = mistake instanceof Error ? mistake.message : String(mistake);
      return;
    }
    const answer = await this.#call(request, false);
    if (!answer) return;
    this.#planned = request;
    const topics = new Set(answer.moves.map((m) => m.topic)).size;
    e.planSummary.textContent =
      `Dry run: ${answer.moves.length} partitions of ${topics} topic${topics === 1 ? "" : "s"} would move. Nothing is committed yet.`;
    fillTable(
      e.planTable,
      ["Topic", numHead("Partition"), numHead("Current"), numHead("New"), numHead("Change")],
      answer.moves.map((m) => {
        const change = m.currentOffset === undefined ? null : m.newOffset - m.currentOffset;
        return {
          data: { topic: m.topic, partition: String(m.partition) },
          cells: [
            cell(m.topic, "name"), num(m.partition),
            m.currentOffset === undefined ? cell("none", "num muted-cell") : num(m.currentOffset),
            num(m.newOffset),
            change === null ? cell("—", "num") : cell(change > 0n ? `+${change}` : String(change), "num"),
          ],
        };
      }),
      { empty: "No partition to move." },
    );
    e.execute.textContent = `Reset offsets of ${answer.moves.length} partitions`;
    e.execute.disabled = answer.moves.length === 0;
    e.plan.hidden = false;
    e.execute.focus();
  }

  async #execute(): Promise<void> {
    const planned = this.#planned;
    if (!planned) return;
    const answer = await this.#call(planned, true);
    if (!answer || this.#planned !== planned) return;
    if (!answer.executed) {
      this.#elements.error.textContent = "the server answered the plan without committing it (executed: false)";
      return;
    }
    this.#finish(answer);
    this.#elements.dialog.close();
  }

  /** One ResetGroupOffsets call; a failure is shown in the dialog and answers null. */
  async #call(request: Request, execute: boolean): Promise<ResetGroupOffsetsResponse | null> {
    const e = this.#elements;
    if (this.#busy) return null;
    const used = this.#session.token;
    this.#busy = true;
    e.error.textContent = "";
    e.execute.disabled = true;
    let refused = false;
    try {
      return await this.#admin.resetGroupOffsets({ ...request, execute });
    } catch (failure) {
      e.error.textContent = explain(this.#session, used, failure);
      // Committing with the same token would be refused again.
      refused = codeOf(failure) === Code.PermissionDenied;
      this.#failed(failure);
      return null;
    } finally {
      this.#busy = false;
      e.execute.disabled = this.#planned === null || refused;
    }
  }

  #dropPlan(): void {
    this.#planned = null;
    this.#elements.plan.hidden = true;
    this.#elements.planTable.replaceChildren();
  }

  #finish(done: ResetGroupOffsetsResponse | null): void {
    this.#dropPlan();
    const settle = this.#settle;
    this.#settle = null;
    settle?.(done);
  }
}

// The Groups view: the consumer groups (ListGroups, with their state), and one group
// described (DescribeGroup: state, protocol, members, and per partition the committed offset,
// the log end and the lag), refreshed every 2 s while it is on screen, with Reset offsets and
// Delete.
//
// A group can also be opened by its id: where the broker cannot list groups (the embedded
// broker has no ListGroups) the list holds only the groups the server knows of, or is an
// error on an older server, but any group can still be described.

import { Code } from "@connectrpc/connect";
import type { GroupDescription, GroupSummary } from "./gen/streamgate/v1/admin_pb";
import type { Session } from "./connection";
import type { ConfirmDialog } from "./confirm";
import { codeOf, describe } from "./errors";
import type { ResetDialog } from "./reset";
import { type AdminClient, cell, explain, fillTable, Gate, link, now, num, numHead, onTokenChange } from "./ui";
import { href, type View } from "./views";

export interface GroupsElements {
  readonly list: HTMLElement;
  readonly listTitle: HTMLElement;
  readonly filter: HTMLInputElement;
  readonly refresh: HTMLButtonElement;
  readonly openForm: HTMLFormElement;
  readonly openInput: HTMLInputElement;
  readonly status: HTMLElement;
  /** Why the list may be incomplete (`groups_unavailable`). */
  readonly listNote: HTMLElement;
  readonly error: HTMLElement;
  readonly table: HTMLTableElement;

  readonly detail: HTMLElement;
  readonly crumb: HTMLElement;
  readonly title: HTMLElement;
  /** Says whether the description is being refreshed, and when it last was. */
  readonly live: HTMLElement;
  readonly reset: HTMLButtonElement;
  readonly resetNote: HTMLElement;
  readonly remove: HTMLButtonElement;
  readonly removeNote: HTMLElement;
  readonly state: HTMLElement;
  readonly protocol: HTMLElement;
  readonly memberCount: HTMLElement;
  readonly totalLag: HTMLElement;
  readonly note: HTMLElement;
  readonly detailStatus: HTMLElement;
  readonly detailError: HTMLElement;
  readonly members: HTMLTableElement;
  readonly partitions: HTMLTableElement;
}

/** How often an open group is described again. */
const POLL_MS = 2000;
/** After a refusal, how long before asking again (the token may change meanwhile). */
const DENIED_POLL_MS = 15000;

/** A class for the state's colour: Stable, Empty, Dead and the rebalancing ones differ. */
function stateClass(state: string): string {
  const known = ["Stable", "Empty", "Dead", "PreparingRebalance", "CompletingRebalance"];
  return `state state-${known.includes(state) ? state.toLowerCase() : "unknown"}`;
}

function stateTag(state: string): HTMLElement {
  const span = document.createElement("span");
  span.className = stateClass(state);
  span.textContent = state || "Unknown";
  return span;
}

export class GroupsView implements View {
  readonly #admin: AdminClient;
  readonly #session: Session;
  readonly #elements: GroupsElements;
  readonly #confirm: ConfirmDialog;
  readonly #resetDialog: ResetDialog;
  readonly #resetGate: Gate;
  readonly #removeGate: Gate;
  #groups: GroupSummary[] = [];
  /** The group on screen, or null (the list, or another view). */
  #group: string | null = null;
  #last: GroupDescription | null = null;
  /** The next refresh, and the one in flight: both stop when the group leaves the screen. */
  #timer: ReturnType<typeof setTimeout> | undefined;
  #inFlight: AbortController | null = null;
  /** Refusals per group and action, in the server's words, until the token changes. */
  readonly #denied = new Map<string, string>();
  #notice = "";

  constructor(admin: AdminClient, session: Session, elements: GroupsElements, confirm: ConfirmDialog, resetDialog: ResetDialog) {
    this.#admin = admin;
    this.#session = session;
    this.#elements = elements;
    this.#confirm = confirm;
    this.#resetDialog = resetDialog;
    this.#resetGate = new Gate(elements.reset, elements.resetNote);
    this.#removeGate = new Gate(elements.remove, elements.removeNote);
  }

  start(): void {
    const e = this.#elements;
    e.filter.addEventListener("input", () => this.#renderList());
    e.refresh.addEventListener("click", () => void this.#loadList());
    e.openForm.addEventListener("submit", (event) => {
      event.preventDefault();
      const id = e.openInput.value.trim();
      if (id) window.location.hash = href("groups", id);
    });
    e.reset.addEventListener("click", () => void this.#reset());
    e.remove.addEventListener("click", () => void this.#remove());
    // A hidden tab polls nothing; back in view, the group is described at once.
    document.addEventListener("visibilitychange", () => {
      if (document.hidden) this.#stop("paused while the tab is hidden");
      else if (this.#group) void this.#tick();
    });
    onTokenChange(this.#session, () => {
      this.#denied.clear();
      if (this.#group) {
        this.#applyGates(this.#group);
        void this.#tick();
      } else if (!e.list.hidden) {
        void this.#loadList();
      }
    });
  }

  show(item: string | null): HTMLElement {
    const e = this.#elements;
    this.#stop("");
    this.#group = item;
    e.list.hidden = item !== null;
    e.detail.hidden = item === null;
    if (item === null) {
      void this.#loadList();
      return e.listTitle;
    }
    this.#openGroup(item);
    return e.title;
  }

  hide(): void {
    this.#group = null;
    this.#stop("");
    this.#elements.list.hidden = true;
    this.#elements.detail.hidden = true;
  }

  // ------------------------------------------------------------ the list

  async #loadList(): Promise<void> {
    const { status, error } = this.#elements;
    const used = this.#session.token;
    status.textContent = "loading…";
    try {
      const answer = await this.#admin.listGroups({});
      this.#groups = answer.groups;
      // The broker could not list them: say why the list may be short, as the server does.
      this.#elements.listNote.hidden = answer.groupsUnavailable === "";
      this.#elements.listNote.textContent = answer.groupsUnavailable ? `Groups unavailable: ${answer.groupsUnavailable}` : "";
      error.textContent = "";
      this.#renderList();
    } catch (failure) {
      this.#groups = [];
      this.#elements.listNote.hidden = true;
      this.#renderList();
      status.textContent = this.#notice;
      this.#notice = "";
      error.textContent = `ListGroups failed: ${explain(this.#session, used, failure)}`;
    }
  }

  #renderList(): void {
    const { filter, status, table } = this.#elements;
    const wanted = filter.value.trim().toLowerCase();
    const shown = this.#groups.filter((g) => g.group.toLowerCase().includes(wanted));
    status.textContent = (this.#notice ? `${this.#notice} · ` : "") +
      `${shown.length} of ${this.#groups.length} groups · updated ${now()}`;
    this.#notice = "";
    fillTable(
      table,
      ["Group", "State", "Protocol type"],
      shown.map((g) => ({
        data: { group: g.group },
        cells: [cell(link(g.group, href("groups", g.group)), "name"), cell(stateTag(g.state)), cell(g.protocolType || "—")],
      })),
      { empty: this.#groups.length ? "No group matches the filter." : "No groups listed." },
    );
  }

  // ------------------------------------------------------------ one group, live

  #openGroup(group: string): void {
    const e = this.#elements;
    e.crumb.textContent = group;
    e.title.textContent = group;
    for (const field of [e.state, e.protocol, e.memberCount, e.totalLag]) field.textContent = "…";
    e.note.hidden = true;
    e.live.textContent = "loading…";
    e.detailStatus.textContent = "";
    e.detailError.textContent = "";
    e.members.replaceChildren();
    e.partitions.replaceChildren();
    this.#last = null;
    this.#applyGates(group);
    void this.#tick();
  }

  #applyGates(group: string): void {
    for (const [action, gate] of [["reset", this.#resetGate], ["delete", this.#removeGate]] as const) {
      const denied = this.#denied.get(`${action}\u0000${group}`);
      if (denied === undefined) gate.allow();
      else gate.deny(denied);
    }
  }

  /** Stops refreshing; `why` (if any) is shown where the refresh time was. */
  #stop(why: string): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#inFlight?.abort();
    this.#inFlight = null;
    if (why) this.#elements.live.textContent = why;
    this.#elements.live.classList.remove("on");
  }

  /** Describes the group now, then again every POLL_MS while it is on screen. */
  async #tick(): Promise<void> {
    const group = this.#group;
    if (group === null || document.hidden) return;
    this.#stop("");
    const abort = new AbortController();
    this.#inFlight = abort;
    const e = this.#elements;
    const used = this.#session.token;
    let next = POLL_MS;
    try {
      const answer = await this.#admin.describeGroup({ group }, { signal: abort.signal });
      if (abort.signal.aborted) return;
      if (!answer.group) throw new Error("the server answered no group");
      e.detailError.textContent = "";
      this.#render(answer.group);
      e.live.textContent = `live · updated ${now()} · every ${POLL_MS / 1000} s`;
      e.live.classList.add("on");
    } catch (failure) {
      if (abort.signal.aborted) return;
      e.detailError.textContent = `DescribeGroup failed: ${explain(this.#session, used, failure)}`;
      const code = codeOf(failure);
      // Asking again cannot help without a new token (which restarts this) or a new server.
      if (code === Code.Unauthenticated || code === Code.Unimplemented) {
        this.#stop("not refreshing");
        return;
      }
      if (code === Code.PermissionDenied) next = DENIED_POLL_MS;
      e.live.textContent = `retrying every ${next / 1000} s`;
    } finally {
      if (this.#inFlight === abort) this.#inFlight = null;
    }
    if (this.#group === group && !document.hidden) this.#timer = setTimeout(() => void this.#tick(), next);
  }

  #render(group: GroupDescription): void {
    const e = this.#elements;
    this.#last = group;
    e.state.replaceChildren(stateTag(group.state));
    e.protocol.textContent = [group.protocolType, group.protocol].filter(Boolean).join(" · ") || "—";
    e.memberCount.textContent = String(group.members.length);
    e.totalLag.textContent = group.totalLag.toLocaleString("en-US");
    e.totalLag.dataset.value = String(group.totalLag);
    e.note.hidden = group.membersUnavailable === "";
    e.note.textContent = group.membersUnavailable ? `Members unavailable: ${group.membersUnavailable}` : "";
    fillTable(
      e.members,
      ["Member id", "Client id", "Host", "Assignment"],
      group.members.map((m) => ({
        data: { member: m.memberId },
        cells: [
          cell(m.memberId, "id"), cell(m.clientId || "—"), cell(m.host || "—"),
          cell(m.assignment.map((a) => `${a.topic}: ${a.partitions.join(", ")}`).join("; ") || "none"),
        ],
      })),
      { empty: "No active members." },
    );
    fillTable(
      e.partitions,
      // Lag before the offsets: it is what one looks for, and on a phone it stays in view.
      ["Topic", numHead("Partition"), numHead("Lag"), numHead("Committed"), numHead("Log end"), "Consumer"],
      group.partitions.map((p) => ({
        data: { topic: p.topic, partition: String(p.partition), lag: String(p.lag) },
        ...(p.lag > 0n ? { className: "lagging" } : {}),
        cells: [
          cell(p.topic, "name"), num(p.partition), num(p.lag),
          p.committedOffset === undefined ? cell("none", "num muted-cell") : num(p.committedOffset),
          num(p.logEndOffset),
          cell(p.clientId ? `${p.clientId}${p.host ? ` @ ${p.host}` : ""}` : p.memberId || "—"),
        ],
      })),
      {
        empty: "No committed offsets and no assigned partitions.",
        footer: [cell("Total lag"), cell(""), num(group.totalLag), cell(""), cell(""), cell("")],
      },
    );
  }

  // ------------------------------------------------------------ actions

  async #reset(): Promise<void> {
    const group = this.#group;
    if (!group) return;
    const topics = [...new Set((this.#last?.partitions ?? []).map((p) => p.topic))];
    const done = await this.#resetDialog.open(group, topics, (failure) => this.#refused("reset", group, this.#resetGate, failure));
    if (done && this.#group === group) {
      this.#elements.detailStatus.textContent = `offsets of ${done.moves.length} partitions reset at ${now()}`;
      void this.#tick();
    }
  }

  async #remove(): Promise<void> {
    const group = this.#group;
    if (!group) return;
    const deleted = await this.#confirm.ask({
      title: "Delete group",
      message: `Group ${group} and its committed offsets will be deleted: its consumers start again from their reset policy. This cannot be undone.`,
      name: group,
      action: "Delete group",
      run: async () => { await this.#admin.deleteGroup({ group }); },
      failed: (failure) => this.#refused("delete", group, this.#removeGate, failure),
    });
    if (deleted) {
      this.#notice = `group ${group} deleted`;
      window.location.hash = href("groups");
    }
  }

  #refused(action: "reset" | "delete", group: string, gate: Gate, failure: unknown): void {
    if (gate.refused(failure)) this.#denied.set(`${action}\u0000${group}`, describe(failure));
  }
}

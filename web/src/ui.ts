// Small helpers the Topics and Groups views share: tables built from rows of cells, number
// formatting, the words for a failed call, and the controls a PERMISSION_DENIED disables.

import { Code, type Client } from "@connectrpc/connect";
import type { AdminService } from "./gen/streamgate/v1/admin_pb";
import type { Session } from "./connection";
import { codeOf, describe, rawMessageOf } from "./errors";

/** What the admin views call. */
export type AdminClient = Client<typeof AdminService>;

/** A table cell: its text, and optionally a class (e.g. `num` to right-align numbers). */
export interface Cell {
  readonly text: string | Node;
  readonly className?: string;
}

export function cell(text: string | Node, className?: string): Cell {
  return className === undefined ? { text } : { text, className };
}

/** A number cell, right-aligned with tabular figures. */
export function num(value: bigint | number): Cell {
  return { text: String(value), className: "num" };
}

/** The header of a column of numbers, aligned with them. */
export function numHead(text: string): Cell {
  return { text, className: "num" };
}

/**
 * Fills `table` with a header and rows. Each row may carry data attributes, so that tests and
 * styles can find a row by what it shows rather than by position.
 */
export function fillTable(
  table: HTMLTableElement,
  headers: readonly (string | Cell)[],
  rows: readonly { cells: readonly Cell[]; data?: Record<string, string>; className?: string }[],
  options: { footer?: readonly Cell[]; empty?: string } = {},
): void {
  const head = table.createTHead();
  head.replaceChildren(rowOf("th", headers.map((h) => (typeof h === "string" ? cell(h) : h)), "col"));
  const body = document.createElement("tbody");
  if (rows.length === 0 && options.empty) {
    // Said in the table itself, so an empty answer does not look like one still loading.
    const td = document.createElement("td");
    td.colSpan = headers.length;
    td.className = "empty";
    td.textContent = options.empty;
    body.insertRow().append(td);
  }
  for (const row of rows) {
    const tr = rowOf("td", row.cells);
    if (row.className) tr.className = row.className;
    for (const [key, value] of Object.entries(row.data ?? {})) tr.dataset[key] = value;
    body.append(tr);
  }
  table.tBodies[0]?.remove();
  table.tFoot?.remove();
  table.append(body);
  if (options.footer) table.createTFoot().append(rowOf("td", options.footer));
}

function rowOf(tag: "th" | "td", cells: readonly Cell[], scope?: string): HTMLTableRowElement {
  const tr = document.createElement("tr");
  for (const c of cells) {
    const td = document.createElement(tag);
    if (scope) td.setAttribute("scope", scope);
    if (c.className) td.className = c.className;
    td.append(c.text);
    tr.append(td);
  }
  return tr;
}

/** A link to a route of the page (`#topics/<name>`), keyboard-reachable like any link. */
export function link(text: string, href: string): HTMLAnchorElement {
  const a = document.createElement("a");
  a.href = href;
  a.textContent = text;
  return a;
}

/** The time of day now, for "updated …" lines. */
export function now(): string {
  return new Date().toLocaleTimeString();
}

/**
 * The words for a failed call made with the token `used`. UNAUTHENTICATED also brings up the
 * sign-in form, as for the other panels; the server's message is always kept.
 */
export function explain(session: Session, used: string | null, error: unknown): string {
  if (codeOf(error) === Code.Unauthenticated) {
    session.askForToken(used, rawMessageOf(error));
    return `sign in first (${describe(error)})`;
  }
  return describe(error);
}

/** Calls `callback` every time the token changes (sign in, sign out), for the page's life. */
export function onTokenChange(session: Session, callback: () => void): void {
  void (async () => {
    for (;;) {
      await session.changed;
      callback();
    }
  })();
}

/**
 * A control the server may refuse: a PERMISSION_DENIED answer disables it and shows the
 * server's message (which names the missing permission) next to it, since trying again with
 * the same token cannot succeed. Signing in with another token enables it again.
 */
export class Gate {
  readonly #control: HTMLButtonElement;
  readonly #note: HTMLElement;

  constructor(control: HTMLButtonElement, note: HTMLElement) {
    this.#control = control;
    this.#note = note;
    control.setAttribute("aria-describedby", note.id);
  }

  /** Whether `error` was a refusal; if so, the control is now disabled with its message. */
  refused(error: unknown): boolean {
    if (codeOf(error) !== Code.PermissionDenied) return false;
    this.deny(describe(error));
    return true;
  }

  deny(text: string): void {
    this.#control.disabled = true;
    this.#note.textContent = text;
  }

  allow(): void {
    this.#control.disabled = false;
    this.#note.textContent = "";
  }
}

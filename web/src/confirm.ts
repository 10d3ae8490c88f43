// The confirmation of a deletion: a modal dialog where the name of what goes must be typed
// before the button does anything (as Kafka UI asks), because a topic or a group's offsets
// cannot be brought back. One dialog serves topics and groups.
//
// The call runs while the dialog stays open: a failure is shown inside it, in the server's
// words, where the user is looking, and the dialog stays until they cancel.

import { Code } from "@connectrpc/connect";
import type { Session } from "./connection";
import { codeOf } from "./errors";
import { explain } from "./ui";

export interface ConfirmElements {
  readonly dialog: HTMLDialogElement;
  readonly form: HTMLFormElement;
  readonly title: HTMLElement;
  readonly message: HTMLElement;
  /** The label of the input, saying what to type. */
  readonly prompt: HTMLElement;
  readonly input: HTMLInputElement;
  readonly confirm: HTMLButtonElement;
  readonly cancel: HTMLButtonElement;
  readonly error: HTMLElement;
}

export interface ConfirmRequest {
  /** "Delete topic". */
  readonly title: string;
  /** What happens, in a sentence. */
  readonly message: string;
  /** What must be typed. */
  readonly name: string;
  /** The confirming button's label. */
  readonly action: string;
  /** The call; its failure is shown in the dialog. */
  readonly run: () => Promise<void>;
  /** Told of a failure too (e.g. to disable the control that opened the dialog). */
  readonly failed?: (error: unknown) => void;
}

export class ConfirmDialog {
  readonly #session: Session;
  readonly #elements: ConfirmElements;
  #request: ConfirmRequest | null = null;
  #busy = false;
  /** Settles the promise of ask(): whether the call succeeded. */
  #settle: ((done: boolean) => void) | null = null;

  constructor(session: Session, elements: ConfirmElements) {
    this.#session = session;
    this.#elements = elements;
    const { dialog, form, input, cancel } = elements;
    input.addEventListener("input", () => this.#update());
    cancel.addEventListener("click", () => dialog.close());
    // Escape and Cancel both close the dialog; either way the deletion did not happen.
    dialog.addEventListener("close", () => this.#finish(false));
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      void this.#run();
    });
  }

  /** Opens the dialog; resolves true once `run` succeeded, false when cancelled. */
  ask(request: ConfirmRequest): Promise<boolean> {
    this.#finish(false);
    const { dialog, title, message, prompt, input, confirm, error } = this.#elements;
    this.#request = request;
    title.textContent = request.title;
    message.textContent = request.message;
    prompt.textContent = `Type ${request.name} to confirm`;
    input.value = "";
    confirm.textContent = request.action;
    error.textContent = "";
    this.#update();
    dialog.showModal();
    input.focus();
    return new Promise((resolve) => (this.#settle = resolve));
  }

  #update(): void {
    const request = this.#request;
    this.#elements.confirm.disabled = this.#busy || !request || this.#elements.input.value !== request.name;
  }

  async #run(): Promise<void> {
    const request = this.#request;
    if (!request || this.#busy || this.#elements.input.value !== request.name) return;
    const used = this.#session.token;
    this.#busy = true;
    this.#update();
    this.#elements.error.textContent = "";
    try {
      await request.run();
      this.#finish(true);
      this.#elements.dialog.close();
    } catch (failure) {
      if (this.#request !== request) return; // cancelled meanwhile
      this.#elements.error.textContent = explain(this.#session, used, failure);
      request.failed?.(failure);
      this.#busy = false;
      this.#update();
      // Asking again with the same token cannot be allowed.
      if (codeOf(failure) === Code.PermissionDenied) this.#elements.confirm.disabled = true;
    }
  }

  #finish(done: boolean): void {
    this.#busy = false;
    this.#request = null;
    const settle = this.#settle;
    this.#settle = null;
    settle?.(done);
  }
}

// The supplier panel: the status of the event supplier, polled every 2 s with an empty
// ControlSupplier, and its controls (Start, Stop, rate and pages).

import { Code, type Client } from "@connectrpc/connect";
import type { EventGateway } from "./gen/streamgate/v1/gateway_pb";
import { SupplierAction, type SupplierStatus } from "./gen/streamgate/v1/supplier_pb";
import type { Session } from "./connection";
import { codeOf, describe, rawMessageOf } from "./errors";

/** What the supplier panel calls. */
export type SupplierClient = Pick<Client<typeof EventGateway>, "controlSupplier">;

type ControlRequest = Parameters<SupplierClient["controlSupplier"]>[0];

export interface SupplierElements {
  readonly status: HTMLElement;
  readonly error: HTMLElement;
  readonly form: HTMLFormElement;
  readonly rate: HTMLInputElement;
  readonly pages: HTMLInputElement;
  readonly start: HTMLButtonElement;
  readonly stop: HTMLButtonElement;
}

export class SupplierPanel {
  readonly #client: SupplierClient;
  readonly #session: Session;
  readonly #elements: SupplierElements;
  /** The form is filled from the first status only: later ones must not overwrite typing. */
  #formFilled = false;

  constructor(client: SupplierClient, session: Session, elements: SupplierElements) {
    this.#client = client;
    this.#session = session;
    this.#elements = elements;
  }

  /** Wires the controls and polls the status, for as long as the page lives. */
  start(): void {
    const { form, rate, pages, start, stop } = this.#elements;
    start.addEventListener("click", () => void this.#control({ action: SupplierAction.START }));
    stop.addEventListener("click", () => void this.#control({ action: SupplierAction.STOP }));
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const ratePerSecond = Number(rate.value);
      const values = pages.value.split(",").map((p) => p.trim()).filter(Boolean);
      void this.#control({ settings: { ratePerSecond, pages: { values } } });
    });
    void this.#poll();
  }

  #render(status: SupplierStatus): void {
    const settings = status.settings;
    const rate = settings?.ratePerSecond ?? 0;
    const line = this.#elements.status;
    line.textContent =
      `${status.running ? "running" : "stopped"} · ${rate} events/s` +
      (status.running ? ` (achieved ${status.achievedRatePerSecond.toFixed(1)}/s)` : "") +
      ` · pages ${settings?.pages.join(",") ?? "?"} · sent ${status.eventsSent}` +
      (status.errors > 0n ? ` · ${status.errors} errors` : "");
    line.dataset.running = String(status.running);
    if (!this.#formFilled && settings) {
      this.#elements.rate.value = String(rate);
      this.#elements.pages.value = settings.pages.join(",");
      this.#formFilled = true;
    }
  }

  async #control(request: ControlRequest): Promise<void> {
    const used = this.#session.token;
    const error = this.#elements.error;
    try {
      this.#render(await this.#client.controlSupplier(request));
      error.textContent = "";
    } catch (failure) {
      if (codeOf(failure) === Code.Unauthenticated) {
        error.textContent = "sign in first";
        this.#session.askForToken(used, rawMessageOf(failure));
      } else {
        error.textContent = describe(failure);
      }
    }
  }

  async #poll(): Promise<void> {
    const session = this.#session;
    const { status, error } = this.#elements;
    let denied = false; // the supplier error shown is this poll's (refused or not allowed)
    for (;;) {
      const used = session.token;
      try {
        this.#render(await this.#client.controlSupplier({}, { signal: session.signal }));
        if (denied) error.textContent = "";
        denied = false;
      } catch (failure) {
        const code = codeOf(failure);
        if (code === Code.Unauthenticated || code === Code.PermissionDenied) {
          denied = true;
          if (code === Code.PermissionDenied) status.textContent = "status not allowed";
          await session.afterFailure(failure, used, (text) => { if (text) error.textContent = text; }, 2000);
          continue;
        }
        // Other errors: the connection indicator says it; the next poll retries.
      }
      await session.pause(2000);
    }
  }
}

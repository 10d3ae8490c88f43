// Connection and auth: the bearer token (sessionStorage, this tab only), the interceptor that
// sends it, the sign-in form and Sign out, the connection indicator, and what a reconnecting
// loop does after a failed call.
//
// A server run with --auth-file (or --jwt-key) answers UNAUTHENTICATED without a bearer token:
// the page then asks for one, keeps it in sessionStorage, sends it as
// `authorization: Bearer <token>` on every call and restarts its streams with it.
// PERMISSION_DENIED is shown in the panel concerned, as what it is.

import { Code, type Interceptor } from "@connectrpc/connect";
import { codeOf, describe, rawMessageOf } from "./errors";
import { deferred, sleep } from "./signals";

// ---------------------------------------------------------------- the token

/** sessionStorage key of the bearer token: the tab's session only, never localStorage. */
const TOKEN_KEY = "streamgate.token";

/**
 * The token kept for this tab. `storage` is called on each use because reaching
 * sessionStorage itself throws where storage is disabled: the token then lives in this
 * page only.
 */
export class TokenStore {
  readonly #storage: () => Storage;

  constructor(storage: () => Storage) {
    this.#storage = storage;
  }

  load(): string | null {
    try {
      return this.#storage().getItem(TOKEN_KEY);
    } catch {
      return null; // storage disabled: the token lives in this page only
    }
  }

  save(token: string): void {
    try {
      this.#storage().setItem(TOKEN_KEY, token);
    } catch {
      // storage disabled: the token lives in this page only
    }
  }

  forget(): void {
    try {
      this.#storage().removeItem(TOKEN_KEY);
    } catch {
      // storage disabled: nothing kept
    }
  }
}

// ---------------------------------------------------------------- connection indicator

export interface IndicatorElements {
  /** The indicator: its class is `up` or `down`. */
  readonly root: HTMLElement;
  /** Its text. */
  readonly text: HTMLElement;
}

/** The connection indicator in the header, fed by the page-count stream. */
export class ConnectionIndicator {
  readonly #elements: IndicatorElements;
  /** When the last message came; 0 while none is expected (so no "no data" warning). */
  #lastMessageAt = 0;

  constructor(elements: IndicatorElements) {
    this.#elements = elements;
  }

  show(up: boolean, text: string): void {
    this.#elements.root.classList.toggle("up", up);
    this.#elements.root.classList.toggle("down", !up);
    this.#elements.text.textContent = text;
  }

  /** A message came: the stream is live. */
  live(): void {
    this.#lastMessageAt = Date.now();
    this.show(true, "live");
  }

  /** No message is expected for now (sign-in needed, page counts not allowed). */
  idle(): void {
    this.#lastMessageAt = 0;
  }

  /** Run every second. */
  check(): void {
    // No tick for a while although the stream looked fine: say so.
    if (this.#lastMessageAt && Date.now() - this.#lastMessageAt > 5000) this.show(false, "no data for 5 s…");
  }
}

// ---------------------------------------------------------------- session: sign in, sign out

export interface SignInElements {
  /** The sign-in card, hidden while not needed. */
  readonly signin: HTMLElement;
  readonly form: HTMLFormElement;
  readonly token: HTMLInputElement;
  readonly error: HTMLElement;
  readonly signout: HTMLButtonElement;
}

/** Shows a panel's error text ("" clears it). */
export type Show = (text: string) => void;

/**
 * The token in use, the sign-in form, and the restarts of the streams when the token changes.
 *
 * Streams wait on `changed` while the server wants a token they do not have; it resolves when
 * the token changes (sign in, sign out). `signal` is aborted then, so running streams restart
 * with the new token at once.
 */
export class Session {
  readonly #store: TokenStore;
  readonly #indicator: ConnectionIndicator;
  readonly #elements: SignInElements;
  #token: string | null;
  #restart = new AbortController();
  #changed = deferred();

  constructor(store: TokenStore, indicator: ConnectionIndicator, elements: SignInElements) {
    this.#store = store;
    this.#indicator = indicator;
    this.#elements = elements;
    this.#token = store.load();
  }

  /** The token calls are made with now, or null. */
  get token(): string | null {
    return this.#token;
  }

  /** Aborted when the token changes: a stream started with it restarts. */
  get signal(): AbortSignal {
    return this.#restart.signal;
  }

  /** Resolves when the token changes. */
  get changed(): Promise<void> {
    return this.#changed.promise;
  }

  /** Sends the token, when there is one, on every call. */
  readonly bearer: Interceptor = (next) => (request) => {
    if (this.#token) request.header.set("authorization", `Bearer ${this.#token}`);
    return next(request);
  };

  /** Wires the sign-in form and Sign out, and shows the session as it is. */
  start(): void {
    this.#elements.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.#signIn();
    });
    this.#elements.signout.addEventListener("click", () => this.#signOut());
    this.#render();
  }

  /** Resolves after `ms`, or earlier when the token changes. */
  pause(ms: number): Promise<void> {
    return Promise.race([sleep(ms), this.changed]);
  }

  /**
   * The server answered UNAUTHENTICATED to a call made with `used` (the token then, or null).
   * Forgets a refused token and shows the form; `refusal` says why, for a refused token.
   */
  askForToken(used: string | null, refusal: string): void {
    if (used !== this.#token) return; // a newer token is already in use
    if (this.#token) {
      this.#token = null;
      this.#store.forget();
      this.#elements.error.textContent = `token refused${refusal ? ` (${refusal})` : ""}`;
    }
    this.#indicator.idle();
    this.#indicator.show(false, "sign-in needed");
    this.#render();
    if (this.#elements.signin.hidden) {
      this.#elements.signin.hidden = false;
      this.#elements.token.focus();
    }
  }

  /**
   * What a loop does after a failed call made with `used`: for UNAUTHENTICATED, ask for a token
   * and wait until there is a new one; for PERMISSION_DENIED, `show` it and try again later (or
   * with another token); otherwise `show` the error and wait `backoff` ms. Returns whether the
   * failure was about the token or a permission.
   */
  async afterFailure(error: unknown, used: string | null, show: Show, backoff: number): Promise<boolean> {
    const code = codeOf(error);
    if (code === Code.Unauthenticated) {
      show("");
      this.askForToken(used, rawMessageOf(error));
      if (used === this.#token || this.#token === null) await this.changed;
      return true;
    }
    if (code === Code.PermissionDenied) {
      show(describe(error));
      await this.pause(15000);
      return true;
    }
    show(describe(error));
    await this.pause(backoff);
    return false;
  }

  #signIn(): void {
    const input = this.#elements.token;
    const value = input.value.trim();
    // A header value: printable ASCII, no spaces (what a bearer token is).
    if (!/^[\x21-\x7e]+$/.test(value)) {
      this.#elements.error.textContent = "a token is printable ASCII without spaces";
      input.focus();
      return;
    }
    this.#token = value;
    this.#store.save(value);
    input.value = "";
    this.#elements.error.textContent = "";
    this.#elements.signin.hidden = true;
    this.#indicator.show(false, "signing in…");
    this.#render();
    this.#tokenChanged();
  }

  #signOut(): void {
    this.#token = null;
    this.#store.forget();
    this.#elements.error.textContent = "";
    this.#render();
    this.#tokenChanged();
  }

  #render(): void {
    this.#elements.signout.hidden = !this.#token;
  }

  #tokenChanged(): void {
    this.#restart.abort();
    this.#restart = new AbortController();
    const previous = this.#changed;
    this.#changed = deferred();
    previous.resolve();
  }
}

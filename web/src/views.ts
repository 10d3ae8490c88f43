// Navigation between the page's views: Live (chart, supplier, tail), Topics and Groups.
//
// The view is in the URL's fragment (`#topics`, `#topics/<name>`, `#groups/<id>`), so the
// nav bar is plain links: keyboard-reachable, the back button works, and a topic or group
// can be linked to. Nothing is fetched for a view until it is shown.

/** The views, in nav order. */
export const VIEW_NAMES = ["live", "topics", "groups"] as const;
export type ViewName = (typeof VIEW_NAMES)[number];

export interface Route {
  readonly view: ViewName;
  /** The topic or group opened in the view, if any. */
  readonly item: string | null;
}

function isViewName(value: string): value is ViewName {
  return (VIEW_NAMES as readonly string[]).includes(value);
}

/** The route of a fragment: `#view` or `#view/<item, URI-encoded>`; anything else is Live. */
export function parseRoute(hash: string): Route {
  const text = hash.replace(/^#/, "");
  const slash = text.indexOf("/");
  const view = slash < 0 ? text : text.slice(0, slash);
  if (!isViewName(view)) return { view: "live", item: null };
  if (slash < 0) return { view, item: null };
  try {
    const item = decodeURIComponent(text.slice(slash + 1));
    return { view, item: item === "" ? null : item };
  } catch {
    return { view, item: null }; // a malformed escape: the view's list
  }
}

/** The fragment of a route (what links point at). */
export function href(view: ViewName, item?: string): string {
  return item === undefined ? `#${view}` : `#${view}/${encodeURIComponent(item)}`;
}

/** A view the navigation shows and hides. */
export interface View {
  /** Shown, with this item open (null: its list). Returns the heading to focus. */
  show(item: string | null): HTMLElement | null;
  /** Hidden: stop whatever only matters while it is seen (polling). */
  hide(): void;
}

export interface NavigationElements {
  /** The nav bar's links, by view. */
  readonly links: Record<ViewName, HTMLAnchorElement>;
  /** The views' containers, by view. */
  readonly sections: Record<ViewName, HTMLElement>;
}

export class Navigation {
  readonly #elements: NavigationElements;
  readonly #views: Record<ViewName, View>;
  #current: ViewName | null = null;

  constructor(elements: NavigationElements, views: Record<ViewName, View>) {
    this.#elements = elements;
    this.#views = views;
  }

  /** Shows the view in the URL, and follows the URL from then on. */
  start(): void {
    window.addEventListener("hashchange", () => this.#apply(true));
    this.#apply(false);
  }

  #apply(moveFocus: boolean): void {
    const route = parseRoute(window.location.hash);
    if (this.#current && this.#current !== route.view) this.#views[this.#current].hide();
    for (const name of VIEW_NAMES) {
      const active = name === route.view;
      this.#elements.sections[name].hidden = !active;
      if (active) this.#elements.links[name].setAttribute("aria-current", "page");
      else this.#elements.links[name].removeAttribute("aria-current");
    }
    this.#current = route.view;
    const heading = this.#views[route.view].show(route.item);
    // After a click in the nav bar or on a row, a keyboard or screen-reader user continues at
    // the new content, not at the link that was followed. Not on load: nothing was followed.
    if (moveFocus) heading?.focus();
  }
}

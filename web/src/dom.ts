// Looking up the page's elements once, in main.ts, with their types checked: a missing or
// different element (index.html and the code out of step) fails at start with a clear error
// instead of a null much later.

/** An element class such as HTMLButtonElement, as `instanceof` needs it. */
export type ElementClass<T extends Element> = abstract new () => T;

function what(element: Element | null): string {
  return element ? `a <${element.tagName.toLowerCase()}>` : "missing";
}

/** The element of `document` with this id, which must be a `type`. */
export function byId<T extends HTMLElement>(document: Document, id: string, type: ElementClass<T>): T {
  const element = document.getElementById(id);
  if (!(element instanceof type)) throw new Error(`dashboard: #${id} is ${what(element)}, not a ${type.name}`);
  return element;
}

/** The first element in `parent` matching `selector`, which must be a `type`. */
export function inside<T extends Element>(parent: ParentNode, selector: string, type: ElementClass<T>): T {
  const element = parent.querySelector(selector);
  if (!(element instanceof type)) throw new Error(`dashboard: ${selector} is ${what(element)}, not a ${type.name}`);
  return element;
}

/** Every element in `parent` matching `selector` (at least one), each a `type`. */
export function allInside<T extends Element>(parent: ParentNode, selector: string, type: ElementClass<T>): T[] {
  const elements = [...parent.querySelectorAll(selector)];
  if (elements.length === 0) throw new Error(`dashboard: nothing matches ${selector}`);
  return elements.map((element) => {
    if (!(element instanceof type)) throw new Error(`dashboard: a ${selector} is ${what(element)}, not a ${type.name}`);
    return element;
  });
}

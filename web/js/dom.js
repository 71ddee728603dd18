// @ts-check
/**
 * Building DOM without HTML strings: text goes in as text nodes, so a name
 * or a reason typed by a user can never become markup.
 */

/** @typedef {Node | string | null | undefined | false} Child */

/**
 * `h('p', {class: 'muted'}, 'text', child)`. Attributes are set with
 * setAttribute; `true` sets an empty attribute, false/null/undefined none.
 * Event handler attributes are refused: attach listeners in code.
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {Record<string, string | number | boolean | null | undefined>} [attrs]
 * @param {...Child} children
 * @returns {HTMLElementTagNameMap[K]}
 */
export function h(tag, attrs = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (name.toLowerCase().startsWith('on')) throw new Error(`h(): no inline handlers (${name})`);
    if (value === undefined || value === null || value === false) continue;
    element.setAttribute(name, value === true ? '' : String(value));
  }
  append(element, children);
  return element;
}

/**
 * @param {Element} parent
 * @param {Child[]} children
 */
export function append(parent, children) {
  for (const child of children) {
    if (child !== null && child !== undefined && child !== false) parent.append(child);
  }
}

/**
 * Replaces the content of `parent`.
 * @param {Element} parent
 * @param {...Child} children
 */
export function replace(parent, ...children) {
  parent.replaceChildren();
  append(parent, children);
}

/**
 * The element with this id, checked to be of the expected kind, so a
 * renamed id fails loudly at start instead of later with `null`.
 * @template {Element} T
 * @param {string} id
 * @param {{new (): T, prototype: T}} type
 * @returns {T}
 */
export function byId(id, type) {
  const element = document.getElementById(id);
  if (!(element instanceof type)) throw new Error(`#${id} is missing or not a ${type.name}`);
  return element;
}

/** @param {number} ms */
export function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

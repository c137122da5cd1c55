/** A small element builder. Text always goes in as text nodes, never as HTML: message text
 * comes from templates over user attributes and event properties, which a user can set. */
export type Child = Node | string | null | undefined | false;

export function h<K extends keyof HTMLElementTagNameMap>(
  doc: Document,
  tag: K,
  attrs: Record<string, string | undefined> = {},
  children: Child[] = [],
): HTMLElementTagNameMap[K] {
  const el = doc.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value !== undefined) el.setAttribute(name, value);
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    el.append(typeof child === "string" ? doc.createTextNode(child) : child);
  }
  return el;
}

/** An address safe to load or open: http(s) only (plus data: images for `img`), resolved
 * against the page, so a `javascript:` target in a campaign cannot run script. */
export function safeUrl(url: string, doc: Document, opts: { image?: boolean } = {}): string | undefined {
  if (!url) return undefined;
  try {
    const parsed = new URL(url, doc.baseURI);
    if (parsed.protocol === "https:" || parsed.protocol === "http:") return parsed.href;
    if (opts.image && parsed.protocol === "data:" && /^data:image\//i.test(url)) return url;
  } catch {
    // Not an address at all.
  }
  return undefined;
}

let counter = 0;
/** Ids for aria-labelledby and friends, unique in the page. */
export function uid(prefix: string): string {
  counter += 1;
  return `${prefix}-${counter}`;
}

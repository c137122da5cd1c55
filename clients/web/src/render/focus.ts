const FOCUSABLE = [
  "a[href]",
  "button:not([disabled])",
  "input:not([disabled]):not([type=hidden])",
  "select:not([disabled])",
  "textarea:not([disabled])",
  "[tabindex]:not([tabindex='-1'])",
].join(",");

export function focusables(container: HTMLElement): HTMLElement[] {
  return Array.from(container.querySelectorAll<HTMLElement>(FOCUSABLE)).filter((el) => !el.hidden && !el.closest("[hidden]"));
}

/**
 * Keeps keyboard focus inside `container` (a modal dialog): Tab past the last control comes
 * back to the first, Shift+Tab before the first goes to the last, and focus that lands
 * outside (a click on the page behind) is brought back. Focus moves into the dialog now and
 * returns to where it was when the trap is released.
 */
export function trapFocus(container: HTMLElement, initial?: HTMLElement | null): () => void {
  const doc = container.ownerDocument;
  const previous = doc.activeElement as HTMLElement | null;

  const onKeyDown = (event: KeyboardEvent) => {
    if (event.key !== "Tab") return;
    const items = focusables(container);
    if (items.length === 0) {
      event.preventDefault();
      container.focus();
      return;
    }
    const first = items[0];
    const last = items[items.length - 1];
    const active = doc.activeElement;
    if (event.shiftKey && (active === first || !container.contains(active))) {
      event.preventDefault();
      last.focus();
    } else if (!event.shiftKey && (active === last || !container.contains(active))) {
      event.preventDefault();
      first.focus();
    }
  };
  const onFocusIn = (event: FocusEvent) => {
    if (event.target instanceof Node && !container.contains(event.target)) {
      (focusables(container)[0] ?? container).focus();
    }
  };
  doc.addEventListener("keydown", onKeyDown, true);
  doc.addEventListener("focusin", onFocusIn, true);
  (initial ?? focusables(container)[0] ?? container).focus();

  return () => {
    doc.removeEventListener("keydown", onKeyDown, true);
    doc.removeEventListener("focusin", onFocusIn, true);
    if (previous && previous.isConnected && typeof previous.focus === "function") previous.focus();
  };
}

/**
 * The default look. Every selector sits inside :where(), which has no specificity, so any
 * rule of the page's own (`.nudge-modal .nudge-title { … }`) wins without !important. The
 * colours come from the message's theme through custom properties (see theme.ts).
 */
export const STYLESHEET = `
:where(.nudge-message) {
  --nudge-background: #ffffff; --nudge-text: #1f2328;
  --nudge-button-background: #0b5cff; --nudge-button-text: #ffffff;
  box-sizing: border-box; font: 15px/1.4 system-ui, sans-serif;
  color: var(--nudge-text); background: var(--nudge-background);
}
:where(.nudge-message *, .nudge-message *::before, .nudge-message *::after) { box-sizing: inherit; }
:where(.nudge-overlay) {
  position: fixed; inset: 0; z-index: 2147483000; display: flex; align-items: center;
  justify-content: center; background: rgba(0, 0, 0, 0.45);
}
:where(.nudge-dialog) { position: relative; background: var(--nudge-background); color: var(--nudge-text); max-width: min(32rem, 92vw); max-height: 90vh; overflow: auto;
  padding: 1.5rem; border-radius: 12px; box-shadow: 0 12px 40px rgba(0, 0, 0, 0.3); }
:where(.nudge-full-screen .nudge-dialog) { max-width: none; width: 100vw; height: 100vh; max-height: none; border-radius: 0;
  display: flex; flex-direction: column; align-items: center; justify-content: center; text-align: center; }
:where(.nudge-full-screen .nudge-buttons) { justify-content: center; }
:where(.nudge-full-screen .nudge-title) { padding-right: 0; }
:where(.nudge-banner) { position: fixed; top: 0; left: 0; right: 0; z-index: 2147483000; display: flex;
  flex-wrap: wrap; gap: 0.5rem 1rem; align-items: center; padding: 0.75rem 3rem 0.75rem 1rem;
  box-shadow: 0 2px 12px rgba(0, 0, 0, 0.2); }
:where(.nudge-card) { position: fixed; right: 1rem; bottom: 1rem; z-index: 2147483000; width: min(22rem, 92vw);
  padding: 1rem 1rem 1rem; border-radius: 12px; box-shadow: 0 6px 24px rgba(0, 0, 0, 0.25); }
:where(.nudge-tooltip) { position: absolute; z-index: 2147483000; max-width: 18rem; padding: 0.75rem 1rem;
  border-radius: 8px; box-shadow: 0 4px 16px rgba(0, 0, 0, 0.25); }
:where(.nudge-tooltip-arrow) { position: absolute; left: 1rem; width: 10px; height: 10px;
  background: var(--nudge-background); transform: rotate(45deg); }
:where(.nudge-tooltip[data-placement=below] .nudge-tooltip-arrow) { top: -5px; }
:where(.nudge-tooltip[data-placement=above] .nudge-tooltip-arrow) { bottom: -5px; }
:where(.nudge-step) { font-size: 0.8em; opacity: 0.75; margin: 0 0 0.25rem; }
:where(.nudge-title) { margin: 0 0 0.5rem; padding-right: 2rem; font-size: 1.2em; }
:where(.nudge-banner .nudge-title) { margin: 0; font-size: 1em; }
:where(.nudge-body) { margin: 0 0 0.75rem; }
:where(.nudge-banner .nudge-body) { margin: 0; }
:where(.nudge-image) { display: block; max-width: 100%; margin: 0 0 0.75rem; border-radius: 6px; }
:where(.nudge-buttons) { display: flex; flex-wrap: wrap; gap: 0.5rem; }
:where(.nudge-button, .nudge-submit) { padding: 0.5rem 1rem; border: 0; border-radius: 6px; cursor: pointer;
  font: inherit; background: var(--nudge-button-background); color: var(--nudge-button-text); }
:where(.nudge-close) { position: absolute; top: 0.5rem; right: 0.5rem; width: 2rem; height: 2rem; border: 0;
  border-radius: 50%; background: transparent; color: inherit; font-size: 1.25rem; line-height: 1; cursor: pointer; }
:where(.nudge-message :focus-visible) { outline: 2px solid var(--nudge-button-background); outline-offset: 2px; }
:where(.nudge-slide[hidden]) { display: none; }
:where(.nudge-slides) { margin-bottom: 0.75rem; }
:where(.nudge-slide-title) { margin: 0 0 0.25rem; font-size: 1.05em; }
:where(.nudge-carousel-controls) { display: flex; align-items: center; justify-content: space-between; gap: 0.5rem; margin-top: 0.75rem; }
:where(.nudge-carousel-prev, .nudge-carousel-next) { padding: 0.25rem 0.75rem; border: 1px solid currentColor;
  border-radius: 6px; background: transparent; color: inherit; cursor: pointer; font: inherit; }
:where(.nudge-question) { border: 0; padding: 0; margin: 0 0 1rem; }
:where(.nudge-question-text) { font-weight: 600; margin-bottom: 0.25rem; padding: 0; }
:where(.nudge-choice) { display: block; margin: 0.25rem 0; }
:where(.nudge-rating) { display: inline-flex; gap: 0.25rem; margin-right: 0.25rem; }
:where(.nudge-free-text) { width: 100%; min-height: 4rem; font: inherit; }
:where(.nudge-error) { color: #b3261e; margin: 0 0 0.75rem; }
:where(.nudge-error:empty) { display: none; }
`;

const MARK = "data-nudge-styles";

/** Adds the default stylesheet once, first in <head>, so the page's own sheets come later
 * and win ties. */
export function injectStyles(doc: Document): void {
  if (doc.head.querySelector(`style[${MARK}]`)) return;
  const style = doc.createElement("style");
  style.setAttribute(MARK, "");
  style.textContent = STYLESHEET;
  doc.head.prepend(style);
}

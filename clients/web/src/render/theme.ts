import type { Theme } from "../gen/nudge/common/v1/common_pb.js";

/** The CSS custom properties a message's theme sets on its root element. The default
 * stylesheet reads them; a page's own CSS may read or override them too. */
export const THEME_PROPERTIES = {
  backgroundColor: "--nudge-background",
  textColor: "--nudge-text",
  buttonColor: "--nudge-button-background",
  buttonTextColor: "--nudge-button-text",
} as const;

const COLOR = /^#(?:[0-9a-fA-F]{6}|[0-9a-fA-F]{8})$/;

/** Sets the theme's colours that are well formed (`#RRGGBB` or `#RRGGBBAA`, as the proto
 * says) and ignores the rest, so a bad value falls back to the stylesheet, not into CSS. */
export function applyTheme(el: HTMLElement, theme: Theme | undefined): void {
  if (!theme) return;
  for (const [field, property] of Object.entries(THEME_PROPERTIES)) {
    const value = theme[field as keyof typeof THEME_PROPERTIES];
    if (typeof value === "string" && COLOR.test(value)) el.style.setProperty(property, value);
  }
}

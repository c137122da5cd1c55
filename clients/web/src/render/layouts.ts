import {
  ButtonActionType, Layout, QuestionType,
  type Button, type MessageContent, type Slide, type SurveyQuestion,
} from "../gen/nudge/common/v1/common_pb.js";
import type { InAppMessage } from "../gen/nudge/delivery/v1/delivery_service_pb.js";
import { h, safeUrl, uid, type Child } from "./dom.js";
import { trapFocus } from "./focus.js";
import { fill, type Labels } from "./labels.js";
import { applyTheme } from "./theme.js";

/** One answer as the SDK reports it (the fields of nudge.delivery.v1.SurveyAnswer). */
export interface Answer {
  questionId: string;
  choices: string[];
  rating: number;
  text: string;
}

/** What the renderer tells its owner; the owner reports and decides what happens next. */
export interface RenderHandlers {
  /** A button was pressed. `keepOpen` when the renderer handled it in place (a carousel's
   * NEXT on a slide that has a next one). */
  click(button: Button, keepOpen: boolean): void;
  /** Closed by the user without a button: the close control, Escape, or the backdrop. */
  dismiss(): void;
  /** A survey was submitted with at least one answer. */
  answer(answers: Answer[]): void;
}

export interface RenderOptions {
  container: HTMLElement;
  labels: Labels;
  /** The element a tooltip points at (found by the caller). */
  anchor?: HTMLElement;
}

export interface Rendered {
  /** The message's outermost element (for modal layouts, the overlay). */
  root: HTMLElement;
  /** Takes the message off the page and gives focus back. Safe to call twice. */
  remove(): void;
}

/** Layouts that take over the page: focus stays inside them until they close. */
export const MODAL_LAYOUTS = new Set([Layout.MODAL, Layout.FULL_SCREEN, Layout.CAROUSEL, Layout.SURVEY]);

const LAYOUT_CLASS: Record<Layout, string> = {
  [Layout.UNSPECIFIED]: "nudge-modal",
  [Layout.BANNER]: "nudge-banner",
  [Layout.MODAL]: "nudge-modal",
  [Layout.FULL_SCREEN]: "nudge-full-screen",
  [Layout.CARD]: "nudge-card",
  [Layout.CAROUSEL]: "nudge-carousel",
  [Layout.SURVEY]: "nudge-survey",
  [Layout.TOOLTIP]: "nudge-tooltip",
};

/** The layout a message is drawn with: unspecified (an older campaign) reads as a modal. */
export function layoutOf(content: MessageContent | undefined): Layout {
  const layout = content?.layout ?? Layout.UNSPECIFIED;
  return layout in LAYOUT_CLASS && layout !== Layout.UNSPECIFIED ? layout : Layout.MODAL;
}

export function renderMessage(message: InAppMessage, handlers: RenderHandlers, options: RenderOptions): Rendered {
  const doc = options.container.ownerDocument;
  const content = message.content;
  const layout = layoutOf(content);
  const ids = { title: uid("nudge-title"), body: uid("nudge-body") };
  const cleanups: Array<() => void> = [];
  let removed = false;

  const surface = h(doc, "div", {
    class: `nudge-message ${LAYOUT_CLASS[layout]}`,
    "data-nudge-message-id": message.messageId,
    "data-nudge-campaign-id": message.campaignId,
  });
  if (message.locale) surface.lang = message.locale;
  applyTheme(surface, content?.theme);

  const closeButton = h(doc, "button", { type: "button", class: "nudge-close", "aria-label": options.labels.close }, ["×"]);
  closeButton.addEventListener("click", () => handlers.dismiss());

  const title = content?.title ? h(doc, "h2", { class: "nudge-title", id: ids.title }, [content.title]) : null;
  const body = content?.body ? h(doc, "p", { class: "nudge-body", id: ids.body }, [content.body]) : null;
  const labelled = { "aria-labelledby": title ? ids.title : undefined, "aria-describedby": body ? ids.body : undefined };
  // Without a title the dialog still needs a name: its body, or the layout's kind.
  const fallbackName = title ? undefined : (content?.body || message.campaignId || "Message");

  const children: Child[] = [];
  switch (layout) {
    case Layout.CAROUSEL:
      children.push(title, body, carousel(doc, content, handlers, options.labels, cleanups), buttons(doc, content?.buttons ?? [], handlers));
      break;
    case Layout.SURVEY:
      children.push(title, body, survey(doc, message, content?.questions ?? [], content?.buttons ?? [], handlers, options.labels));
      break;
    case Layout.TOOLTIP:
      children.push(
        content?.anchor?.step ? h(doc, "p", { class: "nudge-step" }, [fill(options.labels.step, { n: content.anchor.step })]) : null,
        title, body, image(doc, content?.imageUrl), buttons(doc, content?.buttons ?? [], handlers),
        h(doc, "div", { class: "nudge-tooltip-arrow", "aria-hidden": "true" }),
      );
      break;
    default:
      children.push(image(doc, content?.imageUrl), title, body, buttons(doc, content?.buttons ?? [], handlers));
  }

  let root: HTMLElement;
  if (MODAL_LAYOUTS.has(layout)) {
    const dialog = h(doc, "div", {
      class: "nudge-dialog", role: "dialog", "aria-modal": "true", tabindex: "-1", ...labelled,
      "aria-label": fallbackName,
    }, [closeButton, ...children]);
    // The overlay carries the theme's custom properties; the dialog inside it paints them.
    surface.classList.add("nudge-overlay");
    surface.append(dialog);
    if (layout === Layout.MODAL || layout === Layout.CAROUSEL) {
      // A click on the backdrop (not inside the box) is a dismissal, as in most modal libraries;
      // full screens have no backdrop and surveys would lose what was typed.
      surface.addEventListener("click", (event) => { if (event.target === surface) handlers.dismiss(); });
    }
    const onKey = (event: KeyboardEvent) => {
      if (event.key === "Escape") { event.preventDefault(); handlers.dismiss(); }
    };
    doc.addEventListener("keydown", onKey);
    cleanups.push(() => doc.removeEventListener("keydown", onKey));
    options.container.append(surface);
    cleanups.push(trapFocus(dialog));
    root = surface;
  } else {
    surface.append(closeButton, ...children.filter((c): c is Node | string => !!c));
    if (layout === Layout.TOOLTIP) {
      surface.setAttribute("role", "dialog");
      surface.setAttribute("aria-modal", "false");
    } else {
      // A landmark the user can jump to, announced politely when it appears.
      surface.setAttribute("role", "region");
      surface.setAttribute("aria-live", "polite");
    }
    for (const [k, v] of Object.entries(labelled)) if (v) surface.setAttribute(k, v);
    if (fallbackName) surface.setAttribute("aria-label", fallbackName);
    // Non-modal messages must not steal Escape from the page: only while focus is inside.
    surface.addEventListener("keydown", (event) => {
      if (event.key === "Escape") { event.preventDefault(); handlers.dismiss(); }
    });
    options.container.append(surface);
    if (layout === Layout.TOOLTIP && options.anchor) cleanups.push(pointAt(surface, options.anchor, body ? ids.body : undefined));
    root = surface;
  }

  return {
    root,
    remove() {
      if (removed) return;
      removed = true;
      root.remove();
      // Last in, first out: the focus trap (pushed last) gives focus back after the DOM goes.
      for (const cleanup of cleanups.reverse()) cleanup();
    },
  };
}

function image(doc: Document, url: string | undefined): HTMLElement | null {
  const src = safeUrl(url ?? "", doc, { image: true });
  // Decorative: the title and body carry the meaning, and the proto has no alt text.
  return src ? h(doc, "img", { class: "nudge-image", src, alt: "" }) : null;
}

function buttons(doc: Document, list: Button[], handlers: RenderHandlers, onNext?: () => boolean): HTMLElement | null {
  if (list.length === 0) return null;
  return h(doc, "div", { class: "nudge-buttons" }, list.map((button) => {
    const el = h(doc, "button", {
      type: "button", class: "nudge-button", "data-button-id": button.id,
      "data-action": ButtonActionType[button.action]?.toLowerCase(),
    }, [button.text || button.id]);
    el.addEventListener("click", () => {
      const stayed = button.action === ButtonActionType.NEXT && onNext ? onNext() : false;
      handlers.click(button, stayed);
    });
    return el;
  }));
}

function carousel(doc: Document, content: MessageContent | undefined, handlers: RenderHandlers, labels: Labels,
                  cleanups: Array<() => void>): HTMLElement {
  const slides: Slide[] = content?.slides.length ? content.slides : [];
  let index = 0;
  const slideEls: HTMLElement[] = [];
  const status = h(doc, "span", { class: "nudge-carousel-status", "aria-hidden": "true" });
  const prev = h(doc, "button", { type: "button", class: "nudge-carousel-prev", "aria-label": labels.previousSlide }, ["‹"]);
  const next = h(doc, "button", { type: "button", class: "nudge-carousel-next", "aria-label": labels.nextSlide }, ["›"]);
  const go = (to: number): boolean => {
    if (to < 0 || to >= slides.length) return false;
    index = to;
    slideEls.forEach((el, i) => { el.hidden = i !== index; });
    status.textContent = fill(labels.slideOf, { n: index + 1, total: slides.length });
    prev.disabled = index === 0;
    next.disabled = index === slides.length - 1;
    return true;
  };
  slides.forEach((slide, i) => {
    const slideTitle = uid("nudge-slide-title");
    slideEls.push(h(doc, "div", {
      class: "nudge-slide", role: "group", "aria-roledescription": "slide",
      "aria-label": fill(labels.slideOf, { n: i + 1, total: slides.length }), "data-slide-index": String(i),
    }, [
      image(doc, slide.imageUrl),
      slide.title ? h(doc, "h3", { class: "nudge-slide-title", id: slideTitle }, [slide.title]) : null,
      slide.body ? h(doc, "p", { class: "nudge-slide-body" }, [slide.body]) : null,
      buttons(doc, slide.buttons, handlers, () => go(index + 1)),
    ]));
  });
  prev.addEventListener("click", () => go(index - 1));
  next.addEventListener("click", () => go(index + 1));
  const region = h(doc, "div", { class: "nudge-slides", role: "region", "aria-roledescription": "carousel",
    "aria-label": content?.title || "Carousel" }, [
    // Only the slide shown changes, and it is announced as it does.
    h(doc, "div", { class: "nudge-slide-list", "aria-live": "polite" }, slideEls),
    slides.length > 1 ? h(doc, "div", { class: "nudge-carousel-controls" }, [prev, status, next]) : null,
  ]);
  // Arrow keys move between slides while focus is in the carousel.
  const onKey = (event: KeyboardEvent) => {
    if (event.key === "ArrowRight" && go(index + 1)) event.preventDefault();
    if (event.key === "ArrowLeft" && go(index - 1)) event.preventDefault();
  };
  region.addEventListener("keydown", onKey);
  cleanups.push(() => region.removeEventListener("keydown", onKey));
  go(0);
  return region;
}

function survey(doc: Document, message: InAppMessage, questions: SurveyQuestion[], extra: Button[],
                handlers: RenderHandlers, labels: Labels): HTMLElement {
  const error = h(doc, "p", { class: "nudge-error", role: "alert" });
  const fieldsets = questions.map((q) => question(doc, message.messageId, q, labels));
  const form = h(doc, "form", { class: "nudge-survey-form", novalidate: "" }, [
    ...fieldsets.map((f) => f.el),
    error,
    h(doc, "div", { class: "nudge-buttons" }, [
      h(doc, "button", { type: "submit", class: "nudge-submit" }, [labels.submit]),
      ...(buttons(doc, extra, handlers)?.childNodes ?? []),
    ]),
  ]);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const answers = fieldsets.map((f) => f.read()).filter((a): a is Answer => a !== null);
    if (answers.length === 0) {
      error.textContent = labels.answerRequired;
      return;
    }
    error.textContent = "";
    handlers.answer(answers);
  });
  return form;
}

function question(doc: Document, messageId: string, q: SurveyQuestion, labels: Labels): { el: HTMLElement; read(): Answer | null } {
  const name = `nudge-${messageId}-${q.id}`;
  const legend = h(doc, "legend", { class: "nudge-question-text" }, [q.text || q.id]);
  const fieldset = h(doc, "fieldset", { class: "nudge-question", "data-question-id": q.id }, [legend]);
  const answer = (patch: Partial<Answer>): Answer => ({ questionId: q.id, choices: [], rating: 0, text: "", ...patch });
  const inputs: HTMLInputElement[] = [];
  const option = (type: "radio" | "checkbox", value: string, text: string, cls: string, label?: string) => {
    const input = h(doc, "input", { type, name, value, "aria-label": label });
    inputs.push(input);
    fieldset.append(h(doc, "label", { class: cls }, [input, ` ${text}`]));
  };
  switch (q.type) {
    case QuestionType.SINGLE_CHOICE:
    case QuestionType.MULTIPLE_CHOICE: {
      const type = q.type === QuestionType.SINGLE_CHOICE ? "radio" : "checkbox";
      if (type === "radio") fieldset.setAttribute("role", "radiogroup");
      q.choices.forEach((choice) => option(type, choice, choice, "nudge-choice"));
      return {
        el: fieldset,
        read: () => {
          const chosen = inputs.filter((i) => i.checked).map((i) => i.value);
          return chosen.length ? answer({ choices: chosen }) : null;
        },
      };
    }
    case QuestionType.RATING: {
      fieldset.setAttribute("role", "radiogroup");
      // The proto's lowest rating is 1; a question without a maximum is read as out of 5.
      const max = q.maxRating || 5;
      for (let n = 1; n <= max; n += 1) option("radio", String(n), String(n), "nudge-rating", fill(labels.ratingOf, { n, max }));
      return {
        el: fieldset,
        read: () => {
          const chosen = inputs.find((i) => i.checked);
          return chosen ? answer({ rating: Number(chosen.value) }) : null;
        },
      };
    }
    default: {
      const id = uid("nudge-free-text");
      const textarea = h(doc, "textarea", { class: "nudge-free-text", name, id });
      legend.id = uid("nudge-legend");
      textarea.setAttribute("aria-labelledby", legend.id);
      fieldset.append(textarea);
      return {
        el: fieldset,
        read: () => {
          const text = textarea.value.trim();
          return text ? answer({ text }) : null;
        },
      };
    }
  }
}

/** Places a tooltip next to its anchor (below when there is room, else above), keeps it there
 * as the page scrolls or resizes, and links the anchor to the tooltip's text. */
function pointAt(tooltip: HTMLElement, anchor: HTMLElement, describedBy: string | undefined): () => void {
  const win = anchor.ownerDocument.defaultView;
  const place = () => {
    const a = anchor.getBoundingClientRect();
    const t = tooltip.getBoundingClientRect();
    const viewport = win?.innerHeight ?? 0;
    const below = a.bottom + t.height + 8 <= viewport || a.top - t.height - 8 < 0;
    const scrollX = win?.scrollX ?? 0;
    const scrollY = win?.scrollY ?? 0;
    tooltip.dataset.placement = below ? "below" : "above";
    tooltip.style.left = `${Math.max(0, a.left + scrollX)}px`;
    tooltip.style.top = `${below ? a.bottom + scrollY + 8 : a.top + scrollY - t.height - 8}px`;
  };
  place();
  win?.addEventListener("resize", place);
  win?.addEventListener("scroll", place, true);
  const previous = anchor.getAttribute("aria-describedby");
  if (describedBy) anchor.setAttribute("aria-describedby", [previous, describedBy].filter(Boolean).join(" "));
  return () => {
    win?.removeEventListener("resize", place);
    win?.removeEventListener("scroll", place, true);
    if (describedBy) {
      if (previous) anchor.setAttribute("aria-describedby", previous);
      else anchor.removeAttribute("aria-describedby");
    }
  };
}

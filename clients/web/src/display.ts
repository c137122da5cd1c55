import { timestampDate } from "@bufbuild/protobuf/wkt";
import { ButtonActionType, Layout, type Button } from "./gen/nudge/common/v1/common_pb.js";
import type { InAppMessage } from "./gen/nudge/delivery/v1/delivery_service_pb.js";
import { safeUrl } from "./render/dom.js";
import { DEFAULT_LABELS, type Labels } from "./render/labels.js";
import { layoutOf, renderMessage, type Answer, type Rendered } from "./render/layouts.js";
import { injectStyles } from "./render/styles.js";

/** What `beforeDisplay` may answer: show it now, keep it for later (`showPending()` offers
 * it again), or drop it without showing. Nothing (undefined) means show. */
export type DisplayDecision = "show" | "later" | "discard";
export type BeforeDisplay = (message: InAppMessage) => DisplayDecision | void | Promise<DisplayDecision | void>;

/** How the display tells the server what the user did (the SDK's ReportInteraction calls). */
export interface Reports {
  impression(message: InAppMessage): void;
  click(message: InAppMessage, button: Button): void;
  dismiss(message: InAppMessage): void;
  answer(message: InAppMessage, answers: Answer[]): void;
}

export interface DisplayOptions {
  reports: Reports;
  beforeDisplay?: BeforeDisplay;
  /** A DEEP_LINK button's target; without it the page navigates to the target. */
  onDeepLink?: (target: string, message: InAppMessage) => void;
  onError?: (error: unknown) => void;
  /** Where messages are attached (default: document.body). */
  container?: HTMLElement;
  injectStyles?: boolean;
  labels?: Partial<Labels>;
  now?: () => Date;
  /** How URL buttons open their target (default: a new tab without an opener). */
  openUrl?: (url: string) => void;
  navigate?: (url: string) => void;
}

/** Why a message waits in `pending` rather than being on screen. */
export type PendingReason = "later" | "screen" | "anchor";

/**
 * Puts messages on screen one at a time, in the order they came, asking `beforeDisplay`
 * first; reports each impression once, every click, dismissal and survey answer; never shows
 * a message past its expiry or one it has already shown.
 */
export class Display {
  private readonly queue: InAppMessage[] = [];
  private readonly waiting = new Map<string, { message: InAppMessage; reason: PendingReason }>();
  private readonly known = new Set<string>();
  private current: { message: InAppMessage; rendered: Rendered } | null = null;
  private readonly labels: Labels;
  private screen = "";

  constructor(private readonly options: DisplayOptions) {
    this.labels = { ...DEFAULT_LABELS, ...options.labels };
  }

  /** The message on screen now, if any. */
  get shown(): InAppMessage | undefined {
    return this.current?.message;
  }

  /** Messages held back: by `beforeDisplay` ("later"), for another screen, or for an anchor
   * element not on the page yet. */
  get pending(): Array<{ message: InAppMessage; reason: PendingReason }> {
    return [...this.waiting.values()];
  }

  /** Offers a message for display. A message offered before (by a pull and a stream, or a
   * replay) is ignored. */
  async offer(message: InAppMessage): Promise<void> {
    if (this.known.has(message.messageId)) return;
    this.known.add(message.messageId);
    await this.consider(message);
  }

  /** The screen the user is on: tooltips for it that were waiting are offered again. */
  setScreen(screen: string): Promise<void> {
    this.screen = screen;
    return this.retry((reason) => reason === "screen" || reason === "anchor");
  }

  /** Offers every pending message again (asking `beforeDisplay` again for each). */
  showPending(): Promise<void> {
    return this.retry(() => true);
  }

  /** Takes the message on screen away without reporting anything (e.g. on sign-out). */
  clear(): void {
    this.current?.rendered.remove();
    this.current = null;
    this.queue.length = 0;
    this.waiting.clear();
  }

  private async retry(which: (reason: PendingReason) => boolean): Promise<void> {
    const again = [...this.waiting.values()].filter((p) => which(p.reason));
    for (const p of again) this.waiting.delete(p.message.messageId);
    for (const p of again) await this.consider(p.message);
  }

  private expired(message: InAppMessage): boolean {
    const now = this.options.now?.() ?? new Date();
    return !!message.expireTime && timestampDate(message.expireTime).getTime() <= now.getTime();
  }

  private async consider(message: InAppMessage): Promise<void> {
    if (this.expired(message)) return;
    let decision: DisplayDecision | void = "show";
    if (this.options.beforeDisplay) {
      try {
        decision = await this.options.beforeDisplay(message);
      } catch (error) {
        // A failing hook must not lose the message: keep it for showPending().
        this.options.onError?.(error);
        decision = "later";
      }
    }
    if (decision === "discard") return;
    if (decision === "later") {
      this.waiting.set(message.messageId, { message, reason: "later" });
      return;
    }
    this.queue.push(message);
    this.pump();
  }

  private anchorFor(message: InAppMessage): HTMLElement | null {
    const id = message.content?.anchor?.elementId;
    if (!id) return null;
    const doc = this.container().ownerDocument;
    const byId = doc.getElementById(id);
    if (byId) return byId;
    for (const el of doc.querySelectorAll<HTMLElement>("[data-nudge-anchor]")) {
      if (el.dataset.nudgeAnchor === id) return el;
    }
    return null;
  }

  private container(): HTMLElement {
    return this.options.container ?? document.body;
  }

  private pump(): void {
    while (!this.current && this.queue.length > 0) {
      const message = this.queue.shift()!;
      if (this.expired(message)) continue;
      let anchor: HTMLElement | undefined;
      if (layoutOf(message.content) === Layout.TOOLTIP) {
        const wanted = message.content?.anchor?.screen ?? "";
        if (wanted && wanted !== this.screen) {
          this.waiting.set(message.messageId, { message, reason: "screen" });
          continue;
        }
        anchor = this.anchorFor(message) ?? undefined;
        if (!anchor) {
          this.waiting.set(message.messageId, { message, reason: "anchor" });
          continue;
        }
      }
      this.put(message, anchor);
    }
  }

  private put(message: InAppMessage, anchor: HTMLElement | undefined): void {
    const { reports } = this.options;
    if (this.options.injectStyles !== false) injectStyles(this.container().ownerDocument);
    const close = () => {
      if (this.current?.message !== message) return;
      this.current.rendered.remove();
      this.current = null;
      this.pump();
    };
    const rendered = renderMessage(message, {
      click: (button, keepOpen) => {
        reports.click(message, button);
        if (keepOpen) return;
        close();
        this.act(message, button);
      },
      dismiss: () => {
        reports.dismiss(message);
        close();
      },
      answer: (answers) => {
        reports.answer(message, answers);
        close();
      },
    }, { container: this.container(), labels: this.labels, anchor });
    this.current = { message, rendered };
    reports.impression(message);
  }

  /** What a pressed button does once its click is reported and the message is closed. */
  private act(message: InAppMessage, button: Button): void {
    const doc = this.container().ownerDocument;
    switch (button.action) {
      case ButtonActionType.DISMISS:
        // The user closed the message with this button: a click on it and a dismissal.
        this.options.reports.dismiss(message);
        return;
      case ButtonActionType.URL: {
        const url = safeUrl(button.target, doc);
        if (!url) return this.options.onError?.(new Error(`button ${button.id}: refused target ${button.target}`));
        (this.options.openUrl ?? ((u) => doc.defaultView?.open(u, "_blank", "noopener")))(url);
        return;
      }
      case ButtonActionType.DEEP_LINK: {
        if (this.options.onDeepLink) return this.options.onDeepLink(button.target, message);
        const url = safeUrl(button.target, doc);
        if (!url) return this.options.onError?.(new Error(`button ${button.id}: refused target ${button.target}`));
        (this.options.navigate ?? ((u) => doc.defaultView?.location.assign(u)))(url);
        return;
      }
      default:
        // NEXT past the last slide or step, or no action: the message is done.
        return;
    }
  }
}

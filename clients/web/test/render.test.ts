import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { Nudge } from "../src/index.js";
import { ButtonActionType, Layout } from "../src/gen/nudge/common/v1/common_pb.js";
import { InteractionType } from "../src/gen/nudge/delivery/v1/delivery_service_pb.js";
import { FakeNudge, settle, tokenFor, until } from "./fake-network.js";
import { buttons, message, surveyContent } from "./messages.js";

let net: FakeNudge;
let sdk: Nudge;
beforeEach(() => {
  document.head.innerHTML = "";
  document.body.innerHTML = `<button id="before">Before</button><nav><a id="cart-link" href="/cart">Cart</a></nav>`;
  net = new FakeNudge();
  sdk = new Nudge({ endpoint: "https://edge.test", apiKey: "k", userToken: tokenFor("user-7"), fetch: net.fetch, onError: () => {} });
});
afterEach(() => sdk.close());

const q = <T extends Element = HTMLElement>(selector: string) => document.querySelector<T & HTMLElement>(selector);
const press = (key: string, opts: KeyboardEventInit = {}) =>
  (document.activeElement ?? document.body).dispatchEvent(new KeyboardEvent("keydown", { key, bubbles: true, cancelable: true, ...opts }));
const reports = () => net.callsTo("ReportInteraction").map((c) => c.request);

describe("modal", () => {
  it("is a labelled modal dialog that takes focus, keeps it inside on Tab, and gives it back", async () => {
    q("#before")!.focus();
    await sdk.show(message({ title: "Welcome", body: "Glad you are here", buttons: [buttons.ok, buttons.shop] }));
    const dialog = q("[role=dialog]")!;
    expect(dialog.getAttribute("aria-modal")).toBe("true");
    expect(document.getElementById(dialog.getAttribute("aria-labelledby")!)?.textContent).toBe("Welcome");
    expect(document.getElementById(dialog.getAttribute("aria-describedby")!)?.textContent).toBe("Glad you are here");
    const close = q(".nudge-close")!;
    expect(close.getAttribute("aria-label")).toBe("Close");
    expect(document.activeElement).toBe(close);

    const last = q('[data-button-id="shop"]')!;
    last.focus();
    press("Tab");
    expect(document.activeElement).toBe(close);
    press("Tab", { shiftKey: true });
    expect(document.activeElement).toBe(last);
    // Focus that escapes to the page behind is brought back in.
    q("#cart-link")!.focus();
    expect(dialog.contains(document.activeElement)).toBe(true);

    press("Escape");
    expect(q(".nudge-message")).toBeNull();
    expect(document.activeElement).toBe(q("#before"));
    await until(() => reports().some((r) => r.type === InteractionType.DISMISS), "the dismissal");
  });

  it("closes on a backdrop click, not on a click inside", async () => {
    await sdk.show(message());
    q(".nudge-title")!.click();
    expect(q(".nudge-message")).not.toBeNull();
    q(".nudge-overlay")!.click();
    expect(q(".nudge-message")).toBeNull();
  });

  it("puts campaign text in as text, never as markup", async () => {
    await sdk.show(message({ title: "<img src=x onerror=alert(1)>", body: "<b>bold</b>" }));
    expect(q(".nudge-title")!.textContent).toBe("<img src=x onerror=alert(1)>");
    expect(q(".nudge-message img")).toBeNull();
    expect(q(".nudge-body b")).toBeNull();
  });
});

describe("layouts this SDK does not know yet", () => {
  it("are drawn as a modal, so a newer campaign still reaches the user", async () => {
    await sdk.show(message({ layout: 99 as Layout, title: "From the future" }));
    expect(q(".nudge-modal [role=dialog]")).not.toBeNull();
    expect(q(".nudge-title")!.textContent).toBe("From the future");
  });
});

describe("theme", () => {
  it("sets the message's colours as custom properties, ignoring malformed ones", async () => {
    await sdk.show(message({ theme: { backgroundColor: "#112233", textColor: "#FFFFFFCC", buttonColor: "red;}body{display:none", buttonTextColor: "" } }));
    const root = q(".nudge-message")!;
    expect(root.style.getPropertyValue("--nudge-background")).toBe("#112233");
    expect(root.style.getPropertyValue("--nudge-text")).toBe("#FFFFFFCC");
    expect(root.style.getPropertyValue("--nudge-button-background")).toBe("");
  });

  it("adds the default stylesheet once, first in <head>, with selectors a page rule outranks", async () => {
    const own = document.createElement("style");
    document.head.append(own);
    await sdk.show(message({}, {}));
    sdk.close();
    await sdk.show(message());
    const sheets = document.head.querySelectorAll("style[data-nudge-styles]");
    expect(sheets.length).toBe(1);
    expect(document.head.firstElementChild).toBe(sheets[0]);
    // Every rule's selector is wrapped in :where(), which weighs nothing.
    const selectors = sheets[0].textContent!.match(/^[^{}@\n][^{}]*(?=\{)/gm)!.map((s) => s.trim());
    expect(selectors.length).toBeGreaterThan(10);
    for (const s of selectors) expect(s).toMatch(/^:where\(.*\)$/);
  });

  it("can be left out so a page brings all its own CSS", async () => {
    sdk = new Nudge({ endpoint: "https://edge.test", apiKey: "k", userToken: tokenFor("u"), fetch: net.fetch, injectStyles: false });
    await sdk.show(message());
    expect(document.querySelector("style[data-nudge-styles]")).toBeNull();
    expect(q(".nudge-modal")).not.toBeNull();
  });
});

describe("non-modal layouts", () => {
  it("a banner is a polite region that leaves focus and Escape to the page until focus is in it", async () => {
    q("#before")!.focus();
    await sdk.show(message({ layout: Layout.BANNER, title: "Free shipping today", buttons: [buttons.shop] }));
    const banner = q(".nudge-banner")!;
    expect(banner.getAttribute("role")).toBe("region");
    expect(banner.getAttribute("aria-live")).toBe("polite");
    expect(document.getElementById(banner.getAttribute("aria-labelledby")!)?.textContent).toBe("Free shipping today");
    expect(document.activeElement).toBe(q("#before"));
    press("Escape");
    expect(q(".nudge-banner")).not.toBeNull();
    q('[data-button-id="shop"]')!.focus();
    press("Escape");
    expect(q(".nudge-banner")).toBeNull();
  });

  it("a card is a region with its image, text and buttons", async () => {
    await sdk.show(message({ layout: Layout.CARD, title: "New arrivals", imageUrl: "https://cdn.example/a.png", buttons: [buttons.shop] }));
    const card = q(".nudge-card")!;
    expect(card.getAttribute("role")).toBe("region");
    expect(card.querySelector("img")!.getAttribute("src")).toBe("https://cdn.example/a.png");
    expect(card.querySelector("img")!.getAttribute("alt")).toBe("");
    expect(card.querySelector(".nudge-button")!.textContent).toBe("Shop now");
  });

  it("refuses images that are not http(s) or data:image", async () => {
    await sdk.show(message({ layout: Layout.CARD, imageUrl: "javascript:alert(1)" }));
    expect(q(".nudge-card img")).toBeNull();
  });
});

describe("full screen", () => {
  it("is a modal dialog filling the page, which a backdrop click does not close", async () => {
    await sdk.show(message({ layout: Layout.FULL_SCREEN, title: "Big sale" }));
    expect(q(".nudge-full-screen [role=dialog]")!.getAttribute("aria-modal")).toBe("true");
    q(".nudge-overlay")!.click();
    expect(q(".nudge-full-screen")).not.toBeNull();
  });
});

describe("carousel", () => {
  const slides = [
    { title: "One", body: "first", buttons: [{ id: "s1-next", text: "Next", action: ButtonActionType.NEXT }] },
    { title: "Two", body: "second", buttons: [{ id: "s2-next", text: "Next", action: ButtonActionType.NEXT }] },
    { title: "Three", body: "third", buttons: [{ id: "done", text: "Done", action: ButtonActionType.NEXT }] },
  ];
  const visible = () => [...document.querySelectorAll<HTMLElement>(".nudge-slide")].filter((s) => !s.hidden).map((s) => s.querySelector("h3")!.textContent);

  it("shows one slide at a time; controls, arrow keys and NEXT buttons move it, reporting each NEXT click", async () => {
    await sdk.show(message({ layout: Layout.CAROUSEL, title: "Tour", slides }));
    const region = q("[aria-roledescription=carousel]")!;
    expect(region.closest("[role=dialog]")).not.toBeNull();
    const group = q(".nudge-slide")!;
    expect(group.getAttribute("role")).toBe("group");
    expect(group.getAttribute("aria-roledescription")).toBe("slide");
    expect(group.getAttribute("aria-label")).toBe("1 of 3");
    expect(visible()).toEqual(["One"]);
    expect(q<HTMLButtonElement>(".nudge-carousel-prev")!.disabled).toBe(true);

    q(".nudge-carousel-next")!.click();
    expect(visible()).toEqual(["Two"]);
    q(".nudge-carousel-next")!.focus();
    press("ArrowLeft");
    expect(visible()).toEqual(["One"]);
    q('[data-button-id="s1-next"]')!.click();
    expect(visible()).toEqual(["Two"]);
    q('[data-button-id="s2-next"]')!.click();
    expect(visible()).toEqual(["Three"]);
    // NEXT on the last slide finishes the carousel.
    q('[data-button-id="done"]')!.click();
    expect(q(".nudge-carousel")).toBeNull();
    await until(() => reports().filter((r) => r.type === InteractionType.CLICK).length === 3, "three clicks");
    expect(reports().filter((r) => r.type === InteractionType.CLICK).map((r) => r.buttonId)).toEqual(["s1-next", "s2-next", "done"]);
  });
});

describe("survey", () => {
  it("asks each question in a labelled group and reports the answers given", async () => {
    const m = message(surveyContent);
    await sdk.show(m);
    const groups = [...document.querySelectorAll("fieldset.nudge-question")];
    expect(groups.map((g) => g.querySelector("legend")!.textContent)).toEqual(surveyContent.questions.map((x) => x.text));
    expect(groups[0].getAttribute("role")).toBe("radiogroup");
    expect(groups[0].querySelectorAll("input[type=radio]").length).toBe(2);
    expect(groups[1].querySelectorAll("input[type=checkbox]").length).toBe(3);
    const ratings = groups[2].querySelectorAll<HTMLInputElement>("input[type=radio]");
    expect(ratings.length).toBe(10);
    expect(ratings[8].getAttribute("aria-label")).toBe("9 of 10");
    const text = groups[3].querySelector("textarea")!;
    expect(document.getElementById(text.getAttribute("aria-labelledby")!)?.textContent).toBe("Anything else?");

    // Nothing answered: the survey stays, with an alert.
    q<HTMLButtonElement>(".nudge-submit")!.click();
    expect(q(".nudge-error")!.getAttribute("role")).toBe("alert");
    expect(q(".nudge-error")!.textContent).toBe("Please answer at least one question.");
    expect(q(".nudge-survey")).not.toBeNull();

    groups[0].querySelector<HTMLInputElement>('input[value="Friend"]')!.click();
    groups[1].querySelector<HTMLInputElement>('input[value="Web"]')!.click();
    groups[1].querySelector<HTMLInputElement>('input[value="Android"]')!.click();
    ratings[8].click();
    text.value = "  more colours please ";
    q<HTMLButtonElement>(".nudge-submit")!.click();
    expect(q(".nudge-survey")).toBeNull();
    await until(() => reports().some((r) => r.type === InteractionType.SURVEY_ANSWER), "the answers");
    const answer = reports().find((r) => r.type === InteractionType.SURVEY_ANSWER)!;
    expect(answer.messageId).toBe(m.messageId);
    expect(answer.answers.map((a: any) => ({ q: a.questionId, c: a.choices, r: a.rating, t: a.text }))).toEqual([
      { q: "q1", c: ["Friend"], r: 0, t: "" },
      { q: "q2", c: ["Web", "Android"], r: 0, t: "" },
      { q: "q3", c: [], r: 9, t: "" },
      { q: "q4", c: [], r: 0, t: "more colours please" },
    ]);
    expect(reports().some((r) => r.type === InteractionType.DISMISS)).toBe(false);
  });

  it("leaves unanswered questions out of the report", async () => {
    await sdk.show(message(surveyContent));
    document.querySelector<HTMLInputElement>('input[value="Search"]')!.click();
    q<HTMLButtonElement>(".nudge-submit")!.click();
    await until(() => reports().some((r) => r.type === InteractionType.SURVEY_ANSWER), "the answers");
    const answer = reports().find((r) => r.type === InteractionType.SURVEY_ANSWER)!;
    expect(answer.answers.map((a: any) => a.questionId)).toEqual(["q1"]);
  });
});

describe("tooltip and tour steps", () => {
  const step = (n: number, screen = "") => message({
    layout: Layout.TOOLTIP, title: `Step ${n} title`, body: `Look here ${n}`,
    anchor: { screen, elementId: "cart-link", step: n }, buttons: [buttons.next],
  });

  it("points at its element, which it describes, as a non-modal dialog with its step", async () => {
    await sdk.show(step(1));
    const tip = q(".nudge-tooltip")!;
    expect(tip.getAttribute("role")).toBe("dialog");
    expect(tip.getAttribute("aria-modal")).toBe("false");
    expect(tip.querySelector(".nudge-step")!.textContent).toBe("Step 1");
    expect(tip.dataset.placement).toMatch(/^(below|above)$/);
    expect(tip.style.top).toMatch(/px$/);
    const anchor = q("#cart-link")!;
    expect(document.getElementById(anchor.getAttribute("aria-describedby")!)?.textContent).toBe("Look here 1");
    tip.querySelector<HTMLElement>(".nudge-close")!.click();
    expect(anchor.hasAttribute("aria-describedby")).toBe(false);
  });

  it("NEXT closes a step and the following one shows", async () => {
    await sdk.show(step(1));
    await sdk.show(step(2));
    expect(q(".nudge-step")!.textContent).toBe("Step 1");
    q('[data-button-id="next"]')!.click();
    expect(q(".nudge-step")!.textContent).toBe("Step 2");
  });

  it("waits for its screen and for its element to be on the page", async () => {
    document.getElementById("cart-link")!.remove();
    const m = step(1, "checkout");
    await sdk.show(m);
    expect(q(".nudge-tooltip")).toBeNull();
    expect(sdk.pending.map((p) => p.reason)).toEqual(["screen"]);
    await sdk.setScreen("checkout");
    expect(sdk.pending.map((p) => p.reason)).toEqual(["anchor"]);
    const el = document.createElement("span");
    el.dataset.nudgeAnchor = "cart-link";
    document.body.append(el);
    await sdk.showPending();
    expect(q(".nudge-tooltip")).not.toBeNull();
    expect(sdk.pending).toEqual([]);
    await settle();
    expect(reports().filter((r) => r.type === InteractionType.IMPRESSION).map((r) => r.messageId)).toEqual([m.messageId]);
  });
});

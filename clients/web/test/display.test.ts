import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code } from "@connectrpc/connect";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { Nudge, type DisplayDecision, type InAppMessage } from "../src/index.js";
import { ButtonActionType, Layout } from "../src/gen/nudge/common/v1/common_pb.js";
import { InteractionType } from "../src/gen/nudge/delivery/v1/delivery_service_pb.js";
import { FakeNudge, Failure, settle, tokenFor, until } from "./fake-network.js";
import { buttons, message } from "./messages.js";

let net: FakeNudge;
let sdk: Nudge;
let errors: unknown[];
let opened: string[];
beforeEach(() => {
  document.body.innerHTML = "";
  net = new FakeNudge();
  errors = [];
  opened = [];
});
afterEach(() => sdk?.close());

function start(extra: Partial<ConstructorParameters<typeof Nudge>[0]> = {}): Nudge {
  sdk = new Nudge({ endpoint: "https://edge.test", apiKey: "k", userToken: tokenFor("user-7"), fetch: net.fetch,
    onError: (e) => errors.push(e), backoff: { initialMs: 1, maxMs: 2 }, openUrl: (u) => opened.push(u), ...extra });
  return sdk;
}

const reports = () => net.callsTo("ReportInteraction").map((c) => c.request);
const ofType = (t: InteractionType) => reports().filter((r) => r.type === t);
const title = () => document.querySelector(".nudge-title")?.textContent;

describe("reports", () => {
  it("one impression when a message is shown, not again when it is offered again", async () => {
    start();
    const m = message();
    await sdk.show(m);
    await sdk.show(m);
    await settle();
    const impressions = ofType(InteractionType.IMPRESSION);
    expect(impressions.length).toBe(1);
    expect(impressions[0]).toMatchObject({ messageId: m.messageId, userId: "user-7" });
    // Stamped by delivery's clock on arrival: a device clock minutes fast cannot get it refused.
    expect(impressions[0].occurredTime).toBeUndefined();
    expect(net.callsTo("ReportInteraction")[0].headers.get("x-nudge-user-token")).toBe(tokenFor("user-7"));
  });

  it("a click per button by its id; a URL button opens its address", async () => {
    start();
    await sdk.show(message({ buttons: [buttons.ok, buttons.shop] }));
    document.querySelector<HTMLElement>('[data-button-id="shop"]')!.click();
    await until(() => ofType(InteractionType.CLICK).length === 1, "the click");
    expect(ofType(InteractionType.CLICK)[0].buttonId).toBe("shop");
    expect(opened).toEqual(["https://shop.example/sale"]);
    expect(document.querySelector(".nudge-message")).toBeNull();
    expect(ofType(InteractionType.DISMISS)).toEqual([]);
  });

  it("a DISMISS button counts as its click and as a dismissal", async () => {
    start();
    await sdk.show(message({ buttons: [buttons.ok] }));
    document.querySelector<HTMLElement>('[data-button-id="ok"]')!.click();
    await until(() => ofType(InteractionType.DISMISS).length === 1, "the dismissal");
    expect(ofType(InteractionType.CLICK).map((r) => r.buttonId)).toEqual(["ok"]);
  });

  it("a script address on a button is refused, not opened", async () => {
    start();
    await sdk.show(message({ buttons: [{ id: "x", text: "x", action: ButtonActionType.URL, target: "javascript:alert(1)" }] }));
    document.querySelector<HTMLElement>('[data-button-id="x"]')!.click();
    expect(opened).toEqual([]);
    expect(String(errors[0])).toMatch(/refused target/);
  });

  it("a deep link goes to the app's handler", async () => {
    const links: string[] = [];
    start({ onDeepLink: (target) => links.push(target) });
    await sdk.show(message({ buttons: [{ id: "go", text: "Go", action: ButtonActionType.DEEP_LINK, target: "/cart?from=nudge" }] }));
    document.querySelector<HTMLElement>('[data-button-id="go"]')!.click();
    expect(links).toEqual(["/cart?from=nudge"]);
  });

  it("retries a report the edge could not deliver, each attempt stamped by delivery", async () => {
    let calls = 0;
    net.on("ReportInteraction", () => (++calls < 3 ? new Failure(Code.Unavailable, "upstream reset") : { recorded: true }));
    start();
    await sdk.show(message());
    await until(() => calls === 3, "three attempts");
    expect(reports().map((r) => r.occurredTime)).toEqual([undefined, undefined, undefined]);
    expect(errors).toEqual([]);
  });

  it("gives up on a refused report and says so, without breaking the page", async () => {
    net.on("ReportInteraction", () => new Failure(Code.PermissionDenied, "token is for another user"));
    start();
    await sdk.show(message());
    await until(() => errors.length === 1, "the error");
    expect(reports().length).toBe(1);
    expect(document.querySelector(".nudge-modal")).not.toBeNull();
  });
});

describe("display order and expiry", () => {
  it("shows one message at a time, the next when the first closes", async () => {
    start();
    await sdk.show(message({ title: "First" }));
    await sdk.show(message({ title: "Second", layout: Layout.BANNER }));
    expect(document.querySelectorAll(".nudge-message").length).toBe(1);
    expect(title()).toBe("First");
    document.querySelector<HTMLElement>(".nudge-close")!.click();
    expect(title()).toBe("Second");
  });

  it("never shows a message past its expiry", async () => {
    start();
    await sdk.show(message({ title: "Stale" }, { expireTime: timestampFromDate(new Date(Date.now() - 1000)) }));
    expect(document.querySelector(".nudge-message")).toBeNull();
    await settle();
    expect(reports()).toEqual([]);
  });
});

describe("beforeDisplay", () => {
  it("shows, keeps for later, or discards, as the hook says", async () => {
    const decide: Record<string, DisplayDecision> = { Now: "show", Later: "later", Never: "discard" };
    const asked: string[] = [];
    start({ beforeDisplay: (m: InAppMessage) => { asked.push(m.content!.title); return decide[m.content!.title]; } });
    await sdk.show(message({ title: "Later" }));
    await sdk.show(message({ title: "Never" }));
    expect(document.querySelector(".nudge-message")).toBeNull();
    expect(sdk.pending.map((p) => [p.message.content!.title, p.reason])).toEqual([["Later", "later"]]);
    await sdk.show(message({ title: "Now" }));
    expect(title()).toBe("Now");
    document.querySelector<HTMLElement>(".nudge-close")!.click();

    decide.Later = "show";
    await sdk.showPending();
    expect(title()).toBe("Later");
    expect(asked).toEqual(["Later", "Never", "Now", "Later"]);
    await settle();
    expect(ofType(InteractionType.IMPRESSION).length).toBe(2);
  });

  it("may wait before answering (an async hook)", async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => { release = r; });
    start({ beforeDisplay: async (): Promise<DisplayDecision> => { await gate; return "show"; } });
    const shown = sdk.show(message({ title: "Held" }));
    await settle();
    expect(title()).toBeUndefined();
    release();
    await shown;
    expect(title()).toBe("Held");
  });

  it("a hook that throws keeps the message for later and reports the error", async () => {
    start({ beforeDisplay: () => { throw new Error("hook broke"); } });
    await sdk.show(message());
    expect(sdk.pending.map((p) => p.reason)).toEqual(["later"]);
    expect(String(errors[0])).toMatch(/hook broke/);
  });
});

describe("the ES module entry", () => {
  it("init() then the module functions act on that instance", async () => {
    const mod = await import("../src/index.js");
    const m = message({ title: "From module" });
    net.on("FetchMessages", () => ({ messages: [m] }));
    const instance = mod.init({ endpoint: "https://edge.test", apiKey: "k", userToken: tokenFor("user-9"), fetch: net.fetch });
    await mod.fetchMessages({ screen: "home" });
    expect(net.callsTo("FetchMessages")[0].request.userId).toBe("user-9");
    expect(instance.shown?.messageId).toBe(m.messageId);
    instance.close();
    expect(document.querySelector(".nudge-message")).toBeNull();
  });
});

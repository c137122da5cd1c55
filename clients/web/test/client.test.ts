import { Code } from "@connectrpc/connect";
import { afterEach, describe, expect, it } from "vitest";
import { Nudge, RejectedEventError, init, track } from "../src/index.js";
import { Platform } from "../src/gen/nudge/common/v1/common_pb.js";
import { FakeNudge, Failure, tokenFor } from "./fake-network.js";
import { message } from "./messages.js";

let sdk: Nudge | undefined;
afterEach(() => {
  sdk?.close();
  document.body.innerHTML = "";
});

function start(net: FakeNudge, extra: Partial<ConstructorParameters<typeof Nudge>[0]> = {}): Nudge {
  sdk = new Nudge({ endpoint: "https://edge.test", apiKey: "pk_live_123", userToken: tokenFor("user-7"),
    fetch: net.fetch, onError: () => {}, locale: "fr-FR", ...extra });
  return sdk;
}

describe("calls", () => {
  it("send the API key as a bearer token and the user token beside it, for the token's user", async () => {
    const net = new FakeNudge();
    const token = tokenFor("user-7");
    start(net, { userToken: token });
    await sdk!.fetchMessages({ screen: "home", display: false });
    const [call] = net.callsTo("FetchMessages");
    expect(call.path).toBe("/nudge.delivery.v1.DeliveryService/FetchMessages");
    expect(call.headers.get("authorization")).toBe("Bearer pk_live_123");
    expect(call.headers.get("x-nudge-user-token")).toBe(token);
    expect(call.headers.get("content-type")).toBe("application/grpc-web+proto");
    expect(call.request).toMatchObject({ userId: "user-7", screen: "home", platform: Platform.WEB, locale: "fr-FR" });
  });

  it("ask a token function before every call, so a short-lived token can be renewed", async () => {
    const net = new FakeNudge();
    let issued = 0;
    start(net, { userToken: async () => tokenFor("user-7", { n: ++issued }) });
    await sdk!.fetchMessages({ display: false });
    await sdk!.fetchMessages({ display: false });
    const tokens = net.callsTo("FetchMessages").map((c) => c.headers.get("x-nudge-user-token"));
    expect(new Set(tokens).size).toBe(2);
  });

  it("refuse at init a token that names no user", () => {
    expect(() => new Nudge({ endpoint: "https://edge.test", apiKey: "k", userToken: "not-a-jwt" }))
      .toThrow(/sub/);
    expect(() => new Nudge({ endpoint: "https://edge.test", apiKey: "", userToken: tokenFor("u") })).toThrow(/apiKey/);
  });

  it("surface the service's refusal with its code", async () => {
    const net = new FakeNudge().on("FetchMessages", () => new Failure(Code.PermissionDenied, "token is for another user"));
    start(net);
    await expect(sdk!.fetchMessages()).rejects.toMatchObject({ code: Code.PermissionDenied, rawMessage: "token is for another user" });
  });
});

describe("identify", () => {
  it("types attributes, and sends the browser's time zone", async () => {
    const net = new FakeNudge();
    start(net);
    const signup = new Date("2026-01-02T03:04:05Z");
    await sdk!.identify({ attributes: { plan: "pro", seats: 3, score: 4.5, beta: true, signup, tags: ["a", "b"] }, unset: ["old"] });
    const [call] = net.callsTo("Identify");
    const attrs = call.request.attributes;
    expect(attrs.plan.kind).toEqual({ case: "stringValue", value: "pro" });
    expect(attrs.seats.kind).toEqual({ case: "intValue", value: 3n });
    expect(attrs.score.kind).toEqual({ case: "doubleValue", value: 4.5 });
    expect(attrs.beta.kind).toEqual({ case: "boolValue", value: true });
    expect(attrs.signup.kind.case).toBe("timeValue");
    expect(Number(attrs.signup.kind.value.seconds)).toBe(signup.getTime() / 1000);
    expect(attrs.tags.kind.value.values).toEqual(["a", "b"]);
    expect(call.request.unsetAttributes).toEqual(["old"]);
    expect(call.request.timeZone).toBe(Intl.DateTimeFormat().resolvedOptions().timeZone);
    expect(call.request.userId).toBe("user-7");
    expect(call.request.requestId).not.toBe("");
  });

  it("names the attribute it cannot send", async () => {
    start(new FakeNudge());
    await expect(sdk!.identify({ attributes: { nested: { a: 1 } as never } })).rejects.toThrow(/attribute nested/);
  });
});

describe("track", () => {
  it("sends one web event with an id, the session and JSON properties", async () => {
    const net = new FakeNudge();
    init({ endpoint: "https://edge.test", apiKey: "k", userToken: tokenFor("user-7"), fetch: net.fetch, appVersion: "2.1.0" });
    await track("added_to_cart", { sku: "mug", price: 12.5, at: new Date("2026-05-01T00:00:00Z"), skip: undefined });
    const [event] = net.callsTo("TrackEvents")[0].request.events;
    expect(event).toMatchObject({ name: "added_to_cart", userId: "user-7", platform: Platform.WEB, appVersion: "2.1.0" });
    expect(event.properties).toEqual({ sku: "mug", price: 12.5, at: "2026-05-01T00:00:00.000Z" });
    expect(event.eventId).toMatch(/^[0-9a-f-]{36}$/);
    expect(event.sessionId).not.toBe("");
  });

  it("throws the reason when ingestion rejects the event", async () => {
    const net = new FakeNudge().on("TrackEvents", () => ({
      acceptedCount: 0, rejected: [{ index: 0, reason: "INVALID_NAME", message: "names are [a-z0-9_]" }],
    }));
    start(net);
    const error = await sdk!.track("Bad Name").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RejectedEventError);
    expect((error as RejectedEventError).reason).toBe("INVALID_NAME");
  });
});

describe("fetchMessages", () => {
  it("returns the messages and shows the first", async () => {
    const m = message({ title: "Hello there" });
    const net = new FakeNudge().on("FetchMessages", () => ({ messages: [m] }));
    start(net);
    const got = await sdk!.fetchMessages({ screen: "home", limit: 3 });
    expect(got.map((x) => x.messageId)).toEqual([m.messageId]);
    expect(net.callsTo("FetchMessages")[0].request.limit).toBe(3);
    expect(document.querySelector(".nudge-title")?.textContent).toBe("Hello there");
  });
});

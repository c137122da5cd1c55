import { Code, ConnectError } from "@connectrpc/connect";
import { afterEach, describe, expect, it } from "vitest";
import { Backoff } from "../src/backoff.js";
import { Nudge } from "../src/index.js";
import { Subscription, type SubscriptionState } from "../src/subscription.js";
import type { InAppMessage } from "../src/gen/nudge/delivery/v1/delivery_service_pb.js";
import { FakeNudge, Failure, settle, tokenFor, until } from "./fake-network.js";
import { message } from "./messages.js";

let sdk: Nudge | undefined;
afterEach(() => {
  sdk?.close();
  document.body.innerHTML = "";
});

function start(net: FakeNudge, extra: Partial<ConstructorParameters<typeof Nudge>[0]> = {}): Nudge {
  sdk = new Nudge({ endpoint: "https://edge.test", apiKey: "k", userToken: tokenFor("user-7"), fetch: net.fetch,
    onError: () => {}, backoff: { initialMs: 1, maxMs: 4 }, ...extra });
  return sdk;
}

describe("subscribe through the SDK", () => {
  it("shows a pushed message, and after a cut resumes after the last message without showing it twice", async () => {
    const net = new FakeNudge();
    start(net);
    const received: string[] = [];
    const states: SubscriptionState[] = [];
    const sub = sdk!.subscribe({ onMessage: (m) => received.push(m.messageId), onStateChange: (s) => states.push(s) });
    const [first] = await net.streamsOpened(1);
    expect(first.request).toMatchObject({ userId: "user-7", lastMessageId: "" });
    expect(first.headers.get("x-nudge-user-token")).toBe(tokenFor("user-7"));

    const welcome = message({ title: "Welcome back" });
    first.push({ item: { case: "message", value: welcome } });
    await until(() => document.querySelector(".nudge-title")?.textContent === "Welcome back", "the pushed modal");

    first.cut();
    const [, second] = await net.streamsOpened(2);
    expect(second.request.lastMessageId).toBe(welcome.messageId);
    // The server replays from after the id; an overlap (the same message again) is not shown twice.
    const cart = message({ title: "Your cart misses you" });
    second.push({ item: { case: "message", value: welcome } });
    second.push({ item: { case: "message", value: cart } });
    await until(() => received.length === 2, "the replayed message");
    expect(received).toEqual([welcome.messageId, cart.messageId]);
    expect(sub.lastMessageId).toBe(cart.messageId);
    expect(states).toEqual(expect.arrayContaining(["connecting", "open", "waiting"]));
  });

  it("reopens a stream the server ended, and one that went silent past the idle timeout", async () => {
    const net = new FakeNudge();
    start(net, { idleTimeoutMs: 150 });
    sdk!.subscribe();
    const [first] = await net.streamsOpened(1);
    first.end();
    const [, second] = await net.streamsOpened(2);
    // Keep-alives hold the stream open past the idle timeout…
    // (ten of them 40 ms apart: well past the 150 ms timeout, with room for a slow machine)
    for (let i = 0; i < 10; i += 1) {
      second.push({ item: { case: "keepAliveTime", value: { seconds: 1n, nanos: 0 } } });
      await new Promise((r) => setTimeout(r, 40));
    }
    expect(net.streams.length).toBe(2);
    // …and silence does not.
    await net.streamsOpened(3);
    expect(second.closed).toBe(true);
  });

  it("stops on a refused token instead of retrying, and reports why", async () => {
    const net = new FakeNudge();
    net.subscribeFailures.push(new Failure(Code.PermissionDenied, "token is for user-8"));
    const errors: ConnectError[] = [];
    start(net, { onError: (e) => errors.push(e as ConnectError) });
    const sub = sdk!.subscribe();
    await sub.done;
    expect(sub.state).toBe("closed");
    expect(net.callsTo("Subscribe").length).toBe(1);
    expect(errors.map((e) => e.code)).toEqual([Code.PermissionDenied]);
  });

  it("retries UNAVAILABLE until the service is back", async () => {
    const net = new FakeNudge();
    net.subscribeFailures.push(new Failure(Code.Unavailable, "no healthy upstream"), new Failure(Code.Unavailable, "no healthy upstream"));
    start(net);
    sdk!.subscribe();
    await net.streamsOpened(1);
    expect(net.callsTo("Subscribe").length).toBe(3);
  });

  it("retries UNAUTHENTICATED when the token comes from a function (it may be renewed)", async () => {
    const net = new FakeNudge();
    net.subscribeFailures.push(new Failure(Code.Unauthenticated, "token expired"));
    start(net, { userToken: () => tokenFor("user-7") });
    sdk!.subscribe();
    await net.streamsOpened(1);
    expect(net.callsTo("Subscribe").length).toBe(2);
  });

  it("close() ends the stream and opens no other", async () => {
    const net = new FakeNudge();
    start(net);
    const sub = sdk!.subscribe();
    const [stream] = await net.streamsOpened(1);
    sub.close();
    await sub.done;
    await settle();
    expect(stream.closed).toBe(true);
    expect(net.callsTo("Subscribe").length).toBe(1);
  });
});

describe("Subscription backoff", () => {
  it("waits longer after each failure, up to the cap, and starts over once a stream opens", async () => {
    const waits: number[] = [];
    let attempts = 0;
    let onOpenNow = false;
    let sub: Subscription;
    const open = async function* (_last: string, _signal: AbortSignal, onOpen: () => void): AsyncIterable<never> {
      attempts += 1;
      if (onOpenNow) {
        onOpenNow = false;
        onOpen();
      }
      if (attempts >= 9) sub.close();
      throw new ConnectError("down", Code.Unavailable);
    };
    sub = new Subscription(open, {
      onMessage: () => {},
      backoff: { initialMs: 100, multiplier: 2, maxMs: 1000, jitter: 0 },
      sleep: async (ms) => {
        waits.push(ms);
        if (waits.length === 5) onOpenNow = true;
      },
    });
    await sub.done;
    expect(waits).toEqual([100, 200, 400, 800, 1000, 100, 200, 400]);
  });

  it("spreads waits by the jitter fraction either way", () => {
    const low = new Backoff({ initialMs: 1000, jitter: 0.2 }, () => 0);
    const high = new Backoff({ initialMs: 1000, jitter: 0.2 }, () => 1);
    expect(low.next()).toBe(800);
    expect(high.next()).toBe(1200);
    expect(() => new Backoff({ jitter: 1 })).toThrow(RangeError);
  });

  it("keeps the stream when the page's handler throws, and reports the error", async () => {
    const errors: ConnectError[] = [];
    let opens = 0;
    let sub: Subscription;
    const open = async function* () {
      opens += 1;
      yield { item: { case: "message" as const, value: message() } } as never;
      yield { item: { case: "message" as const, value: message() } } as never;
      sub.close();
    };
    let handled = 0;
    sub = new Subscription(open, { onMessage: () => { handled += 1; throw new Error("page bug"); },
      onError: (e) => errors.push(e), sleep: async () => {} });
    await sub.done;
    expect(opens).toBe(1);
    expect(handled).toBe(2);
    expect(errors.map((e) => e.rawMessage)).toEqual(["page bug", "page bug"]);
  });

  it("hands each message on once, however often it is replayed", async () => {
    const seen: InAppMessage[] = [];
    const m = message();
    let n = 0;
    let sub: Subscription;
    const open = async function* () {
      n += 1;
      yield { item: { case: "message" as const, value: m } } as never;
      if (n === 3) sub.close();
    };
    sub = new Subscription(open, { onMessage: (x) => seen.push(x), sleep: async () => {} });
    await sub.done;
    expect(n).toBe(3);
    expect(seen).toEqual([m]);
  });
});

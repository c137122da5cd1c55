/**
 * The Nudge web SDK. `init()` once, then the functions below act on that instance; or keep
 * the `Nudge` object `init` returns (or build several with `new Nudge(...)`).
 */
import { Nudge, type FetchOptions, type IdentifyInput, type NudgeOptions, type SubscribeOptions, type TrackOptions } from "./client.js";
import type { InAppMessage } from "./gen/nudge/delivery/v1/delivery_service_pb.js";
import type { Subscription } from "./subscription.js";

export { Nudge, RejectedEventError, API_KEY_HEADER, USER_TOKEN_HEADER } from "./client.js";
export type { NudgeOptions, IdentifyInput, TrackOptions, FetchOptions, SubscribeOptions } from "./client.js";
export type { BeforeDisplay, DisplayDecision, PendingReason } from "./display.js";
export { Subscription, type SubscriptionState } from "./subscription.js";
export type { BackoffOptions } from "./backoff.js";
export type { AttributeInput } from "./values.js";
export { DEFAULT_LABELS, type Labels } from "./render/labels.js";
export { STYLESHEET } from "./render/styles.js";
export { THEME_PROPERTIES } from "./render/theme.js";
export { VERSION } from "./version.js";
export type { InAppMessage } from "./gen/nudge/delivery/v1/delivery_service_pb.js";
export { Layout, ButtonActionType, QuestionType, Platform } from "./gen/nudge/common/v1/common_pb.js";

let instance: Nudge | undefined;

/** Starts the SDK (closing an earlier instance) and returns it. */
export function init(options: NudgeOptions): Nudge {
  instance?.close();
  instance = new Nudge(options);
  return instance;
}

function current(): Nudge {
  if (!instance) throw new Error("nudge: call init() first");
  return instance;
}

export const identify = (input?: IdentifyInput): Promise<void> => current().identify(input);
export const track = (name: string, properties?: Record<string, unknown>, options?: TrackOptions): Promise<void> =>
  current().track(name, properties, options);
export const fetchMessages = (options?: FetchOptions): Promise<InAppMessage[]> => current().fetchMessages(options);
export const subscribe = (options?: SubscribeOptions): Subscription => current().subscribe(options);
export const setScreen = (screen: string): Promise<void> => current().setScreen(screen);
export const showPending = (): Promise<void> => current().showPending();

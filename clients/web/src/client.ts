import { create } from "@bufbuild/protobuf";
import { timestampFromDate, timestampNow } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createClient, type Client, type Interceptor, type Transport } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import { Backoff, sleep, type BackoffOptions } from "./backoff.js";
import { Display, type BeforeDisplay, type PendingReason } from "./display.js";
import { EventSchema, Platform, type Button } from "./gen/nudge/common/v1/common_pb.js";
import {
  DeliveryService, InteractionType, SurveyAnswerSchema,
  ReportInteractionRequestSchema, type InAppMessage, type SurveyAnswer,
} from "./gen/nudge/delivery/v1/delivery_service_pb.js";
import { IngestionService, type RejectedEvent } from "./gen/nudge/ingestion/v1/ingestion_service_pb.js";
import type { Labels } from "./render/labels.js";
import type { Answer } from "./render/layouts.js";
import { isFatalByDefault, Subscription, type SubscriptionState } from "./subscription.js";
import { resolveToken, subjectOf, type TokenSource } from "./token.js";
import { toAttributes, toProperties, type AttributeInput } from "./values.js";
import { VERSION } from "./version.js";

/** Metadata the services read: the API key as `authorization: Bearer …` (nudgelib's
 * interceptor) and the signed user token beside it. */
export const API_KEY_HEADER = "authorization";
export const USER_TOKEN_HEADER = "x-nudge-user-token";

export interface NudgeOptions {
  /** The Envoy edge's address, e.g. `https://nudge.example.com`. */
  endpoint: string;
  /** A public-scope API key (safe to ship in a page only together with `userToken`). */
  apiKey: string;
  /** The signed user token, or a function returning a fresh one (called before each call,
   * so a short-lived token can be renewed). Its `sub` is the user id. */
  userToken?: TokenSource;
  /** The user id, when there is no token to read it from (backend keys in development). */
  userId?: string;
  platform?: Platform;
  appVersion?: string;
  /** BCP 47 locale for message content; default: the browser's. */
  locale?: string;
  /** Groups this page's events; default: a new id per `init`. */
  sessionId?: string;
  beforeDisplay?: BeforeDisplay;
  onDeepLink?: (target: string, message: InAppMessage) => void;
  /** How a URL button opens its (checked, http(s)) address; default: a new tab, no opener. */
  openUrl?: (url: string) => void;
  /** Errors the SDK handled itself (a failed report, a dropped stream); default: console.warn. */
  onError?: (error: unknown) => void;
  /** Where messages are drawn; default: document.body. */
  container?: HTMLElement;
  /** Add the default stylesheet (default true). */
  injectStyles?: boolean;
  labels?: Partial<Labels>;
  /** Reconnect waits for `subscribe()`. */
  backoff?: BackoffOptions;
  /** A silent stream is reopened after this long (default 45 000 ms). */
  idleTimeoutMs?: number;
  /** The network: a fetch function (default: the page's). Tests pass a fake. */
  fetch?: typeof globalThis.fetch;
  /** Or a whole connect transport, replacing the gRPC-Web one. */
  transport?: Transport;
  /** Per-call deadline for unary calls (default 10 000 ms). */
  timeoutMs?: number;
}

export interface IdentifyInput {
  /** Attributes to set; others are kept. */
  attributes?: Record<string, AttributeInput>;
  /** Attribute names to remove. */
  unset?: string[];
  /** IANA zone; default: the browser's, so send windows follow the user. "" leaves it as is. */
  timeZone?: string;
  /** BCP 47 locale; default: `init`'s locale. "" leaves it as is. */
  locale?: string;
  requestId?: string;
}

export interface TrackOptions {
  /** For deduplication of retries; default: a new UUID. */
  eventId?: string;
  occurredTime?: Date;
}

export interface FetchOptions {
  screen?: string;
  /** At most 10 (default 1). */
  limit?: number;
  /** Hand the messages to the display (default true); false only returns them. */
  display?: boolean;
}

export interface SubscribeOptions {
  /** Every new message, before it is displayed. */
  onMessage?: (message: InAppMessage) => void;
  onStateChange?: (state: SubscriptionState) => void;
  display?: boolean;
  /** Resume after this message id (e.g. one kept from an earlier page). */
  lastMessageId?: string;
}

/** An event the ingestion service refused (see `reason`, e.g. `INVALID_NAME`). */
export class RejectedEventError extends Error {
  readonly reason: string;
  constructor(rejected: RejectedEvent) {
    super(`event rejected: ${rejected.reason}: ${rejected.message}`);
    this.name = "RejectedEventError";
    this.reason = rejected.reason;
  }
}

const RETRYABLE = new Set([Code.Unavailable, Code.DeadlineExceeded, Code.ResourceExhausted, Code.Aborted]);
const REPORT_ATTEMPTS = 3;

export class Nudge {
  static readonly version = VERSION;
  readonly sessionId: string;
  private readonly delivery: Client<typeof DeliveryService>;
  private readonly ingestion: Client<typeof IngestionService>;
  private readonly display: Display;
  private readonly subscriptions = new Set<Subscription>();
  private readonly onError: (error: unknown) => void;

  constructor(private readonly options: NudgeOptions) {
    if (!options.endpoint && !options.transport) throw new TypeError("init: endpoint is required");
    if (!options.apiKey) throw new TypeError("init: apiKey is required");
    if (!options.userToken && !options.userId) throw new TypeError("init: userToken (or userId) is required");
    if (typeof options.userToken === "string" && !options.userId && !subjectOf(options.userToken)) {
      throw new TypeError("init: userToken is not a JWT with a `sub` claim; pass userId too");
    }
    this.onError = options.onError ?? ((error) => console.warn("nudge:", error));
    this.sessionId = options.sessionId ?? randomId();
    const transport = options.transport ?? createGrpcWebTransport({
      baseUrl: options.endpoint,
      fetch: options.fetch,
      interceptors: [apiKeyInterceptor(options.apiKey)],
    });
    this.delivery = createClient(DeliveryService, transport);
    this.ingestion = createClient(IngestionService, transport);
    this.display = new Display({
      reports: {
        impression: (m) => this.report(m, { type: InteractionType.IMPRESSION }),
        click: (m, button: Button) => this.report(m, { type: InteractionType.CLICK, buttonId: button.id }),
        dismiss: (m) => this.report(m, { type: InteractionType.DISMISS }),
        answer: (m, answers: Answer[]) => this.report(m, {
          type: InteractionType.SURVEY_ANSWER,
          answers: answers.map((a) => create(SurveyAnswerSchema, a)),
        }),
      },
      beforeDisplay: options.beforeDisplay,
      onDeepLink: options.onDeepLink,
      openUrl: options.openUrl,
      onError: this.onError,
      container: options.container,
      injectStyles: options.injectStyles,
      labels: options.labels,
    });
  }

  /** Sets the user's attributes (and by default their time zone and locale). */
  async identify(input: IdentifyInput = {}): Promise<void> {
    const { userId, headers } = await this.credentials();
    await this.ingestion.identify({
      userId,
      attributes: toAttributes(input.attributes ?? {}),
      unsetAttributes: input.unset ?? [],
      timeZone: input.timeZone ?? browserTimeZone(),
      locale: input.locale ?? this.locale(),
      occurredTime: timestampNow(),
      requestId: input.requestId ?? randomId(),
    }, { headers, timeoutMs: this.timeoutMs() });
  }

  /** Records one event for the user; throws RejectedEventError when ingestion refuses it. */
  async track(name: string, properties: Record<string, unknown> = {}, options: TrackOptions = {}): Promise<void> {
    const { userId, headers } = await this.credentials();
    const event = create(EventSchema, {
      eventId: options.eventId ?? randomId(),
      userId,
      name,
      properties: toProperties(properties),
      occurredTime: timestampFromDate(options.occurredTime ?? new Date()),
      platform: this.platform(),
      appVersion: this.options.appVersion ?? "",
      sessionId: this.sessionId,
    });
    const response = await this.ingestion.trackEvents({ events: [event] }, { headers, timeoutMs: this.timeoutMs() });
    if (response.rejected.length > 0) throw new RejectedEventError(response.rejected[0]);
  }

  /** The user's next messages for a screen; by default they are also displayed. The screen
   * becomes the current one, so tooltips anchored to it may show. */
  async fetchMessages(options: FetchOptions = {}): Promise<InAppMessage[]> {
    const { userId, headers } = await this.credentials();
    if (options.screen !== undefined) await this.display.setScreen(options.screen);
    const response = await this.delivery.fetchMessages({
      userId,
      platform: this.platform(),
      screen: options.screen ?? "",
      appVersion: this.options.appVersion ?? "",
      locale: this.locale(),
      limit: options.limit ?? 0,
    }, { headers, timeoutMs: this.timeoutMs() });
    if (options.display !== false) for (const message of response.messages) await this.display.offer(message);
    return response.messages;
  }

  /** Holds a stream of real-time messages until `close()`, reconnecting with backoff and
   * resuming after the last message received. */
  subscribe(options: SubscribeOptions = {}): Subscription {
    const tokenIsRenewable = typeof this.options.userToken === "function";
    const subscription: Subscription = new Subscription(
      (lastMessageId, signal, onOpen) => this.stream(lastMessageId, signal, onOpen),
      {
        onMessage: (message) => {
          options.onMessage?.(message);
          if (options.display !== false) this.display.offer(message).catch(this.onError);
        },
        onError: this.onError,
        onStateChange: options.onStateChange,
        backoff: this.options.backoff,
        idleTimeoutMs: this.options.idleTimeoutMs,
        lastMessageId: options.lastMessageId,
        // A refused token may be renewed by the next call of a token function: try again then.
        isFatal: (error) => isFatalByDefault(error) && !(tokenIsRenewable && error.code === Code.Unauthenticated),
      },
    );
    this.subscriptions.add(subscription);
    subscription.done.finally(() => this.subscriptions.delete(subscription));
    return subscription;
  }

  /** Tells the SDK which screen the user is on (tooltips wait for theirs). */
  setScreen(screen: string): Promise<void> {
    return this.display.setScreen(screen);
  }

  /** Shows a message through the same path as fetched ones (beforeDisplay, queue, reports). */
  show(message: InAppMessage): Promise<void> {
    return this.display.offer(message);
  }

  /** Offers again the messages `beforeDisplay` kept for later (and tooltips still waiting). */
  showPending(): Promise<void> {
    return this.display.showPending();
  }

  get pending(): Array<{ message: InAppMessage; reason: PendingReason }> {
    return this.display.pending;
  }

  /** The message on screen now. */
  get shown(): InAppMessage | undefined {
    return this.display.shown;
  }

  /** Ends every subscription and takes any message off the page. */
  close(): void {
    for (const subscription of this.subscriptions) subscription.close();
    this.display.clear();
  }

  private async *stream(lastMessageId: string, signal: AbortSignal, onOpen: () => void) {
    const { userId, headers } = await this.credentials();
    yield* this.delivery.subscribe({
      userId,
      platform: this.platform(),
      appVersion: this.options.appVersion ?? "",
      locale: this.locale(),
      lastMessageId,
    }, { headers, signal, onHeader: onOpen });
  }

  /** Reports one interaction, retrying transient failures (the RPC is idempotent). Failures
   * go to onError: a lost report must never break the page. */
  private report(message: InAppMessage, fields: { type: InteractionType; buttonId?: string; answers?: SurveyAnswer[] }): void {
    // No occurredTime: the report goes at once (retried for seconds at most), so delivery's
    // clock stamps it as well as the device's would, and a device clock minutes fast cannot
    // get the report refused (delivery takes none more than 5 minutes ahead).
    const backoff = new Backoff(this.options.backoff);
    const attempt = async (): Promise<void> => {
      for (let n = 1; ; n += 1) {
        try {
          const { userId, headers } = await this.credentials();
          await this.delivery.reportInteraction(
            create(ReportInteractionRequestSchema, { ...fields, messageId: message.messageId, userId }),
            { headers, timeoutMs: this.timeoutMs() },
          );
          return;
        } catch (err) {
          const error = ConnectError.from(err);
          if (n >= REPORT_ATTEMPTS || !RETRYABLE.has(error.code)) throw error;
          await sleep(backoff.next());
        }
      }
    };
    attempt().catch(this.onError);
  }

  private async credentials(): Promise<{ userId: string; headers: Record<string, string> }> {
    const token = await resolveToken(this.options.userToken);
    const userId = this.options.userId ?? (token ? subjectOf(token) : undefined);
    if (!userId) throw new ConnectError("the user token has no `sub` claim and no userId was given", Code.Unauthenticated);
    return { userId, headers: token ? { [USER_TOKEN_HEADER]: token } : {} };
  }

  private platform(): Platform {
    return this.options.platform ?? Platform.WEB;
  }

  private locale(): string {
    return this.options.locale ?? globalThis.navigator?.language ?? "";
  }

  private timeoutMs(): number {
    return this.options.timeoutMs ?? 10_000;
  }
}

function apiKeyInterceptor(apiKey: string): Interceptor {
  return (next) => (request) => {
    request.header.set(API_KEY_HEADER, `Bearer ${apiKey}`);
    return next(request);
  };
}

function browserTimeZone(): string {
  try {
    return Intl.DateTimeFormat().resolvedOptions().timeZone ?? "";
  } catch {
    return "";
  }
}

function randomId(): string {
  return globalThis.crypto.randomUUID();
}

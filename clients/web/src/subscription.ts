import { Code, ConnectError } from "@connectrpc/connect";
import { Backoff, sleep as defaultSleep, type BackoffOptions } from "./backoff.js";
import type { InAppMessage, SubscribeResponse } from "./gen/nudge/delivery/v1/delivery_service_pb.js";

export type SubscriptionState = "connecting" | "open" | "waiting" | "closed";

/** Opens one stream attempt. `onOpen` is called when the server's headers arrive (delivery
 * sends them at once, before any message or keep-alive). */
export type OpenStream = (
  lastMessageId: string,
  signal: AbortSignal,
  onOpen: () => void,
) => AsyncIterable<SubscribeResponse>;

export interface SubscriptionOptions {
  onMessage: (message: InAppMessage) => void;
  /** Every failed attempt, retried or not; the last one when the subscription gives up. */
  onError?: (error: ConnectError) => void;
  onStateChange?: (state: SubscriptionState) => void;
  backoff?: BackoffOptions;
  /** With no message nor keep-alive for this long the stream is taken as dead and reopened
   * (default 45 000: three of delivery's default 15 s keep-alives). */
  idleTimeoutMs?: number;
  /** Resume after this message id on the first attempt too (e.g. kept across page loads). */
  lastMessageId?: string;
  /** Whether an error ends the subscription instead of being retried. */
  isFatal?: (error: ConnectError) => boolean;
  /** Test seam: how to wait between attempts. */
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
  random?: () => number;
}

/** Codes that another attempt cannot fix: the call itself is wrong or not allowed. */
const FATAL = new Set([Code.InvalidArgument, Code.PermissionDenied, Code.Unauthenticated, Code.Unimplemented]);

export function isFatalByDefault(error: ConnectError): boolean {
  return FATAL.has(error.code);
}

// Enough ids to recognise a replayed message after any realistic reconnect, bounded so a
// page left open for days does not grow without end.
const SEEN_LIMIT = 1_000;

/**
 * A stream of a user's real-time messages that outlives the connection: when the stream
 * fails, ends, or goes silent it is reopened after a backoff, asking for what came after the
 * last message received (`last_message_id`), and a message seen before is not handed on twice.
 */
export class Subscription {
  private _state: SubscriptionState = "connecting";
  private _lastMessageId: string;
  private readonly seen = new Set<string>();
  private readonly stop = new AbortController();
  private readonly backoff: Backoff;
  /** Resolves when the subscription has stopped for good (closed, or a fatal error). */
  readonly done: Promise<void>;

  constructor(private readonly open: OpenStream, private readonly options: SubscriptionOptions) {
    this._lastMessageId = options.lastMessageId ?? "";
    this.backoff = new Backoff(options.backoff, options.random);
    this.done = this.run();
  }

  get state(): SubscriptionState {
    return this._state;
  }

  /** The id a reconnect resumes after; empty before the first message. */
  get lastMessageId(): string {
    return this._lastMessageId;
  }

  close(): void {
    this.stop.abort();
  }

  private setState(state: SubscriptionState): void {
    if (state === this._state) return;
    this._state = state;
    this.options.onStateChange?.(state);
  }

  private async run(): Promise<void> {
    const sleep = this.options.sleep ?? defaultSleep;
    const idleMs = this.options.idleTimeoutMs ?? 45_000;
    const isFatal = this.options.isFatal ?? isFatalByDefault;
    try {
      while (!this.stop.signal.aborted) {
        this.setState("connecting");
        const attempt = new AbortController();
        const abortAttempt = () => attempt.abort();
        this.stop.signal.addEventListener("abort", abortAttempt, { once: true });
        let idle: ReturnType<typeof setTimeout> | undefined;
        const armIdle = () => {
          clearTimeout(idle);
          idle = setTimeout(() => attempt.abort(new ConnectError("no message or keep-alive in time", Code.DeadlineExceeded)), idleMs);
        };
        armIdle();
        try {
          const stream = this.open(this._lastMessageId, attempt.signal, () => {
            this.backoff.reset();
            this.setState("open");
          });
          for await (const response of stream) {
            armIdle();
            this.setState("open");
            if (response.item.case === "message") this.receive(response.item.value);
          }
          // The server ended the stream (a replica shutting down): reopen after the usual wait.
        } catch (err) {
          if (this.stop.signal.aborted) break;
          const error = ConnectError.from(err);
          this.options.onError?.(error);
          if (isFatal(error)) break;
        } finally {
          clearTimeout(idle);
          this.stop.signal.removeEventListener("abort", abortAttempt);
        }
        if (this.stop.signal.aborted) break;
        this.setState("waiting");
        await sleep(this.backoff.next(), this.stop.signal);
      }
    } finally {
      this.setState("closed");
    }
  }

  private receive(message: InAppMessage): void {
    this._lastMessageId = message.messageId;
    if (this.seen.has(message.messageId)) return;
    this.seen.add(message.messageId);
    if (this.seen.size > SEEN_LIMIT) this.seen.delete(this.seen.values().next().value as string);
    try {
      this.options.onMessage(message);
    } catch (err) {
      // The page's handler failing is no reason to drop a healthy stream.
      this.options.onError?.(ConnectError.from(err));
    }
  }
}

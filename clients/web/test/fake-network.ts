/**
 * A fake of the network only: a `fetch` that speaks gRPC-Web (length-prefixed frames, trailers
 * in the body) like Envoy in front of the services would. The SDK's real transport, clients,
 * serializers and interceptors run unchanged above it.
 */
import { create, fromBinary, toBinary, type DescMessage, type MessageInitShape, type MessageShape } from "@bufbuild/protobuf";
import type { DescMethod } from "@bufbuild/protobuf";
import { Code } from "@connectrpc/connect";
import { DeliveryService, type SubscribeRequest, SubscribeResponseSchema } from "../src/gen/nudge/delivery/v1/delivery_service_pb.js";
import { IngestionService } from "../src/gen/nudge/ingestion/v1/ingestion_service_pb.js";

export interface Call {
  path: string;
  headers: Headers;
  request: any;
}

export class Failure {
  constructor(readonly code: Code, readonly message: string) {}
}

type Handler = (request: any, headers: Headers) => any | Failure | Promise<any | Failure>;

/** One Subscribe stream the fake server holds open. */
export class FakeStream {
  private controller!: ReadableStreamDefaultController<Uint8Array>;
  readonly body: ReadableStream<Uint8Array>;
  closed = false;

  constructor(readonly request: SubscribeRequest, readonly headers: Headers, signal: AbortSignal | undefined) {
    this.body = new ReadableStream({ start: (c) => { this.controller = c; } });
    signal?.addEventListener("abort", () => {
      if (this.closed) return;
      this.closed = true;
      this.controller.error(new DOMException("aborted", "AbortError"));
    });
  }

  push(item: MessageInitShape<typeof SubscribeResponseSchema>): void {
    this.controller.enqueue(frame(0, toBinary(SubscribeResponseSchema, create(SubscribeResponseSchema, item))));
  }

  /** Ends the stream as a server does: trailers with a status. */
  end(code: Code = 0 as Code, message = ""): void {
    this.closed = true;
    this.controller.enqueue(frame(0x80, trailers(code, message)));
    this.controller.close();
  }

  /** Cuts the connection, as a replica dying mid-stream would. */
  cut(): void {
    this.closed = true;
    this.controller.error(new TypeError("network error"));
  }
}

export class FakeNudge {
  readonly calls: Call[] = [];
  readonly streams: FakeStream[] = [];
  private readonly handlers = new Map<string, Handler>();
  private readonly methods = new Map<string, DescMethod>();
  private streamWaiters: Array<() => void> = [];
  /** What Subscribe answers instead of a stream, per attempt (then streams as usual). */
  readonly subscribeFailures: Failure[] = [];

  constructor() {
    for (const service of [DeliveryService, IngestionService]) {
      for (const method of service.methods) this.methods.set(`/${service.typeName}/${method.name}`, method);
    }
  }

  on(method: string, handler: Handler): this {
    this.handlers.set(method, handler);
    return this;
  }

  callsTo(method: string): Call[] {
    return this.calls.filter((c) => c.path.endsWith(`/${method}`));
  }

  /** Resolves once `count` Subscribe streams have been opened in all. */
  async streamsOpened(count: number): Promise<FakeStream[]> {
    while (this.streams.length < count) await new Promise<void>((r) => this.streamWaiters.push(r));
    return this.streams;
  }

  readonly fetch = async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    const url = new URL(typeof input === "string" ? input : input instanceof URL ? input.href : input.url);
    const method = this.methods.get(url.pathname);
    const headers = new Headers(init?.headers);
    if (!method) return trailersOnly(Code.Unimplemented, `no method ${url.pathname}`);
    const body = new Uint8Array(await new Response(init?.body as BodyInit).arrayBuffer());
    const request = fromBinary(method.input, body.subarray(5));
    this.calls.push({ path: url.pathname, headers, request });
    if (method.methodKind === "server_streaming") {
      const failure = this.subscribeFailures.shift();
      if (failure) return trailersOnly(failure.code, failure.message);
      const stream = new FakeStream(request as SubscribeRequest, headers, init?.signal ?? undefined);
      this.streams.push(stream);
      const waiters = this.streamWaiters;
      this.streamWaiters = [];
      for (const w of waiters) w();
      return new Response(stream.body, { status: 200, headers: { "content-type": "application/grpc-web+proto" } });
    }
    const handler = this.handlers.get(method.name);
    const result = handler ? await handler(request, headers) : create(method.output);
    if (result instanceof Failure) return trailersOnly(result.code, result.message);
    const message = create(method.output as DescMessage, result) as MessageShape<DescMessage>;
    const bytes = concat(frame(0, toBinary(method.output, message)), frame(0x80, trailers(0 as Code, "")));
    return new Response(streamOf(bytes), { status: 200, headers: { "content-type": "application/grpc-web+proto" } });
  };
}

function frame(flags: number, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(5 + data.length);
  out[0] = flags;
  new DataView(out.buffer).setUint32(1, data.length);
  out.set(data, 5);
  return out;
}

function trailers(code: Code, message: string): Uint8Array {
  return new TextEncoder().encode(`grpc-status: ${code}\r\ngrpc-message: ${encodeURIComponent(message)}\r\n`);
}

function trailersOnly(code: Code, message: string): Response {
  return new Response(streamOf(new Uint8Array(0)), {
    status: 200,
    headers: { "content-type": "application/grpc-web+proto", "grpc-status": String(code), "grpc-message": encodeURIComponent(message) },
  });
}

function streamOf(bytes: Uint8Array): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start(controller) {
      if (bytes.length) controller.enqueue(bytes);
      controller.close();
    },
  });
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

/** An unsigned JWT-shaped token with the given subject (the SDK only reads `sub`). */
export function tokenFor(sub: string, extra: Record<string, unknown> = {}): string {
  const enc = (o: unknown) => btoa(JSON.stringify(o)).replace(/=+$/, "").replace(/\+/g, "-").replace(/\//g, "_");
  return `${enc({ alg: "ES256", typ: "JWT" })}.${enc({ sub, exp: 4_102_444_800, ...extra })}.c2ln`;
}

/** Lets pending promise callbacks and stream reads run. */
export async function settle(rounds = 20): Promise<void> {
  for (let i = 0; i < rounds; i += 1) await new Promise((r) => setTimeout(r, 0));
}

/** Waits until `check` holds, failing after three seconds (generous for a loaded machine). */
export async function until(check: () => boolean, what = "condition"): Promise<void> {
  const end = Date.now() + 3_000;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

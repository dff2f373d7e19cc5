/**
 * `POST` intake on Supabase's edge: the API's `POST /api/messages/` with `Prefer: respond-async`
 * always applied. Every check comes before the one write (the `intake_message` RPC), in the API's
 * order: CORS preflight, header size, body size, method, intake key, headers and body, rate limits,
 * webhook URL, write.
 */

import type { Config } from "./config.ts";
import {
  errorResponse,
  HeadersTooLarge,
  IdempotencyConflict,
  PayloadTooLarge,
  responseFor,
  Unauthorized,
} from "./errors.ts";
import { IDEMPOTENCY_KEY, parseIntake, prefersAsync } from "./intake.ts";
import { WebhookUrlGuard } from "./netguard.ts";
import type { RateLimiter } from "./ratelimit.ts";
import type { IntakeStore } from "./store.ts";

export interface Deps {
  config: Config;
  store: IntakeStore;
  limiter: RateLimiter;
  guard?: WebhookUrlGuard;
}

// The API's limits (service/neiromatrius/api/limits.py). The edge runtime has joined repeated headers into
// one field before the function sees them, so "fields" counts distinct names here.
const MAX_HEADER_BYTES = 32 * 1024;
const MAX_HEADER_FIELDS = 100;

export type Handler = (request: Request) => Promise<Response>;

const CORS_METHODS = "GET, POST, OPTIONS";
const CORS_HEADERS = [
  "Authorization",
  "Content-Type",
  "Prefer",
  "Idempotency-Key",
  "X-Webhook-URL",
  "X-Platform",
  "X-Chat-ID",
];
const CORS_EXPOSE = "Location, Preference-Applied, Retry-After";

export function createHandler({ config, store, limiter, guard }: Deps): Handler {
  const urlGuard = guard ?? new WebhookUrlGuard(config.allowPrivateWebhooks);
  const key = config.intakeApiKey === null ? null : new TextEncoder().encode(config.intakeApiKey);

  async function intake(request: Request): Promise<Response> {
    checkHeaderSize(request.headers);
    const body = await readBody(request, config.maxBodyBytes);
    if (request.method !== "POST") {
      return errorResponse(405, "method_not_allowed", "Method Not Allowed", { headers: { Allow: "POST" } });
    }
    await requireIntakeKey(request.headers, key);
    const message = await parseIntake(request.headers, body, config.maxContentChars);
    const respondAsync = prefersAsync(request.headers.get("prefer"));
    await limiter.take(message);
    await urlGuard.check(message.webhookUrl);
    const result = await store.intake(message);
    if (result.conflict) {
      throw new IdempotencyConflict(IDEMPOTENCY_KEY, "this key was used before with a different request");
    }
    const headers: Record<string, string> = { Location: `${config.locationBase}/api/messages/${result.id}` };
    if (respondAsync) headers["Preference-Applied"] = "respond-async";
    return Response.json({ id: result.id, conversation_id: result.conversationId, state: result.state }, {
      status: 202,
      headers,
    });
  }

  return async (request: Request): Promise<Response> => {
    const origin = request.headers.get("origin");
    if (request.method === "OPTIONS" && origin !== null && request.headers.has("access-control-request-method")) {
      return preflight(request, origin, config.allowedOrigins);
    }
    let response: Response;
    try {
      response = await intake(request);
    } catch (exc) {
      response = responseFor(exc, request);
    }
    if (origin !== null && originAllowed(origin, config.allowedOrigins)) {
      response.headers.set("Access-Control-Allow-Origin", config.allowedOrigins.includes("*") ? "*" : origin);
      response.headers.set("Access-Control-Expose-Headers", CORS_EXPOSE);
      if (!config.allowedOrigins.includes("*")) {
        response.headers.set("Access-Control-Allow-Credentials", "true");
        response.headers.append("Vary", "Origin");
      }
    }
    return response;
  };
}

/** 431 when the headers are over the API's limits, counted as on the wire: name, ": ", value, CRLF. */
function checkHeaderSize(headers: Headers): void {
  let fields = 0;
  let bytes = 0;
  for (const [name, value] of headers) {
    fields += 1;
    bytes += name.length + value.length + 4;
  }
  if (fields > MAX_HEADER_FIELDS || bytes > MAX_HEADER_BYTES) {
    throw new HeadersTooLarge(
      "headers",
      `the headers must be at most ${MAX_HEADER_BYTES} bytes in ${MAX_HEADER_FIELDS} fields`,
    );
  }
}

/** The body, refused with 413 by its declared length or as soon as the bytes that arrive pass the limit. */
async function readBody(request: Request, maxBytes: number): Promise<Uint8Array> {
  const tooLarge = () => new PayloadTooLarge("body", `the body must be at most ${maxBytes} bytes`);
  const declared = request.headers.get("content-length");
  if (declared !== null && /^\d+$/.test(declared) && Number(declared) > maxBytes) throw tooLarge();
  if (request.body === null) return new Uint8Array();
  const chunks: Uint8Array[] = [];
  let received = 0;
  for await (const chunk of request.body) {
    received += chunk.byteLength;
    if (received > maxBytes) throw tooLarge();
    chunks.push(chunk);
  }
  const body = new Uint8Array(received);
  let offset = 0;
  for (const chunk of chunks) {
    body.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return body;
}

async function requireIntakeKey(headers: Headers, key: Uint8Array<ArrayBuffer> | null): Promise<void> {
  if (key === null) return;
  const value = headers.get("authorization") ?? "";
  const space = value.indexOf(" ");
  const scheme = space < 0 ? value : value.slice(0, space);
  const token = space < 0 ? "" : value.slice(space + 1).trim();
  if (scheme.toLowerCase() !== "bearer" || !(await constantTimeEqual(new TextEncoder().encode(token), key))) {
    throw new Unauthorized("Authorization", "a valid bearer token is required");
  }
}

/** Compares digests, so the time taken says nothing about how much of the key a guess got right. */
async function constantTimeEqual(a: Uint8Array<ArrayBuffer>, b: Uint8Array<ArrayBuffer>): Promise<boolean> {
  const [x, y] = await Promise.all([crypto.subtle.digest("SHA-256", a), crypto.subtle.digest("SHA-256", b)]);
  const left = new Uint8Array(x);
  const right = new Uint8Array(y);
  let difference = 0;
  for (let i = 0; i < left.length; i++) difference |= left[i] ^ right[i];
  return difference === 0;
}

function originAllowed(origin: string, allowed: string[]): boolean {
  return allowed.includes("*") || allowed.includes(origin);
}

/** Starlette's CORSMiddleware answer to a preflight: 200 with the allowances, or 400 naming what is refused. */
function preflight(request: Request, origin: string, allowed: string[]): Response {
  const method = request.headers.get("access-control-request-method") ?? "";
  const requested = (request.headers.get("access-control-request-headers") ?? "")
    .split(",").map((name) => name.trim().toLowerCase()).filter(Boolean);
  const allowedHeaders = new Set(
    [...CORS_HEADERS, "Accept", "Accept-Language", "Content-Language"].map((h) => h.toLowerCase()),
  );
  const failures: string[] = [];
  if (!originAllowed(origin, allowed)) failures.push("origin");
  if (!CORS_METHODS.split(", ").includes(method)) failures.push("method");
  if (requested.some((name) => !allowedHeaders.has(name))) failures.push("headers");
  const headers = new Headers({
    "Access-Control-Allow-Methods": CORS_METHODS,
    "Access-Control-Allow-Headers": ["Accept", "Accept-Language", "Content-Language", ...CORS_HEADERS].join(", "),
    "Access-Control-Max-Age": "600",
    "Vary": "Origin",
  });
  if (originAllowed(origin, allowed)) {
    headers.set("Access-Control-Allow-Origin", allowed.includes("*") ? "*" : origin);
    if (!allowed.includes("*")) headers.set("Access-Control-Allow-Credentials", "true");
  }
  if (failures.length > 0) {
    return new Response(`Disallowed CORS ${failures.join(", ")}`, { status: 400, headers });
  }
  return new Response("OK", { status: 200, headers });
}

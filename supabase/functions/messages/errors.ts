/**
 * The function's error family and its one mapping to HTTP, mirroring the API's error table
 * (service/neiromatrius/errors.py and api/errors.py): every body is `{"error": {"code", "message"[, "field"]}}`.
 */

export const RETRY_AFTER_SECONDS = 5;

/** A request the caller must fix; `field` names the header or JSON field at fault. */
export class InputError extends Error {
  readonly code: string = "invalid_request";
  readonly status: number = 422;

  constructor(readonly field: string, message: string) {
    super(message);
  }
}

export class MalformedBody extends InputError {
  override readonly code = "malformed_body";
  override readonly status = 400;
}

export class UnsupportedMediaType extends InputError {
  override readonly code = "unsupported_media_type";
  override readonly status = 415;
}

export class PayloadTooLarge extends InputError {
  override readonly code = "payload_too_large";
  override readonly status = 413;
}

export class HeadersTooLarge extends InputError {
  override readonly code = "headers_too_large";
  override readonly status = 431;
}

export class Unauthorized extends InputError {
  override readonly code = "unauthorized";
  override readonly status = 401;
}

export class IdempotencyConflict extends InputError {
  override readonly code = "idempotency_key_reused";
  override readonly status = 422;
}

/** Over a client's or a chat's rate limit: 429 with `Retry-After` (whole seconds, at least 1) and the scope. */
export class RateLimited extends Error {
  constructor(readonly scope: string, readonly retryAfter: number) {
    super(`Too many messages for this ${scope}; retry in ${retryAfter} s.`);
  }
}

/** Supabase failed; `unavailable` when retrying later may help (the database or PostgREST is down). */
export class StoreError extends Error {
  constructor(message: string, readonly unavailable: boolean) {
    super(message);
  }
}

export function errorResponse(
  status: number,
  code: string,
  message: string,
  options: { field?: string; scope?: string; headers?: HeadersInit } = {},
): Response {
  const error: Record<string, string> = { code, message };
  if (options.field !== undefined) error.field = options.field;
  if (options.scope !== undefined) error.scope = options.scope;
  return Response.json({ error }, { status, headers: options.headers });
}

/** The error table: what the caller sees for any exception; internals go to the log only. */
export function responseFor(exc: unknown, request: Request): Response {
  if (exc instanceof InputError) {
    const headers = exc instanceof Unauthorized ? { "WWW-Authenticate": "Bearer" } : undefined;
    return errorResponse(exc.status, exc.code, exc.message, { field: exc.field, headers });
  }
  if (exc instanceof RateLimited) {
    return errorResponse(429, "rate_limited", exc.message, {
      scope: exc.scope,
      headers: { "Retry-After": String(exc.retryAfter) },
    });
  }
  const path = new URL(request.url).pathname;
  if (exc instanceof StoreError && exc.unavailable) {
    console.warn(`Database error on ${request.method} ${path}: ${exc.message}`);
    return errorResponse(503, "database_unavailable", "The database is unavailable; retry later.", {
      headers: { "Retry-After": String(RETRY_AFTER_SECONDS) },
    });
  }
  console.error(`Unhandled error on ${request.method} ${path}:`, exc);
  return errorResponse(500, "internal_error", "An internal error occurred.");
}

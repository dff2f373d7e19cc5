/**
 * The intake request checked into an `IncomingMessage`, rule for rule as
 * service/neiromatrius/api/schemas.py (`parse_intake`): the same headers, patterns, limits, field
 * names, messages and order, and the same request fingerprint, so a retry that reaches the API
 * after the function (or the other way round) is recognised as the same request.
 */

import { InputError, MalformedBody, UnsupportedMediaType } from "./errors.ts";

export const WEBHOOK_URL = "X-Webhook-URL";
export const PLATFORM = "X-Platform";
export const CHAT_ID = "X-Chat-ID";
export const IDEMPOTENCY_KEY = "Idempotency-Key";

const MAX_URL_CHARS = 2048;
const MAX_ID_CHARS = 128;
const URL_PATTERN = /^[Hh][Tt][Tt][Pp][Ss]?:\/\/[\x21-\x7E]+$/;
const PLATFORM_PATTERN = /^[A-Za-z0-9_-]{1,32}$/;
const CHAT_ID_PATTERN = /^[\x21-\x7E]([\x20-\x7E]{0,126}[\x21-\x7E])?$/;
const IDEMPOTENCY_KEY_PATTERN = /^[\x21-\x7E][\x20-\x7E]{6,253}[\x21-\x7E]$/;
// deno-lint-ignore no-control-regex -- matching control characters is the point
const LINE_PATTERN = /^[^\u0000-\u001F\u007F-\u009F]*$/;
// With the u flag this matches only unpaired surrogates: Python's json decodes a pair to one code point.
const SURROGATE = /[\uD800-\uDFFF]/u;
// Python's `[\s\uFEFF]*` over str: every character for which str.isspace() holds, and the BOM.
// deno-lint-ignore no-control-regex -- matching control characters is the point
const BLANK = /^[\t\n\v\f\r\x1C-\x20\x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000\uFEFF]*$/;
// deno-lint-ignore no-control-regex -- matching control characters is the point
const TEXT_CONTROL = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]/;

export interface IncomingMessage {
  clientId: string;
  platform: string;
  chatId: string;
  content: string;
  webhookUrl: string;
  idempotencyKey: string | null;
  platformMessageId: string | null;
  fingerprint: string;
}

/** Check the headers, then the body; throw an `InputError` naming the first thing at fault. */
export async function parseIntake(
  headers: Headers,
  body: Uint8Array,
  maxContentChars: number,
): Promise<IncomingMessage> {
  const webhookUrl = header(
    headers,
    WEBHOOK_URL,
    URL_PATTERN,
    MAX_URL_CHARS,
    "an http(s) URL of at most 2048 characters",
  );
  const platform = header(headers, PLATFORM, PLATFORM_PATTERN, 32, "1 to 32 letters, digits, '_' or '-'").toLowerCase();
  const chatId = header(headers, CHAT_ID, CHAT_ID_PATTERN, MAX_ID_CHARS, "1 to 128 printable ASCII characters");
  const idempotencyKey = headers.get(IDEMPOTENCY_KEY);
  if (idempotencyKey !== null && !IDEMPOTENCY_KEY_PATTERN.test(idempotencyKey)) {
    throw new InputError(IDEMPOTENCY_KEY, `${IDEMPOTENCY_KEY} must be 8 to 255 printable ASCII characters`);
  }
  checkMediaType(headers.get("content-type"));
  const data = jsonObject(body);
  const clientId = identifier(member(data, "client_id"), "client_id");
  const content = checkContent(member(data, "content"), maxContentChars);
  const messageId = member(data, "message_id");
  const platformMessageId = messageId === undefined || messageId === null ? null : identifier(messageId, "message_id");
  const fingerprint = await requestFingerprint([clientId, platform, chatId, content, webhookUrl, platformMessageId]);
  return { clientId, platform, chatId, content, webhookUrl, idempotencyKey, platformMessageId, fingerprint };
}

/**
 * SHA-256 of the parts as a compact JSON array, like Python's
 * `json.dumps(parts, ensure_ascii=False, separators=(",", ":"))`: both escape only `"`, `\` and
 * control characters, the same way, and the checks above leave no lone surrogates to differ on.
 */
export async function requestFingerprint(parts: ReadonlyArray<string | null>): Promise<string> {
  const canonical = new TextEncoder().encode(JSON.stringify(parts));
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", canonical));
  return Array.from(digest, (byte) => byte.toString(16).padStart(2, "0")).join("");
}

/** Whether the `Prefer` header (RFC 7240) asks for `respond-async`. */
export function prefersAsync(value: string | null): boolean {
  if (value === null) return false;
  return splitUnquoted(value, ",").some((preference) =>
    preference.split(/[=;]/, 1)[0].trim().toLowerCase() === "respond-async"
  );
}

function header(headers: Headers, name: string, pattern: RegExp, maxChars: number, expected: string): string {
  const value = headers.get(name);
  if (value === null) throw new InputError(name, `the ${name} header is required`);
  if (value.length > maxChars || !pattern.test(value)) throw new InputError(name, `${name} must be ${expected}`);
  return value;
}

function checkMediaType(value: string | null): void {
  if (value === null) return;
  const [mediaType, ...params] = value.split(";").map((part) => part.trim().toLowerCase());
  const jsonType = mediaType === "application/json" ||
    (mediaType.startsWith("application/") && mediaType.endsWith("+json"));
  const charsets = params.filter((param) => param.startsWith("charset=")).map((param) => stripQuotes(param.slice(8)));
  if (!jsonType || charsets.some((charset) => charset !== "utf-8" && charset !== "utf8")) {
    throw new UnsupportedMediaType("Content-Type", "the body must be JSON (application/json, UTF-8)");
  }
}

function stripQuotes(text: string): string {
  return text.replace(/^"+|"+$/g, "");
}

type JsonObject = Record<string, unknown>;

const MALFORMED = "the body must be valid JSON encoded as UTF-8";
// Python's json recurses once per level and gives up near its recursion limit (1000 by default), which the
// API reports as malformed; V8's parser does not recurse. Refusing deeper bodies here keeps the two in step
// for every body either would plausibly see (real ones nest 2 or 3 levels).
const MAX_DEPTH = 900;

function jsonObject(body: Uint8Array): JsonObject {
  let data: unknown;
  let text: string;
  try {
    // fatal: refuse invalid UTF-8; ignoreBOM: keep a BOM, which JSON (like Python's json) refuses.
    text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(body);
    data = JSON.parse(text);
  } catch {
    throw new MalformedBody("body", MALFORMED);
  }
  const repeated = repeatedKey(text);
  if (repeated !== null) {
    throw new MalformedBody(
      "body",
      `the body must not repeat a key (${JSON.stringify(repeated).slice(0, 64)} appears twice)`,
    );
  }
  if (typeof data !== "object" || data === null || Array.isArray(data)) {
    throw new InputError("body", "the body must be a JSON object");
  }
  return data as JsonObject;
}

/**
 * The first key repeated within one object of `text` (valid JSON), or null, as the API's parser refuses them:
 * parsers disagree on which copy wins (JSON.parse keeps the last, others the first), so a proxy and the
 * function could read different requests from one body. Keys are compared decoded (`"a"` and `"\u0061"`).
 */
export function repeatedKey(text: string): string | null {
  const open: (Set<string> | null)[] = []; // a Set of keys per open object, null per open array
  let expectKey = false;
  for (let i = 0; i < text.length; i++) {
    const char = text[i];
    if (char === '"') {
      let end = i + 1;
      while (text[end] !== '"') end += text[end] === "\\" ? 2 : 1;
      const keys = open.at(-1);
      if (expectKey && keys) {
        const key = JSON.parse(text.slice(i, end + 1)) as string;
        if (keys.has(key)) return key;
        keys.add(key);
        expectKey = false;
      }
      i = end;
    } else if (char === "{" || char === "[") {
      open.push(char === "{" ? new Set() : null);
      if (open.length > MAX_DEPTH) throw new MalformedBody("body", MALFORMED);
      expectKey = char === "{";
    } else if (char === "}" || char === "]") {
      open.pop();
      expectKey = false;
    } else if (char === ",") {
      expectKey = open.length > 0 && open.at(-1) !== null;
    }
  }
  return null;
}

/** An own member only: `{"content": …}` must not find `constructor` or `__proto__` on Object's prototype. */
function member(data: JsonObject, key: string): unknown {
  return Object.hasOwn(data, key) ? data[key] : undefined;
}

/** Length in code points, as Python's len() counts. */
function codePoints(text: string): number {
  let count = 0;
  for (const _ of text) count++;
  return count;
}

function identifier(value: unknown, field: string): string {
  if (
    typeof value !== "string" || codePoints(value) < 1 || codePoints(value) > MAX_ID_CHARS ||
    !LINE_PATTERN.test(value) || SURROGATE.test(value)
  ) {
    throw new InputError(field, `${field} must be a string of 1 to 128 characters without control characters`);
  }
  return value;
}

function checkContent(value: unknown, maxChars: number): string {
  if (typeof value !== "string") throw new InputError("content", "content is required and must be a string");
  if (BLANK.test(value)) throw new InputError("content", "content must not be empty or only whitespace");
  if (codePoints(value) > maxChars) throw new InputError("content", `content must be at most ${maxChars} characters`);
  if (TEXT_CONTROL.test(value) || SURROGATE.test(value)) {
    throw new InputError("content", "content must not contain control characters other than tab and newlines");
  }
  return value;
}

/** Split at `separator` except inside double-quoted strings (which may hold `\"`). */
function splitUnquoted(text: string, separator: string): string[] {
  const parts: string[] = [];
  let current = "";
  let quoted = false;
  let escaped = false;
  for (const char of text) {
    if (escaped) escaped = false;
    else if (quoted && char === "\\") escaped = true;
    else if (char === '"') quoted = !quoted;
    else if (char === separator && !quoted) {
      parts.push(current);
      current = "";
      continue;
    }
    current += char;
  }
  parts.push(current);
  return parts;
}

/**
 * The shared table of hostile requests (testdata/hostile.json; tests/unit/api/test_hostile_requests.py holds
 * the API to it) sent to the function as bytes on a socket, through a real Deno.serve, so the function sees
 * what the runtime delivers. Each answer must be the API's, or the row's `edge` answer where the runtime
 * forces a difference. A fake store and no rate limit: this is about reading requests, not writing them.
 */

import { readConfig } from "./config.ts";
import { createHandler, type Handler } from "./handler.ts";
import type { IncomingMessage } from "./intake.ts";
import { WebhookUrlGuard } from "./netguard.ts";
import type { Intake, IntakeStore } from "./store.ts";
import { assert, assertEquals } from "./testing.ts";

interface Expected {
  status: number;
  code?: string;
  field?: string;
  why?: string;
}

interface Answer {
  status: number;
  code?: string;
  field?: string;
}

interface Case {
  name: string;
  set?: [string, string][];
  add?: [string, string][];
  remove?: string[];
  pad?: { fields: number; bytes: number };
  body?: string;
  body_base64?: string;
  nested?: number;
  content_chars?: number;
  api: Expected;
  edge?: Expected;
}

interface Table {
  base: { headers: [string, string][]; body: string };
  cases: Case[];
}

const table: Table = JSON.parse(await Deno.readTextFile(new URL("./testdata/hostile.json", import.meta.url)));

class MemoryStore implements IntakeStore {
  readonly written: IncomingMessage[] = [];

  intake(message: IncomingMessage): Promise<Intake> {
    this.written.push(message);
    return Promise.resolve({
      id: crypto.randomUUID(),
      conversationId: crypto.randomUUID(),
      state: "pending",
      conflict: false,
    });
  }
}

/** The case's headers (in order, repeats kept) and body, as test_hostile_requests.py builds them. */
function build(item: Case): { headers: [string, string][]; body: Uint8Array } {
  let headers = [...table.base.headers];
  const without = (name: string) => headers.filter(([other]) => other.toLowerCase() !== name.toLowerCase());
  for (const [name, value] of item.set ?? []) headers = [...without(name), [name, value]];
  for (const name of item.remove ?? []) headers = without(name);
  headers.push(...(item.add ?? []));
  for (let i = 0; i < (item.pad?.fields ?? 0); i++) headers.push([`X-Pad-${i}`, "a".repeat(item.pad!.bytes)]);
  let body: Uint8Array;
  if (item.body_base64 !== undefined) body = Uint8Array.from(atob(item.body_base64), (c) => c.charCodeAt(0));
  else if (item.nested !== undefined) body = encode("[".repeat(item.nested) + "]".repeat(item.nested));
  else if (item.content_chars !== undefined) {
    body = encode(JSON.stringify({ client_id: "hostile_client", content: "x".repeat(item.content_chars) }));
  } else body = encode(item.body ?? table.base.body);
  return { headers, body };
}

function encode(text: string): Uint8Array {
  return new TextEncoder().encode(text);
}

interface RawResponse {
  status: number;
  headers: Map<string, string>;
  body: string;
}

/** One HTTP/1.1 request written as bytes (repeated headers stay repeated on the wire), the answer read to EOF. */
async function send(port: number, headers: [string, string][], body: Uint8Array): Promise<RawResponse> {
  const head = [
    "POST /messages HTTP/1.1",
    "Host: edge.test",
    `Content-Length: ${body.byteLength}`,
    "Connection: close",
    ...headers.map(([name, value]) => `${name}: ${value}`),
    "",
    "",
  ].join("\r\n");
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    const request = new Uint8Array([...encode(head), ...body]);
    for (let written = 0; written < request.byteLength;) written += await conn.write(request.subarray(written));
    const chunks: Uint8Array[] = [];
    const buffer = new Uint8Array(65536);
    for (let read = await conn.read(buffer); read !== null; read = await conn.read(buffer)) {
      chunks.push(buffer.slice(0, read));
    }
    return parse(new TextDecoder().decode(new Uint8Array(chunks.flatMap((chunk) => [...chunk]))));
  } finally {
    conn.close();
  }
}

function parse(raw: string): RawResponse {
  const split = raw.indexOf("\r\n\r\n");
  const [statusLine, ...lines] = raw.slice(0, split).split("\r\n");
  const headers = new Map(lines.map((line) => {
    const colon = line.indexOf(":");
    return [line.slice(0, colon).toLowerCase(), line.slice(colon + 1).trim()] as [string, string];
  }));
  let body = raw.slice(split + 4);
  if (headers.get("transfer-encoding") === "chunked") body = dechunk(body);
  return { status: Number(statusLine.split(" ")[1]), headers, body };
}

function dechunk(text: string): string {
  let out = "";
  for (let at = 0;;) {
    const end = text.indexOf("\r\n", at);
    const size = parseInt(text.slice(at, end), 16);
    if (!size) return out;
    out += text.slice(end + 2, end + 2 + size);
    at = end + 2 + size + 2;
  }
}

async function serving(handler: Handler, run: (port: number) => Promise<void>): Promise<void> {
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, handler);
  try {
    await run(server.addr.port);
  } finally {
    await server.shutdown();
  }
}

const config = readConfig((name) => ({ SUPABASE_URL: "http://127.0.0.1:9", SUPABASE_SERVICE_ROLE_KEY: "x" })[name]);
const noLimit = { take: () => Promise.resolve() };
const offline = (host: string): Promise<string[]> => Promise.reject(new Error(`${host} does not resolve`));

Deno.test("every hostile request in the shared table gets the API's answer, or the documented edge answer", async () => {
  const store = new MemoryStore();
  const handler = createHandler({ config, store, limiter: noLimit, guard: new WebhookUrlGuard(false, offline) });
  const mismatches: { name: string; got: Answer; want: Answer }[] = [];
  await serving(handler, async (port) => {
    for (const item of table.cases) {
      const { headers, body } = build(item);
      const response = await send(port, headers, body);
      const expected = item.edge ?? item.api;
      const want = { status: expected.status, code: expected.code, field: expected.field };
      const error = response.status >= 400 && response.body ? JSON.parse(response.body).error : undefined;
      const got = { status: response.status, code: error?.code, field: error?.field };
      if (JSON.stringify(got) !== JSON.stringify(want)) mismatches.push({ name: item.name, got, want });
    }
  });
  assertEquals(mismatches, []);
  const accepted = table.cases.filter((item) => (item.edge ?? item.api).status === 202).length;
  assertEquals(store.written.length, accepted, "only accepted requests are written");
});

Deno.test("what the runtime delivers for a repeated header: one value, the copies joined with ', '", async () => {
  const seen: (string | null)[] = [];
  const echo = (request: Request) => {
    seen.push(request.headers.get("x-chat-id"), request.headers.get("idempotency-key"));
    return Promise.resolve(new Response(null, { status: 204 }));
  };
  await serving(echo, async (port) => {
    const response = await send(port, [
      ["X-Chat-ID", "hostile-1"],
      ["X-Chat-ID", "hostile-2"],
      ["Idempotency-Key", "hostile-key-1"],
      ["idempotency-key", "hostile-key-2"],
    ], new Uint8Array());
    assertEquals(response.status, 204);
  });
  assertEquals(seen, ["hostile-1, hostile-2", "hostile-key-1, hostile-key-2"]);
  // So the function cannot tell two headers from one whose value holds ", ": the table's "sent twice" rows.
  const joined = table.cases.filter((item) => item.edge?.why?.includes("joined"));
  assert(joined.length > 0 && joined.every((item) => item.name.endsWith("sent twice")), "the joined rows");
});

Deno.test("what the runtime does with more than 128 header fields: 400 itself, the function never runs", async () => {
  let calls = 0;
  const counting = () => {
    calls += 1;
    return Promise.resolve(new Response(null, { status: 204 }));
  };
  await serving(counting, async (port) => {
    // With Host, Content-Length and Connection: 129 fields, then 128.
    const many = Array.from({ length: 126 }, (_, i): [string, string] => [`X-Pad-${i}`, "a"]);
    const refused = await send(port, many, new Uint8Array());
    assertEquals([refused.status, refused.body], [400, ""]);
    const fewer = await send(port, many.slice(0, 125), new Uint8Array());
    assertEquals(fewer.status, 204);
  });
  assertEquals(calls, 1);
  const differences = table.cases.filter((item) => item.edge !== undefined);
  assert(differences.every((item) => item.edge!.why!.includes("joined") || item.edge!.why!.includes("hyper")));
});

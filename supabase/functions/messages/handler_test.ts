/**
 * The function against a real Supabase (the local stack in `make test`): the real supabase-js
 * client, the real `intake_message` RPC, and the rows it leaves, read back through PostgREST with
 * the service role key. Needs SUPABASE_URL, SUPABASE_SERVICE_ROLE_KEY and SUPABASE_ANON_KEY.
 */

import { createClient } from "npm:@supabase/supabase-js@2.119.1";

import { type Config, readConfig } from "./config.ts";
import { createHandler, type Handler } from "./handler.ts";
import { requestFingerprint } from "./intake.ts";
import { PostgresRateLimiter } from "./ratelimit.ts";
import { connectClient, SupabaseIntakeStore } from "./store.ts";
import { assert, assertEquals } from "./testing.ts";

const SUPABASE_URL = Deno.env.get("SUPABASE_URL") ?? "";
const SERVICE_KEY = Deno.env.get("SUPABASE_SERVICE_ROLE_KEY") ?? "";
const ANON_KEY = Deno.env.get("SUPABASE_ANON_KEY") ?? "";
const WEBHOOK = "https://example.com/hook"; // RFC 2606: public where DNS answers, unresolvable offline

const admin = createClient(SUPABASE_URL, SERVICE_KEY, { auth: { persistSession: false, autoRefreshToken: false } });

function config(overrides: Partial<Config> = {}): Config {
  const env: Record<string, string> = { SUPABASE_URL, SUPABASE_SERVICE_ROLE_KEY: SERVICE_KEY };
  return { ...readConfig((name) => env[name]), ...overrides };
}

function handler(overrides: Partial<Config> = {}, key = SERVICE_KEY): Handler {
  const settings = config(overrides);
  const client = connectClient(settings.supabaseUrl, key);
  const limits = { clientPerMinute: settings.rateLimitClientPerMinute, chatPerMinute: settings.rateLimitChatPerMinute };
  return createHandler({
    config: settings,
    store: new SupabaseIntakeStore(client),
    limiter: new PostgresRateLimiter(client, limits),
  });
}

/** A client of this test only; its rows go when it does (the foreign keys cascade). */
async function withClient(run: (clientId: string) => Promise<void>): Promise<void> {
  const clientId = `edge-${crypto.randomUUID()}`;
  try {
    await run(clientId);
  } finally {
    await removeClient(clientId);
  }
}

async function removeClient(clientId: string): Promise<void> {
  const { error } = await admin.from("clients").delete().eq("id", clientId);
  if (error) throw new Error(`cleanup: ${error.message}`);
}

interface Post {
  headers?: Record<string, string | null>;
  body?: unknown;
  raw?: BodyInit;
}

function intakeRequest(clientId: string, { headers = {}, body, raw }: Post = {}): Request {
  const all: Record<string, string | null> = {
    "Content-Type": "application/json",
    "X-Webhook-URL": WEBHOOK,
    "X-Platform": "Test",
    "X-Chat-ID": "chat-1",
    ...headers,
  };
  const present = Object.entries(all).filter((entry): entry is [string, string] => entry[1] !== null);
  const content = raw ?? JSON.stringify(body ?? { client_id: clientId, content: "Привет! Тестовое сообщение" });
  return new Request("http://edge.test/messages", { method: "POST", headers: present, body: content });
}

interface MessageRow {
  id: string;
  conversation_id: string;
  direction: string;
  state: string;
  content: string;
  idempotency_key: string | null;
  platform_message_id: string | null;
  request_fingerprint: string;
}

async function messages(clientId: string): Promise<MessageRow[]> {
  const { data, error } = await admin.from("messages").select("*").eq("client_id", clientId).order("created_at");
  if (error) throw new Error(error.message);
  return data as MessageRow[];
}

async function clientRows(clientId: string): Promise<number> {
  const { data, error } = await admin.from("clients").select("id").eq("id", clientId);
  if (error) throw new Error(error.message);
  return data.length;
}

async function errorOf(response: Response): Promise<{ status: number; code: string; field?: string }> {
  const body = await response.json();
  assertEquals(Object.keys(body), ["error"]);
  return { status: response.status, code: body.error.code, field: body.error.field };
}

Deno.test("a valid request is answered 202 like the API's async answer and leaves a pending message", async () => {
  await withClient(async (clientId) => {
    const response = await handler()(intakeRequest(clientId, { headers: { "Prefer": "respond-async" } }));
    assertEquals(response.status, 202);
    const body = await response.json();
    assertEquals(Object.keys(body), ["id", "conversation_id", "state"]);
    assertEquals(body.state, "pending");
    assertEquals(response.headers.get("location"), `/api/messages/${body.id}`);
    assertEquals(response.headers.get("preference-applied"), "respond-async");

    const rows = await messages(clientId);
    assertEquals(rows.length, 1);
    const [row] = rows;
    assertEquals([row.id, row.conversation_id, row.direction, row.state], [
      body.id,
      body.conversation_id,
      "inbound",
      "pending",
    ]);
    assertEquals(row.content, "Привет! Тестовое сообщение");
    const parts = [clientId, "test", "chat-1", "Привет! Тестовое сообщение", WEBHOOK, null];
    assertEquals(row.request_fingerprint, await requestFingerprint(parts));
    const { data: conversation } = await admin.from("conversations").select("platform,chat_id,webhook_url")
      .eq("id", body.conversation_id).single();
    assertEquals(conversation, { platform: "test", chat_id: "chat-1", webhook_url: WEBHOOK });
  });
});

Deno.test("the same Idempotency-Key twice gives the same id and one row; with another body, a conflict", async () => {
  await withClient(async (clientId) => {
    const serve = handler();
    const key = { "Idempotency-Key": `key-${crypto.randomUUID()}` };
    const first = await serve(intakeRequest(clientId, { headers: key }));
    const second = await serve(intakeRequest(clientId, { headers: key }));
    assertEquals([first.status, second.status], [202, 202]);
    const [a, b] = [await first.json(), await second.json()];
    assertEquals(b, a);

    const changed = await serve(
      intakeRequest(clientId, { headers: key, body: { client_id: clientId, content: "Другое" } }),
    );
    assertEquals(await errorOf(changed), { status: 422, code: "idempotency_key_reused", field: "Idempotency-Key" });
    const rows = await messages(clientId);
    assertEquals(rows.map((row) => [row.id, row.idempotency_key]), [[a.id, key["Idempotency-Key"]]]);
  });
});

Deno.test("a platform message_id makes a retry without a key safe", async () => {
  await withClient(async (clientId) => {
    const serve = handler();
    const body = { client_id: clientId, content: "hello", message_id: "tg-1001" };
    const first = await (await serve(intakeRequest(clientId, { body }))).json();
    const second = await (await serve(intakeRequest(clientId, { body }))).json();
    assertEquals(second.id, first.id);
    assertEquals((await messages(clientId)).map((row) => row.platform_message_id), ["tg-1001"]);
  });
});

const INVALID: [string, Post | ((clientId: string) => Post), number, string][] = [
  ["no webhook URL", { headers: { "X-Webhook-URL": null } }, 422, "X-Webhook-URL"],
  ["a webhook URL that is not http(s)", { headers: { "X-Webhook-URL": "ftp://example.com/" } }, 422, "X-Webhook-URL"],
  ["a webhook URL with a space", { headers: { "X-Webhook-URL": "https://exa mple.com/" } }, 422, "X-Webhook-URL"],
  ["no platform", { headers: { "X-Platform": null } }, 422, "X-Platform"],
  ["a platform with a space", { headers: { "X-Platform": "my platform" } }, 422, "X-Platform"],
  ["a 33-character platform", { headers: { "X-Platform": "p".repeat(33) } }, 422, "X-Platform"],
  ["no chat id", { headers: { "X-Chat-ID": null } }, 422, "X-Chat-ID"],
  ["a 129-character chat id", { headers: { "X-Chat-ID": "c".repeat(129) } }, 422, "X-Chat-ID"],
  ["a short Idempotency-Key", { headers: { "Idempotency-Key": "short" } }, 422, "Idempotency-Key"],
  ["a text/plain body", { headers: { "Content-Type": "text/plain" } }, 415, "Content-Type"],
  ["a latin-1 JSON body", { headers: { "Content-Type": "application/json; charset=latin-1" } }, 415, "Content-Type"],
  ["a body that is not JSON", { raw: "{not json" }, 400, "body"],
  ["a body that is not UTF-8", { raw: new Uint8Array([0x7b, 0x22, 0xff, 0x22, 0x7d]) }, 400, "body"],
  ["a JSON array", { raw: "[]" }, 422, "body"],
  ["no client_id", { body: { content: "hi" } }, 422, "client_id"],
  ["a numeric client_id", { body: { client_id: 42, content: "hi" } }, 422, "client_id"],
  ["a 129-character client_id", { body: { client_id: "x".repeat(129), content: "hi" } }, 422, "client_id"],
  ["a client_id with a control character", { body: { client_id: "a\u0007b", content: "hi" } }, 422, "client_id"],
  ["no content", (id) => ({ body: { client_id: id } }), 422, "content"],
  ["blank content", (id) => ({ body: { client_id: id, content: " \n\u3000\uFEFF" } }), 422, "content"],
  ["content over 4000 characters", (id) => ({ body: { client_id: id, content: "😀".repeat(4001) } }), 422, "content"],
  ["content with NUL", (id) => ({ body: { client_id: id, content: "a\u0000b" } }), 422, "content"],
  ["content with a lone surrogate", (id) => ({ raw: `{"client_id":"${id}","content":"a\\ud800"}` }), 422, "content"],
  ["an empty message_id", (id) => ({ body: { client_id: id, content: "hi", message_id: "" } }), 422, "message_id"],
  ["a numeric message_id", (id) => ({ body: { client_id: id, content: "hi", message_id: 7 } }), 422, "message_id"],
];

Deno.test("each invalid header or field is refused with the API's status, naming it, and writes nothing", async () => {
  await withClient(async (clientId) => {
    const serve = handler();
    for (const [name, post, status, field] of INVALID) {
      const response = await serve(intakeRequest(clientId, typeof post === "function" ? post(clientId) : post));
      const error = await errorOf(response);
      assertEquals([error.status, error.field], [status, field], name);
    }
    assertEquals(await messages(clientId), []);
    assertEquals(await clientRows(clientId), 0);
  });
});

Deno.test("4000 characters (code points, as Python counts) are accepted; MAX_CONTENT_CHARS lowers the limit", async () => {
  await withClient(async (clientId) => {
    const ok = await handler()(intakeRequest(clientId, { body: { client_id: clientId, content: "😀".repeat(4000) } }));
    assertEquals(ok.status, 202);
    await ok.body?.cancel();
    const short = handler({ maxContentChars: 10 });
    const refused = await short(intakeRequest(clientId, { body: { client_id: clientId, content: "x".repeat(11) } }));
    assertEquals(await refused.json(), {
      error: { code: "invalid_request", message: "content must be at most 10 characters", field: "content" },
    });
    assertEquals((await messages(clientId)).length, 1);
  });
});

Deno.test("a body over MAX_BODY_BYTES is refused with 413, by Content-Length or as it streams", async () => {
  await withClient(async (clientId) => {
    const serve = handler();
    const big = JSON.stringify({ client_id: clientId, content: "x".repeat(70_000) });
    const declared = await serve(intakeRequest(clientId, { raw: big }));
    assertEquals(await errorOf(declared), { status: 413, code: "payload_too_large", field: "body" });

    const chunk = new TextEncoder().encode("x".repeat(16_384));
    let sent = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent++ < 8) controller.enqueue(chunk);
        else controller.close();
      },
    });
    const streamed = await serve(intakeRequest(clientId, { raw: stream }));
    assertEquals(await errorOf(streamed), { status: 413, code: "payload_too_large", field: "body" });
    assertEquals(await messages(clientId), []);
  });
});

Deno.test("internal webhook URLs are refused with 422 naming X-Webhook-URL, and written only when allowed", async () => {
  await withClient(async (clientId) => {
    const serve = handler();
    const urls = [
      "http://127.0.0.1:9/hook",
      "http://localhost:8000/hook",
      "http://2130706433/",
      "http://0x7f.1/",
      "http://[::ffff:127.0.0.1]/",
      "http://169.254.169.254/latest/meta-data/",
      "http://100.100.100.200/",
      "http://user:pw@example.com/",
    ];
    for (const url of urls) {
      const response = await serve(intakeRequest(clientId, { headers: { "X-Webhook-URL": url } }));
      assertEquals(await errorOf(response), { status: 422, code: "invalid_request", field: "X-Webhook-URL" }, url);
    }
    assertEquals(await messages(clientId), []);
    const allowed = await handler({ allowPrivateWebhooks: true })(
      intakeRequest(clientId, { headers: { "X-Webhook-URL": "http://127.0.0.1:9/hook" } }),
    );
    assertEquals(allowed.status, 202);
    await allowed.body?.cancel();
    assertEquals((await messages(clientId)).length, 1);
  });
});

Deno.test("with INTAKE_API_KEY a bearer token is required, and nothing is written without it", async () => {
  await withClient(async (clientId) => {
    const serve = handler({ intakeApiKey: "intake-secret-123" });
    for (const authorization of [null, "Bearer wrong-secret", "Basic intake-secret-123", "Bearer intake-secret-12"]) {
      const response = await serve(intakeRequest(clientId, { headers: { Authorization: authorization } }));
      assertEquals(response.headers.get("www-authenticate"), "Bearer");
      assertEquals(await errorOf(response), { status: 401, code: "unauthorized", field: "Authorization" });
    }
    assertEquals(await clientRows(clientId), 0);
    const ok = await serve(intakeRequest(clientId, { headers: { Authorization: "bearer  intake-secret-123 " } }));
    assertEquals(ok.status, 202);
    await ok.body?.cancel();
  });
});

Deno.test("an unreachable database is 503 with Retry-After; a refused RPC is 500; neither leaks internals", async () => {
  await withClient(async (clientId) => {
    const down = await handler({ supabaseUrl: "http://127.0.0.1:9" }, SERVICE_KEY)(intakeRequest(clientId));
    assertEquals(down.status, 503);
    assertEquals(down.headers.get("retry-after"), "5");
    assertEquals(await down.json(), {
      error: { code: "database_unavailable", message: "The database is unavailable; retry later." },
    });
    // The anon key may not execute intake_message: a misconfigured key is not worth retrying.
    const refused = await handler({}, ANON_KEY)(intakeRequest(clientId));
    assertEquals(await refused.json(), { error: { code: "internal_error", message: "An internal error occurred." } });
    assertEquals(refused.status, 500);
    assertEquals(await clientRows(clientId), 0);
  });
});

Deno.test("rate limits: per chat, then per client, in Postgres; 429 with Retry-After and scope; nothing written", async () => {
  await withClient(async (clientId) => {
    const serve = handler({ rateLimitChatPerMinute: 2, rateLimitClientPerMinute: 3 });
    const post = (chat: string) => serve(intakeRequest(clientId, { headers: { "X-Chat-ID": chat } }));
    const statuses = [];
    for (const chat of ["a", "a"]) {
      const response = await post(chat);
      statuses.push(response.status);
      await response.body?.cancel();
    }
    assertEquals(statuses, [202, 202]);

    const chatFull = await post("a");
    assertEquals(chatFull.status, 429);
    assertEquals(chatFull.headers.get("retry-after"), "30"); // one token of 2 a minute
    assertEquals((await chatFull.json()).error, {
      code: "rate_limited",
      message: "Too many messages for this chat; retry in 30 s.",
      scope: "chat",
    });

    const otherChat = await post("b"); // the refusal above took nothing from the client's bucket
    assertEquals(otherChat.status, 202);
    await otherChat.body?.cancel();
    const clientFull = await post("c");
    assertEquals([clientFull.status, (await clientFull.json()).error.scope], [429, "client"]);
    assertEquals((await messages(clientId)).length, 3);

    const off = await handler({ rateLimitChatPerMinute: 0, rateLimitClientPerMinute: 0 })(intakeRequest(clientId));
    assertEquals(off.status, 202);
    await off.body?.cancel();
  });
});

Deno.test("other methods are 405; a CORS preflight is answered for allowed origins only", async () => {
  const serve = handler({ allowedOrigins: ["https://app.example"] });
  const get = await serve(new Request("http://edge.test/messages"));
  assertEquals(get.headers.get("allow"), "POST");
  assertEquals(await errorOf(get), { status: 405, code: "method_not_allowed", field: undefined });
  const preflight = (origin: string) =>
    serve(
      new Request("http://edge.test/messages", {
        method: "OPTIONS",
        headers: {
          Origin: origin,
          "Access-Control-Request-Method": "POST",
          "Access-Control-Request-Headers": "content-type, x-webhook-url, idempotency-key",
        },
      }),
    );
  const allowed = await preflight("https://app.example");
  assertEquals([allowed.status, allowed.headers.get("access-control-allow-origin")], [200, "https://app.example"]);
  await allowed.body?.cancel();
  const refused = await preflight("https://evil.example");
  assertEquals([refused.status, refused.headers.get("access-control-allow-origin")], [400, null]);
  await refused.body?.cancel();
});

Deno.test("over a real port: Deno.serve on port 0, fetch, 202 and the row", async () => {
  await withClient(async (clientId) => {
    const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, handler());
    try {
      const response = await fetch(`http://127.0.0.1:${server.addr.port}/messages`, {
        method: "POST",
        headers: {
          "Content-Type": "application/json",
          "X-Webhook-URL": WEBHOOK,
          "X-Platform": "web",
          "X-Chat-ID": "c 1",
        },
        body: JSON.stringify({ client_id: clientId, content: "over the wire" }),
      });
      assertEquals(response.status, 202);
      assert(response.headers.get("content-type")?.startsWith("application/json"), "a JSON answer");
      const body = await response.json();
      const rows = await messages(clientId);
      assertEquals(rows.map((row) => [row.id, row.state, row.content]), [[body.id, "pending", "over the wire"]]);
    } finally {
      await server.shutdown();
    }
  });
});

// The Python API as the BROWSER calls it. NEXT_PUBLIC_API_URL is inlined at build time (a build argument in
// dokploy/Dockerfile.frontend); the default /api is the console's own pass-through (app/api/[...path]),
// which forwards to BACKEND_API_URL on the server.
export const API_BASE = (process.env.NEXT_PUBLIC_API_URL || "/api").replace(/\/+$/, "");

export type TestMessage = { clientId: string; chatId: string; webhookUrl: string; content: string };

export type TestMessageResult = { ok: true; status: number; body: unknown } | { ok: false; status: number; error: string };

/** The checklist's test request (POST /api/messages/ with X-Platform: test), answered or failed in words. */
export async function sendTestMessage(message: TestMessage, fetcher: typeof fetch = fetch): Promise<TestMessageResult> {
  let response: Response;
  try {
    response = await fetcher(`${API_BASE}/messages/`, {
      method: "POST",
      headers: {
        "Content-Type": "application/json",
        "X-Platform": "test",
        "X-Chat-ID": message.chatId,
        "X-Webhook-URL": message.webhookUrl,
      },
      body: JSON.stringify({ client_id: message.clientId, content: message.content }),
    });
  } catch (e) {
    return { ok: false, status: 0, error: e instanceof Error ? e.message : String(e) };
  }
  const body: unknown = await response.json().catch(() => null);
  if (response.ok) return { ok: true, status: response.status, body };
  return { ok: false, status: response.status, error: describeError(body) ?? `HTTP ${response.status}` };
}

function describeError(body: unknown): string | null {
  if (!body || typeof body !== "object") return null;
  const record = body as Record<string, unknown>;
  for (const key of ["detail", "message", "error"]) {
    const value = record[key];
    if (typeof value === "string") return value;
    if (value && typeof value === "object") {
      // The API's shape: {"error": {"code", "message", "field"}}.
      const inner = value as Record<string, unknown>;
      if (typeof inner.message === "string") return inner.message;
      return JSON.stringify(value);
    }
  }
  return null;
}

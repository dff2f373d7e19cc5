import { backendUrl } from "@/lib/backend";

export const dynamic = "force-dynamic";

// NEXT_PUBLIC_API_URL defaults to /api: the browser calls the console, which passes the call to the
// Python API at BACKEND_API_URL (read at run time), path and query unchanged.
const FORWARDED = ["content-type", "accept", "x-webhook-url", "x-platform", "x-chat-id", "idempotency-key", "prefer"];

async function pass(request: Request): Promise<Response> {
  const base = backendUrl();
  if (!base) return Response.json({ detail: "BACKEND_API_URL is not set" }, { status: 503 });
  const incoming = new URL(request.url);
  const headers = new Headers();
  for (const name of FORWARDED) {
    const value = request.headers.get(name);
    if (value !== null) headers.set(name, value);
  }
  const body = request.method === "GET" || request.method === "HEAD" ? undefined : await request.arrayBuffer();
  try {
    const answer = await fetch(`${base}${incoming.pathname}${incoming.search}`, {
      method: request.method,
      headers,
      body,
      cache: "no-store",
      redirect: "manual",
    });
    const out = new Headers();
    for (const name of ["content-type", "retry-after", "location"]) {
      const value = answer.headers.get(name);
      if (value !== null) out.set(name, value);
    }
    return new Response(answer.body, { status: answer.status, headers: out });
  } catch (e) {
    const reason = e instanceof Error ? e.message : String(e);
    return Response.json({ detail: `the API at BACKEND_API_URL is unreachable: ${reason}` }, { status: 502 });
  }
}

export { pass as GET, pass as POST };

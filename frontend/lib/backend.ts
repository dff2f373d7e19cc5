// The Python API, as the console's server reaches it: BACKEND_API_URL, read at run time (a container
// network address in a deployment, http://127.0.0.1:8000 under `make run`).

export type BackendHealth =
  | { state: "not_configured" }
  | { state: "ok"; url: string; body: unknown }
  | { state: "unreachable"; url: string; reason: string };

export function backendUrl(env: NodeJS.ProcessEnv = process.env): string | null {
  const value = env.BACKEND_API_URL?.trim();
  return value ? value.replace(/\/+$/, "") : null;
}

export async function backendHealth(timeoutMs = 3000): Promise<BackendHealth> {
  const url = backendUrl();
  if (!url) return { state: "not_configured" };
  try {
    const response = await fetch(`${url}/health`, { cache: "no-store", signal: AbortSignal.timeout(timeoutMs) });
    const body: unknown = await response.json().catch(() => null);
    if (!response.ok) return { state: "unreachable", url, reason: `HTTP ${response.status}` };
    return { state: "ok", url, body };
  } catch (e) {
    return { state: "unreachable", url, reason: e instanceof Error ? e.message : String(e) };
  }
}

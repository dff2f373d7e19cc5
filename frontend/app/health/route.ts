import { backendHealth } from "@/lib/backend";

export const dynamic = "force-dynamic";

/** The console's own health (for the container's health check) and, as information, the Python API's. */
export async function GET() {
  const backend = await backendHealth(2000);
  return Response.json({ status: "ok", backend: backend.state });
}

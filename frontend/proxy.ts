import type { NextRequest } from "next/server";

import { updateSession } from "@/lib/supabase/middleware";

export async function proxy(request: NextRequest) {
  return updateSession(request);
}

export const config = {
  // Everything but Next's own assets; /health and the /api pass-through are let through inside.
  matcher: ["/((?!_next/static|_next/image|favicon.ico).*)"],
};

import type { NextRequest } from "next/server";

import { updateSession } from "@/lib/supabase/middleware";

export async function proxy(request: NextRequest) {
  return updateSession(request);
}

export const config = {
  // Every page; not Next's assets, the icon, the health check or the /api pass-through (the Python API
  // decides who may call it), which need no session and should not cost an Auth round trip.
  matcher: ["/((?!_next/static|_next/image|favicon.ico|icon.svg|health$|api/).*)"],
};

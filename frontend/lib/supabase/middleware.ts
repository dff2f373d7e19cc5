import { createServerClient } from "@supabase/ssr";
import { NextResponse, type NextRequest } from "next/server";

import type { Database } from "@/lib/database.types";
import { supabaseConfig } from "./config";
import { PUBLIC_PATHS, SIGN_IN_PATH } from "./paths";
import { serverRealtime } from "./transport";

/**
 * Runs before every page (proxy.ts): refreshes the session cookies when the access token is due, and
 * sends a person with no session to sign-in, remembering where they were (`next`).
 */
export async function updateSession(request: NextRequest): Promise<NextResponse> {
  let response = NextResponse.next({ request });
  const { url, anonKey } = supabaseConfig();
  const supabase = createServerClient<Database>(url, anonKey, {
    cookies: {
      getAll() {
        return request.cookies.getAll();
      },
      setAll(cookiesToSet, headers) {
        for (const { name, value } of cookiesToSet) request.cookies.set(name, value);
        response = NextResponse.next({ request });
        for (const { name, value, options } of cookiesToSet) response.cookies.set(name, value, options);
        for (const [key, value] of Object.entries(headers)) response.headers.set(key, value);
      },
    },
    realtime: serverRealtime,
  });

  // Nothing may run between creating the client and this call (the with-supabase example's rule): it is
  // what refreshes an expired access token with the refresh token.
  const { data } = await supabase.auth.getUser();
  const path = request.nextUrl.pathname;
  if (!data.user && !PUBLIC_PATHS.some((p) => path === p || path.startsWith(`${p}/`))) {
    const target = request.nextUrl.clone();
    target.pathname = SIGN_IN_PATH;
    target.search = "";
    target.searchParams.set("next", path + request.nextUrl.search);
    const redirect = NextResponse.redirect(target);
    for (const cookie of response.cookies.getAll()) redirect.cookies.set(cookie);
    return redirect;
  }
  return response;
}

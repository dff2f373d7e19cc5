import { createServerClient } from "@supabase/ssr";
import { cookies } from "next/headers";

import type { Database } from "@/lib/database.types";
import { supabaseConfig } from "./config";
import { serverRealtime } from "./transport";

/** A Supabase client for a server component, route handler or server action, as the signed-in user. */
export async function createClient() {
  const cookieStore = await cookies();
  const { url, anonKey } = supabaseConfig();
  return createServerClient<Database>(url, anonKey, {
    cookies: {
      getAll() {
        return cookieStore.getAll();
      },
      setAll(cookiesToSet) {
        try {
          for (const { name, value, options } of cookiesToSet) cookieStore.set(name, value, options);
        } catch {
          // A server component cannot set cookies; the proxy (lib/supabase/middleware.ts) refreshes them.
        }
      },
    },
    realtime: serverRealtime,
  });
}

"use client";

import { createBrowserClient } from "@supabase/ssr";
import type { SupabaseClient } from "@supabase/supabase-js";

import type { Database } from "@/lib/database.types";
import type { SupabaseConfig } from "./config";

export type BrowserClient = SupabaseClient<Database>;

/**
 * The browser's Supabase client. createBrowserClient keeps one instance per page, so the auth session
 * and the Realtime socket are shared by every live collection. supabase-js passes each refreshed access
 * token to Realtime itself (SupabaseClient._handleTokenChanged calls realtime.setAuth on TOKEN_REFRESHED).
 */
export function createClient(config: SupabaseConfig): BrowserClient {
  return createBrowserClient<Database>(config.url, config.anonKey);
}

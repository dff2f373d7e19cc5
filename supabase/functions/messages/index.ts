/** The Edge Function `messages`: intake on Supabase's edge (see handler.ts); Supabase provides the env. */

import { readConfig } from "./config.ts";
import { createHandler } from "./handler.ts";
import { PostgresRateLimiter } from "./ratelimit.ts";
import { connectClient, SupabaseIntakeStore } from "./store.ts";

const config = readConfig((name) => Deno.env.get(name));
const client = connectClient(config.supabaseUrl, config.serviceRoleKey);
const limits = { clientPerMinute: config.rateLimitClientPerMinute, chatPerMinute: config.rateLimitChatPerMinute };

Deno.serve(
  createHandler({ config, store: new SupabaseIntakeStore(client), limiter: new PostgresRateLimiter(client, limits) }),
);

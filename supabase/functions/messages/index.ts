/** The Edge Function `messages`: intake on Supabase's edge (see handler.ts); Supabase provides the env. */

import { readConfig } from "./config.ts";
import { createHandler } from "./handler.ts";
import { SupabaseIntakeStore } from "./store.ts";

const config = readConfig((name) => Deno.env.get(name));
const store = SupabaseIntakeStore.connect(config.supabaseUrl, config.serviceRoleKey);

Deno.serve(createHandler({ config, store }));

// Where the console finds Supabase. Read on the server at run time (not inlined at build time), so one
// build serves `make run`, the tests' stacks on free ports and a deployment alike; the root layout hands
// the same two public values to the browser.
export type SupabaseConfig = { url: string; anonKey: string };

export class MissingSettingError extends Error {
  constructor(readonly setting: string) {
    super(`${setting} is not set: the console needs it to reach Supabase`);
    this.name = "MissingSettingError";
  }
}

function required(env: NodeJS.ProcessEnv, name: string): string {
  const value = env[name]?.trim();
  if (!value) throw new MissingSettingError(name);
  return value;
}

export function supabaseConfig(env: NodeJS.ProcessEnv = process.env): SupabaseConfig {
  return {
    url: required(env, "SUPABASE_URL").replace(/\/+$/, ""),
    anonKey: required(env, "SUPABASE_ANON_KEY"),
  };
}

/** The function's settings, read once from the environment; a wrong value stops it, naming the variable. */

export interface Config {
  supabaseUrl: string;
  serviceRoleKey: string;
  intakeApiKey: string | null;
  maxContentChars: number;
  maxBodyBytes: number;
  allowPrivateWebhooks: boolean;
  allowedOrigins: string[];
  locationBase: string;
  rateLimitClientPerMinute: number;
  rateLimitChatPerMinute: number;
}

export type Env = (name: string) => string | undefined;

export class ConfigError extends Error {}

// The API's defaults (service/neiromatrius/config.py).
const DEFAULT_MAX_CONTENT_CHARS = 4000;
const DEFAULT_MAX_BODY_BYTES = 65536;
const DEFAULT_RATE_LIMIT_CLIENT_PER_MINUTE = 120;
const DEFAULT_RATE_LIMIT_CHAT_PER_MINUTE = 30;

export function readConfig(env: Env): Config {
  return {
    supabaseUrl: required(env, "SUPABASE_URL").replace(/\/+$/, ""),
    serviceRoleKey: required(env, "SUPABASE_SERVICE_ROLE_KEY"),
    intakeApiKey: env("INTAKE_API_KEY") || null, // an empty value counts as unset, as in the API
    maxContentChars: integer(env, "MAX_CONTENT_CHARS", DEFAULT_MAX_CONTENT_CHARS, 1),
    maxBodyBytes: integer(env, "MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES, 1024),
    allowPrivateWebhooks: boolean(env, "ALLOW_PRIVATE_WEBHOOKS"),
    allowedOrigins: origins(env("ALLOWED_ORIGINS")),
    // Where GET /api/messages/{id} lives: the API, not this function (empty: a path, as the API sends).
    locationBase: (env("API_URL") ?? "").replace(/\/+$/, ""),
    rateLimitClientPerMinute: integer(env, "RATE_LIMIT_CLIENT_PER_MINUTE", DEFAULT_RATE_LIMIT_CLIENT_PER_MINUTE, 0),
    rateLimitChatPerMinute: integer(env, "RATE_LIMIT_CHAT_PER_MINUTE", DEFAULT_RATE_LIMIT_CHAT_PER_MINUTE, 0),
  };
}

function required(env: Env, name: string): string {
  const value = env(name);
  if (!value) throw new ConfigError(`${name}: required`);
  return value;
}

function integer(env: Env, name: string, fallback: number, min: number): number {
  const value = env(name)?.trim();
  if (value === undefined || value === "") return fallback;
  if (!/^[+-]?\d+$/.test(value) || Number(value) < min) {
    throw new ConfigError(`${name}: must be an integer of at least ${min}, got ${JSON.stringify(value)}`);
  }
  return Number(value);
}

// pydantic's spellings of a boolean, which the API's settings accept.
const TRUE = new Set(["1", "true", "t", "yes", "y", "on"]);
const FALSE = new Set(["0", "false", "f", "no", "n", "off", ""]);

function boolean(env: Env, name: string): boolean {
  const value = (env(name) ?? "").trim().toLowerCase();
  if (TRUE.has(value)) return true;
  if (FALSE.has(value)) return false;
  throw new ConfigError(`${name}: must be true or false, got ${JSON.stringify(value)}`);
}

/** A JSON array or a comma-separated list, like the API's ALLOWED_ORIGINS. */
function origins(value: string | undefined): string[] {
  const text = (value ?? "").trim();
  if (text.startsWith("[")) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = null;
    }
    if (!Array.isArray(parsed) || !parsed.every((item) => typeof item === "string")) {
      throw new ConfigError("ALLOWED_ORIGINS: must be a JSON array of strings or a comma-separated list");
    }
    return parsed.map((item: string) => item.trim()).filter(Boolean);
  }
  return text.split(",").map((item) => item.trim()).filter(Boolean);
}

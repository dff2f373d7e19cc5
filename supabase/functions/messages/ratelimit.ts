/**
 * The function's rate limits: the API's two token buckets (per client, per chat; a minute's allowance
 * refilled evenly; a token from both or from neither), kept in Postgres by the `take_intake_tokens` RPC
 * (supabase/migrations/20261203090000_edge_intake_rate_limit.sql), since the edge has neither the API's
 * memory nor its Redis. One RPC per request, on the database's clock, shared by every isolate.
 */

import type { SupabaseClient } from "npm:@supabase/supabase-js@2.119.1";

import { RateLimited, StoreError } from "./errors.ts";
import type { IncomingMessage } from "./intake.ts";
import { isUnavailable } from "./store.ts";

export interface Limits {
  clientPerMinute: number;
  chatPerMinute: number;
}

export interface RateLimiter {
  /** Take a token for this message, or throw `RateLimited`. */
  take(message: IncomingMessage): Promise<void>;
}

interface Decision {
  allowed: boolean;
  scope?: string;
  retry_after?: number;
}

/** A `Retry-After` value as the API computes it: whole seconds, rounded up (to the millisecond first), at least 1. */
export function wholeSeconds(seconds: number): number {
  return Math.max(1, Math.ceil(Math.round(seconds * 1000) / 1000));
}

export class PostgresRateLimiter implements RateLimiter {
  constructor(private readonly client: SupabaseClient, private readonly limits: Limits) {}

  async take(message: IncomingMessage): Promise<void> {
    if (this.limits.clientPerMinute <= 0 && this.limits.chatPerMinute <= 0) return;
    const { data, error, status } = await this.client.rpc("take_intake_tokens", {
      p_client_id: message.clientId,
      p_platform: message.platform,
      p_chat_id: message.chatId,
      p_client_per_minute: this.limits.clientPerMinute,
      p_chat_per_minute: this.limits.chatPerMinute,
    });
    if (error) {
      throw new StoreError(
        `take_intake_tokens: ${status} ${error.code} ${error.message}`,
        isUnavailable(status, error.code),
      );
    }
    const decision = data as Decision;
    if (!decision.allowed) throw new RateLimited(decision.scope ?? "client", wholeSeconds(decision.retry_after ?? 1));
  }
}

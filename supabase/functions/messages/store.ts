/** The intake write: one call of the `intake_message` RPC through supabase-js, as the API's store makes it. */

import { createClient, type SupabaseClient } from "npm:@supabase/supabase-js@2.119.1";

import { StoreError } from "./errors.ts";
import type { IncomingMessage } from "./intake.ts";

const REQUEST_TIMEOUT_MS = 10_000;
// PostgREST's own codes for "the database is not there" and SQLSTATE classes that mean the same
// (the list in service/neiromatrius/adapters/supabase_store.py).
const UNAVAILABLE_CODES = new Set(["PGRST000", "PGRST001", "PGRST002", "PGRST003", "502", "503", "504", "520"]);
const UNAVAILABLE_SQLSTATE_CLASSES = ["08", "53", "57"];
// status 0: supabase-js reports a failed fetch (refused, reset, timed out) this way.
const UNAVAILABLE_STATUSES = new Set([0, 502, 503, 504, 520]);

export type MessageState = "pending" | "processing" | "answered" | "handoff" | "failed";

export interface Intake {
  id: string;
  conversationId: string;
  state: MessageState;
  conflict: boolean;
}

export interface IntakeStore {
  intake(message: IncomingMessage): Promise<Intake>;
}

interface IntakeRow {
  id: string;
  conversation_id: string;
  state: MessageState;
  created: boolean;
  conflict: boolean;
}

export class SupabaseIntakeStore implements IntakeStore {
  constructor(private readonly client: SupabaseClient) {}

  static connect(url: string, serviceRoleKey: string): SupabaseIntakeStore {
    const client = createClient(url, serviceRoleKey, {
      auth: { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false },
      global: { fetch: (input, init) => fetch(input, { ...init, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) }) },
    });
    return new SupabaseIntakeStore(client);
  }

  async intake(message: IncomingMessage): Promise<Intake> {
    const { data, error, status } = await this.client.rpc("intake_message", {
      p_client_id: message.clientId,
      p_platform: message.platform,
      p_chat_id: message.chatId,
      p_content: message.content,
      p_webhook_url: message.webhookUrl,
      p_idempotency_key: message.idempotencyKey,
      p_platform_message_id: message.platformMessageId,
      p_fingerprint: message.fingerprint,
    });
    if (error) {
      const code = error.code ?? "";
      const unavailable = UNAVAILABLE_STATUSES.has(status) || UNAVAILABLE_CODES.has(code) ||
        UNAVAILABLE_SQLSTATE_CLASSES.some((prefix) => code.startsWith(prefix));
      throw new StoreError(`intake_message: ${status} ${code} ${error.message}`, unavailable);
    }
    const row = data as IntakeRow;
    return { id: row.id, conversationId: row.conversation_id, state: row.state, conflict: row.conflict };
  }
}

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

/** The service-role client the function's calls share: no session, a timeout on every request. */
export function connectClient(url: string, serviceRoleKey: string): SupabaseClient {
  return createClient(url, serviceRoleKey, {
    auth: { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false },
    global: { fetch: (input, init) => fetch(input, { ...init, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) }) },
  });
}

/** Whether a failed call means the database or PostgREST is not there (503, retry later), not a refusal. */
export function isUnavailable(status: number, code: string | undefined): boolean {
  const sqlstate = code ?? "";
  return UNAVAILABLE_STATUSES.has(status) || UNAVAILABLE_CODES.has(sqlstate) ||
    UNAVAILABLE_SQLSTATE_CLASSES.some((prefix) => sqlstate.startsWith(prefix));
}

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
    return new SupabaseIntakeStore(connectClient(url, serviceRoleKey));
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
      throw new StoreError(
        `intake_message: ${status} ${error.code} ${error.message}`,
        isUnavailable(status, error.code),
      );
    }
    const row = data as IntakeRow;
    return { id: row.id, conversationId: row.conversation_id, state: row.state, conflict: row.conflict };
  }
}

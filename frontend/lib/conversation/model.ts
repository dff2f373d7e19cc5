import type { SupabaseClient } from "@supabase/supabase-js";

import type { Database, Tables } from "@/lib/database.types";
import { CLASSIFICATION_COLUMNS, one, type Classification } from "@/lib/classification";
import { ReadError } from "@/lib/live/errors";

type Client = SupabaseClient<Database>;

export const THREAD_LIMIT = 500;

export type Conversation = Pick<Tables<"conversations">, "id" | "client_id" | "platform" | "chat_id" | "created_at" | "updated_at">;

export type Delivery = Pick<
  Tables<"replies">,
  "id" | "model" | "kind" | "author_id" | "delivery_state" | "delivery_attempts" | "last_delivery_error" | "delivered_at"
>;

/** One message of the thread: an inbound one with its classification, an outbound one with its reply row
 * (who wrote it, with which model, and how its delivery is going). */
export type ThreadMessage = Pick<
  Tables<"messages">,
  "id" | "direction" | "content" | "state" | "created_at" | "updated_at" | "reply_to" | "last_error"
> & { classification: Classification | null; delivery: Delivery | null };

const THREAD_SELECT = `id, direction, content, state, created_at, updated_at, reply_to, last_error,
  classifications (${CLASSIFICATION_COLUMNS}),
  replies!replies_outbound_message_id_fkey (id, model, kind, author_id, delivery_state, delivery_attempts, last_delivery_error, delivered_at)`;

type Fetched = Omit<ThreadMessage, "classification" | "delivery"> & {
  classifications: Classification | Classification[] | null;
  replies: Delivery | Delivery[] | null;
};

export function toThreadMessage({ classifications, replies, ...message }: Fetched): ThreadMessage {
  return { ...message, classification: one(classifications), delivery: one(replies) };
}

/** Oldest first, in the order the pipeline answers them (created_at, then id). */
export function compareThread(a: ThreadMessage, b: ThreadMessage): number {
  const byTime = Date.parse(a.created_at) - Date.parse(b.created_at);
  return byTime !== 0 ? byTime : a.id.localeCompare(b.id);
}

export async function fetchConversation(client: Client, id: string): Promise<Conversation | null> {
  const { data, error } = await client
    .from("conversations")
    .select("id, client_id, platform, chat_id, created_at, updated_at")
    .eq("id", id)
    .maybeSingle();
  if (error) throw new Error(error.message);
  return data;
}

/** The conversation's messages (all, or just `ids`), each with its classification or delivery. */
export async function fetchThread(client: Client, conversationId: string, ids?: readonly string[]): Promise<ThreadMessage[]> {
  let query = client
    .from("messages")
    .select(THREAD_SELECT)
    .eq("conversation_id", conversationId)
    .order("created_at", { ascending: true })
    .order("id", { ascending: true });
  query = ids ? query.in("id", [...ids]) : query.limit(THREAD_LIMIT);
  const { data, error, status } = await query;
  if (error) throw new ReadError(error.message, status);
  return (data as unknown as Fetched[]).map(toThreadMessage);
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
export function isUuid(value: string): boolean {
  return UUID.test(value);
}

import type { SupabaseClient } from "@supabase/supabase-js";

import type { Database, Tables } from "@/lib/database.types";
import { CLASSIFICATION_COLUMNS, one, type Classification } from "@/lib/classification";
import { ReadError } from "@/lib/live/errors";

type Client = SupabaseClient<Database>;

/** How many conversations the inbox shows, and how many recent messages of each it reads. */
export const INBOX_LIMIT = 200;
const RECENT_MESSAGES = 5;

const INBOX_SELECT = `id, client_id, platform, chat_id, created_at, updated_at,
  messages (id, direction, content, state, created_at, updated_at, classifications (${CLASSIFICATION_COLUMNS}))`;

export type InboxMessage = Pick<Tables<"messages">, "id" | "direction" | "content" | "state" | "created_at">;

/** One inbox row. The optional fields belong to the conversation controls (issue 11): the tab predicates
 * (tabs.ts) already read them, so those columns slot in by filling them here. */
export type InboxItem = {
  id: string;
  clientId: string;
  platform: string;
  chatId: string;
  updatedAt: string;
  lastMessage: InboxMessage | null;
  lastInbound: (InboxMessage & { classification: Classification | null }) | null;
  assignedTo?: string | null;
  resolvedAt?: string | null;
  botEnabled?: boolean;
  draftsWaiting?: number;
};

type Fetched = {
  id: string;
  client_id: string;
  platform: string;
  chat_id: string;
  updated_at: string;
  messages: Array<InboxMessage & { classifications: Classification | Classification[] | null }>;
};

export function toInboxItem(row: Fetched): InboxItem {
  const messages = [...row.messages].sort((a, b) => b.created_at.localeCompare(a.created_at));
  const last = messages[0] ?? null;
  const inbound = messages.find((m) => m.direction === "inbound") ?? null;
  const strip = ({ id, direction, content, state, created_at }: InboxMessage): InboxMessage => ({
    id, direction, content, state, created_at,
  }); // prettier-ignore
  return {
    id: row.id,
    clientId: row.client_id,
    platform: row.platform,
    chatId: row.chat_id,
    updatedAt: row.updated_at,
    lastMessage: last ? strip(last) : null,
    lastInbound: inbound ? { ...strip(inbound), classification: one(inbound.classifications) } : null,
  };
}

/** The inbox's conversations (all, or just `ids`), each with its latest messages, under the user's RLS. */
export async function fetchInbox(client: Client, ids?: readonly string[]): Promise<InboxItem[]> {
  let query = client
    .from("conversations")
    .select(INBOX_SELECT)
    .order("updated_at", { ascending: false })
    .order("created_at", { referencedTable: "messages", ascending: false })
    .limit(RECENT_MESSAGES, { referencedTable: "messages" });
  query = ids ? query.in("id", [...ids]) : query.limit(INBOX_LIMIT);
  const { data, error, status } = await query;
  if (error) throw new ReadError(error.message, status);
  return (data as unknown as Fetched[]).map(toInboxItem);
}

import type { SupabaseClient } from "@supabase/supabase-js";

import type { Database, Tables } from "@/lib/database.types";
import { CLASSIFICATION_COLUMNS, one, type Classification } from "@/lib/classification";
import { ReadError } from "@/lib/live/errors";

type Client = SupabaseClient<Database>;

/** How many conversations the inbox shows, and how many recent messages of each it reads. */
export const INBOX_LIMIT = 200;
const RECENT_MESSAGES = 5;

const INBOX_SELECT = `id, client_id, platform, chat_id, created_at, updated_at,
  bot_mode, bot_paused_at, bot_paused_until, assignee_id, status, resolved_at, unread_count,
  messages (id, direction, content, state, created_at, updated_at, classifications (${CLASSIFICATION_COLUMNS})),
  replies (id)`;

export type InboxMessage = Pick<Tables<"messages">, "id" | "direction" | "content" | "state" | "created_at">;

/** One inbox row: the latest messages, and the conversation controls the tab predicates (tabs.ts) read. */
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
  /** Customer messages since the business (bot or operator) last wrote. */
  unread?: number;
};

type Controls = Pick<
  Tables<"conversations">,
  "bot_mode" | "bot_paused_at" | "bot_paused_until" | "assignee_id" | "status" | "resolved_at" | "unread_count"
>;

type Fetched = {
  id: string;
  client_id: string;
  platform: string;
  chat_id: string;
  updated_at: string;
  messages: Array<InboxMessage & { classifications: Classification | Classification[] | null }>;
  /** Only the drafts waiting for approval (the query filters the embed). */
  replies?: Array<{ id: string }>;
} & Partial<Controls>;

/** The bot answers by itself now: its mode is not off and no operator reply paused it (or the pause ran out). */
function botActive(row: Partial<Controls>, now: number): boolean {
  if (row.bot_mode === "off") return false;
  if (!row.bot_paused_at) return true;
  return Boolean(row.bot_paused_until) && Date.parse(row.bot_paused_until as string) <= now;
}

export function toInboxItem(row: Fetched, now: number = Date.now()): InboxItem {
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
    assignedTo: row.assignee_id ?? null,
    resolvedAt: row.status === "resolved" ? (row.resolved_at ?? row.updated_at) : null,
    botEnabled: botActive(row, now),
    draftsWaiting: row.replies?.length ?? 0,
    unread: row.unread_count ?? 0,
  };
}

/** The inbox's conversations (all, or just `ids`), each with its latest messages, under the user's RLS. */
export async function fetchInbox(client: Client, ids?: readonly string[]): Promise<InboxItem[]> {
  let query = client
    .from("conversations")
    .select(INBOX_SELECT)
    .order("updated_at", { ascending: false })
    .order("created_at", { referencedTable: "messages", ascending: false })
    .limit(RECENT_MESSAGES, { referencedTable: "messages" })
    .eq("replies.status", "draft");
  query = ids ? query.in("id", [...ids]) : query.limit(INBOX_LIMIT);
  const { data, error, status } = await query;
  if (error) throw new ReadError(error.message, status);
  return (data as unknown as Fetched[]).map(toInboxItem);
}

import type { SupabaseClient } from "@supabase/supabase-js";

import type { Database, Tables } from "@/lib/database.types";
import { ReadError } from "@/lib/live/errors";

// The conversation controls as the console uses them: what it reads (the conversation's controls, its
// drafts waiting for approval, its private notes) and the operator actions, each an RPC that runs under
// the operator's own token and RLS (docs/conversation-controls.md). Nothing here talks to the Python API.

type Client = SupabaseClient<Database>;

/** The RPCs' own limit on a reply or a note (max_text_chars() in SQL, the API's MAX_CONTENT_CHARS). */
export const MAX_TEXT_CHARS = 4000;

export type Controls = Pick<
  Tables<"conversations">,
  "id" | "bot_mode" | "resume_mode" | "status" | "assignee_id" | "bot_paused_at" | "bot_paused_until" | "handed_off_at"
>;
export type Draft = Pick<Tables<"replies">, "id" | "content" | "model" | "created_at" | "message_id" | "status">;
export type Note = Pick<Tables<"notes">, "id" | "body" | "author_id" | "created_at">;

const CONTROLS = "id, bot_mode, resume_mode, status, assignee_id, bot_paused_at, bot_paused_until, handed_off_at";

export async function fetchControls(client: Client, id: string): Promise<Controls[]> {
  const { data, error, status } = await client.from("conversations").select(CONTROLS).eq("id", id);
  if (error) throw new ReadError(error.message, status);
  return data;
}

/** The bot's drafts waiting for an operator (all of the conversation's, or just `ids`). */
export async function fetchDrafts(client: Client, conversationId: string, ids?: readonly string[]): Promise<Draft[]> {
  let query = client
    .from("replies")
    .select("id, content, model, created_at, message_id, status")
    .eq("conversation_id", conversationId)
    .eq("status", "draft")
    .order("created_at", { ascending: true });
  if (ids) query = query.in("id", [...ids]);
  const { data, error, status } = await query;
  if (error) throw new ReadError(error.message, status);
  return data;
}

export async function fetchNotes(client: Client, conversationId: string, ids?: readonly string[]): Promise<Note[]> {
  let query = client
    .from("notes")
    .select("id, body, author_id, created_at")
    .eq("conversation_id", conversationId)
    .order("created_at", { ascending: true });
  if (ids) query = query.in("id", [...ids]);
  const { data, error, status } = await query;
  if (error) throw new ReadError(error.message, status);
  return data;
}

export function byCreated(a: { created_at: string; id: string }, b: { created_at: string; id: string }): number {
  const byTime = Date.parse(a.created_at) - Date.parse(b.created_at);
  return byTime !== 0 ? byTime : a.id.localeCompare(b.id);
}

/** Whether the bot answers this conversation now: its mode is not off and no operator reply paused it. */
export function botOwns(controls: Controls | undefined, now: number = Date.now()): boolean {
  if (!controls || controls.bot_mode === "off") return false;
  if (!controls.bot_paused_at) return true;
  return controls.bot_paused_until !== null && Date.parse(controls.bot_paused_until) <= now;
}

export type TextProblem = "empty" | "tooLong";

/** What is wrong with a reply or note before it is sent (the RPC refuses the same, in the same words). */
export function textProblem(text: string): TextProblem | null {
  if (!text.trim()) return "empty";
  if ([...text].length > MAX_TEXT_CHARS) return "tooLong";
  return null;
}

/** A fresh id for one composed text: a retry or a double click sends it once (the RPC deduplicates). */
export function newRequestId(): string {
  return crypto.randomUUID();
}

export type Action =
  | { name: "send_reply"; args: { p_conversation_id: string; p_content: string; p_client_request_id: string } }
  | { name: "approve_draft"; args: { p_conversation_id: string; p_reply_id: string; p_content?: string } }
  | { name: "discard_draft"; args: { p_conversation_id: string; p_reply_id: string } }
  | { name: "take_over" | "resolve" | "reopen"; args: { p_conversation_id: string } }
  | { name: "hand_back"; args: { p_conversation_id: string; p_mode?: string } }
  | { name: "set_bot_mode"; args: { p_conversation_id: string; p_mode: string } }
  | { name: "assign"; args: { p_conversation_id: string; p_assignee_id: string | null } }
  | { name: "add_note"; args: { p_conversation_id: string; p_body: string; p_client_request_id: string } }
  | { name: "resend_reply"; args: { p_reply_id: string } };

export type ActionError = { status: number; code: string; message: string };

/** Run one operator action; an error is returned (never thrown) with PostgREST's status, code and message. */
export async function act(client: Client, action: Action): Promise<ActionError | null> {
  // The union keeps each RPC's arguments checked here; supabase-js's rpc() is typed per name.
  const { error, status } = await client.rpc(action.name as never, action.args as never);
  if (!error) return null;
  return { status, code: error.code ?? "", message: error.message ?? "" };
}

/** The kind of refusal, for the message the operator reads; the RPC's own text is shown beside it. */
export function refusalKind(error: ActionError): "conflict" | "invalid" | "forbidden" | "missing" | "failed" {
  if (error.status === 409) return "conflict";
  if (error.status === 400) return "invalid";
  if (error.status === 401 || error.status === 403) return "forbidden";
  if (error.status === 404) return "missing";
  return "failed";
}
